#!/usr/bin/env bash
# Schemathesis over every operation of openapi.json, against a local plantilla on SQLite.
#
# Two runs with a fixed seed and a bounded number of examples per operation: one with a
# channel's public token, one with the admin token, at once, each against its own freshly
# seeded server (so neither sees what the other created). Every check is on (`--checks all`); the
# only allowance is in tools/schemathesis.toml: the compatible API answers an unknown token
# with 400 (as AtomChat does, documented in README and openapi.json), where schemathesis'
# `ignored_auth` check wants 401. Exits non-zero on any failure.
#
# Builds nothing if the debug binary exists (`cargo test` builds it); otherwise
# `cargo build --bin plantilla`. Set PLANTILLA_BIN to use another binary.
# Environment: ST_MAX_EXAMPLES (default 20), ST_SEED (default 16), ST_VERBOSE=1 for the full
# report instead of the summary lines, ST_KEEP=1 to keep the temp dir (server log, reports).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

target=${CARGO_TARGET_DIR:-$root/target}
bin=${PLANTILLA_BIN:-$target/debug/plantilla}
if [ ! -x "$bin" ]; then
  cargo build -q --bin plantilla
fi
# Schemathesis runs in its own virtualenv, on Python 3.13 when the machine has it: CPython
# before 3.11.8 / 3.12.2 raises "SystemError: AST constructor recursion depth mismatch" when
# hypothesis describes a recursive strategy from deep in the stack (CPython gh-106905), which
# failed a CI run. The venv is keyed by the pinned requirements, so a change reinstalls.
requirements=tools/schemathesis-requirements.txt
pick_python() {
  local c
  for c in "${ST_PYTHON:-}" python3.13 "$(pyenv root 2> /dev/null)"/versions/3.13*/bin/python3 \
    /root/.pyenv/versions/3.13*/bin/python3 python3; do
    [ -n "$c" ] && command -v "$c" > /dev/null 2>&1 || continue
    "$c" -c 'import sys; v = sys.version_info; sys.exit(not (v >= (3, 12, 2) or (3, 11, 8) <= v < (3, 12)))' 2> /dev/null \
      && { echo "$c"; return; }
  done
  echo "no Python >= 3.11.8 / 3.12.2 for schemathesis (CPython gh-106905); set ST_PYTHON" >&2
  return 1
}
python=$(pick_python)
venv=${ST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/plantilla/schemathesis-$(cat "$requirements" | "$python" -c \
  'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read() + sys.version.encode()).hexdigest()[:12])')}
if [ ! -x "$venv/bin/schemathesis" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
fi
schemathesis=$venv/bin/schemathesis

max_examples=${ST_MAX_EXAMPLES:-20}
seed=${ST_SEED:-16}
work=$(mktemp -d)
cleanup() {
  if [ "${ST_KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# One run (`public` or `admin`): its own server on its own SQLite file in $work/<label>, seeded
# as below, then schemathesis with that run's token. The two runs are independent and run at
# once (each of schemathesis and the server mostly keeps one core busy): about half the time
# of one after the other, with the same operations, checks, seed and examples.
suite() { # label
  local label=$1
  local dir=$work/$label
  mkdir -p "$dir"
  server_pid=
  trap 'if [ -n "$server_pid" ]; then kill "$server_pid" 2> /dev/null || true; wait "$server_pid" 2> /dev/null || true; fi' EXIT

  # A free loopback port.
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  base=http://127.0.0.1:$port
  admin_token=adm_schemathesis_$(python3 -c 'import secrets; print(secrets.token_hex(12))')

  # The token rate limit is off: schemathesis sends far more than 100 requests a second per token.
  DATABASE_URL="sqlite://$dir/plantilla.db" \
    PLANTILLA_LISTEN=127.0.0.1:$port \
    PLANTILLA_ADMIN_TOKEN=$admin_token \
    PLANTILLA_TOKEN_RATE_PER_SEC=0 \
    PLANTILLA_TEMPLATE_SYNC_INTERVAL_SECS=0 \
    PLANTILLA_META_APP_SECRET=schemathesis-app-secret \
    PLANTILLA_META_VERIFY_TOKEN=schemathesis-verify-token \
    PLANTILLA_LOG=warn \
    "$bin" serve > "$dir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "$base/healthz" > /dev/null 2>&1 && break
    kill -0 "$server_pid" 2> /dev/null || { cat "$dir/server.log" >&2; exit 1; }
    sleep 0.1
  done

  # Seeds through the admin API (and the native API for the webhook endpoint), as `plantilla demo`.
  call() { # method path token body -> JSON answer; fails on a non-2xx
    curl -fsS -X "$1" "$base$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' \
      ${4:+-d "$4"}
  }
  field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
  account=$(call POST /v1/admin/accounts "$admin_token" '{"name":"Schemathesis","conversationLimit":1000000}' | field id)
  channel_json=$(call POST /v1/admin/channels "$admin_token" \
    "{\"accountId\":\"$account\",\"name\":\"Sandbox\",\"provider\":\"sandbox\",\"status\":\"connected\"}")
  channel=$(field id <<< "$channel_json")
  public_token=$(field publicToken <<< "$channel_json")
  call POST /v1/admin/groups "$admin_token" \
    "{\"accountId\":\"$account\",\"name\":\"Ventas\",\"channelIds\":[\"$channel\"]}" > /dev/null
  template=$(call POST /v1/admin/templates "$admin_token" \
    "{\"accountId\":\"$account\",\"name\":\"order_update\",\"language\":\"es\",\"category\":\"UTILITY\",
      \"status\":\"APPROVED\",\"appId\":\"st_order_update\",\"message\":\"Hola {{customer_name}}, pedido {{order_id}}.\"}" \
    | field id)
  call POST "/v1/admin/accounts/$account/api-keys" "$admin_token" '{"name":"schemathesis"}' > /dev/null
  endpoint=$(call POST /v1/webhook-endpoints "$public_token" \
    '{"url":"https://example.com/plantilla-hook","eventTypes":["message.sent","message.read"]}' | field id)

  local token=$public_token
  [ "$label" = admin ] && token=$admin_token
  run "$label" "$token" "$(config "$label")"
}

# Values that refer to what exists: the schema cannot say "an id of this account" or "a number
# of a real numbering plan", so schema-valid data draws these from the seeded ones (positive
# cases; negative cases still mutate them).
config() { # extra TOML for one run -> config file
  local file=$work/$1/schemathesis.toml
  cat tools/schemathesis.toml > "$file"
  cat >> "$file" << TOML

[dictionaries.account]
values = ["$account"]
[dictionaries.channel]
values = ["$channel"]
[dictionaries.template]
values = ["$template"]
[dictionaries.endpoint]
values = ["$endpoint"]
[dictionaries.phone]
values = ["50755667788", "14155552671", "447911123456", "5215512345678"]
[dictionaries.url]
values = ["https://example.com/plantilla-status", "http://localhost:9/cb"]

[parameters]
"body.accountId" = { dictionary = "account" }
"body.channelId" = { dictionary = "channel" }
"query.channelId" = { dictionary = "channel" }
"body.channelIds[*]" = { dictionary = "channel" }
"body.templateId" = { dictionary = "template" }
"path.templateId" = { dictionary = "template" }
"body.to" = { dictionary = "phone" }
"body.recipients[*].to" = { dictionary = "phone" }
"body.phoneNumber" = { dictionary = "phone" }
"body.callbackUrl" = { dictionary = "url" }
"body.recipients[*].callbackUrl" = { dictionary = "url" }
"body.url" = { dictionary = "url" }
TOML
  cat >> "$file" << TOML

[[operations]]
include-path-regex = "^/v1/webhook-endpoints/"
parameters = { "path.id" = { dictionary = "endpoint" } }
TOML
  if [ "$1" = admin ]; then
    # With the admin token every compatible-API request carries a token that API does not
    # know: the documented 400 is its answer to any request, valid or not.
    sed -i '/^checks.ignored_auth.enabled = false$/a\
checks.positive_data_acceptance.expected-statuses = [400]\
checks.negative_data_rejection.expected-statuses = [400]' "$file"
  fi
  echo "$file"
}

run() { # label token config
  local label=$1 token=$2 out=$work/$1/schemathesis.txt rc=0 start=$SECONDS
  "$schemathesis" --config-file "$3" run openapi.json --url "$base" \
    -H "Authorization: Bearer $token" \
    --max-examples "$max_examples" --seed "$seed" \
    --workers 2 --no-color --request-timeout 10 \
    --report junit --report-dir "$work/$label/report" > "$out" 2>&1 || rc=$?
  if [ "${ST_VERBOSE:-0}" = 1 ] || [ "$rc" != 0 ]; then
    # On failure the details: which operation, which check, a curl to reproduce.
    if [ "${ST_VERBOSE:-0}" = 1 ]; then cat "$out"; else grep -v '^\s*$' "$out" | tail -n 120; fi
  fi
  # The summary lines.
  echo "schemathesis ($label token, seed $seed, $max_examples examples per operation, $((SECONDS - start)) s):"
  grep -E '^(=+ .* =+|[0-9]+ (passed|failed|errored|skipped).*|Test cases:|Test Phases.*|API Operations:.*|  [0-9]+ (generated|passed|failed|errored|skipped).*)$' "$out" \
    | tail -n 3 | sed 's/^/  /' || true
  return "$rc"
}

# Both runs at once; each one's summary (or its failure report) after both have ended, in order.
status=0
( suite public ) > "$work/public.summary" 2>&1 &
public_pid=$!
( suite admin ) > "$work/admin.summary" 2>&1 &
admin_pid=$!
wait "$public_pid" || status=1
wait "$admin_pid" || status=1
cat "$work/public.summary" "$work/admin.summary"
exit "$status"

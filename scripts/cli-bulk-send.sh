#!/usr/bin/env bash
# Sends a template to N new numbers from a CSV with `plantilla send --csv` against
# `plantilla demo`, then runs the same command again to show that it resumes: no new messages,
# the same results file.
#
#   scripts/cli-bulk-send.sh [rows] [chunk]     (PLANTILLA_BIN=path skips the release build)
set -euo pipefail
N=${1:-10000}
CHUNK=${2:-1000}
cd "$(dirname "$0")/.."
if [ -z "${PLANTILLA_BIN:-}" ]; then
  cargo build --release -q
  PLANTILLA_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/plantilla
fi
BIN=$(realpath "$PLANTILLA_BIN")
WORK=$(mktemp -d)
DEMO=
trap '[ -n "$DEMO" ] && kill $DEMO 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK"
PORT=$((20000 + RANDOM % 20000))

# The demo's account may open 1,000 conversations a month: make one that may open N.
PLANTILLA_LOG=warn "$BIN" demo --listen "127.0.0.1:$PORT" > demo.out 2> demo.err &
DEMO=$!
until grep -q "public token" demo.out 2>/dev/null; do sleep 0.1; done
export DATABASE_URL="sqlite://$WORK/plantilla-demo.db" PLANTILLA_LOG=warn
id_of() { sed -n "s/.*\"$1\": \"\\([^\"]*\\)\".*/\\1/p" | head -1; }
ACC=$("$BIN" admin accounts create name=Bulk conversationLimit:=$((N * 10)) | id_of id)
CHANNEL=$("$BIN" admin channels create accountId="$ACC" name=Bulk provider=sandbox \
  status=connected messagesPerSecond:=80)
CH=$(echo "$CHANNEL" | id_of id)
TOKEN=$(echo "$CHANNEL" | id_of publicToken)
"$BIN" admin groups create accountId="$ACC" name=Ventas channelIds:="[\"$CH\"]" > /dev/null
TPL=$("$BIN" admin templates create accountId="$ACC" name=order_update language=es \
  status=APPROVED appId=bulk_order_update \
  message='Hola {{customer_name}}, tu pedido {{order_id}} está en camino.' | id_of id)

awk -v n="$N" 'BEGIN { print "to,clientName,customer_name,order_id";
  for (i = 1; i <= n; i++) printf "5076%07d,Cliente %d,Cliente %d,A-%05d\n", i, i, i, i }' \
  > recipients.csv

export PLANTILLA_URL="http://127.0.0.1:$PORT" PLANTILLA_TOKEN="$TOKEN"
echo "== plantilla send --template $TPL --csv recipients.csv --chunk $CHUNK   ($N rows)"
code=0; time "$BIN" send --template "$TPL" --csv recipients.csv --chunk "$CHUNK" || code=$?
echo "exit code $code"
cp recipients.csv.results.csv first-results.csv
echo
echo "== the same command again"
code=0; time "$BIN" send --template "$TPL" --csv recipients.csv --chunk "$CHUNK" || code=$?
echo "exit code $code"
cmp -s first-results.csv recipients.csv.results.csv && echo "results file: identical to the first run's"
python3 - "$WORK/plantilla-demo.db" "$CH" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("SELECT COUNT(*) FROM messages WHERE channel_id = ?", (sys.argv[2],)).fetchone()[0]
print(f"messages stored for the channel: {n}")
PY

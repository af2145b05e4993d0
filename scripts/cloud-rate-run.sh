#!/usr/bin/env bash
# Runs `plantilla serve` with a cloud channel against the fake Graph API (two separate
# processes on loopback), sends N messages to N new numbers through the compatible API, and
# reports the send rate the fake measured and how many messages reached `sent` or beyond.
#
#   scripts/cloud-rate-run.sh [messages] [messages-per-second]
set -euo pipefail
N=${1:-1000}
RATE=${2:-80}
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins -q
BIN=target/release
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=$((20000 + RANDOM % 20000))
ADMIN=rate-run-admin-token-0123456789
SECRET=rate-run-app-secret

$BIN/fake-graph --listen 127.0.0.1:0 --phone 1000001:TOKEN1 --accept-unknown-templates \
  --app-secret "$SECRET" --webhook-url "http://127.0.0.1:$PORT/webhooks/whatsapp" > "$WORK/fake.out" &
until grep -q "listening on" "$WORK/fake.out" 2>/dev/null; do sleep 0.05; done
FAKE=http://$(head -1 "$WORK/fake.out" | awk '{print $3}')

export DATABASE_URL="sqlite://$WORK/plantilla.db" PLANTILLA_LISTEN="127.0.0.1:$PORT" \
  PLANTILLA_ADMIN_TOKEN=$ADMIN PLANTILLA_GRAPH_BASE_URL=$FAKE PLANTILLA_META_APP_SECRET=$SECRET \
  PLANTILLA_LOG=warn PLANTILLA_TEMPLATE_SYNC_INTERVAL_SECS=0
$BIN/plantilla serve 2> "$WORK/serve.err" &
until curl -s "http://127.0.0.1:$PORT/" > /dev/null; do sleep 0.05; done

admin() { $BIN/plantilla admin "$@"; }
ACC=$(admin accounts create name=RateRun conversationLimit:=1000000 | sed -n 's/.*"id": "\(acc_[^"]*\)".*/\1/p')
CH_JSON=$(admin channels create accountId=$ACC name=Cloud provider=cloud phoneNumberId=1000001 \
  wabaId=2000001 accessToken=TOKEN1 messagesPerSecond:=$RATE)
TOKEN=$(echo "$CH_JSON" | sed -n 's/.*"publicToken": "\([^"]*\)".*/\1/p')
TPL=$(admin templates create accountId=$ACC name=order_update language=es appId=1 \
  message='Hola {{name}}' | sed -n 's/.*"id": "\(tpl_[^"]*\)".*/\1/p')

python3 - "$PORT" "$TOKEN" "$TPL" "$N" <<'PY'
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
port, token, tpl, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def send(i):
    body = json.dumps({"templateId": tpl, "phoneNumber": f"5075{i:07d}", "params": {"name": "Ana"}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/Template/SendMessage", data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return r.status
start = time.time()
with ThreadPoolExecutor(16) as pool:
    codes = list(pool.map(send, range(1, n + 1)))
print(f"accepted: {codes.count(200)} of {n} in {time.time() - start:.2f} s")
PY
ACCEPTED=$N
while :; do
  SENT=$(curl -s "$FAKE/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accepted"])')
  [ "$SENT" -ge "$ACCEPTED" ] && break
  sleep 0.5
done
curl -s "$FAKE/_fake/stats" > "$WORK/stats.json"
sleep 1
python3 - "$WORK/stats.json" "$WORK/plantilla.db" "$RATE" <<'PY'
import json, sqlite3, sys
stats = json.load(open(sys.argv[1]))
db = sqlite3.connect(sys.argv[2])
rate = int(sys.argv[3])
counts = dict(db.execute("select status, count(*) from messages group by status").fetchall())
first, last = db.execute("select min(sending_at), max(sending_at) from messages").fetchone()
n = sum(counts.values())
print("fake Graph accepted:", stats["accepted"])
print("messages by status:", counts)
per = stats.get("per_phone", stats)
print("fake stats:", json.dumps(stats, indent=None)[:600])
print(f"send rate (first→last send, {n} messages): {(n - 1) / ((last - first) / 1000):.1f}/s (limit {rate}/s)")
PY

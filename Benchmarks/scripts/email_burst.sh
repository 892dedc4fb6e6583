#!/bin/bash
# Chat latency while USERS accounts fall due for re-engagement email at once, on one node with a
# local SMTP server. Fills a data directory with USERS accounts registered 10 days minus LEAD
# seconds ago (`chorus-tools wal generate-chat --created-at`, from beside BIN), starts a local SMTP server and `chorus
# serve --smtp`, measures chat (`chorus load`, open loop, RATE msg/s over 2,000 WebSockets) before
# the burst (baseline) and across it, and samples /metrics every 0.5 s for emails due and sent.
# Usage: [SERVE_OPTS="--smtp-connections 16"] Benchmarks/scripts/email_burst.sh .build/release/chorus [USERS] [RATE] [EMAIL_RATE]
set -euo pipefail
BIN=$1; USERS=${2:-1000000}; RATE=${3:-2000}; EMAIL_RATE=${4:-4000}
TOOLS=${TOOLS:-$(dirname "$BIN")/chorus-tools}
LEAD=${LEAD:-90}; BURST_SECONDS=${BURST_SECONDS:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$(mktemp -d); PORT=$((20000 + RANDOM % 10000)); SMTP=$((PORT + 1))
OUT=${OUT:-$DATA.results}; mkdir -p "$OUT"
NOW=$(date +%s%3N)
DUE=$((NOW + LEAD * 1000))
CREATED=$((DUE - 10 * 86400 * 1000))
"$TOOLS" wal generate-chat "$DATA" --bytes 0 --users "$USERS" --created-at "$CREATED"
# The SMTP server: Postfix's smtp-sink (C, `apt-get install postfix`) when present, else aiosmtpd
# (Python, one core: about 2,000 emails/s at most here, so it is the limit).
if [ -x /usr/sbin/smtp-sink ]; then
    /usr/sbin/smtp-sink -u nobody 127.0.0.1:$SMTP 256 > "$OUT/sink.out" 2>&1 &
else
    python3 "$HERE/smtp_sink.py" "$SMTP" > "$OUT/sink.out" 2>&1 &
fi
KP=$!
"$BIN" serve --http 127.0.0.1:$PORT --data "$DATA" --insecure-fast-password-hash --login-rate-limit off --register-rate-limit off \
    --user-send-rate-limit off --session-rate-limit 1000:3000 --smtp 127.0.0.1:$SMTP --smtp-tls off --email-rate "$EMAIL_RATE" ${SERVE_OPTS:-} \
    > "$OUT/serve.out" 2> "$OUT/serve.err" &
SP=$!
trap 'kill -INT $SP 2>/dev/null; wait $SP 2>/dev/null; kill $KP 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 600); do curl -sf http://127.0.0.1:$PORT/readyz > /dev/null && break; sleep 0.1; done
echo "ready $(( ($(date +%s%3N) - NOW) / 1000 )) s after start; burst due in $(( (DUE - $(date +%s%3N)) / 1000 )) s"
"$BIN" load --target 127.0.0.1:$PORT --connections 2000 --rate "$RATE" --duration 20 --warmup 3 2>/dev/null > "$OUT/baseline.json"
LEFT=$(( (DUE - $(date +%s%3N)) / 1000 - 4 ))
[ "$LEFT" -gt 0 ] || { echo "the baseline ran past the burst: raise LEAD" >&2; exit 1; }
sleep "$LEFT"
( while kill -0 $SP 2>/dev/null; do
    printf '%s ' "$(date +%s%3N)"
    curl -s http://127.0.0.1:$PORT/metrics | awk '/^chorus_email_(due|sent)_total/ {printf "%s=%s ", $1, $2} END {print ""}'
    sleep 0.5
  done ) > "$OUT/metrics.txt" &
MP=$!
"$BIN" load --target 127.0.0.1:$PORT --connections 2000 --rate "$RATE" --duration "$BURST_SECONDS" --warmup 0 2>/dev/null > "$OUT/burst.json" &
LP=$!
# CPU of the node, the SMTP server and the load generator across the burst window.
cpu() { awk '{print $14+$15}' /proc/$1/stat 2>/dev/null || echo 0; }
sleep 5; C0="$(cpu $SP) $(cpu $KP) $(cpu $LP)"; T0=$(date +%s%3N)
sleep $((BURST_SECONDS - 10)); C1="$(cpu $SP) $(cpu $KP) $(cpu $LP)"; T1=$(date +%s%3N)
wait $LP
kill $MP 2>/dev/null || true
python3 - "$C0" "$C1" "$T0" "$T1" "$(getconf CLK_TCK)" <<'PY'
import sys
c0, c1 = [list(map(float, a.split())) for a in sys.argv[1:3]]; secs = (int(sys.argv[4]) - int(sys.argv[3])) / 1000; hz = float(sys.argv[5])
print("CPU during the burst (cores): " + ", ".join(f"{n} {(b - a) / hz / secs:.2f}" for n, a, b in zip(("node", "smtp server", "load generator"), c0, c1)))
PY
RSS=$(awk '/VmHWM/ {print $2}' /proc/$SP/status)
python3 - "$OUT" "$DUE" "$USERS" "$RSS" <<'PY'
import json, re, sys
out, due, users, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for name in ("baseline", "burst"):
    d = json.load(open(f"{out}/{name}.json")); e = d["endToEndLatencyMs"]
    print(f"{name:8} sent {d['sent']} acked {d['acked']} lost {d['lost']} dup {d['duplicates']} "
          f"e2e p50 {e['p50']} p99 {e['p99']} p99.9 {e['p999']} max {e['max']} ms")
rows = []
for line in open(f"{out}/metrics.txt"):
    parts = line.split()
    if not parts: continue
    vals = dict(re.findall(r"(\w+)=([\d.e+]+)", line))
    rows.append((int(parts[0]), float(vals.get("chorus_email_due_total", 0)), float(vals.get("chorus_email_sent_total", 0))))
all_due = next((t for t, d, s in rows if d >= users), None)
print(f"emails queued: {int(rows[-1][1]) if rows else 0} of {users}; all queued "
      + (f"{(all_due - due) / 1000:.1f} s after the deadline" if all_due else "not within the window"))
sent = [(t, s) for t, d, s in rows if s > 0]
if len(sent) > 2:
    (t0, s0), (t1, s1) = sent[0], sent[-1]
    print(f"emails sent during the window: {int(s1)}; {(s1 - s0) / ((t1 - t0) / 1000):.0f} per second from the first send")
print(f"server peak RSS {rss / 1024:.0f} MB")
PY

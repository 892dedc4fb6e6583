# Sourced by closed_loop.sh and open_loop.sh: `start_fresh_server BIN [serve options...]` starts
# `chorus serve` for a load run on an empty data directory and a random port (sets DATA, PORT and
# SP; the server is stopped and the directory removed on exit), and `io_calls PID` prints the read
# and write system calls a process has made so far (/proc/PID/io). `steal_mark` and `steal_since`
# give the share of CPU time the hypervisor took from this VM meanwhile (/proc/stat's steal): when
# it is more than a few per cent, a run's tail latency says more about the VM than about Chorus.
# SERVE_CPUS and LOAD_CPUS (taskset CPU lists, e.g. SERVE_CPUS=0 LOAD_CPUS=1) pin the server and the
# generator to CPUs of their own (`taskset` execs, so $! is still chorus's PID); unset, both float.
start_fresh_server() {
    local bin=$1; shift
    DATA=$(mktemp -d); PORT=$((20000 + RANDOM % 10000))
    # The public limits (registrations, sends per user) are off for a load run, where the build has them.
    local limits=() help
    help=$("$bin" serve --help 2>&1 || true)
    for o in --register-rate-limit --user-send-rate-limit; do grep -q -- "$o " <<<"$help" && limits+=("$o" off); done
    ${SERVE_CPUS:+taskset -c "$SERVE_CPUS"} "$bin" serve --http 127.0.0.1:$PORT --data "$DATA" --insecure-fast-password-hash --login-rate-limit off \
        "${limits[@]}" --session-rate-limit 1000:3000 "$@" > "$DATA.out" 2> "$DATA.err" &
    SP=$!
    trap 'kill -INT $SP 2>/dev/null; wait $SP 2>/dev/null; rm -rf "$DATA" "$DATA.out" "$DATA.err" "$DATA.json"' EXIT
    for _ in $(seq 1 100); do grep -q listening "$DATA.out" && return 0; sleep 0.1; done
    echo "chorus serve did not start: $(cat "$DATA.err")" >&2
    return 1
}

io_calls() { awk '/^sysc[rw]:/ {n += $2} END {print n}' /proc/$1/io; }

steal_mark() { STEAL0=$(awk '/^cpu /{print $9}' /proc/stat); STEAL_T0=$(date +%s.%N); }
steal_since() {
    awk -v s0="$STEAL0" -v t0="$STEAL_T0" -v t1="$(date +%s.%N)" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" \
        '/^cpu / {printf "%.1f%%", 100 * ($9 - s0) / ((t1 - t0) * hz * n)}' /proc/stat
}

# The upper bound of the server's fsync-latency bucket that holds its 99th percentile, as
# " fsync p99 <= X ms (N fsyncs)", from /metrics (chorus_wal_fsync_seconds); empty with no fsync.
fsync_p99() {
    curl -s 127.0.0.1:$PORT/metrics | awk '
        /^chorus_wal_fsync_seconds_bucket/ { match($0, /le="[^"]*"/); le[n] = substr($0, RSTART + 4, RLENGTH - 5); c[n++] = $2 }
        END { total = c[n - 1]; if (total == 0) exit
              for (i = 0; i < n; i++) if (c[i] >= 0.99 * total) { b = le[i]; break }
              if (b == "+Inf") printf " fsync p99 > 100 ms (%d fsyncs)", total
              else printf " fsync p99 <= %g ms (%d fsyncs)", b * 1000, total }'
}

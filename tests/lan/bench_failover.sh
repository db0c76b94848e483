#!/bin/bash
# bench_failover.sh [RUNS]: failover timing on the simulated store LAN (a benchmark, not a test:
# it fails only when a run does not converge). Hosts m, s1, s2, s3. Each run: master mA on m
# with RECORDS records and slaves s1 (--listen: promotable), s2, s3, converged; mA is SIGKILLed;
# `promote confirm` on s1's console. Measured from the moment the script sends `promote`:
#   forward  the first write queued on s2 (queued right after the promote was sent) is
#            committed on s1 (s2's outbox empty and the key readable on s1)
#   s2, s3   the slave logs "resumes INCREMENTAL" from s1 (streaming again)
#   fulls    FULL syncs s2 and s3 took after the promotion (goal: 0)
# and where the time goes: s1 listening as master (its restart in place), s1's Avahi
# announcement published (mDNS probing and announcing).
# Timings are product defaults but for the test board timings of daemons.sh (heartbeat 200 ms,
# backoff 100..1000 ms). Prints every run and the medians. Needs root (else exit 77).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${1:-5}
RECORDS=${RECORDS:-10000}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench_failover: RUNS must be a positive number, not '$RUNS'" >&2; exit 2; }
lan_test_init bench-failover POSSYNCD POSSYNC
. "$HERE/daemons.sh"
export HOSTS="m s1 s2 s3"
lan_up lan
M=$(lan addr m)
S1=$(lan addr s1)

ms_of() {  # a log line -> its timestamp in ms since the epoch
    date -d "$(cut -d' ' -f1 <<< "$1")" +%s%3N
}
first_after() {  # NAME FROM_LINE REGEX -> the first matching log line after FROM_LINE (bounded wait)
    local i line
    for i in $(seq 300); do
        line=$(tail -n +"$(($2 + 1))" "$LOGS/$1.log" | grep -E -m1 -- "$3" || true)
        [ -n "$line" ] && { echo "$line"; return 0; }
        sleep 0.1
    done
    fail "$1: no /$3/ within 30 s"
}
fulls() { grep -c 'FULL sync complete' "$LOGS/$1.log" || true; }

results=()
for run in $(seq "$RUNS"); do
    for b in mA s1 s2 s3; do rm -rf "${WORK:?}/$b"; : > "$LOGS/$b.log"; done
    "$POSSYNC" --data "$WORK/mA" load --records "$RECORDS" --value-size 100 --table orders > /dev/null \
        || fail "loading $RECORDS records"
    # A store of its own per run: the last run's announcements may still be cached.
    st=$((42 + run))
    board mA m --role master --store $st --listen "$M:7700" --tables orders
    wait_log mA "published \"possync-$st-mA\" _possync._tcp port 7700" 20
    board s1 s1 --role slave --store $st --listen "$S1:7700"
    board s2 s2 --role slave --store $st
    board s3 s3 --role slave --store $st
    put mA orders warm x
    wait_converged 60 mA s1 s2 s3
    f2=$(fulls s2) f3=$(fulls s3)
    n2=$(log_lines s2) n3=$(log_lines s3)
    kill -9 "${BG_PID[mA]}"
    wait "${BG_PID[mA]}" 2>/dev/null || true
    unset "BG_PID[mA]"
    t0=$(date +%s%3N)
    "$POSSYNC" console --socket "$WORK/s1.sock" promote confirm > /dev/null || fail "promote on s1"
    "$POSSYNC" --data "$WORK/s2" put --no-wait orders "first-$run" x > /dev/null || fail "queue on s2"
    tf=""
    for i in $(seq 3000); do
        if "$POSSYNC" --data "$WORK/s1" get orders "first-$run" > /dev/null 2>&1; then
            tf=$(date +%s%3N)
            break
        fi
        sleep 0.01
    done
    [ -n "$tf" ] || fail "the forwarded write never reached s1"
    t2=$(ms_of "$(first_after s2 "$n2" 'resumes INCREMENTAL')")
    t3=$(ms_of "$(first_after s3 "$n3" 'resumes INCREMENTAL')")
    tl=$(ms_of "$(first_after s1 0 'Daemon: listening on')")
    tp=$(ms_of "$(first_after s1 0 "published \"possync-$st-s1\"")")
    wait_converged 60 s1 s2 s3
    fulls_after=$(($(fulls s2) - f2 + $(fulls s3) - f3))
    line="run $run: forward $((tf - t0)) ms, s2 streaming $((t2 - t0)) ms, s3 streaming $((t3 - t0)) ms, FULL syncs $fulls_after (s1 listening after $((tl - t0)) ms, published after $((tp - t0)) ms)"
    say "$line"
    results+=("$((tf - t0)) $((t2 - t0)) $((t3 - t0)) $fulls_after")
    for b in s1 s2 s3; do stop_board $b; done
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "RESULT name=failover runs=$RUNS records=$RECORDS" \
    "forward_ms_median=$(printf '%s\n' "${results[@]}" | cut -d' ' -f1 | median)" \
    "s2_streaming_ms_median=$(printf '%s\n' "${results[@]}" | cut -d' ' -f2 | median)" \
    "s3_streaming_ms_median=$(printf '%s\n' "${results[@]}" | cut -d' ' -f3 | median)" \
    "full_syncs_total=$(printf '%s\n' "${results[@]}" | awk '{s+=$4} END {print s}')"

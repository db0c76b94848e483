#!/bin/bash
# bench_discovery.sh [RUNS]: discovery latency on the simulated store LAN (a benchmark, not a
# test: it fails only when a run does not converge). Hosts m (master mA of store 42 with
# RECORDS records, advertised through Avahi) and s1. Each run starts a slave with an empty data
# directory on s1 and no --master, and measures from the moment the script launches it to
# the slave's "FULL sync complete" log line (its first applied change; the digest is then
# checked against the master's). Columns also split that time at "master candidate added"
# (Avahi resolved the master) and "connected to master".
# Four cases, RUNS runs each (default 7):
#   warm/fast   s1's avahi-daemon already knows the service; test timings (backoff 100..1000 ms)
#   warm/dflt   the same with product defaults (backoff 500..60000 ms, heartbeat 1 s)
#   cold/fast   s1's avahi-daemon restarted (empty cache) before each run, like a board booting
#   cold/dflt   the same with product defaults
# Prints every run and a summary (median/min/max in ms). Needs root (else exit 77).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${1:-7}
RECORDS=${RECORDS:-1000}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench_discovery: RUNS must be a positive number, not '$RUNS'" >&2; exit 2; }
lan_test_init bench-discovery POSSYNCD POSSYNC
. "$HERE/daemons.sh"
export HOSTS="m s1"
lan_up lan
M=$(lan addr m)

"$POSSYNC" --data "$WORK/mA" load --records "$RECORDS" --value-size 100 --table orders > /dev/null \
    || fail "loading $RECORDS records"
board mA m --role master --store 42 --listen "$M:7700" --tables orders
wait_log mA 'published "possync-42-mA" _possync._tcp port 7700' 20
WANT=$(digest mA | sed 's/^position=[^ ]* //')

ms_of() {  # a log line -> its timestamp in ms since the epoch
    date -d "$(cut -d' ' -f1 <<< "$1")" +%s%3N
}

# one_run CASE ARGS...: prints "total candidate connected" in ms after the launch.
one_run() {
    local case=$1 n t0 line cand conn done_
    shift
    rm -rf "$WORK/s1"
    n=$(log_lines s1)
    t0=$(date +%s%3N)
    board s1 s1 --role slave --store 42 "$@" > /dev/null
    for _ in $(seq 300); do
        line=$(tail -n +"$((n + 1))" "$LOGS/s1.log" | grep -m1 'FULL sync complete' || true)
        [ -n "$line" ] && break
        sleep 0.1
    done
    [ -n "$line" ] || fail "$case: no FULL sync within 30 s"
    done_=$(ms_of "$line")
    cand=$(ms_of "$(tail -n +"$((n + 1))" "$LOGS/s1.log" | grep -m1 'master candidate added')")
    conn=$(ms_of "$(tail -n +"$((n + 1))" "$LOGS/s1.log" | grep -m1 'connected to master at')")
    [ "$(digest s1 | sed 's/^position=[^ ]* //')" = "$WANT" ] || fail "$case: s1's digest differs from mA's"
    stop_board s1
    echo "$((done_ - t0)) $((cand - t0)) $((conn - t0))"
}

DEFAULTS=(--heartbeat-ms 1000 --timeout-ms 5000 --backoff-min-ms 500 --backoff-max-ms 60000)
declare -A RESULTS=()
for case in warm/fast warm/dflt cold/fast cold/dflt; do
    extra=()
    [[ $case == */dflt ]] && extra=("${DEFAULTS[@]}")
    for r in $(seq "$RUNS"); do
        [[ $case == cold/* ]] && lan restart-avahi s1
        res=$(one_run "$case" "${extra[@]}")
        say "$case run $r: total ${res%% *} ms (candidate, connected: ${res#* })"
        RESULTS[$case]+="$res"$'\n'
    done
done

stats() {  # column N of stdin -> "median min max"
    awk -v c="$1" '{print $c}' | sort -n | awk '{v[NR]=$1} END {
        m = (NR % 2) ? v[(NR+1)/2] : int((v[NR/2] + v[NR/2+1]) / 2); print m, v[1], v[NR] }'
}

echo
echo "discovery latency, $RUNS runs per case, master with $RECORDS records of 100 B"
echo "$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf '%-10s  %-22s  %-22s  %-22s\n' case 'start->FULL done ms' 'start->candidate ms' 'start->connected ms'
printf '%-10s  %-22s  %-22s  %-22s\n' '' 'median (min..max)' 'median (min..max)' 'median (min..max)'
for case in warm/fast warm/dflt cold/fast cold/dflt; do
    row=()
    for col in 1 2 3; do
        read -r med lo hi < <(printf '%s' "${RESULTS[$case]}" | stats $col)
        row+=("$med ($lo..$hi)")
    done
    printf '%-10s  %-22s  %-22s  %-22s\n' "$case" "${row[@]}"
done

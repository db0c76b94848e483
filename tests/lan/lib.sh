# lib.sh - shared helpers for the LAN test scripts (sourced, not run).
#
#   . "$(dirname "$0")/lib.sh"
#   lan_test_init single [VAR...] # root check (exit 77 otherwise), unique STATE/PREFIX, cleanup trap;
#                                 # VARs name the programs the test needs (default: PROBE)
#   lan single-up                 # the harness (store-lan.sh) with this test's STATE/PREFIX
#   bg pubA single publish --store 42 ...   # probe in the background on host "single"; log $LOGS/pubA.log
#   send pubA "gen 00000000000000bb"        # a command on the probe's stdin
#   wait_log pubA 'publisher established' 15
#   run_probe s1 find --store 42 --want-dev devA   # foreground, bounded by its own --timeout
#
# Every wait is bounded; the EXIT trap kills what the test started and tears the rig down,
# also on failure. Variables: PROBE (the discovery_probe binary), POSSYNCD and POSSYNC (for
# daemons.sh) and STORE_LAN (the harness) come from meson (STORE_LAN defaults to the one next
# to this file). KEEP_LOGS=1 keeps $STATE/logs after the run.

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STORE_LAN=${STORE_LAN:-$HERE/store-lan.sh}
PROBE=${PROBE:-}
declare -A BG_PID=()
declare -A BG_FD=()
RIG=""

say() { echo "[$(date +%H:%M:%S.%N | cut -c1-12)] $*" >&2; }

lan_test_init() {
    local name=$1 var; shift
    [ $# -gt 0 ] || set -- PROBE
    if [ "$(id -u)" != 0 ]; then
        echo "SKIP $name: needs root (network namespaces, bind-mounted /run, avahi-daemon)" >&2
        exit 77
    fi
    local c
    for c in ip dbus-daemon dbus-send avahi-daemon avahi-browse unshare mkfifo timeout; do
        command -v "$c" >/dev/null || { echo "FAIL $name: missing $c (run tools/setup)" >&2; exit 1; }
    done
    for var in "$@"; do
        [ -n "${!var:-}" ] && [ -x "${!var}" ] || { echo "FAIL $name: $var (a program) not set or not executable" >&2; exit 1; }
    done
    # Unique names per run: two runs (or a stale rig) never collide.
    export PREFIX="pz$$-"
    export STATE="/tmp/possync-lan-$name-$$"
    LOGS="$STATE/logs"
    mkdir -p "$LOGS"
    chmod 755 "$STATE"
    trap lan_test_cleanup EXIT
    trap 'exit 130' INT TERM
}

lan() { "$STORE_LAN" "$@"; }

# lan_up single|lan: brings the rig up and remembers it for cleanup.
lan_up() {
    case $1 in
        single) RIG=single; guard_rig single-down; lan single-up >&2 ;;
        lan) RIG=lan; guard_rig down; lan up >&2 ;;
    esac
}

# guard_rig DOWN-COMMAND: a watcher in a session of its own tears the rig down if this test
# dies without its EXIT trap. meson's timeout sends SIGTERM to the test's process group and
# SIGKILL 0.5 s later, which can cut the trap short; dbus-daemons (they setsid) and the
# namespaces would outlive the test. The watcher acts only while $STATE/rig-up exists (the
# EXIT trap removes it once the rig is down), polls every 0.5 s and gives up after 15 min.
guard_rig() {
    touch "$STATE/rig-up"
    setsid bash -c '
        gone=""
        for _ in $(seq 1800); do
            st=$(sed "s/^.*) //" "/proc/$0/stat" 2>/dev/null) || { gone=1; break; }
            [ "${st:0:1}" = Z ] && { gone=1; break; }
            sleep 0.5
        done
        [ -n "$gone" ] && [ -e "$STATE/rig-up" ] || exit 0
        "$1" "$2"
        if [ -n "${KEEP_LOGS:-}" ]; then rm -f "$STATE/rig-up"; else rm -rf "${STATE:?}"; fi
    ' "$$" "$STORE_LAN" "$1" < /dev/null > /dev/null 2>&1 &
}

# on_host HOST CMD... -> array ON: the harness command line that runs CMD "on" HOST (single
# or a LAN host). The harness execs all the way down, so "${ON[@]} &" gives $! == CMD's PID.
on_host() {
    local h=$1; shift
    if [ "$h" = single ]; then ON=("$STORE_LAN" single-exec "$@"); else ON=("$STORE_LAN" exec "$h" "$@"); fi
}
host_exec() { on_host "$@"; "${ON[@]}"; }

# bg NAME HOST PROBE-ARGS...: the probe in the background; stdin is a FIFO kept open on an fd
# (send NAME LINE), stdout+stderr go to $LOGS/NAME.log.
bg() {
    local name=$1 host=$2 fd; shift 2
    mkfifo "$LOGS/$name.in"
    on_host "$host" "$PROBE" "$@"
    "${ON[@]}" < "$LOGS/$name.in" > "$LOGS/$name.log" 2>&1 &
    BG_PID[$name]=$!
    exec {fd}> "$LOGS/$name.in"   # opening the write end lets the probe's open complete
    BG_FD[$name]=$fd
    say "started $name on $host: $* (pid ${BG_PID[$name]})"
}

send() {  # NAME LINE
    local fd=${BG_FD[$1]}
    echo "$2" >&"$fd"
}

stop_bg() {  # NAME: SIGTERM (the probe withdraws its service), bounded wait
    local name=$1 p=${BG_PID[$1]:-}
    [ -n "$p" ] || return 0
    kill "$p" 2>/dev/null || true
    # Our child: 'wait' reaps it; a watchdog SIGKILLs it if it ignores SIGTERM for 5 s.
    ( trap 'kill $s 2>/dev/null; exit 0' TERM; sleep 5 & s=$!; wait $s; kill -9 "$p" 2>/dev/null ) &
    local wd=$!
    wait "$p" 2>/dev/null || true
    kill "$wd" 2>/dev/null || true
    wait "$wd" 2>/dev/null || true
    if [ -n "${BG_FD[$name]:-}" ]; then eval "exec ${BG_FD[$name]}>&-"; fi
    unset "BG_PID[$name]" "BG_FD[$name]"
    say "stopped $name"
}

# wait_log NAME REGEX SEC [FROM_LINE]: until the probe's log has a line matching REGEX
# (extended regex; after line FROM_LINE if given). Fails the test on timeout.
wait_log() {
    local name=$1 re=$2 t=$3 from=${4:-0} i
    for i in $(seq $((t * 10))); do
        if tail -n +"$((from + 1))" "$LOGS/$name.log" 2>/dev/null | grep -Eq -- "$re"; then
            say "$name: saw /$re/"
            return 0
        fi
        sleep 0.1
    done
    fail "$name: no line matching /$re/ within ${t}s"
}

log_lines() { wc -l < "$LOGS/$1.log" 2>/dev/null || echo 0; }

# run_probe HOST PROBE-ARGS...: foreground probe; its output is kept in $LOGS/run-N.log and
# printed; returns its exit code.
RUN_N=0
run_probe() {
    local host=$1 rc=0; shift
    RUN_N=$((RUN_N + 1))
    local f="$LOGS/run-$RUN_N.log"
    host_exec "$host" timeout 60 "$PROBE" "$@" > "$f" 2>"$f.err" || rc=$?
    say "run-$RUN_N on $host: $* -> exit $rc"
    sed 's/^/    | /' "$f" >&2
    LAST_RUN=$f
    return $rc
}

expect_in() {  # FILE REGEX WHAT
    grep -Eq -- "$2" "$1" || fail "$3: no /$2/ in $(basename "$1")"
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

lan_test_cleanup() {
    local rc=$? name
    set +e
    # A second signal (meson's timeout, Ctrl-C) must not cut the teardown short. A handler,
    # not '' (SIG_IGN would be inherited by the programs the teardown runs).
    trap 'echo "cleanup: signal ignored until the teardown is done" >&2' INT TERM
    if [ $rc -ne 0 ]; then
        echo "---- test failed (exit $rc); logs from $LOGS ----" >&2
        for f in "$LOGS"/*.log "$LOGS"/*.err "$STATE"/*/avahi.log; do
            [ -s "$f" ] || continue
            echo "== $f" >&2
            tail -n 40 "$f" >&2
        done
    fi
    for name in "${!BG_PID[@]}"; do stop_bg "$name"; done
    case $RIG in
        single) lan single-down ;;
        lan) lan down ;;
    esac
    rm -f "$STATE/rig-up"
    if [ -n "${KEEP_LOGS:-}" ]; then
        echo "logs kept in $LOGS" >&2
    else
        rm -rf "${STATE:?}"
    fi
    # Leftovers would break the next run and the machine: check and say so.
    if ip netns list | grep -q "^$PREFIX"; then
        echo "cleanup: namespaces left: $(ip netns list | grep "^$PREFIX")" >&2
        [ $rc -eq 0 ] && rc=1
    fi
    exit $rc
}

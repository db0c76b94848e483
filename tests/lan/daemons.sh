# shellcheck shell=bash
# daemons.sh - real possyncd boards on the simulated hosts of store-lan.sh (sourced after lib.sh).
#
#   board mA m --role master --store 42 --listen 10.231.0.10:7700 --tables orders
#   board s1 s1 --role slave --store 42          # finds its master through avahi on host s1
#   put mA orders k1 v1                          # a write on the board's data directory
#   wait_converged 20 mA s1 s2                   # digests equal (position, hash, count)
#   stop_board s1; board s1 s1 --role slave --store 42    # a restart: the log is appended
#
# A board NAME has a data directory $WORK/NAME, a console socket $WORK/NAME.sock and a log
# $LOGS/NAME.log (appended across restarts: take log_lines NAME before an action and pass it
# to wait_log as FROM_LINE). Its device id is NAME, or $DEV when set (DEV=mA board mA2 ...:
# the board mA's data directory, moved to another host under a new name).
# Every board gets fast timings so a test never waits for product defaults:
# --sync no, heartbeat 200 ms, timeout 1000 ms, backoff 100..1000 ms. A master gets
# --pair-window 3600 unless the test gives one: its slaves pair on their first link (DESIGN.md §11;
# the pairing tests themselves pass --pair-window 0 and settle each board on the console).
# Variables: POSSYNCD, POSSYNC (from meson).

WORK="$STATE/work"
mkdir -p "$WORK"
chmod 755 "$WORK"
FAST=(--sync no --heartbeat-ms 200 --timeout-ms 1000 --backoff-min-ms 100 --backoff-max-ms 1000)

# board NAME HOST POSSYNCD-ARGS...: possyncd in the background on HOST (pid in BG_PID, so the
# EXIT trap stops it). Waits until its console answers (bounded), so the caller can query it.
board() {
    local name=$1 host=$2
    shift 2
    [ -z "${BG_PID[$name]:-}" ] || fail "board $name is already running"
    local pairing=()
    case " $* " in
        *" --pair-window "*) ;;
        *" --role master "*) pairing=(--pair-window 3600) ;;
    esac
    on_host "$host" "$POSSYNCD" --data "$WORK/$name" --device "${DEV:-$name}" --console "$WORK/$name.sock" "${FAST[@]}" "${pairing[@]}" "$@"
    echo "---- start on $host: $*" >> "$LOGS/$name.log"
    "${ON[@]}" < /dev/null >> "$LOGS/$name.log" 2>&1 &
    BG_PID[$name]=$!
    say "board $name on $host: $* (pid ${BG_PID[$name]})"
    local i
    for i in $(seq 100); do
        "$POSSYNC" console --socket "$WORK/$name.sock" version > /dev/null 2>&1 && return 0
        kill -0 "${BG_PID[$name]}" 2>/dev/null || fail "board $name exited at start"
        sleep 0.05
    done
    fail "board $name: console does not answer within 5 s"
}

stop_board() {  # NAME: SIGTERM, bounded wait (stop_bg); the daemon withdraws its service
    [ -n "${BG_PID[$1]:-}" ] || fail "board $1 is not running"
    stop_bg "$1"
}

put() {  # NAME TABLE KEY VALUE: one write transaction on the board's data directory
    "$POSSYNC" --data "$WORK/$1" put "$2" "$3" "$4" || fail "put on $1 failed"
}

put_many() {  # NAME TABLE PREFIX N: N writes (N transactions)
    local i
    for i in $(seq "$4"); do put "$1" "$2" "$3$i" "value-$3$i-$1"; done
}

digest() {  # NAME -> "position=GEN:SEQ digest=HEX count=N"
    "$POSSYNC" --data "$WORK/$1" digest
}

# console NAME COMMAND...: the board's console answer, also kept in $LOGS/console-NAME.log.
console() {
    local name=$1; shift
    local out
    out=$("$POSSYNC" console --socket "$WORK/$name.sock" "$@" 2>&1) || fail "console $name $*: $out"
    { echo "> $*"; echo "$out"; } >> "$LOGS/console-$name.log"
    echo "$out"
}

# wait_converged SEC MASTER SLAVE...: until every slave's digest line equals the master's.
wait_converged() {
    local t=$1 m=$2 i s want ok
    shift 2
    for i in $(seq $((t * 10))); do
        want=$(digest "$m")
        ok=1
        for s in "$@"; do [ "$(digest "$s")" = "$want" ] || { ok=""; break; }; done
        if [ -n "$ok" ]; then
            say "converged on $m: $want ($*)"
            return 0
        fi
        sleep 0.1
    done
    for s in "$m" "$@"; do echo "  $s: $(digest "$s")" >&2; done
    fail "$* did not converge on $m within ${t}s"
}

# wait_console SEC NAME REGEX COMMAND...: until the console answer to COMMAND has a line
# matching REGEX (extended); prints that answer.
wait_console() {
    local t=$1 name=$2 re=$3 i out
    shift 3
    for i in $(seq $((t * 10))); do
        out=$(console "$name" "$@")
        if grep -Eq -- "$re" <<< "$out"; then
            say "$name console '$*': saw /$re/"
            echo "$out"
            return 0
        fi
        sleep 0.1
    done
    echo "$out" >&2
    fail "$name console '$*': no line matching /$re/ within ${t}s"
}

# no_log_since NAME FROM_LINE REGEX WHAT: fails if the board's log has a line matching REGEX
# after FROM_LINE.
no_log_since() {
    local bad
    bad=$(tail -n +"$(($2 + 1))" "$LOGS/$1.log" | grep -E -- "$3" || true)
    [ -z "$bad" ] || fail "$4: $1 logged: $bad"
}

field() {  # FIELD TEXT: the value of "FIELD: value" in a console answer
    sed -n "s/^$1: //p" <<< "$2"
}

#!/bin/bash
# LAN test (h), failover with writers (DESIGN.md §10; test (g) covers fencing and a double
# promotion): the master's board dies (SIGKILL) while every board
# writes; the operator promotes slave s1 on its console; s2 and s3 follow the highest term
# through Avahi and resume INCREMENTAL (no FULL sync); writes go on through the new master,
# forwarded from the slaves; the old master's data comes back on its host, sees the higher term
# of its store and is fenced (writes refused, console says why); `rejoin` exports what it
# committed after the fork and makes it a slave of the new master. At the end every board holds
# the same data and every write acknowledged to a writer is there exactly once.
# Hosts m, s1, s2, s3 (10.231.0.10-13). Needs root (else 77).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lan_test_init daemon-failover-writers POSSYNCD POSSYNC
. "$HERE/daemons.sh"
export HOSTS="m s1 s2 s3"
lan_up lan
M=$(lan addr m)
S1=$(lan addr s1)
re() { sed 's/\./\\./g' <<< "$1"; }  # an address as a regex
fulls() { grep -c 'FULL sync complete' "$LOGS/$1.log" || true; }
console_up() {  # NAME: until the board's console answers again (it restarts itself in place)
    local i
    for i in $(seq 100); do
        "$POSSYNC" console --socket "$WORK/$1.sock" version > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "the console of $1 does not answer within 10 s"
}
count() {  # NAME TABLE PREFIX: keys of TABLE starting with PREFIX on the board
    "$POSSYNC" --data "$WORK/$1" dump "$2" | cut -f1 | grep -c "^$3" || true
}
exactly() {  # NAME TABLE KEY: how many times KEY is in TABLE on the board
    "$POSSYNC" --data "$WORK/$1" dump "$2" | cut -f1 | grep -cx -- "$3" || true
}

say "1. store 42: master mA on m, slaves s1 (promotable: --listen), s2, s3"
put_many mA orders a 10
board mA m --role master --store 42 --listen "$M:7700" --tables orders,stock
wait_log mA 'published "possync-42-mA" _possync._tcp port 7700' 20
board s1 s1 --role slave --store 42 --listen "$S1:7700"
board s2 s2 --role slave --store 42
board s3 s3 --role slave --store 42
for s in s1 s2 s3; do wait_log $s "connected to master at $(re "$M"):7700 \(avahi possync-42-mA\)" 20; done
put_many mA orders b 3
# Writes forwarded from every slave (each its own key prefix), acknowledged by the master.
for s in s1 s2 s3; do "$POSSYNC" --data "$WORK/$s" put orders "w-$s-1" x > /dev/null || fail "write on $s"; done
put mA orders w-mA-1 x
wait_converged 20 mA s1 s2 s3
full_before_s2=$(fulls s2)
full_before_s3=$(fulls s3)

say "2. the master's board dies (SIGKILL); a slave queues a write meanwhile"
n1=$(log_lines s1)
n2=$(log_lines s2)
n3=$(log_lines s3)
kill -9 "${BG_PID[mA]}"
wait "${BG_PID[mA]}" 2>/dev/null || true
unset "BG_PID[mA]"
wait_log s2 'link to master (lost|closed)' 10 "$n2"
"$POSSYNC" --data "$WORK/s2" put --no-wait orders w-s2-offline x > /dev/null || fail "queue a write on s2"

say "3. the operator promotes s1"
# Its Avahi may still list the dead master for a moment: then it asks for confirmation.
ans=$("$POSSYNC" console --socket "$WORK/s1.sock" promote 2>&1 || true)
if grep -q "promote confirm" <<< "$ans"; then
    say "s1 asked for confirmation: $ans"
    ans=$(console s1 promote confirm)
fi
grep -q "^promote: promoted" <<< "$ans" || fail "promote on s1: $ans"
say "s1: $ans"
wait_log s1 'published "possync-42-s1" _possync._tcp port 7700' 20 "$n1"
console_up s1
wait_console 20 s1 'role: master' status > /dev/null
for s in s2 s3; do
    from=$([ $s = s2 ] && echo "$n2" || echo "$n3")
    wait_log $s "connected to master at $(re "$S1"):7700 \(avahi possync-42-s1\)" 30 "$from"
    wait_log $s 'resumes INCREMENTAL after [0-9]+' 20 "$from"
done
# Writes carry on through the new master, from every board.
put s1 orders w-s1-2 x
for s in s2 s3; do "$POSSYNC" --data "$WORK/$s" put orders "w-$s-2" x > /dev/null || fail "write on $s"; done
wait_converged 20 s1 s2 s3
[ "$(fulls s2)" = "$full_before_s2" ] || fail "s2 took a FULL sync after the promotion"
[ "$(fulls s3)" = "$full_before_s3" ] || fail "s3 took a FULL sync after the promotion"
"$POSSYNC" --data "$WORK/s1" get orders w-s2-offline > /dev/null || fail "s2's offline write did not drain into s1"
say "s2 and s3 follow s1 with no FULL sync; s2's offline write drained into it"

say "4. the old master's board comes back with its data: it is fenced"
put mA orders orphan-1 lost-unless-exported  # committed on the old master after the fork
nA=$(log_lines mA)
board mA m --role master --store 42 --listen "$M:7700" --tables orders,stock
wait_log mA 'FENCED' 30 "$nA"
ans=$(wait_console 10 mA 'FENCED' status)
say "mA status: $(grep FENCED <<< "$ans")"
if "$POSSYNC" --data "$WORK/mA" put orders should-fail x 2> "$STATE/refused.txt"; then
    fail "a write on the fenced old master was accepted"
fi
grep -qi "fenced" "$STATE/refused.txt" || fail "the refusal does not say why: $(cat "$STATE/refused.txt")"
for s in s2 s3; do
    no_log_since $s "$([ $s = s2 ] && echo "$n2" || echo "$n3")" "connected to master at $(re "$M"):7700" \
        "$s after the promotion"
done

say "5. rejoin: the old master exports its orphaned change and becomes a slave of s1"
ans=$(console mA rejoin)
say "mA: $ans"
export_file=$(ls "$WORK"/mA/possync-export-* 2>/dev/null | head -1)
[ -n "$export_file" ] || fail "no export file in mA's data directory after rejoin: $ans"
grep -q "$(printf 'orphan-1' | od -An -tx1 | tr -d ' \n')" "$export_file" \
    || fail "the export file does not hold the orphaned change: $(cat "$export_file")"
wait_log mA 'role slave from the data directory' 20 "$nA"
console_up mA
wait_console 30 mA 'role: slave' status > /dev/null
wait_converged 30 s1 s2 s3 mA
for b in s1 s2 s3 mA; do
    [ "$(count $b orders orphan-)" = 0 ] || fail "$b holds the old master's orphaned change"
    for w in w-s1-1 w-s2-1 w-s3-1 w-mA-1 w-s1-2 w-s2-2 w-s3-2 w-s2-offline; do
        [ "$(exactly $b orders "$w")" = 1 ] || fail "$b holds $(exactly $b orders "$w") copies of $w"
    done
done

say "6. restarts keep the roles the failover gave, whatever --role says"
stop_board s1
n1=$(log_lines s1)
board s1 s1 --role slave --store 42 --listen "$S1:7700"
wait_log s1 'role master' 10 "$n1"
wait_console 10 s1 'role: master' status > /dev/null
put s1 orders after-restart x
wait_converged 30 s1 s2 s3 mA

say "PASS"

#!/bin/bash
# LAN test (g): failover through Avahi (issue 13). Hosts m, s1, s2 (10.231.0.10-12).
#   1. store 42: master mA on m, slaves s1 (--listen: promotable) and s2; converged.
#   2. mA is SIGKILLed; `promote confirm` on s1's console: s1 restarts itself as master of term 1
#      and publishes term=1; s2 follows it (the highest term) and converges with s1's new writes.
#   3. mA starts again with its old data and configuration: it advertises term 0, its own browse
#      sees s1 announce term 1 for its store, and it fences itself: FENCED on the console and in
#      the log, writes on its directory refused with the reason, s2 stays with s1.
#   4. `rejoin` on mA: its orphan (a write s1 never got) is in the export file; it restarts as a
#      slave, finds s1 through Avahi and converges.
#   5. Double promotion: s1 dies, mA and s2 are both promoted at once (term 2 each). The tie goes
#      to the lowest device id: s2 sees mA announce term 2 and fences itself, mA stays master;
#      s2 rejoins and follows mA.
# Needs root (else exit 77).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lan_test_init daemon-failover POSSYNCD POSSYNC
. "$HERE/daemons.sh"
export HOSTS="m s1 s2"
lan_up lan
M=$(lan addr m)
S1=$(lan addr s1)
re() { sed 's/\./\\./g' <<< "$1"; }  # an address as a regex

say "1. store 42: master mA on m, slaves s1 (--listen $S1:7700) and s2"
put_many mA orders a 10
board mA m --role master --store 42 --listen "$M:7700" --tables orders
wait_log mA 'published "possync-42-mA" _possync._tcp port 7700' 20
board s1 s1 --role slave --store 42 --listen "$S1:7700"
# Resuming across the fork is the sync layer's part: accept the new generation either way.
board s2 s2 --role slave --store 42 --new-generation accept
for s in s1 s2; do wait_log $s "connected to master at $(re "$M"):7700 \(avahi possync-42-mA\)" 20; done
wait_converged 20 mA s1 s2

say "2. mA dies (SIGKILL) with an orphan no slave got; s1 is promoted"
stop_board s1
put mA orders orphan lost
n2=$(log_lines s2)
kill -9 "${BG_PID[mA]}"
wait "${BG_PID[mA]}" 2>/dev/null || true
unset "BG_PID[mA]"
board s1 s1 --role slave --store 42 --listen "$S1:7700"
n1=$(log_lines s1)
ans=$(console s1 promote confirm)
grep -q '^promote: promoted: generation [0-9a-f]\{16\} (term 1)' <<< "$ans" || fail "promote answered: $ans"
wait_log s1 'role master from the data directory \(promoted at term 1\); --role slave ignored' 20 "$n1"
wait_log s1 'published "possync-42-s1" _possync._tcp port 7700' 20 "$n1"
wait_console 20 s1 '^term: 1$' status > /dev/null
wait_log s2 "connected to master at $(re "$S1"):7700 \(avahi possync-42-s1\)" 30 "$n2"
put_many s1 orders b 3
wait_converged 30 s1 s2

say "3. mA returns with its old data: it sees term 1 announced and fences itself"
nA=$(log_lines mA)
board mA m --role master --store 42 --listen "$M:7700" --tables orders
wait_log mA 'FENCED: store 42 has a master of term 1 \(s1 at .*announced over Avahi\)' 30 "$nA"
ans=$(wait_console 10 mA '^link: FENCED: ' status)
say "mA status: $(field link "$ans")"
if out=$("$POSSYNC" --data "$WORK/mA" put orders late x 2>&1); then fail "a write on the fenced mA was taken"; fi
grep -q 'fenced' <<< "$out" || fail "the refused write does not say why: $out"
put s1 orders c1 after-fence
wait_converged 20 s1 s2

say "4. rejoin on mA: the orphan goes to the export file, mA becomes a slave of s1"
nA=$(log_lines mA)
ans=$(console mA rejoin)
grep -q '^rejoin: exported ' <<< "$ans" || fail "rejoin answered: $ans"
export_file=$(ls "$WORK"/mA/possync-export-*.tsv)
grep -q "put	orders	$(printf orphan | od -An -tx1 | tr -d ' \n')	" "$export_file" || fail "no orphan in $export_file"
wait_log mA 'role slave from the data directory \(rejoined after term 1\); --role master ignored' 20 "$nA"
wait_log mA "connected to master at $(re "$S1"):7700 \(avahi possync-42-s1\)" 30 "$nA"
wait_converged 30 s1 s2 mA
ans=$(console mA status)
[ "$(field role "$ans")" = slave ] || fail "mA is not a slave after rejoin: $ans"

say "5. s1 dies; mA and s2 are promoted at once: the lowest device id (mA) keeps the store"
S2=$(lan addr s2)
stop_board s2
n2=$(log_lines s2)
board s2 s2 --role slave --store 42 --new-generation accept --listen "$S2:7700"
wait_log s2 "connected to master at $(re "$S1"):7700" 20 "$n2"
kill -9 "${BG_PID[s1]}"
wait "${BG_PID[s1]}" 2>/dev/null || true
unset "BG_PID[s1]"
nA=$(log_lines mA)
n2=$(log_lines s2)
console mA promote confirm > /dev/null &
p1=$!
console s2 promote confirm > /dev/null &
p2=$!
wait $p1 || fail "promote on mA failed"
wait $p2 || fail "promote on s2 failed"
wait_log mA 'role master from the data directory \(promoted at term 2\)' 20 "$nA"
wait_log s2 'role master from the data directory \(promoted at term 2\)' 20 "$n2"
wait_log s2 'FENCED: store 42 has two masters of term 2: mA at .* wins the tie \(lowest device id\) over this board, s2' 30 "$n2"
no_log_since mA "$nA" 'FENCED' "mA, the tie's winner"
ans=$(console s2 rejoin)
grep -q '^rejoin: exported ' <<< "$ans" || fail "rejoin on s2 answered: $ans"
wait_log s2 "connected to master at $(re "$M"):7700 \(avahi possync-42-mA\)" 30 "$n2"
put mA orders d1 after-tie
wait_converged 30 mA s2

say "PASS"

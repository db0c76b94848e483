#!/bin/bash
# LAN test (d): real possyncd boards on a simulated store LAN (issue 4). Hosts m, s1, s2, m2,
# n, t (10.231.0.10-15) in network namespaces on one bridge, each with its own dbus-daemon +
# avahi-daemon; no board is given an address, every slave finds its master through Avahi.
#   1. store 42: master mA on m, slaves s1 and s2; store 43: master mB on n, slave t.
#      Both stores converge, each on its own data, with no link across stores. The slaves
#      write too (issue 12): orders, counter ADDs and a conditional claim forwarded to mA.
#   2. mA stops and its data directory moves to host m2 (another address, another port):
#      the slaves follow and resume INCREMENTAL (no new FULL sync).
#   3. avahi-daemon restarts on m2: mA re-publishes, a restarted slave finds it, writes flow.
#   4. a rogue board (mC on m, its own key: not in the store's trust set) announces store 42:
#      the paired slaves ignore it (discovery: untrusted key), no conflict, a restarted slave
#      resumes INCREMENTAL from mA; mC gets no slave (issue 14). Then mC stops.
# Needs root (else exit 77).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lan_test_init daemon-netns POSSYNCD POSSYNC
. "$HERE/daemons.sh"
export HOSTS="m s1 s2 m2 n t"
lan_up lan
M=$(lan addr m)
M2=$(lan addr m2)
N=$(lan addr n)
re() { sed 's/\./\\./g' <<< "$1"; }  # an address as a regex

say "1. two stores on one LAN: 42 (mA on m; s1, s2) and 43 (mB on n; t)"
put_many mA orders a 30
put mA menu tea 2.50
put_many mB orders b 12
board mA m --role master --store 42 --listen "$M:7700" --tables orders,menu
board mB n --role master --store 43 --listen "$N:7700" --tables orders,menu
wait_log mA 'published "possync-42-mA" _possync._tcp port 7700' 20
wait_log mB 'published "possync-43-mB" _possync._tcp port 7700' 20
board s1 s1 --role slave --store 42
board s2 s2 --role slave --store 42
board t t --role slave --store 43
for s in s1 s2; do
    wait_log $s "connected to master at $(re "$M"):7700 \(avahi possync-42-mA\)" 20
    wait_log $s 'FULL sync complete' 20
done
wait_log t "connected to master at $(re "$N"):7700 \(avahi possync-43-mB\)" 20
wait_log t 'FULL sync complete' 20
put_many mA orders c 5
put_many mB menu d 3
wait_converged 20 mA s1 s2
wait_converged 20 mB t
d42=$(digest mA | sed 's/^position=[^ ]* //')
d43=$(digest mB | sed 's/^position=[^ ]* //')
[ "$d42" != "$d43" ] || fail "stores 42 and 43 have the same data: $d42"
ans=$(console mA peers)
[ "$(tail -n +2 <<< "$ans" | awk '{print $2}' | sort | tr '\n' ' ')" = "s1 s2 " ] || fail "mA peers: $ans"
ans=$(console mB peers)
[ "$(tail -n +2 <<< "$ans" | awk '{print $2}' | sort | tr '\n' ' ')" = "t " ] || fail "mB peers: $ans"
ans=$(wait_console 10 s1 "ignored \"possync-43-mB\" at $(re "$N"):7700: store 43" discovery)
grep -q "master \"possync-42-mA\" dev=mA at $M:7700 (m.local)" <<< "$ans" || fail "s1 discovery: $ans"
ans=$(wait_console 10 t "ignored \"possync-42-mA\" at $(re "$M"):7700: store 42" discovery)
for s in s1 s2; do no_log_since $s 0 "$(re "$N")|possync-43" "a store-42 slave touched store 43"; done
no_log_since t 0 "$(re "$M")|possync-42-mA" "the store-43 slave touched store 42"
for m in mA mB; do no_log_since $m 0 'refus|wrong store' "a slave of the other store reached $m"; done

say "1b. every till writes (issue 12): s1 and s2 forward orders and counter ADDs to mA, found via Avahi"
"$POSSYNC" --data "$WORK/mA" add menu cakes 10 || fail "add on mA"
"$POSSYNC" --data "$WORK/s1" put orders s1-order "from s1" || fail "a waiting put on slave s1 did not apply"
"$POSSYNC" --data "$WORK/s2" add menu cakes -3 || fail "add on slave s2"
"$POSSYNC" --data "$WORK/s1" add menu cakes -2 || fail "add on slave s1"
rc=0; err=$("$POSSYNC" --data "$WORK/s2" put --if-absent orders s1-order "from s2" 2>&1) || rc=$?
[ $rc = 1 ] && grep -q "rejected: .*orders.*s1-order" <<< "$err" || fail "a conflicting claim on s2: exit $rc: $err"
wait_converged 20 mA s1 s2
[ "$("$POSSYNC" --data "$WORK/s2" --hex get menu 63616b6573)" = 0000000000000005 ] || fail "cakes is not 10-3-2 on s2"
[ "$("$POSSYNC" --data "$WORK/s2" get orders s1-order)" = "from s1" ] || fail "s1's order is not on s2"
grep -qx "count: 0" <<< "$("$POSSYNC" --data "$WORK/s1" outbox)" || fail "s1's outbox is not empty"
ans=$("$POSSYNC" --data "$WORK/mA" outbox)
grep -q "s1" <<< "$ans" && grep -q "s2" <<< "$ans" || fail "mA's clients lack s1 or s2: $ans"

say "2. mA stops, its data directory moves to m2 ($M2, port 7710); the slaves follow INCREMENTAL"
n1=$(log_lines s1)
n2=$(log_lines s2)
stop_board mA
wait_log s1 'link to master (lost|closed)' 10 "$n1"
wait_log s2 'link to master (lost|closed)' 10 "$n2"
put_many mA orders e 4          # written while the board is off: captured in its log
mv "$WORK/mA" "$WORK/mA2"
# The goodbye must have taken effect first: announced again within its 1 s, the same name
# is an update of the slaves' cached records (test_daemon_master_lost.sh covers that path).
for s in s1 s2; do wait_console 10 $s 'store 42: searching' discovery > /dev/null; done
DEV=mA board mA2 m2 --role master --store 42 --listen "$M2:7710"
wait_log mA2 'published "possync-42-mA" _possync._tcp port 7710' 20
for s in s1 s2; do
    from=$([ $s = s1 ] && echo "$n1" || echo "$n2")
    wait_log $s "connected to master at $(re "$M2"):7710 \(avahi possync-42-mA\)" 20 "$from"
    wait_log $s 'resumes INCREMENTAL after [0-9]+' 20 "$from"
done
put_many mA2 orders f 3
wait_converged 20 mA2 s1 s2
no_log_since s1 "$n1" 'FULL sync' "s1 after the master moved"
no_log_since s2 "$n2" 'FULL sync' "s2 after the master moved"
ans=$(console s1 status)
[ "$(field link "$ans")" = streaming ] && [ "$(field discovery "$ans")" = "avahi possync-42-mA" ] \
    || fail "s1 status after the move: $ans"

say "3. avahi-daemon restarts on m2: mA re-publishes, a restarted slave finds it"
nm=$(log_lines mA2)
lan restart-avahi m2
wait_log mA2 'published "possync-42-mA" _possync._tcp port 7710' 30 "$nm"
stop_board s2
put_many mA2 orders g 3
n2=$(log_lines s2)
board s2 s2 --role slave --store 42
wait_log s2 "connected to master at $(re "$M2"):7710 \(avahi possync-42-mA\)" 20 "$n2"
wait_log s2 'resumes INCREMENTAL after [0-9]+' 20 "$n2"
put_many mA2 menu h 3
wait_converged 20 mA2 s1 s2
no_log_since s2 "$n2" 'FULL sync' "s2 restarted after the avahi-daemon restart"

say "4. a rogue board (mC on m: its own key, not in the trust set) announces store 42"
stop_board s2
put_many mC orders x 2
board mC m --role master --store 42 --listen "$M:7720" --tables orders
wait_log mC 'published "possync-42-mC" _possync._tcp port 7720' 20
# Paired slaves do not count it as a candidate: no conflict, nothing chosen differently.
ans=$(wait_console 10 s1 'ignored .*possync-42-mC.*untrusted key [0-9a-f]{16}: not in this store.s trust set' discovery)
grep -q "CONFLICT" <<< "$ans" && fail "s1 sees a conflict with a rogue board: $ans"
n2=$(log_lines s2)
board s2 s2 --role slave --store 42
wait_log s2 "connected to master at $(re "$M2"):7710 \(avahi possync-42-mA\)" 20 "$n2"
wait_log s2 'resumes INCREMENTAL after [0-9]+' 20 "$n2"
ans=$(wait_console 10 s2 '^waiting: -$' status)
[ "$(field link "$ans")" = streaming ] || fail "s2 does not stream beside a rogue board: $ans"
ans=$(console s2 discovery)
grep -q "store 42: found" <<< "$ans" || fail "s2 discovery state: $ans"
grep -q "untrusted key" <<< "$ans" || fail "s2 discovery does not say why mC is ignored: $ans"
put_many mA2 orders r 3
wait_converged 20 mA2 s1 s2
no_log_since s2 "$n2" "connected to master at $(re "$M"):7720" "s2 connected to the rogue board"
ans=$(console mC peers)
[ "$(tail -n +2 <<< "$ans" | grep -c .)" = 0 ] || fail "the rogue board mC has slaves: $ans"
[ "$(digest s1 | sed 's/ .*//')" = "$(digest mA2 | sed 's/ .*//')" ] || fail "s1 is not at mA2's position"
say "the rogue board got no slave; mA kept serving s1 and s2 (INCREMENTAL, no FULL)"

say "5. the rogue board stops: nothing changes for the store"
stop_board mC
put_many mA2 orders i 3
wait_converged 20 mA2 s1 s2
wait_converged 5 mB t
no_log_since s2 "$n2" 'FULL sync' "s2 after the rogue board"

say "PASS"

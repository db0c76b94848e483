#!/bin/bash
# LAN test (c): real possyncd boards on one host (loopback, its own dbus-daemon +
# avahi-daemon in a private network namespace). The master advertises _possync._tcp, the
# slave is given no address: it finds the master through Avahi, takes a FULL sync, follows
# new writes, and after a restart resumes INCREMENTAL through discovery again. The consoles
# say how the master was found. Needs root (else exit 77).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lan_test_init daemon-single POSSYNCD POSSYNC
. "$HERE/daemons.sh"
lan_up single

say "1. a master with data advertises store 42 on loopback"
put_many mA orders o 20
put mA menu tea 2.50
board mA single --role master --store 42 --listen 127.0.0.1:0 --tables orders,menu
wait_log mA 'published "possync-42-mA" _possync._tcp port [0-9]+' 20
PORT=$(sed -En 's/.*Daemon: listening on 127\.0\.0\.1:([0-9]+)$/\1/p' "$LOGS/mA.log" | tail -1)
[ -n "$PORT" ] || fail "no 'listening on' line in mA's log"
ans=$(console mA discovery)
grep -q "advertising \"possync-42-mA\" _possync._tcp port $PORT store=42 dev=mA .*: established" <<< "$ans" \
    || fail "mA console discovery: $ans"

say "2. a slave without --master finds it through Avahi and takes a FULL sync"
board s1 single --role slave --store 42
wait_log s1 "connected to master at 127\.0\.0\.1:$PORT \(avahi possync-42-mA\)" 20
wait_log s1 'FULL sync complete' 20
wait_converged 20 mA s1
ans=$(wait_console 10 s1 '^link: streaming' status)
[ "$(field discovery "$ans")" = "avahi possync-42-mA" ] || fail "s1 status discovery: $ans"
[ "$(field waiting "$ans")" = "-" ] || fail "s1 status waiting: $ans"
ans=$(console s1 discovery)
grep -Eq '^discovery avahi: .*store 42: found( \(scanning\))?$' <<< "$ans" || fail "s1 discovery state: $ans"
grep -q "master \"possync-42-mA\" dev=mA at 127\.0\.0\.1:$PORT" <<< "$ans" || fail "s1 discovery list: $ans"
ans=$(console mA peers)
grep -Eq "^127\.0\.0\.1:[0-9]+ +s1 .* streaming " <<< "$ans" || fail "mA peers: $ans"

say "3. new writes on the master reach the slave"
put_many mA orders n 10
wait_converged 20 mA s1

say "4. the slave restarts (writes meanwhile) and resumes INCREMENTAL through discovery"
stop_board s1
put_many mA orders r 5
n=$(log_lines s1)
board s1 single --role slave --store 42
wait_log s1 "connected to master at 127\.0\.0\.1:$PORT \(avahi possync-42-mA\)" 20 "$n"
wait_log s1 'resumes INCREMENTAL after [0-9]+' 20 "$n"
wait_converged 20 mA s1
no_log_since s1 "$n" 'FULL sync' "a restarted slave inside the log must not take a FULL sync"

say "PASS"

#!/bin/bash
# LAN test (e): a slave that is backing off because no master is announced connects as soon
# as Avahi shows it one (Replica::start: "a master appeared or moved: do not sit out a long
# backoff"), not after its next, longer backoff delay. On one host (loopback rig), with a
# long --backoff-min-ms so the difference is seconds, not jitter: the slave starts alone,
# the master comes up ~1 s later, and the slave must connect within LIMIT_MS of logging
# "master candidate added". This matters on real boards: with the default backoff
# (500 ms doubling to 60 s), a slave whose master was away for a few minutes would
# otherwise sit out up to another minute after the master is back.
# Needs root (else exit 77).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lan_test_init daemon-rediscovery POSSYNCD POSSYNC
. "$HERE/daemons.sh"
lan_up single
BACKOFF_MIN_MS=4000
LIMIT_MS=1500

ms_of() {  # a log line -> its timestamp in ms since the epoch
    date -d "$(cut -d' ' -f1 <<< "$1")" +%s%3N
}

say "1. a slave starts with no master on the LAN (backoff from $BACKOFF_MIN_MS ms)"
put_many mA orders o 5
board s1 single --role slave --store 42 --backoff-min-ms "$BACKOFF_MIN_MS" --backoff-max-ms 60000
wait_log s1 'no master to connect to: no master announces store 42 yet' 10
ans=$(console s1 status)
[ "$(field waiting "$ans")" = "no master announces store 42 yet" ] || fail "s1 status while alone: $ans"
sleep 1

say "2. the master comes up: the slave must connect within $LIMIT_MS ms of seeing it"
board mA single --role master --store 42 --listen 127.0.0.1:0 --tables orders
wait_log s1 'master candidate added: "possync-42-mA"' 20
wait_log s1 'connected to master at 127\.0\.0\.1:[0-9]+ \(avahi possync-42-mA\)' 20
seen=$(ms_of "$(grep -m1 'master candidate added' "$LOGS/s1.log")")
conn=$(ms_of "$(grep -m1 'connected to master at' "$LOGS/s1.log")")
say "s1 connected $((conn - seen)) ms after Avahi showed it the master"
[ $((conn - seen)) -le $LIMIT_MS ] || fail "s1 connected $((conn - seen)) ms after discovering the master" \
    "(limit $LIMIT_MS ms, --backoff-min-ms $BACKOFF_MIN_MS): a discovered master must end the backoff"
wait_log s1 'FULL sync complete' 10
wait_converged 10 mA s1

say "PASS"

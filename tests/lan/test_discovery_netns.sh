#!/bin/bash
# LAN test (b): discovery across a simulated store LAN: hosts m, s1, s2 in network
# namespaces (10.231.0.10-12, bridged), each with its own dbus-daemon + avahi-daemon.
# The master's Advertiser on m is found by MasterFinders on s1; a same-named service on s2
# is renamed by mDNS probing; stores are filtered apart; two boards for one store are a
# conflict; generation changes propagate; restarts of either side's avahi-daemon recover.
# Needs root (else exit 77).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lan_test_init netns
lan_up lan

M=$(lan addr m)
S2=$(lan addr s2)
GEN_A=00000000000000aa
GEN_B=00000000000000bb

say "1. m publishes the master of store 42"
bg pubA m publish --store 42 --dev devA --port 7700 --gen $GEN_A
wait_log pubA 'publisher established name="possync-42-devA"' 20
bg watch s1 watch --store 42

say "2. s2's avahi-browse resolves it with the TXT record"
ok=""
for _ in 1 2 3; do   # the first browse can race the announcement
    host_exec s2 timeout 15 avahi-browse -rpt _possync._tcp > "$LOGS/browse-1.log" || true
    row=$(grep '^=;eth0;IPv4;possync-42-devA;_possync._tcp;local;' "$LOGS/browse-1.log" || true)
    [ -n "$row" ] && { ok=1; break; }
    sleep 1
done
[ -n "$ok" ] || fail "s2 does not see possync-42-devA"
# The protocol version this build speaks (possyncd --version: "possyncd V (protocol P, format F)").
PROTO=$("$POSSYNCD" --version | sed -n 's/.*(protocol \([0-9]*\),.*/\1/p')
[ -n "$PROTO" ] || fail "cannot read the protocol version from possyncd --version"
for want in ";m.local;$M;7700;" '"store=42"' '"dev=devA"' "\"proto=$PROTO\"" "\"gen=$GEN_A\""; do
    [[ $row == *"$want"* ]] || fail "avahi-browse row lacks $want: $row"
done

say "3. s1's MasterFinder finds m"
run_probe s1 find --store 42 --want-state found --want-dev devA --want-address "$M" --timeout 20 \
    || fail "s1 did not find devA"
expect_in "$LAST_RUN" "choose: ok name=\"possync-42-devA\" dev=devA at $M:7700 gen=$GEN_A" "choose on s1"
expect_in "$LAST_RUN" '\(m\.local\)' "host name from mDNS"

say "4. the same name published on s2 is renamed after probing"
bg dup s2 publish-raw --name possync-42-devA --port 7800 store=99 dev=dup proto=2
wait_log dup 'publisher established name="possync-42-devA #2"' 30
wait_log dup 'renamed to "possync-42-devA #2"' 1

say "5. stores are filtered apart"
bg pubB s2 publish --store 43 --dev devB --port 7701
wait_log pubB 'publisher established name="possync-43-devB"' 20
run_probe s1 find --store 43 --want-state found --want-candidates 1 --want-dev devB --timeout 20 \
    || fail "store 43 finder"
expect_in "$LAST_RUN" "choose: ok name=\"possync-43-devB\" dev=devB at $S2:7701" "store 43 choice"
run_probe s1 find --store 42 --want-state found --want-candidates 1 --want-dev devA --settle 1500 \
    --timeout 20 || fail "store 42 finder with other stores around"
expect_in "$LAST_RUN" "ignored \"possync-43-devB\" at $S2:7701: store 43" "store 43 ignored"
expect_in "$LAST_RUN" "ignored \"possync-42-devA #2\" at $S2:7800: store 99" "store 99 ignored"

say "6. a second board claiming store 42 is a conflict"
n=$(log_lines watch)
bg pubC s2 publish --store 42 --dev devC --port 7702
wait_log pubC 'publisher established' 20
CONFLICT="2 boards claim master for store 42: devA at $M:7700, devC at $S2:7702"
wait_log watch "state conflict: $CONFLICT" 20 "$n"
wait_log watch "warning Discovery: $CONFLICT" 5 "$n"
run_probe s1 find --store 42 --want-state conflict --want-candidates 2 --timeout 20 || fail "no conflict on s1"
expect_in "$LAST_RUN" "choose: error $CONFLICT" "choose refuses"
n=$(log_lines watch)
stop_bg pubC
wait_log watch 'change removed name="possync-42-devC"' 20 "$n"
wait_log watch '^state found' 5 "$n"

say "7. a new generation on m reaches s1"
n=$(log_lines watch)
send pubA "gen $GEN_B"
wait_log watch "change updated name=\"possync-42-devA\" dev=devA at $M:7700 gen=$GEN_B" 20 "$n"

say "8. m's avahi-daemon restarts: m re-publishes, s1 sees it go and come back"
n=$(log_lines watch)
np=$(log_lines pubA)
lan restart-avahi m
wait_log pubA 'publisher established name="possync-42-devA"' 30 "$np"
wait_log watch 'change removed name="possync-42-devA"' 30 "$n"
wait_log watch "change added name=\"possync-42-devA\" dev=devA at $M:7700 gen=$GEN_B" 30 "$n"

say "9. s1's avahi-daemon restarts: its finder reconnects and finds m again"
n=$(log_lines watch)
lan restart-avahi s1
wait_log watch 'change removed name="possync-42-devA"' 30 "$n"
wait_log watch "change added name=\"possync-42-devA\" dev=devA at $M:7700 gen=$GEN_B" 30 "$n"
send watch choose
wait_log watch "choose: ok name=\"possync-42-devA\" dev=devA at $M:7700" 5 "$n"

say "PASS"

#!/bin/bash
# LAN test (a): discovery on one host, loopback only, with a real dbus-daemon + avahi-daemon
# (in a network namespace of its own). Publishes with platform/avahi through the
# Advertiser and a raw Publisher, checks avahi-browse and the MasterFinder: TXT records,
# collision rename, store filter, conflict, re-publish on port/generation change, and
# recovery after an avahi-daemon restart. Needs root (else exit 77).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lan_test_init single
lan_up single

GEN_A=00000000000000aa
GEN_B=00000000000000bb

say "1. a master publishes store 42"
bg pubA single publish --store 42 --dev devA --port 7700 --gen $GEN_A
wait_log pubA 'publisher established name="possync-42-devA"' 20
bg watch single watch --store 42

say "2. avahi-browse sees the service and its TXT record"
host_exec single timeout 15 avahi-browse -rpt _possync._tcp > "$LOGS/browse-1.log"
cat "$LOGS/browse-1.log" >&2
row=$(grep '^=;lo;IPv4;possync-42-devA;_possync._tcp;local;' "$LOGS/browse-1.log" || true)
[ -n "$row" ] || fail "avahi-browse does not list possync-42-devA"
# The protocol version this build speaks (possyncd --version: "possyncd V (protocol P, format F)").
PROTO=$("$POSSYNCD" --version | sed -n 's/.*(protocol \([0-9]*\),.*/\1/p')
[ -n "$PROTO" ] || fail "cannot read the protocol version from possyncd --version"
for want in ';127.0.0.1;7700;' '"store=42"' '"dev=devA"' "\"proto=$PROTO\"" "\"gen=$GEN_A\""; do
    [[ $row == *"$want"* ]] || fail "avahi-browse row lacks $want: $row"
done

say "3. the MasterFinder finds it for store 42"
run_probe single find --store 42 --want-state found --want-dev devA --want-gen $GEN_A \
    --want-port 7700 --want-address 127.0.0.1 --timeout 20 || fail "finder did not find devA"
expect_in "$LAST_RUN" "choose: ok name=\"possync-42-devA\" dev=devA at 127.0.0.1:7700 gen=$GEN_A" "choose"

say "4. a second service with the same name is renamed"
bg dup single publish-raw --name possync-42-devA --port 7800 store=99 dev=dup proto=2
wait_log dup 'publisher established name="possync-42-devA #2"' 20
host_exec single timeout 15 avahi-browse -rpt _possync._tcp > "$LOGS/browse-2.log"
# avahi-browse -p escapes the name: "possync-42-devA #2" -> possync-42-devA\032\0352
expect_in "$LOGS/browse-2.log" '^=;lo;IPv4;possync-42-devA\\032\\0352;.*;7800;.*"store=99"' "renamed service in avahi-browse"
expect_in "$LOGS/browse-2.log" '^=;lo;IPv4;possync-42-devA;.*;7700;' "original service still listed"

say "5. two stores are filtered apart"
bg pubB single publish --store 43 --dev devB --port 7701
wait_log pubB 'publisher established name="possync-43-devB"' 20
run_probe single find --store 43 --want-state found --want-candidates 1 --want-dev devB --timeout 20 \
    || fail "store 43 finder"
expect_in "$LAST_RUN" 'choose: ok name="possync-43-devB" dev=devB at 127.0.0.1:7701' "store 43 choice"
expect_in "$LAST_RUN" 'ignored "possync-42-devA" at 127.0.0.1:7700: store 42' "store 42 ignored by store 43"
run_probe single find --store 42 --want-state found --want-candidates 1 --want-dev devA --settle 1500 \
    --timeout 20 || fail "store 42 finder with store 43 around"
expect_in "$LAST_RUN" 'ignored "possync-43-devB" at 127.0.0.1:7701: store 43' "store 43 ignored"
expect_in "$LAST_RUN" 'ignored "possync-42-devA #2" at 127.0.0.1:7800: store 99' "store 99 ignored"

say "6. two boards claiming store 42 are a conflict, not a choice"
n=$(log_lines watch)
bg pubC single publish --store 42 --dev devC --port 7702
wait_log pubC 'publisher established' 20
CONFLICT='2 boards claim master for store 42: devA at 127.0.0.1:7700, devC at 127.0.0.1:7702'
run_probe single find --store 42 --want-state conflict --want-candidates 2 --timeout 20 || fail "no conflict seen"
expect_in "$LAST_RUN" "CONFLICT: $CONFLICT" "conflict text"
expect_in "$LAST_RUN" "choose: error $CONFLICT" "choose refuses"
wait_log watch "state conflict: $CONFLICT" 20 "$n"
wait_log watch "warning Discovery: $CONFLICT" 5 "$n"
n=$(log_lines watch)
stop_bg pubC
wait_log watch 'change removed name="possync-42-devC"' 20 "$n"
wait_log watch '^state found' 5 "$n"

say "7. generation and port changes are re-published"
n=$(log_lines watch)
send pubA "gen $GEN_B"
wait_log watch "change updated name=\"possync-42-devA\" dev=devA at 127.0.0.1:7700 gen=$GEN_B" 20 "$n"
n=$(log_lines watch)
send pubA "port 7710"
wait_log watch "change (updated|added) name=\"possync-42-devA\" dev=devA at 127.0.0.1:7710 gen=$GEN_B" 20 "$n"
host_exec single timeout 15 avahi-browse -rpt _possync._tcp > "$LOGS/browse-3.log"
expect_in "$LOGS/browse-3.log" "^=;lo;IPv4;possync-42-devA;.*;7710;.*\"gen=$GEN_B\"" "new port+gen in avahi-browse"

say "8. avahi-daemon restarts: the publisher re-registers, the browser sees it again"
n=$(log_lines watch)
np=$(log_lines pubA)
nd=$(log_lines dup)
lan restart-avahi single
wait_log pubA 'publisher (waiting-for-avahi|registering)' 20 "$np"
wait_log pubA 'publisher established name="possync-42-devA"' 30 "$np"
wait_log dup 'publisher established name="possync-42-devA #2"' 30 "$nd"
wait_log watch 'change removed name="possync-42-devA"' 30 "$n"
wait_log watch "change added name=\"possync-42-devA\" dev=devA at 127.0.0.1:7710 gen=$GEN_B" 30 "$n"
run_probe single find --store 42 --want-state found --want-dev devA --want-port 7710 --timeout 20 \
    || fail "fresh finder after restart"

say "PASS"

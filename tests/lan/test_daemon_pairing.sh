#!/bin/bash
# LAN test (issue 14): pairing on a simulated store LAN with real avahi-daemons. Hosts m, s1, s2,
# s3 in network namespaces on one bridge; every slave finds the master through Avahi.
#   1. mA (--pair-window 0, the product default) serves store 42. s1, a new board, asks to pair:
#      refused (NOT_PAIRED), the same verification code on both consoles, no data on s1.
#   2. pair reject s1: still nothing. pair accept s2 (another new board): it syncs (FULL).
#   3. pair open 60: s3 is admitted without a decision and syncs; pair close.
#   4. s1 provisioned at the factory: its key (possync key) in mA's --trusted-keys: it syncs.
#   5. pair remove s2: its link is cut at once; later writes reach s1 and s3 only.
# Needs root (else exit 77).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lan_test_init daemon-pairing POSSYNCD POSSYNC
. "$HERE/daemons.sh"
export HOSTS="m s1 s2 s3"
lan_up lan
M=$(lan addr m)

pending_code() {  # BOARD: the verification code mA's pair list shows for it
    console mA pair list | awk -v d="$1" '$1 == "pending" && $2 == d {for (i = 1; i <= NF; i++) if ($i == "code") print $(i + 1)}'
}

say "1. a new board asks to pair: refused until the operator decides, the same code on both consoles"
put_many mA orders a 10
board mA m --role master --store 42 --listen "$M:7700" --tables orders --pair-window 0
wait_log mA 'published "possync-42-mA" _possync._tcp port 7700' 20
board s1 s1 --role slave --store 42
wait_log s1 'master refused \(NOT_PAIRED\)' 20
for i in $(seq 50); do code=$(pending_code s1); [ -n "$code" ] && break; sleep 0.1; done
[ -n "$code" ] || fail "mA does not list s1 as asking to pair: $(console mA pair list)"
ans=$(wait_console 10 s1 "^trust: waiting to be paired: verification code $code" status)
say "s1 asks to pair; both consoles show code $code"
[ "$(digest s1 | sed 's/.*count=//')" = 0 ] || fail "s1 holds data before it was paired: $(digest s1)"

say "2. pair reject s1 (nothing reaches it); pair accept s2 (it syncs)"
console mA pair reject s1 > /dev/null
sleep 2
[ "$(digest s1 | sed 's/.*count=//')" = 0 ] || fail "s1 holds data after pair reject: $(digest s1)"
n2=$(log_lines s2)
board s2 s2 --role slave --store 42
wait_log s2 'master refused \(NOT_PAIRED\)' 20 "$n2"
for i in $(seq 50); do [ -n "$(pending_code s2)" ] && break; sleep 0.1; done
console mA pair accept s2 > /dev/null
wait_log s2 'FULL sync complete' 20 "$n2"
wait_converged 20 mA s2

say "3. pair open 60: s3 is admitted without a decision"
console mA pair open 60 > /dev/null
board s3 s3 --role slave --store 42
wait_log s3 'FULL sync complete' 20
console mA pair close > /dev/null
wait_converged 20 mA s2 s3
no_log_since s3 0 'NOT_PAIRED' "s3 while the window was open"

say "4. s1 provisioned at the factory (its key in mA's --trusted-keys): it syncs on its next link"
stop_board s1
key=$("$POSSYNC" --data "$WORK/s1" key | awk '$1 == "key" {print $2}')
[ ${#key} = 64 ] || fail "possync key printed no key for s1"
stop_board mA
n1=$(log_lines s1)
board mA m --role master --store 42 --listen "$M:7700" --tables orders --pair-window 0 --trusted-keys "$key"
board s1 s1 --role slave --store 42
wait_log s1 'FULL sync complete' 30 "$n1"
wait_converged 20 mA s1 s2 s3
list=$(console mA pair list)  # (grep -q on a pipe could end the writer early: pipefail)
grep -q "provisioned" <<< "$list" || fail "mA lists no provisioned member: $list"
# The trust set replicates: every slave lists the master's members.
want=$(console mA pair list | awk '$1 == "member" {print $3}' | sort | tr '\n' ' ')
for s in s1 s2 s3; do
    got=$(console $s pair list | awk '$1 == "member" {print $3}' | sort | tr '\n' ' ')
    [ "$got" = "$want" ] || fail "$s holds another trust set: '$got' (mA: '$want')"
done

say "5. pair remove s2: its link is cut at once, later writes reach the members only"
nA=$(log_lines mA)
console mA pair remove s2 > /dev/null
wait_log mA 'trust set: removed s2 .*1 link\(s\) cut' 10 "$nA"
before=$(digest s2)
put_many mA orders z 3
wait_converged 20 mA s1 s3
sleep 1
[ "$(digest s2)" = "$before" ] || fail "s2 got changes after it was removed: $(digest s2)"
say "PASS"

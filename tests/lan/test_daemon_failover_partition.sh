#!/bin/bash
# LAN test (i): failover while the old master is alive but cut off, with slaves ahead of the
# promoted one (issue 13). Hosts m, s1, s2, s3, m2 (10.231.0.10-14).
#   1. store 43: master mA on m, slaves s1 (--listen: promotable), s2 and s3; converged.
#   2. s1 is held back (stopped) while mA commits 4 orders that s2 and s3 receive: they are ahead
#      of s1 by 4.
#   3. m's port on the bridge goes down: mA runs on, alone, and commits 2 more orders nobody gets.
#      s1 starts again: `promote` without confirm is refused (Avahi still lists mA); `promote
#      confirm` makes it master of term 1.
#   4. s2 and s3 follow the highest term; they held 4 changes past the fork, so each takes a FULL
#      and its log and `status` say that 4 changes were discarded. All three equal, with no order
#      of mA's past the fork: no slave applied changes from two masters.
#   5. The partition heals: mA sees s1 announce term 1 and fences itself (console, log, refused
#      writes); the slaves stay with s1.
#   6. mA comes back at another address (host m2, still fenced: the fence is in its directory);
#      `rejoin` exports its generation's log, which holds all 6 orders s1 never had, and it follows
#      s1 as a slave. At the end all four boards are equal.
# Needs root (else exit 77).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lan_test_init daemon-failover-partition POSSYNCD POSSYNC
. "$HERE/daemons.sh"
export HOSTS="m s1 s2 s3 m2"
lan_up lan
M=$(lan addr m)
M2=$(lan addr m2)
S1=$(lan addr s1)
re() { sed 's/\./\\./g' <<< "$1"; }  # an address as a regex
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
has_key() { "$POSSYNC" --data "$WORK/$1" get orders "$2" > /dev/null 2>&1; }

say "1. store 43: master mA on m, slaves s1 (--listen $S1:7700), s2, s3"
put_many mA orders a 10
board mA m --role master --store 43 --listen "$M:7700" --tables orders
wait_log mA 'published "possync-43-mA" _possync._tcp port 7700' 20
board s1 s1 --role slave --store 43 --listen "$S1:7700"
board s2 s2 --role slave --store 43
board s3 s3 --role slave --store 43
for s in s1 s2 s3; do wait_log $s "connected to master at $(re "$M"):7700 \(avahi possync-43-mA\)" 20; done
wait_converged 20 mA s1 s2 s3

say "2. s1 is held back while mA commits 4 orders that s2 and s3 receive"
stop_board s1
put_many mA orders ahead 4
wait_converged 20 mA s2 s3

say "3. mA is cut off the LAN (alive); it commits 2 orders nobody gets; s1 is promoted"
ip -n "${PREFIX}lan" link set v-m down
n2=$(log_lines s2)
n3=$(log_lines s3)
put_many mA orders split 2
n1=$(log_lines s1)
board s1 s1 --role slave --store 43 --listen "$S1:7700"
ans=$("$POSSYNC" console --socket "$WORK/s1.sock" promote 2>&1 || true)
grep -q 'may still be alive (.*announced over Avahi: mA' <<< "$ans" || fail "promote beside a listed master answered: $ans"
say "s1: $ans"
ans=$(console s1 promote confirm)
grep -q '^promote: promoted: generation [0-9a-f]\{16\} (term 1)' <<< "$ans" || fail "promote confirm answered: $ans"
wait_log s1 'role master from the data directory \(promoted at term 1\); --role slave ignored' 20 "$n1"
wait_log s1 'published "possync-43-s1" _possync._tcp port 7700' 20 "$n1"

say "4. s2 and s3 follow term 1 with a FULL that discards the 4 changes past the fork"
for s in s2 s3; do
    n=$([ $s = s2 ] && echo "$n2" || echo "$n3")
    wait_log $s "connected to master at $(re "$S1"):7700 \(avahi possync-43-s1\)" 40 "$n"
    wait_log $s '4 change\(s\) this board held past seq [0-9]+ of generation [0-9a-f]{16} \(the fork of the new master s1, term 1\) were never received by it: the FULL sync discards them' 30 "$n"
    ans=$(wait_console 20 $s '^failover: 4 change\(s\) this board held past' status)
    say "$s status: $(field failover "$ans")"
done
put_many s1 orders b 3
wait_converged 30 s1 s2 s3
for s in s1 s2 s3; do
    for k in ahead1 ahead4 split1; do
        if has_key $s $k; then fail "$s holds $k, which only the old master committed"; fi
    done
done

say "5. the partition heals: mA sees term 1 announced and fences itself"
nA=$(log_lines mA)
ip -n "${PREFIX}lan" link set v-m up
wait_log mA 'FENCED: store 43 has a master of term 1 \(s1 at .*announced over Avahi\)' 40 "$nA"
ans=$(wait_console 10 mA '^link: FENCED: ' status)
say "mA status: $(field link "$ans")"
if out=$("$POSSYNC" --data "$WORK/mA" put orders late x 2>&1); then fail "a write on the fenced mA was taken"; fi
grep -q 'fenced' <<< "$out" || fail "the refused write does not say why: $out"
put s1 orders c1 after-heal
wait_converged 20 s1 s2 s3

say "6. mA returns at another address (m2, $M2), still fenced; rejoin exports what s1 never had"
stop_board mA
nA=$(log_lines mA)
board mA m2 --role master --store 43 --listen "$M2:7700" --tables orders
wait_log mA 'FENCED: ' 20 "$nA"
ans=$(console mA rejoin)
grep -q '^rejoin: exported ' <<< "$ans" || fail "rejoin answered: $ans"
export_file=$(ls "$WORK"/mA/possync-export-*.tsv)
for k in ahead1 ahead2 ahead3 ahead4 split1 split2; do
    grep -q "put	orders	$(hex "$k")	" "$export_file" || fail "$k is not in the export file $export_file"
done
say "export $export_file holds the 6 orders s1 never had"
wait_log mA 'role slave from the data directory \(rejoined after term 1\); --role master ignored' 20 "$nA"
wait_log mA "connected to master at $(re "$S1"):7700 \(avahi possync-43-s1\)" 30 "$nA"
wait_converged 30 s1 s2 s3 mA
if has_key mA split1; then fail "the rejoined mA still holds its orphan in its tables"; fi

say "PASS"

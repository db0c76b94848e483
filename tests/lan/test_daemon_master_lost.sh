#!/bin/bash
# LAN test (f): the master's board drops off the store LAN without a goodbye (power loss,
# pulled cable: its eth0 goes down), and its data comes back on another host (m2: another
# address, another port) under the same service name. The slaves' avahi-daemons still cache
# the old records, so they learn the new host and port as an update of the cached service
# (cache-flush), not as a removal and a new service. The slaves must follow to the new
# address and resume INCREMENTAL. Hosts m, s1, s2, m2 (10.231.0.10-13). Needs root (else 77).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lan_test_init daemon-master-lost POSSYNCD POSSYNC
. "$HERE/daemons.sh"
export HOSTS="m s1 s2 m2"
lan_up lan
M=$(lan addr m)
M2=$(lan addr m2)
re() { sed 's/\./\\./g' <<< "$1"; }  # an address as a regex

say "1. store 42: master mA on m ($M:7700), slaves s1 and s2"
put_many mA orders a 10
board mA m --role master --store 42 --listen "$M:7700" --tables orders
wait_log mA 'published "possync-42-mA" _possync._tcp port 7700' 20
board s1 s1 --role slave --store 42
board s2 s2 --role slave --store 42
for s in s1 s2; do wait_log $s "connected to master at $(re "$M"):7700 \(avahi possync-42-mA\)" 20; done
put_many mA orders b 3
wait_converged 20 mA s1 s2

say "2. m drops off the LAN; mA is stopped there (its goodbye cannot leave m)"
n1=$(log_lines s1)
n2=$(log_lines s2)
lan unplug m
wait_log s1 'link to master (lost|closed)' 10 "$n1"
wait_log s2 'link to master (lost|closed)' 10 "$n2"
stop_board mA
ans=$(console s1 discovery)
grep -q "master \"possync-42-mA\" dev=mA at $M:7700" <<< "$ans" \
    || fail "s1 should still list the unplugged master (no goodbye): $ans"

say "3. mA's data comes back on m2 ($M2:7710) under the same name; the slaves must follow"
put_many mA orders c 4          # written while the board is off: captured in its log
mv "$WORK/mA" "$WORK/mA2"
DEV=mA board mA2 m2 --role master --store 42 --listen "$M2:7710"
wait_log mA2 'published "possync-42-mA" _possync._tcp port 7710' 20
for s in s1 s2; do
    from=$([ $s = s1 ] && echo "$n1" || echo "$n2")
    if ! (wait_log $s "connected to master at $(re "$M2"):7710 \(avahi possync-42-mA\)" 20 "$from"); then
        ans=$(console $s discovery)
        # A fresh resolution on the same host, for comparison with the daemon's long-lived one.
        fresh=$(host_exec $s timeout 10 avahi-browse -rpt _possync._tcp | grep '^=' || true)
        fail "$s did not follow the master to $M2:7710; its discovery says: $ans" \
            $'\n'"while a fresh avahi-browse on $s says: $fresh"
    fi
    wait_log $s 'resumes INCREMENTAL after [0-9]+' 20 "$from"
done
put_many mA2 orders d 3
wait_converged 20 mA2 s1 s2
no_log_since s1 "$n1" 'FULL sync' "s1 after the master moved"
no_log_since s2 "$n2" 'FULL sync' "s2 after the master moved"
ans=$(console s1 discovery)
grep -q "master \"possync-42-mA\" dev=mA at $M2:7710 (m2.local)" <<< "$ans" || fail "s1 discovery: $ans"

say "PASS"

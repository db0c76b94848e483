#!/bin/bash
# store-lan.sh - real avahi-daemons (each with its own D-Bus system bus) on simulated store
# LANs, for possync's LAN tests. Needs root; no systemd. Adapted from the project's tried
# recipe (DESIGN.md §4 discovery): every simulated host H gets $STATE/H/run bind-mounted over
# /run for each of its processes (daemons and test programs), inside the private mount
# namespace that 'ip netns exec' makes. So each host has its own
# /run/dbus/system_bus_socket and /run/avahi-daemon, stock paths work (libavahi-client,
# avahi-browse, nss-mdns), and the real /run is untouched.
#
# (a) single host: one dbus-daemon + avahi-daemon on loopback only, inside a network
#     namespace of its own (${PREFIX}single, only 'lo'), so nothing reaches the machine's
#     interfaces and two test runs never hear each other. SINGLE_ROOT_NETNS=1 uses the
#     root namespace's lo instead (as the original recipe did).
#       store-lan.sh single-up
#       store-lan.sh single-exec avahi-browse -rpt _possync._tcp
#       store-lan.sh restart-avahi single
#       store-lan.sh single-down
# (b) store LAN: hosts ${PREFIX}m ${PREFIX}s1 ${PREFIX}s2 (eth0 = $SUBNET.10, .11, .12) on a
#     bridge in netns ${PREFIX}lan; each runs its own dbus-daemon + avahi-daemon
#     (host-name m, s1, s2; allow-interfaces=eth0; use-ipv6=no).
#       store-lan.sh up
#       store-lan.sh exec m ./possyncd ... &       # exec: $! is the program's own PID
#       store-lan.sh exec s1 avahi-browse -rpt _possync._tcp
#       store-lan.sh restart-avahi s2              # SIGTERM + fresh daemon (empty cache)
#       store-lan.sh stop-avahi m ; store-lan.sh start-avahi m
#       store-lan.sh unplug m ; store-lan.sh plug m  # eth0 down/up: a board drops off the LAN
#                                                  # without a goodbye (power loss, cable)
#       store-lan.sh down                          # kills what runs in the namespaces, deletes them
#
# Other commands: status, hosts (prints "H ADDR" per host), addr H, wait-avahi H [SEC],
# selftest (publish on the first host, browse+resolve from the others).
# Every wait is bounded; 'down'/'single-down' are safe to run on a half-built rig.
#
# Env knobs: PREFIX (default possync-; netns names), HOSTS (default "m s1 s2"; first gets .10),
#   SUBNET (default 10.231.0), STATE (default /tmp/possync-lan; per-host dirs and logs
#   $STATE/H/avahi.log), AVAHI_DEBUG=1 (avahi-daemon --debug), SINGLE_ROOT_NETNS=1.
# Facts (Debian 12, avahi 0.8): a new service resolves on the other hosts in ~1 s; an
# avahi-daemon restart takes 2-3 s; a SIGKILLed host's services linger in browse results
# for minutes (no goodbye) - never treat a browse entry as proof of life. A withdrawn
# service (goodbye) leaves the other hosts' caches 1 s later; the same name announced again
# within that second is an update of the cached records, not a removal and a new service.
set -euo pipefail

PREFIX=${PREFIX-possync-}
HOSTS=${HOSTS:-"m s1 s2"}
SUBNET=${SUBNET:-10.231.0}
STATE=${STATE:-/tmp/possync-lan}
LAN=${PREFIX}lan
SINGLE_NS=${PREFIX}single
[ "${SINGLE_ROOT_NETNS:-0}" = 1 ] && SINGLE_NS=

die() { echo "store-lan: $*" >&2; exit 1; }
need() { for c in "$@"; do command -v "$c" >/dev/null || die "missing command: $c (run tools/setup)"; done; }
need_root() { [ "$(id -u)" = 0 ] || die "must be root (network namespaces, bind mounts)"; }

# host_cmd DIR NETNS|"" CMD... -> array HC: runs CMD with DIR/run bound over /run, inside NETNS
# (or a private mount namespace in the root netns). The final exec keeps CMD's PID.
host_cmd() {
    local d=$1 ns=$2; shift 2
    if [ -n "$ns" ]; then HC=(ip netns exec "$ns"); else HC=(unshare -m --propagation private); fi
    # Unset DBUS_SYSTEM_BUS_ADDRESS: inside, the stock socket path IS this host's bus; an
    # inherited value (another host's env file) would silently point at the wrong host.
    HC+=(env -u DBUS_SYSTEM_BUS_ADDRESS sh -c 'mount --bind "$0" /run && exec "$@"' "$d/run" "$@")
}

# write_avahi_conf DIR HOSTNAME IFACE. allow-interfaces is always set: the stock config
# would send mDNS on the machine's real interface.
write_avahi_conf() {
    cat > "$1/avahi-daemon.conf" <<CONF
[server]
host-name=$2
use-ipv4=yes
use-ipv6=no
allow-interfaces=$3
enable-dbus=yes
disallow-other-stacks=no
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
[reflector]
[rlimits]
CONF
}
# ^ [rlimits] stays empty: rlimit-fsize=0 kills avahi-daemon (SIGXFSZ) once it logs to a file.

start_host() {  # DIR NETNS|"" HOSTNAME IFACE
    local d=$1 ns=$2
    mkdir -p "$d/run/dbus" "$d/run/avahi-daemon"
    chmod 755 "$d" "$d/run" "$d/run/dbus"
    write_avahi_conf "$d" "$3" "$4"
    echo "$ns" > "$d/netns"
    rm -f "$d/run/dbus/pid" "$d/run/dbus/system_bus_socket"  # left behind by a SIGTERMed dbus-daemon
    # Never a copy of system.conf: its relative includedir would lose Avahi's bus policy.
    host_cmd "$d" "$ns" dbus-daemon --system --fork --print-pid
    "${HC[@]}" > "$d/dbus.pid"
    start_avahi "$d"
    printf 'export DBUS_SYSTEM_BUS_ADDRESS=unix:path=%s/run/dbus/system_bus_socket\n' "$d" > "$d/env"
}

start_avahi() {  # DIR (--no-chroot keeps it simple)
    local d=$1 ns
    ns=$(cat "$d/netns")
    rm -f "$d/run/avahi-daemon/pid"
    host_cmd "$d" "$ns" avahi-daemon --no-chroot --no-proc-title ${AVAHI_DEBUG:+--debug} -f "$d/avahi-daemon.conf"
    nohup "${HC[@]}" >> "$d/avahi.log" 2>&1 < /dev/null &
    echo $! > "$d/avahi.pid"
}

# wait_avahi DIR [SEC]: until Server.GetState == 2 (AVAHI_SERVER_RUNNING), ~1 s after start.
wait_avahi() {
    local d=$1 t=${2:-15} i=0
    while ! DBUS_SYSTEM_BUS_ADDRESS="unix:path=$d/run/dbus/system_bus_socket" timeout 5 dbus-send --system \
            --print-reply --dest=org.freedesktop.Avahi / org.freedesktop.Avahi.Server.GetState 2>/dev/null |
            grep -q 'int32 2'; do
        i=$((i+1)); [ $i -gt $((t*20)) ] && { tail -20 "$d/avahi.log" >&2; die "avahi in $d not running after ${t}s"; }
        kill -0 "$(cat "$d/avahi.pid")" 2>/dev/null || { tail -20 "$d/avahi.log" >&2; die "avahi-daemon in $d died"; }
        sleep 0.05
    done
}

# running PID: true while PID exists and is not a zombie. The daemons are orphans (dbus-daemon
# forks, avahi-daemon's starter exits), so PID 1 reaps them, and some inits (VMs, containers)
# reap only every ~2 s: kill -0 alone would make every stop last that long.
running() {
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "${st:0:1}" != Z ]
}

stop_pidfile() {  # FILE: SIGTERM, wait up to 5 s, then SIGKILL
    local f=$1 p
    [ -f "$f" ] || return 0
    p=$(cat "$f"); [ -n "$p" ] || return 0
    kill "$p" 2>/dev/null || return 0
    for _ in $(seq 100); do running "$p" || return 0; sleep 0.05; done
    kill -9 "$p" 2>/dev/null || true
}

stop_host() { stop_pidfile "$1/avahi.pid"; stop_pidfile "$1/dbus.pid"; }

host_dir() {  # NAME -> $STATE/NAME, or die
    local d=$STATE/$1
    [ -f "$d/env" ] || die "unknown host $1 (is the rig up?)"
    echo "$d"
}

kill_netns_pids() {  # NETNS: whatever still runs inside was started by us or our tests
    local ns=$1 p
    [ -e "/run/netns/$ns" ] || return 0
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    for _ in $(seq 40); do [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break; sleep 0.05; done
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
}

# ---------- (a) single host ----------
single_up() {
    need_root
    need dbus-daemon avahi-daemon dbus-send unshare ip
    local d=$STATE/single
    [ -e "$d/env" ] && die "$d exists; run single-down first"
    mkdir -p "$d"; chmod 755 "$STATE"
    trap 'echo "store-lan: single-up failed, tearing down" >&2; single_down' EXIT
    if [ -n "$SINGLE_NS" ]; then
        [ -e "/run/netns/$SINGLE_NS" ] && die "netns $SINGLE_NS exists; run single-down first"
        ip netns add "$SINGLE_NS"
        ip -n "$SINGLE_NS" link set lo up
    fi
    start_host "$d" "$SINGLE_NS" "$(hostname -s 2>/dev/null || echo possync)" lo
    wait_avahi "$d"
    trap - EXIT
    echo "single host ready (lo only${SINGLE_NS:+, netns $SINGLE_NS}): $0 single-exec CMD..."
}

single_down() {
    local d=$STATE/single
    [ -d "$d" ] && stop_host "$d"
    if [ -n "$SINGLE_NS" ]; then
        kill_netns_pids "$SINGLE_NS"
        if [ -e "/run/netns/$SINGLE_NS" ]; then ip netns del "$SINGLE_NS"; fi
    fi
    rm -rf "${STATE:?}/single"
    rmdir "$STATE" 2>/dev/null || true
}

# ---------- (b) store LAN ----------
lan_up() {
    need_root
    need ip dbus-daemon avahi-daemon dbus-send
    [ -e "/run/netns/$LAN" ] && die "netns $LAN exists; run '$0 down' first"
    trap 'echo "store-lan: up failed, tearing down" >&2; lan_down' EXIT
    mkdir -p "$STATE"; chmod 755 "$STATE"
    ip netns add "$LAN"
    ip -n "$LAN" link set lo up
    ip -n "$LAN" link add br0 type bridge      # mcast_snooping=1 is fine: 224.0.0.251 is flooded
    ip -n "$LAN" link set br0 up
    local i=0 h ns
    for h in $HOSTS; do
        ns=$PREFIX$h
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        # The veth pair is made inside the namespaces: nothing is added to the root namespace.
        ip -n "$ns" link add eth0 type veth peer name "v-$h" netns "$LAN"
        ip -n "$LAN" link set "v-$h" master br0 up
        ip -n "$ns" addr add "$SUBNET.$((10+i))/24" dev eth0
        ip -n "$ns" link set eth0 up
        mkdir -p "$STATE/$h"
        echo "$SUBNET.$((10+i))" > "$STATE/$h/addr"
        start_host "$STATE/$h" "$ns" "$h" eth0   # explicit host-name, else all are "<hostname>-N"
        i=$((i+1))
    done
    for h in $HOSTS; do wait_avahi "$STATE/$h"; done
    trap - EXIT
    lan_hosts
}

lan_down() {
    local h ns
    for h in $HOSTS; do [ -d "$STATE/$h" ] && stop_host "$STATE/$h"; done
    for h in $HOSTS; do kill_netns_pids "$PREFIX$h"; done
    for h in $HOSTS; do
        ns=$PREFIX$h
        if [ -e "/run/netns/$ns" ]; then ip netns del "$ns"; fi
    done
    if [ -e "/run/netns/$LAN" ]; then ip netns del "$LAN"; fi
    for h in $HOSTS; do rm -rf "${STATE:?}/$h"; done
    rm -f "$STATE/selftest-pub.log"
    rmdir "$STATE" 2>/dev/null || true
}

lan_hosts() {
    local h
    for h in $HOSTS; do [ -f "$STATE/$h/addr" ] && echo "$h $(cat "$STATE/$h/addr")"; done
}

host_exec() {  # HOST CMD...
    local h=$1 d; shift
    d=$(host_dir "$h")
    host_cmd "$d" "$(cat "$d/netns")" "$@"
    exec "${HC[@]}"
}

restart_avahi() {  # HOST (or "single")
    local d
    d=$(host_dir "$1")
    stop_pidfile "$d/avahi.pid"
    start_avahi "$d"
    wait_avahi "$d"
}

lan_status() {
    local h
    ip netns list | grep "^$PREFIX" || true
    for h in single $HOSTS; do
        [ -f "$STATE/$h/avahi.pid" ] || continue
        echo "== $h: avahi-daemon pid $(cat "$STATE/$h/avahi.pid"), dbus-daemon pid $(cat "$STATE/$h/dbus.pid")"
    done
}

lan_selftest() {
    local first=${HOSTS%% *} h out pid rc=0
    "$0" exec "$first" avahi-publish -s selftest _possync._tcp 7700 store=42 > "$STATE/selftest-pub.log" 2>&1 &
    pid=$!
    for h in $HOSTS; do
        [ "$h" = "$first" ] && continue
        out=
        for _ in 1 2 3; do   # the first try can race the publisher's probing (~1 s)
            out=$(timeout 10 "$0" exec "$h" avahi-browse -rpt _possync._tcp | grep '^=.*;selftest;' || true)
            [ -n "$out" ] && break; sleep 1
        done
        echo "$h: ${out:-NOT FOUND}"
        [ -n "$out" ] || rc=1
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
    return $rc
}

case "${1:-}" in
    single-up)     single_up ;;
    single-down)   single_down ;;
    single-exec)   shift; [ $# -ge 1 ] || die "usage: $0 single-exec CMD..."; host_exec single "$@" ;;
    up)            lan_up ;;
    down)          lan_down ;;
    status)        lan_status ;;
    hosts)         lan_hosts ;;
    addr)          [ $# -eq 2 ] || die "usage: $0 addr HOST"; cat "$STATE/$2/addr" 2>/dev/null || die "unknown host $2" ;;
    exec)          shift; [ $# -ge 2 ] || die "usage: $0 exec HOST CMD..."; host_exec "$@" ;;
    selftest)      lan_selftest ;;
    unplug)        [ $# -eq 2 ] || die "usage: $0 unplug HOST"; host_dir "$2" > /dev/null; ip -n "$PREFIX$2" link set eth0 down ;;
    plug)          [ $# -eq 2 ] || die "usage: $0 plug HOST"; host_dir "$2" > /dev/null; ip -n "$PREFIX$2" link set eth0 up ;;
    restart-avahi) [ $# -eq 2 ] || die "usage: $0 restart-avahi HOST"; restart_avahi "$2" ;;
    stop-avahi)    [ $# -eq 2 ] || die "usage: $0 stop-avahi HOST"; stop_pidfile "$(host_dir "$2")/avahi.pid" ;;
    start-avahi)   [ $# -eq 2 ] || die "usage: $0 start-avahi HOST"; d=$(host_dir "$2"); start_avahi "$d"; wait_avahi "$d" ;;
    wait-avahi)    [ $# -ge 2 ] || die "usage: $0 wait-avahi HOST [SEC]"; wait_avahi "$(host_dir "$2")" "${3:-15}" ;;
    *) sed -n '2,42p' "$0"; exit 2 ;;
esac

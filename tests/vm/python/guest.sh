#!/bin/sh
# shellcheck shell=sh
# Guest side of the Python IPVS test (busybox sh inside the QEMU guest of tests/vm/run.sh,
# with tests/vm/guest/env.sh sourced). /payload holds a CPython (python/, PYTHONHOME), the
# ipvsct package (site/) and the test (tests/ipvs_guest.py).
#
# The root namespace is the IPVS director (VIPs 10.0.0.1-3 and 2001:db8::1 on a dummy
# device), as in tests/c/vm/guest.sh: a client namespace and two real servers (busybox
# httpd) joined by veth pairs, an empty namespace "ipvs2", and a dummy device with an IPv4
# address for the sync daemon. The test adds and removes its own services.
# Exit status: the test's (0 when every test passed).
# shellcheck disable=SC3040 # busybox sh has pipefail
set -u

R=/results
fail() { echo "py-ipvs guest: $*" | tee -a "$R/failures.txt" >&2; }

[ -e /proc/net/ip_vs ] || { fail "ip_vs is not loaded"; exit 1; }
modprobe ip_vs_pe_sip 2>/dev/null || fail "cannot load ip_vs_pe_sip"
ip link add vip0 type dummy
for a in 10.0.0.1 10.0.0.2 10.0.0.3; do ip addr add "$a/32" dev vip0; done
ip -6 addr add 2001:db8::1/128 dev vip0 nodad
ip link set vip0 up
ip link add sync0 type dummy # the sync daemon needs an interface with an IPv4 address
ip addr add 10.9.9.1/24 dev sync0
ip link set sync0 up
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv4.vs.conntrack=0 2>/dev/null || true

# mk_ns NAME IFACE_IN_ROOT ROOT_ADDR NS_ADDR GATEWAY
mk_ns() {
    ip netns add "$1"
    ip link add "$2" type veth peer name eth0 netns "$1"
    ip addr add "$3" dev "$2"
    ip link set "$2" up
    ip -n "$1" link set lo up
    ip -n "$1" addr add "$4" dev eth0
    ip -n "$1" link set eth0 up
    ip -n "$1" route add default via "$5"
}
mk_ns client veth-c 10.0.1.1/24 10.0.1.2/24 10.0.1.1
mk_ns rs1 veth-r1 10.0.2.1/24 10.0.2.2/24 10.0.2.1
mk_ns rs2 veth-r2 10.0.3.1/24 10.0.3.2/24 10.0.3.1
# A second IPVS table: the netns test adds services there. The kernel refuses real servers
# it has no route to, so the namespace gets one network.
ip netns add ipvs2
ip -n ipvs2 link set lo up
ip -n ipvs2 link add d0 type dummy
ip -n ipvs2 addr add 10.1.1.1/24 dev d0
ip -n ipvs2 link set d0 up
pids=""
for n in 1 2; do
    mkdir -p "/tmp/www$n"
    echo "hello from rs$n" >"/tmp/www$n/index.html"
    ip netns exec "rs$n" httpd -f -p 80 -h "/tmp/www$n" &
    pids="$pids $!"
done
fetch() { ip netns exec client timeout 5 wget -q -O - "http://$1/index.html"; }
retry 10 fetch 10.0.2.2 >/dev/null 2>&1 || fail "rs1 does not answer"
retry 10 fetch 10.0.3.2 >/dev/null 2>&1 || fail "rs2 does not answer"

# The interpreter from the host: its standard library under PYTHONHOME, libpython where the
# host had it (PY_LIBDIR), the package on PYTHONPATH. -I is not used: it would drop PYTHONPATH.
export PYTHONHOME=/payload/python PYTHONPATH=/payload/site PYTHONDONTWRITEBYTECODE=1
export PYTHONFAULTHANDLER=1 PYTHONUNBUFFERED=1
[ -n "${PY_LIBDIR:-}" ] && export LD_LIBRARY_PATH="$PY_LIBDIR"
PY=/payload/python/bin/python3
export IPVSADM=/usr/sbin/ipvsadm IP=/usr/sbin/ip
if ! $PY -c 'import sys, ipvsct; print("python", sys.version.split()[0], "ipvsct", ipvsct.__version__, ipvsct.__file__)' >"$R/python.txt" 2>&1; then
    fail "python cannot import ipvsct: $(cat "$R/python.txt")"
    exit 1
fi
cat "$R/python.txt"
start=$(cut -d' ' -f1 /proc/uptime)
# shellcheck disable=SC2086 # the filter is one word or none
$PY /payload/tests/ipvs_guest.py ${IPVSCT_VM_TEST_FILTER:-} >"$R/ipvs_guest.log" 2>&1
rc=$?
end=$(cut -d' ' -f1 /proc/uptime)
tail -n 1 "$R/ipvs_guest.log"
echo "py-ipvs guest: ipvs_guest.py exit $rc (uptime $start -> $end s)"
ipvsadm -Ln --exact >"$R/ipvsadm-final.txt" 2>&1
# shellcheck disable=SC2086
kill $pids 2>/dev/null || true
[ -s "$R/failures.txt" ] && [ "$rc" -eq 0 ] && rc=1
exit "$rc"

#!/bin/sh
# shellcheck shell=sh
# Guest side of the C IPVS test (busybox sh inside the QEMU guest of tests/vm/run.sh,
# with tests/vm/guest/env.sh sourced). /payload holds test_ipvs_vm (libipvsct.a linked in)
# and test_ipvs_vm_asan.
#
# The root namespace is the IPVS director (VIP 10.0.0.1 on a dummy device), as in
# tests/vm/smoke.sh: a client namespace and two real servers (busybox httpd) joined by
# veth pairs. For each variant: flush IPVS, make TCP VIP:80 (rr, masq, 2 real servers)
# with ipvsadm, send $REQUESTS HTTP requests through it, then run the test,
# which compares everything libipvsct reads and does with ipvsadm.
# Exit status: 0 when every variant passed.
# shellcheck disable=SC3040 # busybox sh has pipefail
set -u

R=/results
REQUESTS=10
fail() { echo "c-ipvs guest: $*" | tee -a "$R/failures.txt" >&2; }

[ -e /proc/net/ip_vs ] || { fail "ip_vs is not loaded"; exit 1; }
ip link add vip0 type dummy
ip addr add 10.0.0.1/32 dev vip0
ip addr add 10.0.0.5/32 dev vip0
ip link set vip0 up
ip link add sync0 type dummy # the sync daemon needs an interface with an IPv4 address
ip addr add 10.9.9.1/24 dev sync0
ip link set sync0 up
sysctl -qw net.ipv4.ip_forward=1

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
ip netns add ipvs2 # empty: the by-name checks add a service there
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

rc=0
# Each variant gets a VIP of its own: the connection entries of the first run stay in the
# table (TIME_WAIT, 120 s) and must not count for the second.
for run in "test_ipvs_vm 10.0.0.1" "test_ipvs_vm_asan 10.0.0.5"; do
    variant=${run% *}
    vip=${run#* }
    ipvsadm -C
    ipvsadm -A -t "$vip:80" -s rr
    ipvsadm -a -t "$vip:80" -r 10.0.2.2:80 -m -w 1
    ipvsadm -a -t "$vip:80" -r 10.0.3.2:80 -m -w 1
    i=0
    while [ "$i" -lt "$REQUESTS" ]; do
        fetch "$vip" >>"$R/answers.txt" 2>&1 || fail "request $i through $vip failed"
        i=$((i + 1))
    done
    # The last FIN of a closed connection reaches IPVS a moment after wget returns.
    sleep 1
    ipvsadm -Ln --stats --exact >"$R/$variant.ipvsadm-stats.txt"
    echo "c-ipvs guest: running $variant"
    ASAN_OPTIONS=detect_leaks=1 "/payload/$variant" --ipvsadm /usr/sbin/ipvsadm \
        --vip "$vip" --requests "$REQUESTS" --netns ipvs2 >"$R/$variant.log" 2>&1
    vrc=$?
    tail -n 1 "$R/$variant.log"
    if [ "$vrc" -ne 0 ]; then
        fail "$variant exit $vrc"
        rc=1
    fi
done
# shellcheck disable=SC2086
kill $pids 2>/dev/null || true
exit "$rc"

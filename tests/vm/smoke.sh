#!/bin/sh
# shellcheck shell=sh
# Guest script: proves the VM harness works. Runs inside the VM (busybox sh),
# with guest/env.sh already sourced (ip -> /usr/sbin/ip, $IP, retry).
#
#  1. ip_vs is loaded (/proc/net/ip_vs exists), every scheduler module too.
#  2. ipvsadm creates TCP service 10.0.0.1:80 (rr) with two real servers.
#  3. Three network namespaces made with the real iproute2 (a client and two
#     real servers, each joined to the root namespace by a veth pair; the root
#     namespace is the IPVS director in NAT mode). busybox httpd serves in the
#     server namespaces; `timeout 5 wget` fetches from the client namespace,
#     first directly, then through the virtual service.
#  4. Optional: runs the ELF binaries found in /payload/bin (tests ldd copying).
# Everything is written to /results.
# shellcheck disable=SC3040 # busybox sh has pipefail
set -euo pipefail

R=/results
fail() { echo "SMOKE FAIL: $*" | tee -a "$R/failures.txt" >&2; exit 1; }
log() { echo "smoke: $*"; }

uname -r >"$R/uname.txt"
hostname >"$R/hostname.txt"
log "kernel $(cat "$R/uname.txt")"

# --- 1. modules -------------------------------------------------------------------
[ -e /proc/net/ip_vs ] || fail "/proc/net/ip_vs missing: ip_vs is not loaded"
lsmod >"$R/lsmod.txt"
for s in rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh; do
    grep -q "^ip_vs_$s " "$R/lsmod.txt" || fail "scheduler module ip_vs_$s not loaded"
done
grep -q '^nf_conntrack_netlink ' "$R/lsmod.txt" || fail "nf_conntrack_netlink not loaded"
for m in veth dummy nlmon ip_vs_ftp; do
    grep -q "^$m " "$R/lsmod.txt" || fail "module $m not loaded"
done
ls /proc/sys/net/ipv4/vs >"$R/vs-sysctls.txt"

# --- 2. IPVS service ----------------------------------------------------------------
ipvsadm -A -t 10.0.0.1:80 -s rr
ipvsadm -a -t 10.0.0.1:80 -r 10.0.2.2:80 -m -w 1
ipvsadm -a -t 10.0.0.1:80 -r 10.0.3.2:80 -m -w 1
ipvsadm -Ln >"$R/ipvsadm-Ln.before.txt"
grep -q 'TCP  10.0.0.1:80 rr' "$R/ipvsadm-Ln.before.txt" || fail "service not listed by ipvsadm -Ln"

# --- 3. namespaces, veth, httpd, wget -------------------------------------------------
ip link add vip0 type dummy
ip addr add 10.0.0.1/32 dev vip0
ip link set vip0 up
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
ip netns list >"$R/netns.txt"
ip -n client addr show >"$R/client-addr.txt"
[ -e /run/netns/client ] || fail "ip netns add did not create /run/netns/client"

pids=""
for n in 1 2; do
    mkdir -p "/tmp/www$n"
    echo "hello from rs$n" >"/tmp/www$n/index.html"
    ip netns exec "rs$n" httpd -f -p 80 -h "/tmp/www$n" &
    pids="$pids $!"
done

fetch() { ip netns exec client timeout 5 wget -q -O - "http://$1/index.html"; }
retry 10 fetch 10.0.2.2 >"$R/direct-rs1.txt" 2>&1 || fail "direct fetch from rs1 failed: $(cat "$R/direct-rs1.txt")"
retry 10 fetch 10.0.3.2 >"$R/direct-rs2.txt" 2>&1 || fail "direct fetch from rs2 failed: $(cat "$R/direct-rs2.txt")"
grep -q 'hello from rs1' "$R/direct-rs1.txt" || fail "unexpected direct answer from rs1"
log "direct fetches ok"

: >"$R/vip-answers.txt"
i=0
while [ "$i" -lt 10 ]; do
    fetch 10.0.0.1 >>"$R/vip-answers.txt" 2>&1 || fail "fetch $i through the virtual service failed"
    i=$((i + 1))
done
n1=$(grep -c 'hello from rs1' "$R/vip-answers.txt" || true)
n2=$(grep -c 'hello from rs2' "$R/vip-answers.txt" || true)
echo "rs1=$n1 rs2=$n2" >"$R/vip-distribution.txt"
log "through 10.0.0.1: rs1=$n1 rs2=$n2"
if [ "$n1" -ne 5 ] || [ "$n2" -ne 5 ]; then
    fail "rr did not spread 10 requests 5/5 (rs1=$n1 rs2=$n2)"
fi

ipvsadm -Ln >"$R/ipvsadm-Ln.txt"
ipvsadm -Ln --stats >"$R/ipvsadm-Ln-stats.txt"
ipvsadm -Lnc >"$R/ipvsadm-Lnc.txt"
cat /proc/net/ip_vs >"$R/proc-net-ip_vs.txt"
cat /proc/net/ip_vs_conn >"$R/proc-net-ip_vs_conn.txt"
cat /proc/net/ip_vs_stats >"$R/proc-net-ip_vs_stats.txt"
[ -x /usr/sbin/conntrack ] && { /usr/sbin/conntrack -L >"$R/conntrack-L.txt" 2>&1 || true; }
grep -q '0A000001:0050 rr' "$R/proc-net-ip_vs.txt" || fail "service missing from /proc/net/ip_vs"

# --- 4. payload binaries --------------------------------------------------------------
if [ -d /payload/bin ]; then
    : >"$R/payload-bins.txt"
    for b in /payload/bin/*; do
        [ -x "$b" ] || continue
        "$b" --version >>"$R/payload-bins.txt" 2>&1 || fail "payload binary $b does not run"
        log "payload binary $b runs"
    done
fi

# shellcheck disable=SC2086
kill $pids 2>/dev/null || true
log "all checks passed"
echo ok >"$R/smoke-ok"
exit 0

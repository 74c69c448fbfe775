#!/usr/bin/env bash
# Host-side self test of the VM harness.
#
# Usage: tests/vm/selftest.sh [--quick]
#   1. boots smoke.sh (with a payload holding a dynamically linked host binary)
#      and checks its results: the IPVS service, the real servers, round robin
#      through netns/veth/httpd/wget, the kernel version, the payload binary;
#   2. (not with --quick) boots a script with --no-modules that checks on-demand
#      modprobe and exits 7, and checks that run.sh passes the 7 through.
# Ends with a "N passed, M failed" line; exits non-zero if any check failed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
quick=0
case "${1:-}" in
    --quick) quick=1 ;;
    "") ;;
    *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2 ;;
esac

pass=0 fail=0
check() { # check DESCRIPTION CMD...
    local d="$1"
    shift
    if "$@" >/dev/null 2>&1; then
        echo "ok   - $d"
        pass=$((pass + 1))
    else
        echo "FAIL - $d"
        fail=$((fail + 1))
    fi
}

tmp="$(mktemp -d /tmp/ipvsct-vm-selftest.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

t0="$(date +%s%3N)"
kdir="$("$HERE/kernel.sh")"
kver="$(cat "$kdir/kver")"
echo "kernel: $kver, cache $kdir, boot mode $(cat "$kdir/boot-mode") ($(($(date +%s%3N) - t0)) ms)"

# --- smoke -------------------------------------------------------------------------
mkdir -p "$tmp/payload/bin"
cp "$(command -v xz)" "$tmp/payload/bin/xz" # dynamically linked: needs liblzma copied
t0="$(date +%s%3N)"
rc=0
"$HERE/run.sh" --timeout 240 --payload "$tmp/payload" --out "$tmp/smoke" "$HERE/smoke.sh" >/dev/null || rc=$?
echo "smoke run: status $rc in $(($(date +%s%3N) - t0)) ms"
r="$tmp/smoke"
check "smoke.sh exits 0" test "$rc" -eq 0
check "smoke.sh reached its end" test -f "$r/smoke-ok"
check "guest runs kernel $kver" grep -qx "$kver" "$r/uname.txt"
check "guest hostname is ipvsct-vm" grep -qx ipvsct-vm "$r/hostname.txt"
check "ipvsadm -Ln lists TCP 10.0.0.1:80 rr" grep -q '^TCP  10.0.0.1:80 rr' "$r/ipvsadm-Ln.txt"
check "ipvsadm -Ln lists real server 10.0.2.2:80 (Masq)" grep -Eq -- '-> 10.0.2.2:80 +Masq' "$r/ipvsadm-Ln.txt"
check "ipvsadm -Ln lists real server 10.0.3.2:80 (Masq)" grep -Eq -- '-> 10.0.3.2:80 +Masq' "$r/ipvsadm-Ln.txt"
check "/proc/net/ip_vs shows the service" grep -q '^TCP  0A000001:0050 rr' "$r/proc-net-ip_vs.txt"
check "netns client/rs1/rs2 exist" grep -q rs2 "$r/netns.txt"
check "round robin spread 10 requests 5/5" grep -qx 'rs1=5 rs2=5' "$r/vip-distribution.txt"
check "payload binary ran in the guest" grep -q 'XZ Utils' "$r/payload-bins.txt"
check "no boot module failed to load" test ! -s "$r/.vm/modules.failed"
check "guest dmesg came back" grep -q 'Linux version' "$r/.vm/dmesg.txt"

# --- exit code + --no-modules ----------------------------------------------------------
if ((!quick)); then
    cat >"$tmp/exit7.sh" <<'EOF'
#!/bin/sh
set -eu
if [ -e /proc/net/ip_vs ]; then echo preloaded >/results/state; else echo absent >/results/state; fi
modprobe ip_vs_wrr   # pulls ip_vs, nf_conntrack, libcrc32c (crc32c via request_module)
[ -e /proc/net/ip_vs ] && echo loaded >>/results/state
ipvsadm -A -u 10.0.0.9:53 -s wrr && ipvsadm -Ln >/results/ipvsadm.txt
exit 7
EOF
    t0="$(date +%s%3N)"
    rc=0
    "$HERE/run.sh" --timeout 120 --no-modules --out "$tmp/exit7" "$tmp/exit7.sh" >/dev/null 2>"$tmp/exit7.err" || rc=$?
    echo "exit-code run: status $rc in $(($(date +%s%3N) - t0)) ms"
    check "run.sh passes the guest exit code (7) through" test "$rc" -eq 7
    check "--no-modules boots without ip_vs" grep -qx absent "$tmp/exit7/state"
    check "modprobe on demand loads ip_vs and its dependencies" grep -qx loaded "$tmp/exit7/state"
    check "UDP wrr service created after on-demand load" grep -q '^UDP  10.0.0.9:53 wrr' "$tmp/exit7/ipvsadm.txt"
fi

echo "$pass passed, $fail failed"
((fail == 0))

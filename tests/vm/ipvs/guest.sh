#!/bin/sh
# shellcheck shell=sh
# Guest side of the IPVS VM suite (runs under busybox sh inside the QEMU guest, with
# tests/vm/guest/env.sh sourced). /payload holds the ipvs_vm test binary and ipvsct.
#
#  1. loads every IPVS scheduler module the kernel ships (and the SIP persistence engine),
#  2. runs every test of ipvs_vm (they are #[ignore]d on the host) in parallel; each
#     test works in network namespaces of its own,
#  3. leaves the log in /results/ipvs_vm.log and recorded fixtures in /results/fixtures.
# Exit status: the test binary's.
# shellcheck disable=SC3040 # busybox sh has pipefail
set -u

R=/results
mkdir -p "$R/fixtures"
kver="$(uname -r)"
dep="/lib/modules/$kver/modules.dep"
[ -f "$dep" ] || dep="/usr/lib/modules/$kver/modules.dep"

# The scheduler modules of this kernel: net/netfilter/ipvs/ip_vs_<name>.ko, minus the
# application helpers and persistence engines.
scheds=""
for m in $(grep -o 'netfilter/ipvs/ip_vs_[a-z0-9]*\.ko' "$dep" | sed 's|.*/ip_vs_||; s|\.ko$||' | sort -u); do
    case "$m" in ftp | pe_sip | nfct) continue ;; esac
    if modprobe "ip_vs_$m" 2>>"$R/modprobe.log"; then
        scheds="$scheds $m"
    else
        echo "ipvs guest: cannot load ip_vs_$m" | tee -a "$R/failures.txt"
    fi
done
modprobe ip_vs_pe_sip 2>>"$R/modprobe.log" || echo "ipvs guest: cannot load ip_vs_pe_sip" | tee -a "$R/failures.txt"
echo "$scheds" >"$R/schedulers.txt"
echo "ipvs guest: kernel $kver, schedulers:$scheds"

export IPVSCT_VM_SCHEDULERS="$scheds"
export IPVSCT_BIN=/payload/ipvsct
export IPVSCT_FIXTURE_DIR="$R/fixtures" IPVSCT_VM_RESULTS="$R"
export IPVSCT_IP=/usr/sbin/ip IPVSCT_IPVSADM=/usr/sbin/ipvsadm
export RUST_BACKTRACE=1
: "${CI:=true}"
export CI

start=$(cut -d' ' -f1 /proc/uptime)
/payload/ipvs_vm --ignored --test-threads=8 ${IPVSCT_VM_TEST_FILTER:-} >"$R/ipvs_vm.log" 2>&1
rc=$?
end=$(cut -d' ' -f1 /proc/uptime)
echo "ipvs guest: ipvs_vm exit $rc (uptime $start -> $end s)"
grep -E '^test |test result' "$R/ipvs_vm.log"
[ -s "$R/failures.txt" ] && [ "$rc" -eq 0 ] && rc=1
exit "$rc"

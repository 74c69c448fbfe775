#!/bin/sh
# shellcheck shell=sh
# Guest side of the IPVS VM suite (runs under busybox sh inside the QEMU guest, with
# tests/vm/guest/env.sh sourced). /payload holds the ipvs_vm test binary and ipvsct.
#
#  1. loads every IPVS scheduler module the kernel ships (and the SIP persistence engine),
#  2. runs every test of ipvs_vm (they are #[ignore]d on the host) in parallel; each
#     test works in network namespaces of its own (the demo/capacity tests start late, see below),
#  3. leaves the log in /results/ipvs_vm.log (with what each test printed, e.g. the reads
#     it had to retry because two sources disagreed) and recorded fixtures in
#     /results/fixtures.
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
# Two phases, overlapped. The tests of `ipvsct demo` and `ipvsct capacity` load the guest
# (five namespaces, dozens of processes, traffic), which makes the timing-sensitive tests
# flaky under TCG; they start once every other test but the long classic scenario has
# finished, and run while that one waits ~2 minutes for TIME_WAIT to drain. They run one
# at a time: the kernel's connection table is shared by every namespace, and a listing of
# /proc/net/ip_vs_conn repeats or skips entries when another namespace adds or removes
# entries during the read (the demo prints its listing once and cannot read it again).
T=/payload/ipvs_vm
# shellcheck disable=SC2086 # the filter is a list of words
tests=$($T --ignored --list ${IPVSCT_VM_TEST_FILTER:-} 2>/dev/null | sed -n 's/: test$//p')
late=$(echo "$tests" | grep -E '^(demo_|capacity_json_)' || true)
early=$(echo "$tests" | grep -vE '^(demo_|capacity_json_)' | grep . || true)
n_early=$(echo "$early" | grep -c . || true)
rc1=0 rc2=0
: >"$R/ipvs_vm-1.log"
if [ -n "$early" ]; then
    # shellcheck disable=SC2086
    $T --ignored --test-threads=8 --show-output --exact $early >"$R/ipvs_vm-1.log" 2>&1 &
    p1=$!
    # Bounded by the guest watchdog; ends when phase 1 ends at the latest.
    while kill -0 "$p1" 2>/dev/null; do
        finished=$(grep -cE '^test .* \.\.\. (ok|FAILED|ignored)' "$R/ipvs_vm-1.log" || true)
        [ "$finished" -ge $((n_early - 1)) ] && break
        sleep 1
    done
fi
if [ -n "$late" ]; then
    echo "ipvs guest: starting the demo/capacity tests at $(cut -d' ' -f1 /proc/uptime) s"
    # shellcheck disable=SC2086
    $T --ignored --test-threads=1 --show-output --exact $late >"$R/ipvs_vm-2.log" 2>&1
    rc2=$?
fi
if [ -n "$early" ]; then
    wait "$p1"
    rc1=$?
fi
cat "$R/ipvs_vm-1.log" "$R/ipvs_vm-2.log" >"$R/ipvs_vm.log" 2>/dev/null
rm -f "$R/ipvs_vm-1.log" "$R/ipvs_vm-2.log"
rc=$rc1
[ "$rc" -eq 0 ] && rc=$rc2
[ -z "$tests" ] && { echo "ipvs guest: no test matches ${IPVSCT_VM_TEST_FILTER:-}"; rc=1; }
end=$(cut -d' ' -f1 /proc/uptime)
echo "ipvs guest: ipvs_vm exit $rc (uptime $start -> $end s)"
grep -E '^test |test result' "$R/ipvs_vm.log"
[ -s "$R/failures.txt" ] && [ "$rc" -eq 0 ] && rc=1
exit "$rc"

#!/usr/bin/env bash
# The IPVS calls of libipvsct against a real ip_vs: builds tests/c/vm/test_ipvs_vm.c on the
# host, statically linked with libipvsct.a (plain, and with AddressSanitizer + UBSan),
# boots Debian's stock kernel under QEMU with tests/vm/run.sh and runs tests/c/vm/guest.sh
# in it, which makes a NAT lab with traffic and runs both binaries; they compare what the
# library reads and does with ipvsadm (-Ln, --stats/--rate --exact, --thresholds,
# --persistent-conn, --tun-info, -Lnc, --timeout, --daemon).
#
# Usage: tests/c/vm/run.sh [--out DIR] [--verbose]
# Exit status: non-zero on any failure. Needs cargo, gcc, and what tests/vm/run.sh needs
# (qemu-system-x86, busybox-static, iproute2, ipvsadm, cpio; installed by it when root).
# Without root or QEMU the run prints SKIPPED, unless CI=true: then it fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
out="" verbose=()
while (($#)); do
    case "$1" in
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --verbose) verbose=(--verbose); shift ;;
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
log() { printf '[c-ipvs-vm] %s\n' "$*" >&2; }
skip_or_fail() {
    if [ "${CI:-}" = "true" ]; then
        log "FAILED: $1 (CI=true: this must run)"
        exit 1
    fi
    printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
    echo "SKIPPED: C IPVS tests in the VM: $1" >&2
    printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
    exit 0
}
[ "$(id -u)" -eq 0 ] || skip_or_fail "not root (tests/vm/run.sh installs and boots as root)"

cd "$ROOT"
CC=${CC:-gcc}
target=${CARGO_TARGET_DIR:-$ROOT/target}
payload="$(mktemp -d /tmp/c-ipvs-vm-payload.XXXXXX)"
trap 'rm -rf "$payload"' EXIT
t0=$(date +%s)
log "building libipvsct.a and the guest test"
cargo build -p ipvsct-ffi --lib >&2
flags=(-Wall -Wextra -Werror -std=c11 -g -I"$ROOT/include" -I"$ROOT/tests/c")
libs=("$target/debug/libipvsct.a" -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)
"$CC" "${flags[@]}" -o "$payload/test_ipvs_vm" tests/c/vm/test_ipvs_vm.c "${libs[@]}"
"$CC" "${flags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer \
    -o "$payload/test_ipvs_vm_asan" tests/c/vm/test_ipvs_vm.c "${libs[@]}"
if command -v strip >/dev/null 2>&1; then
    strip --strip-debug "$payload/test_ipvs_vm" "$payload/test_ipvs_vm_asan" 2>/dev/null || true
fi
log "built in $(($(date +%s) - t0)) s: $(du -sh "$payload" | cut -f1) payload"

[[ -n "$out" ]] || out="$(mktemp -d /tmp/c-ipvs-vm-results.XXXXXX)"
rc=0
"$ROOT/tests/vm/run.sh" --payload "$payload" --timeout 300 --out "$out" "${verbose[@]}" \
    "$HERE/guest.sh" >/dev/null || rc=$?
if ((rc == 125)) && [[ ! -s "$out/.vm/console.log" ]]; then
    skip_or_fail "the VM did not start (see $out/.vm)"
fi
for v in test_ipvs_vm test_ipvs_vm_asan; do
    if [[ -f "$out/$v.log" ]]; then
        grep -E '^FAIL|passed|ERROR|runtime error' "$out/$v.log" >&2 || true
        grep -q ' 0 failed$' "$out/$v.log" || { ((rc != 0)) || rc=1; }
    else
        log "no $v.log came back from the guest"
        ((rc != 0)) || rc=1
    fi
done
[[ -s "$out/failures.txt" ]] && { log "guest problems:"; cat "$out/failures.txt" >&2; }
log "results in $out; total $(($(date +%s) - t0)) s; exit $rc"
exit "$rc"

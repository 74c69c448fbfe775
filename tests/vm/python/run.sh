#!/usr/bin/env bash
# The IPVS tests of the Python package against a real ip_vs: builds the ipvsct extension
# module on the host (cargo, release), copies the host's CPython (interpreter, libpython,
# a pruned standard library) and the ipvsct package into the VM payload, boots Debian's
# stock kernel under QEMU (tests/vm/run.sh) and runs tests/vm/python/guest.sh there, which
# builds a small NAT lab and runs python/tests/vm/ipvs_guest.py: ipvsct.Ipvs() compared
# field by field with ipvsadm (services, destinations, timeouts, info, daemons, connections,
# stats after real TCP traffic, add/edit/delete round trips, errors).
#
# Usage: tests/vm/python/run.sh [--out DIR] [--filter NAME] [--verbose] [--keep-payload]
#   --filter NAME   run only the guest tests whose name contains NAME
# Environment: PYTHON (default python3; CPython >= 3.9 with a shared or static libpython),
# CARGO_TARGET_DIR. Needs cargo and what tests/vm/run.sh needs (qemu-system-x86,
# busybox-static, iproute2, ipvsadm, cpio; installed by it when root).
# Without root, QEMU or a usable CPython the run prints SKIPPED, unless CI=true: then it fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
out="" filter="" verbose=() keep_payload=0
while (($#)); do
    case "$1" in
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --filter) filter="${2:?--filter needs a test name}"; shift 2 ;;
        --verbose) verbose=(--verbose); shift ;;
        --keep-payload) keep_payload=1; shift ;;
        -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
log() { printf '[py-ipvs-vm] %s\n' "$*" >&2; }
skip_or_fail() {
    if [ "${CI:-}" = "true" ]; then
        log "FAILED: $1 (CI=true: this must run)"
        exit 1
    fi
    printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
    echo "SKIPPED: Python IPVS tests in the VM: $1" >&2
    printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
    exit 0
}
[ "$(id -u)" -eq 0 ] || skip_or_fail "not root (tests/vm/run.sh installs and boots as root)"
command -v qemu-system-x86_64 >/dev/null 2>&1 || [ "${CI:-}" = "true" ] ||
    command -v apt-get >/dev/null 2>&1 || skip_or_fail "no qemu-system-x86_64 and no apt-get to install it"

# --- build on the host ------------------------------------------------------------------
cd "$ROOT"
t0=$(date +%s)
payload="$(mktemp -d /tmp/py-ipvs-vm-payload.XXXXXX)"
errlog="$(mktemp /tmp/py-ipvs-vm-build.XXXXXX)"
cleanup() {
    rm -f "$errlog"
    if ((keep_payload)); then log "payload kept: $payload"; else rm -rf "$payload"; fi
}
trap cleanup EXIT
prc=0
"$HERE/payload.sh" "$payload" 2>"$errlog" || prc=$?
cat "$errlog" >&2
((prc != 3)) || skip_or_fail "$(tail -n 1 "$errlog")"
((prc == 0)) || { log "building the payload failed ($prc)"; exit 1; }
mkdir -p "$payload/tests"
cp "$ROOT/python/tests/vm/ipvs_guest.py" "$payload/tests/"
# shellcheck source=/dev/null
. "$payload/python.env"
log "built in $(($(date +%s) - t0)) s: $(du -sh "$payload" | cut -f1) payload"

# --- boot and run -------------------------------------------------------------------------
[[ -n "$out" ]] || out="$(mktemp -d /tmp/py-ipvs-vm-results.XXXXXX)"
envs=(--env "PY_LIBDIR=$PY_LIBDIR" --env "PY_VERSION=$PY_VERSION")
[[ -n "$filter" ]] && envs+=(--env "IPVSCT_VM_TEST_FILTER=$filter")
rc=0
"$ROOT/tests/vm/run.sh" --payload "$payload" --timeout 300 --out "$out" "${envs[@]}" \
    "${verbose[@]}" "$HERE/guest.sh" >/dev/null || rc=$?
if ((rc == 125)) && [[ ! -s "$out/.vm/console.log" ]]; then
    skip_or_fail "the VM did not start (see $out/.vm)"
fi

# --- report -------------------------------------------------------------------------------
if [[ -f "$out/ipvs_guest.log" ]]; then
    grep -E '^(PASS|FAIL|ERROR|SKIP) |passed, [0-9]+ failed' "$out/ipvs_guest.log" >&2 || true
    if ! grep -qE '^[1-9][0-9]* passed, 0 failed$' "$out/ipvs_guest.log"; then
        log "----- ipvs_guest.log (failures) -----"
        grep -vE '^PASS ' "$out/ipvs_guest.log" | head -n 200 >&2
        ((rc != 0)) || rc=1
    fi
else
    log "no ipvs_guest.log came back from the guest"
    ((rc != 0)) || rc=1
fi
[[ -s "$out/failures.txt" ]] && { log "guest problems:"; cat "$out/failures.txt" >&2; }
log "results in $out; total $(($(date +%s) - t0)) s; exit $rc"
exit "$rc"

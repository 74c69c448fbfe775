#!/usr/bin/env bash
# The IPVS VM suite: builds the ipvs_vm test binary and ipvsct on the host, boots
# Debian's stock kernel under QEMU (tests/vm/run.sh) and runs them inside it against
# real ip_vs, comparing everything with ipvsadm. Exit status non-zero on any failure.
#
# Usage: tests/vm/ipvs/run.sh [--record-fixtures] [--out DIR] [--filter NAME] [--verbose]
#   --record-fixtures  copy the IPVS messages recorded in the guest into
#                      tests/fixtures/ipvs/ (the unit tests in ipvs_fixtures.rs decode them)
#   --out DIR          keep the guest's results there (default: a new temp directory)
#   --filter NAME      run only the tests whose name contains NAME
#   --verbose          stream the guest console
# Needs: cargo, nftables (for the demo tests), and what tests/vm/run.sh needs
# (qemu-system-x86, busybox-static, iproute2, ipvsadm, cpio; installed with apt-get when
# missing and root).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
record=0 out="" filter="" verbose=()
while (($#)); do
    case "$1" in
        --record-fixtures) record=1; shift ;;
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --filter) filter="${2:?--filter needs a test name}"; shift 2 ;;
        --verbose) verbose=(--verbose); shift ;;
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
log() { printf '[ipvs-vm] %s\n' "$*" >&2; }
# The demo tests run `ipvsct demo` in the guest, which needs nft: tests/vm/run.sh copies the
# host's /usr/sbin/nft into the guest when it exists.
# shellcheck source=tests/vm/lib.sh
. "$ROOT/tests/vm/lib.sh"
vm_ensure_tools /usr/sbin/nft:nftables

# --- build on the host ------------------------------------------------------------
cd "$ROOT"
t0=$(date +%s)
json="$(mktemp /tmp/ipvs-vm-build.XXXXXX)"
payload="$(mktemp -d /tmp/ipvs-vm-payload.XXXXXX)"
cleanup() { rm -rf "$payload" "$json"; }
trap cleanup EXIT
log "building ipvsct and the ipvs_vm test binary"
cargo build --features cli --bin ipvsct --message-format=json >"$json"
cargo test --features cli --test ipvs_vm --no-run --message-format=json >>"$json"
# The executables cargo reports (one JSON object per line).
exe_of() { # exe_of TARGET_NAME KIND
    grep "\"name\":\"$1\"" "$json" | grep "\"kind\":\[\"$2\"\]" |
        grep -o '"executable":"[^"]*"' | tail -n 1 | sed 's/"executable":"//; s/"$//'
}
test_exe="$(exe_of ipvs_vm test)"
cli_exe="$(exe_of ipvsct bin)"
[[ -x "$test_exe" ]] || { log "cannot find the ipvs_vm test executable in cargo's output"; exit 1; }
[[ -x "$cli_exe" ]] || { log "cannot find the ipvsct executable in cargo's output"; exit 1; }
cp "$test_exe" "$payload/ipvs_vm"
cp "$cli_exe" "$payload/ipvsct"
if command -v strip >/dev/null 2>&1; then
    strip --strip-debug "$payload/ipvs_vm" "$payload/ipvsct" 2>/dev/null || true
fi
log "built in $(($(date +%s) - t0)) s: $(du -sh "$payload" | cut -f1) payload"

# --- boot and run -------------------------------------------------------------------
[[ -n "$out" ]] || out="$(mktemp -d /tmp/ipvs-vm-results.XXXXXX)"
envs=(--env CI=true)
[[ -n "$filter" ]] && envs+=(--env "IPVSCT_VM_TEST_FILTER=$filter")
rc=0
"$ROOT/tests/vm/run.sh" --payload "$payload" --timeout 420 --out "$out" "${envs[@]}" \
    "${verbose[@]}" "$HERE/guest.sh" >/dev/null || rc=$?

# --- report ---------------------------------------------------------------------------
if [[ -f "$out/ipvs_vm.log" ]]; then
    grep -E '^test |^test result|panicked|SKIPPED' "$out/ipvs_vm.log" >&2 || true
    # Reads retried until two sources agreed (bounded; a test fails if they never do).
    grep -h '^retrying: ' "$out/ipvs_vm.log" | sort | uniq -c | sed 's/^/[ipvs-vm] /' >&2 || true
    if ((rc != 0)); then
        log "----- ipvs_vm.log (failures) -----"
        sed -n '/^failures:/,$p' "$out/ipvs_vm.log" | head -n 200 >&2
    fi
else
    log "no ipvs_vm.log came back from the guest"
fi
[[ -s "$out/failures.txt" ]] && { log "guest problems:"; cat "$out/failures.txt" >&2; }
[[ -s "$out/classic-scenario.txt" ]] && sed 's/^/[ipvs-vm] /' "$out/classic-scenario.txt" >&2
if ((record)); then
    if ((rc == 0)) && [[ -f "$out/fixtures/PROVENANCE.txt" ]]; then
        mkdir -p "$ROOT/tests/fixtures/ipvs"
        cp "$out/fixtures/"* "$ROOT/tests/fixtures/ipvs/"
        log "fixtures copied to tests/fixtures/ipvs/ ($(ls "$out/fixtures" | wc -l) files)"
    else
        log "not copying fixtures: the run failed or recorded none"
        ((rc != 0)) || rc=1
    fi
fi
log "results in $out; total $(($(date +%s) - t0)) s; exit $rc"
exit "$rc"

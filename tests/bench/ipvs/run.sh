#!/usr/bin/env bash
# IPVS listing benchmark (issue 7): 1,000 services x 10 real servers, listed with their 64-bit
# statistics by `ipvsadm -Ln --stats --exact > /dev/null` and by this library (Rust example
# bench_ipvs, the C API, the Python package), on the same guest kernel: boots Debian's kernel
# under QEMU (tests/vm/run.sh), runs tests/bench/ipvs/guest_bench.py there, prints the
# medians and ratios and writes the JSON to target/bench/ipvs/. Under TCG absolute times mean
# little: compare the ratios. Not part of `make test` (a few minutes).
#
# Usage: tests/bench/ipvs/run.sh [--services N] [--dests N] [--rounds N] [--no-c] [--strace]
#                                [--verbose]
#   --strace  also run each lister once under the host's strace -c (syscall summaries come
#             back as strace-*.txt next to the JSON)
# Environment: PYTHON (the CPython copied into the guest, default python3), CARGO_TARGET_DIR.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
services=1000 dests=10 rounds=9 with_c=1 verbose=() strace=0
while (($#)); do
    case "$1" in
        --services) services="${2:?}"; shift 2 ;;
        --dests) dests="${2:?}"; shift 2 ;;
        --rounds) rounds="${2:?}"; shift 2 ;;
        --no-c) with_c=0; shift ;;
        --strace) strace=1; shift ;;
        --verbose) verbose=(--verbose); shift ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
log() { printf '[ipvs-bench] %s\n' "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { log "needs root (tests/vm/run.sh boots a VM)"; exit 1; }

cd "$ROOT"
target=${CARGO_TARGET_DIR:-$ROOT/target}
payload="$(mktemp -d /tmp/ipvs-bench-payload.XXXXXX)"
trap 'rm -rf "$payload"' EXIT
log "building (release): bench_ipvs, the Python package$( ((with_c)) && echo ", libipvsct.a")"
cargo build --release -p ipvs-conntrack --example bench_ipvs >&2
cp "$target/release/examples/bench_ipvs" "$payload/"
if ((with_c)); then
    cargo build --release -p ipvsct-ffi --lib >&2
    "${CC:-gcc}" -O2 -Wall -Wextra -Werror -std=c11 -I"$ROOT/include" -o "$payload/bench_ipvs_c" \
        "$HERE/bench_ipvs.c" "$target/release/libipvsct.a" -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
fi
"$ROOT/tests/vm/python/payload.sh" "$payload"
# shellcheck source=/dev/null
. "$payload/python.env"
cp "$HERE/guest_bench.py" "$payload/"
strip --strip-debug "$payload/bench_ipvs" 2>/dev/null || true
if ((strace)); then
    command -v strace >/dev/null 2>&1 || { log "--strace: no strace on this host"; exit 1; }
    cp "$(command -v strace)" "$payload/strace"
fi

out="$(mktemp -d /tmp/ipvs-bench-results.XXXXXX)"
rc=0
"$ROOT/tests/vm/run.sh" --payload "$payload" --timeout 900 --out "$out" \
    --env "PY_LIBDIR=$PY_LIBDIR" --env "BENCH_SERVICES=$services" --env "BENCH_DESTS=$dests" \
    --env "BENCH_ROUNDS=$rounds" "${verbose[@]}" "$HERE/guest.sh" >/dev/null || rc=$?
[[ -f "$out/bench.log" ]] && grep -E 'median|PROBLEM|created' "$out/bench.log" >&2
if [[ -f "$out/bench.json" ]]; then
    mkdir -p "$target/bench/ipvs"
    dest="$target/bench/ipvs/ipvs-list-$(date -u +%Y%m%dT%H%M%SZ).json"
    cp "$out/bench.json" "$dest"
    cp "$out/bench.json" "$target/bench/ipvs/latest.json"
    for f in "$out"/strace-*.txt; do
        [[ -f "$f" ]] && cp "$f" "$target/bench/ipvs/"
    done
    log "JSON: $dest (and latest.json)"
else
    log "no bench.json came back (see $out/.vm/console.log)"
    ((rc != 0)) || rc=1
fi
log "exit $rc"
exit "$rc"

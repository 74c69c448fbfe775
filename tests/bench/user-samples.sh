#!/usr/bin/env bash
# user-samples.sh: each dump tool's user-space CPU time, measured by sampling (perf at
# 10 kHz, 0.1 ms resolution) instead of the kernel's 4 ms ticks, and its decoder cost
# ((raw's CPU + the tool's user time beyond raw's) / raw's CPU; see PERFORMANCE.md).
#
#   tests/bench/user-samples.sh NETNS [ROUNDS]
#
# NETNS is a namespace already filled (e.g. `target/release/examples/bench_dump --netns NS
# fill 250000`); ROUNDS (default 10) interleaved runs of every tool. Needs root, perf
# (Debian package linux-perf), gcc, the release build of `examples/bench_dump`, `ffi/`
# built (`cargo build --release -p ipvsct-ffi`) and a Python that can `import ipvsct`
# (IPVSCT_PYTHON, default python/.venv/bin/python). Python's samples minus those of a
# run that only imports ipvsct.
set -euo pipefail

ns="${1:?usage: user-samples.sh NETNS [ROUNDS]}"
rounds="${2:-10}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
py="${IPVSCT_PYTHON:-$repo/python/.venv/bin/python}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

command -v perf >/dev/null || { echo "user-samples: perf is not installed" >&2; exit 1; }
gcc -O2 -o "$work/rawdump" "$here/rawdump.c"
gcc -O2 -std=c11 -I "$repo/include" -o "$work/cdump" "$here/cdump.c" \
    "$target/release/libipvsct.a" -lpthread -ldl -lm -lrt -lutil -lgcc_s

tools=(
    "raw|$work/rawdump"
    "rust_view|$target/release/examples/bench_dump view"
    "rust_owned|$target/release/examples/bench_dump owned"
    "c|$work/cdump"
    "c_view|$work/cdump view"
    "py_entries|$py $here/pydump.py entries"
    "py_import|$py -c import\\ ipvsct"
)
out="$work/samples"
for ((r = 1; r <= rounds; r++)); do
    for t in "${tools[@]}"; do
        name="${t%%|*}"
        cmd="${t#*|}"
        eval ip netns exec "$ns" perf record -q -F 10000 -e cpu-clock -o "$work/perf.data" \
            "$cmd" >/dev/null 2>&1
        perf report -i "$work/perf.data" --stdio -F sample,sym --sort sym 2>/dev/null |
            awk -v n="$name" '/^ +[0-9]+ +\[/ { if ($2 == "[k]") k += $1; else u += $1 }
                END { print n, u + 0, k + 0 }' >>"$out"
    done
done
python3 - "$out" <<'PY'
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, u, k = line.split()
    d[name].append((int(u) / 10.0, int(k) / 10.0))  # samples at 10 kHz -> ms
imp = statistics.mean(u for u, _ in d.pop("py_import"))
raw_u = statistics.mean(u for u, _ in d["raw"])
raw_cpu = raw_u + statistics.median(k for _, k in d["raw"])
print(f"raw CPU {raw_cpu:.1f} ms; {len(d['raw'])} runs per tool")
print("| tool | user (ms), mean | ± (s.e.) | kernel (ms), median | decoder cost |")
print("|---|---:|---:|---:|---:|")
for name, v in d.items():
    us = [u - (imp if name.startswith("py") else 0) for u, _ in v]
    m = statistics.mean(us)
    se = statistics.stdev(us) / len(us) ** 0.5 if len(us) > 1 else 0.0
    cost = (raw_cpu + m - raw_u) / raw_cpu
    print(f"| {name} | {m:.1f} | {se:.1f} | {statistics.median(k for _, k in v):.1f} | {cost:.3f} |")
PY

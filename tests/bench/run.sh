#!/usr/bin/env bash
# Live benchmark of conntrack table dumps (issue 7). Run as root from anywhere:
#
#   tests/bench/run.sh [N ...]          default sizes: 10000 50000 100000 250000
#
# For each size N, in ascending order, one throw-away namespace is filled (through the
# library's batched write path) until it holds N entries, then every tool dumps the
# whole table REPEATS times, interleaved (the order rotates every round), each run as
# its own process inside the namespace (tests/bench/runone.c: wall time, CPU time and
# peak RSS of the tool alone; the tools also time the dump itself, excluding process
# start, imports and socket setup). Prints markdown tables of medians, ratios to the raw
# recv lower bound and peak RSS, and writes JSON (tests/bench/report.py).
#
# Environment:
#   REPEATS=5            runs per tool and size (median reported)
#   SLOW_REPEATS=1       runs of the slow tools (pyroute2) per size
#   SLOW_MAX=250000      largest size at which the slow tools run
#   TOOLS="..."          tools to run (default: every available one of
#                        raw rust_view rust_owned c c_view py_entries py_dataframe conntrack
#                        conntrack_xml pyroute2 pyroute2_entries; rust_list on request;
#                        NAME_1t for a library tool: the same with the dump reader thread
#                        off, IPVSCT_DUMP_READER=0)
#   TIMEOUT=900          seconds any one command may run
#   OUT=dir              where results go (default target/bench/<date>); latest.json and
#                        latest.md are also copied to tests/bench/results/ when
#                        SAVE_RESULTS=1
#   IPVSCT_PYTHON=py     a Python that can `import ipvsct` (default: python/.venv/bin/python
#                        if it can); the Python rows are skipped otherwise
#   PYROUTE2_PYTHON=py   a Python that can `import pyroute2` (default: target/bench/venv,
#                        created with `pip install pyroute2 matplotlib` when BENCH_VENV=1)
#   PLOT=1               draw docs/perf-vs-size.png (needs matplotlib in PYROUTE2_PYTHON's venv)
#   NICE=-10             niceness of the timed commands (less noise from other load; 0 = off)
#
# Needs: root, iproute2, a C compiler with the kernel headers (linux-libc-dev), cargo,
# python3 (standard library) for the report; conntrack (package `conntrack`) for its
# rows. Nothing here runs in CI or in `cargo test`.
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
bench_dir="$target_dir/bench"
REPEATS="${REPEATS:-5}"
SLOW_REPEATS="${SLOW_REPEATS:-1}"
SLOW_MAX="${SLOW_MAX:-250000}"
TIMEOUT="${TIMEOUT:-900}"
NICE="${NICE:--10}"
OUT="${OUT:-$bench_dir/$(date +%Y%m%d-%H%M%S)}"
sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(10000 50000 100000 250000)

die() { echo "run.sh: $*" >&2; exit 1; }
note() { echo "run.sh: $*" >&2; }

[[ $(id -u) == 0 ]] || die "needs root (network namespaces, conntrack writes)"
for t in ip cargo; do command -v "$t" >/dev/null || die "missing $t"; done
cc="${CC:-cc}"
command -v "$cc" >/dev/null || die "missing a C compiler ($cc)"
for n in "${sizes[@]}"; do [[ $n =~ ^[0-9]+$ ]] || die "not a size: $n"; done
mapfile -t sizes < <(printf '%s\n' "${sizes[@]}" | sort -n -u)
max_n="${sizes[-1]}"

mkdir -p "$OUT" "$bench_dir"
samples="$OUT/samples.jsonl"
: >"$samples"
declare -A unavailable=()

# ---- build --------------------------------------------------------------------------
note "building (release)"
(cd "$repo" && cargo build -q --release -p ipvs-conntrack --example bench_dump)
bench_dump="$target_dir/release/examples/bench_dump"
"$cc" -O2 -Wall -Wextra -std=c11 -o "$bench_dir/rawdump" "$here/rawdump.c"
rawdump="$bench_dir/rawdump"
"$cc" -O2 -Wall -Wextra -std=c11 -o "$bench_dir/runone" "$here/runone.c"
runone="$bench_dir/runone"

cdump=""
if (cd "$repo" && cargo build -q --release -p ipvsct-ffi) 2>"$bench_dir/ffi-build.log" \
    && "$cc" -O2 -Wall -std=c11 -I "$repo/include" -o "$bench_dir/cdump" "$here/cdump.c" \
        "$target_dir/release/libipvsct.a" -lpthread -ldl -lm -lrt -lutil -lgcc_s \
        2>>"$bench_dir/ffi-build.log"; then
    cdump="$bench_dir/cdump"
else
    unavailable[c]="libipvsct (ffi/) did not build; see $bench_dir/ffi-build.log"
    unavailable[c_view]="${unavailable[c]}"
fi

ipvsct_py="${IPVSCT_PYTHON:-$repo/python/.venv/bin/python}"
if ! [[ -x "$ipvsct_py" ]] || ! "$ipvsct_py" -c 'import ipvsct' 2>/dev/null; then
    unavailable[py_entries]="no Python with ipvsct (run python/run-tests.sh once, or set IPVSCT_PYTHON)"
    ipvsct_py=""
elif ! "$ipvsct_py" -c 'import pandas' 2>/dev/null; then
    unavailable[py_dataframe]="pandas is not installed next to ipvsct"
fi

venv="$bench_dir/venv"
if [[ "${BENCH_VENV:-0}" == 1 && ! -x "$venv/bin/python" ]]; then
    note "creating $venv with pyroute2 and matplotlib"
    python3 -m venv "$venv" && "$venv/bin/pip" install -q pyroute2 matplotlib
fi
p2_py="${PYROUTE2_PYTHON:-$venv/bin/python}"
if ! [[ -x "$p2_py" ]] || ! "$p2_py" -c 'import pyroute2' 2>/dev/null; then
    unavailable[pyroute2]="not installed (BENCH_VENV=1 makes a venv with it, or set PYROUTE2_PYTHON)"
    p2_py=""
fi
command -v conntrack >/dev/null || unavailable[conntrack]="conntrack-tools not installed (apt-get install -y conntrack)"

default_tools="raw rust_view rust_owned c c_view py_entries py_dataframe conntrack conntrack_xml pyroute2 pyroute2_entries"
tools=()
for t in ${TOOLS:-$default_tools}; do
    # TOOL_1t: the same tool with the dump reader thread off (IPVSCT_DUMP_READER=0).
    case "${t%_1t}" in
        c|c_view) [[ -n $cdump ]] || continue ;;
        py_entries) [[ -n $ipvsct_py ]] || continue ;;
        py_dataframe) [[ -n $ipvsct_py && -z ${unavailable[py_dataframe]:-} ]] || continue ;;
        conntrack|conntrack_xml) [[ -z ${unavailable[conntrack]:-} ]] || continue ;;
        pyroute2|pyroute2_entries) [[ -n $p2_py ]] || continue ;;
        raw|rust_view|rust_owned|rust_list) ;;
        *) die "unknown tool $t" ;;
    esac
    tools+=("$t")
done
note "tools: ${tools[*]}"
for k in "${!unavailable[@]}"; do note "not measured: $k: ${unavailable[$k]}"; done

# ---- namespace and nf_conntrack_max, undone on exit ----------------------------------
ns="ipvsct-bench-$$"
max_file=/proc/sys/net/netfilter/nf_conntrack_max
old_max="$(cat "$max_file")"
cleanup() {
    ip netns del "$ns" 2>/dev/null || true
    if [[ "$(cat "$max_file")" != "$old_max" ]]; then
        echo "$old_max" >"$max_file" || note "could not restore nf_conntrack_max=$old_max"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# The limit is global on this kernel (read-only in child namespaces) and compared with
# each namespace's own count.
need=$(( max_n + 10000 ))
if (( old_max < need )); then
    note "raising nf_conntrack_max from $old_max to $need for this run"
    echo "$need" >"$max_file"
fi
ip netns add "$ns"
ip -n "$ns" link set lo up

# ---- one timed run ------------------------------------------------------------------
cmd_of() {
    if [[ $1 == *_1t ]]; then
        echo "env IPVSCT_DUMP_READER=0 $(cmd_of "${1%_1t}")"
        return
    fi
    case "$1" in
        raw) echo "$rawdump" ;;
        rust_view) echo "$bench_dump view" ;;
        rust_owned) echo "$bench_dump owned" ;;
        rust_list) echo "$bench_dump list" ;;
        c) echo "$cdump" ;;
        c_view) echo "$cdump view" ;;
        py_entries) echo "$ipvsct_py $here/pydump.py entries" ;;
        py_dataframe) echo "$ipvsct_py $here/pydump.py dataframe" ;;
        conntrack) echo "conntrack -L" ;;
        conntrack_xml) echo "conntrack -L -o xml" ;;
        pyroute2) echo "$p2_py $here/pydump.py pyroute2" ;;
        pyroute2_entries) echo "$p2_py $here/pydump.py pyroute2-entries" ;;
    esac
}

# measure N TOOL REP: runs the tool once and appends a sample.
measure() {
    local n="$1" tool="$2" rep="$3" prefix="$OUT/run-$1-$2-$3" null=() rc=0
    [[ $tool == conntrack || $tool == conntrack_xml ]] && null=(--null-stdout)
    # shellcheck disable=SC2046
    timeout -k 5 "$TIMEOUT" nice -n "$NICE" ip netns exec "$ns" "$runone" "${null[@]}" "$prefix" \
        $(cmd_of "$tool") || rc=$?
    python3 - "$n" "$tool" "$rep" "$rc" "$prefix" >>"$samples" <<'PY'
import json, re, sys
n, tool, rep, rc, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def read(ext):
    try:
        with open(f"{prefix}.{ext}") as f:
            return f.read()
    except OSError:
        return ""
s = {"n": int(n), "tool": tool, "rep": rep, "ok": rc == 0}
try:
    m = json.loads(read("m"))
    s["wall"] = m["wall"]
    s["cpu"] = m["user"] + m["sys"]
    s["user"], s["sys"] = m["user"], m["sys"]
    s["rss_kib"] = m["maxrss_kib"]
except (ValueError, KeyError):
    s["ok"] = False
err = read("err")
s["op_secs"] = s["op_cpu"] = None
if tool.startswith("conntrack"):
    found = re.search(r"(\d+) flow entries have been shown", err)
    s["entries"] = int(found.group(1)) if found else None
else:
    try:
        out = json.loads(read("out").strip().splitlines()[-1])
        s["entries"] = out.get("entries")
        s["op_secs"] = out.get("secs")
        s["op_cpu"] = out.get("cpu_secs")
        # The dump reader thread's report, where the tool prints it (Rust, C).
        for k in ("reader_datagrams", "reader_waited_secs", "caller_waited_secs",
                  "caller_behind_at_end_secs", "queued_at_end"):
            if k in out:
                s[k] = out[k]
    except (ValueError, IndexError):
        s["entries"] = None
        s["ok"] = False
if not s["ok"]:
    s["error"] = (f"exit {rc}: " + err.strip().splitlines()[-1]) if err.strip() else f"exit {rc}"
print(json.dumps(s))
def f(v):
    return f"{v:8.3f}" if isinstance(v, (int, float)) else "       –"
line = (f"  {tool:<17} rep {rep}: wall {f(s.get('wall'))} s, cpu {f(s.get('cpu'))} s;"
        f" dump alone: wall {f(s['op_secs'])} s, cpu {f(s['op_cpu'])} s;"
        f" {s.get('entries')} entries, {s.get('rss_kib')} KiB")
if not s["ok"]:
    line += "  FAILED " + s.get("error", "")
print(line, file=sys.stderr)
PY
    rm -f "$prefix".out "$prefix".err "$prefix".m
}

# ---- sizes ---------------------------------------------------------------------------
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for n in "${sizes[@]}"; do
    note "filling the table to $n entries"
    ip netns exec "$ns" "$bench_dump" fill "$n" >"$OUT/fill-$n.json"
    note "$(cat "$OUT/fill-$n.json")"
    if out="$(ip netns exec "$ns" "$bench_dump" stats 50)"; then
        printf '{"n":%s,"tool":"stats","ok":true,"stats":%s}\n' "$n" "$out" >>"$samples"
    fi
    for (( rep = 0; rep < REPEATS; rep++ )); do
        # Rotate the order every round so that no tool always runs first or last.
        count=${#tools[@]}
        for (( k = 0; k < count; k++ )); do
            tool="${tools[$(( (k + rep) % count ))]}"
            if [[ $tool == pyroute2* ]]; then
                (( rep < SLOW_REPEATS && n <= SLOW_MAX )) || continue
            fi
            measure "$n" "$tool" "$rep"
        done
    done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- report --------------------------------------------------------------------------
python3 - "$OUT/meta.json" <<PY
import json, os, platform, subprocess, sys
def sh(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""
cpu = ""
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
meta = {
    "date": sh("date", "-u", "+%Y-%m-%dT%H:%M:%SZ"),
    "nproc": os.cpu_count(),
    "cpu": cpu,
    "kernel": platform.release(),
    "memory_kib": int(open("/proc/meminfo").readline().split()[1]),
    "loadavg_before": "$load_before",
    "loadavg_after": "$load_after",
    "git_commit": sh("git", "-C", "$repo", "rev-parse", "--short", "HEAD"),
    "git_dirty": bool(sh("git", "-C", "$repo", "status", "--porcelain", "--untracked-files=no")),
    "conntrack_tools": sh("conntrack", "--version"),
    "repeats": $REPEATS,
    "slow_repeats": $SLOW_REPEATS,
    "nice": $NICE,
    "tools": "${tools[*]}".split(),
    "unavailable": {$(for k in "${!unavailable[@]}"; do printf '"%s": "%s", ' "$k" "${unavailable[$k]}"; done)},
    "bytes_per_entry_note": "fill mix: 70% TCP ESTABLISHED/IPv4 (240 B), 20% UDP/IPv4 (192 B), 10% TCP/IPv6 (288 B) = 235 B per entry",
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
PY
python3 "$here/report.py" "$OUT/meta.json" "$samples" "$OUT/results.json" "$OUT/results.md"
note "wrote $OUT/results.json and $OUT/results.md"
if [[ "${SAVE_RESULTS:-0}" == 1 ]]; then
    mkdir -p "$here/results"
    cp "$OUT/results.json" "$here/results/latest.json"
    cp "$OUT/results.md" "$here/results/latest.md"
    note "copied to $here/results/latest.{json,md}"
fi
if [[ "${PLOT:-0}" == 1 ]]; then
    plot_py="${PLOT_PYTHON:-$venv/bin/python}"
    if "$plot_py" -c 'import matplotlib' 2>/dev/null; then
        "$plot_py" "$here/plot.py" "$OUT/results.json" "$repo/docs/perf-vs-size.png"
        note "wrote $repo/docs/perf-vs-size.png"
    else
        note "no matplotlib in $plot_py: no plot (BENCH_VENV=1 makes one)"
    fi
fi

#!/usr/bin/env python3
"""Turns the samples of tests/bench/run.sh into a table of medians and a JSON report.

  report.py META_JSON SAMPLES_JSONL OUT_JSON [OUT_MD]

META_JSON describes the machine and the run; SAMPLES_JSONL has one object per timed
command: {"n", "tool", "rep", "ok", "wall", "cpu", "rss_kib", "entries", "op_secs",
"op_cpu", "error"} (process wall and CPU seconds from runone.c; the dump alone as the
tool timed it, when it does) or, for tool "stats", the output of `bench_dump stats`.

Each tool's time is the dump alone where the tool times itself (process start, imports
and socket setup excluded), else the whole process (conntrack). Two clocks: wall, and
CPU (user + system: the kernel's work of building the dump runs in the reader's recvmsg
and counts; CPU time is what a busy machine cannot inflate by making the reader wait for
a core). Ratios divide by the raw recv lower bound's time on the same clock.

Prints the tables (markdown) on stdout and writes OUT_JSON (and OUT_MD if given).
Standard library only.
"""

import json
import statistics
import sys

# Display order and labels of the tools.
TOOLS = [
    ("raw", "raw recv lower bound (C)"),
    ("rust_view", "Rust view dump (for_each_view)"),
    ("rust_owned", "Rust owned dump (Entry)"),
    ("rust_list", "Rust Vec<Entry> (list)"),
    ("c", "C API callback dump"),
    ("c_view", "C API view callback dump"),
    ("py_entries", "Python Entry iteration"),
    ("py_dataframe", "Python DataFrame"),
    ("conntrack", "conntrack -L > /dev/null"),
    ("conntrack_xml", "conntrack -L -o xml > /dev/null"),
    ("pyroute2", "pyroute2 Conntrack().dump()"),
    ("pyroute2_entries", "pyroute2 dump_entries()"),
]
# The library's tools again with the dump reader thread off (run.sh's NAME_1t).
TOOLS += [
    (f"{t}_1t", f"{label}, reader thread off")
    for t, label in list(TOOLS)
    if t.startswith(("rust_", "c", "py_")) and not t.startswith("conntrack")
]
LABEL = dict(TOOLS)


def median(xs):
    return statistics.median(xs) if xs else None


def mean(xs):
    return statistics.fmean(xs) if xs else None


def user_secs(runs):
    """User-space CPU seconds of each run's dump (its CPU minus the process's system time)."""
    return [
        (s.get("op_cpu") if s.get("op_cpu") is not None else s["cpu"]) - s["sys"]
        for s in runs
        if s.get("sys") is not None
    ]


def held_up(runs):
    """The reader thread's reports of `runs`: medians of the time the decoding held the
    dump up (the thread waiting for room, plus the caller's lag behind the last datagram),
    of the caller's waiting, and the median of each run's dump time over that time less
    the hold-up (what the decoding added to this very run's kernel time)."""
    rep = [s for s in runs if s.get("reader_waited_secs") is not None and s.get("op_secs")]
    if not rep:
        return {}
    held = [s["reader_waited_secs"] + s["caller_behind_at_end_secs"] for s in rep]
    return {
        "reader_runs": len(rep),
        "median_held_up_secs": median(held),
        "max_held_up_secs": max(held),
        "median_caller_waited_secs": median([s["caller_waited_secs"] for s in rep]),
        "median_queued_at_end": median([s["queued_at_end"] for s in rep]),
        "ratio_held_up": median(
            [s["op_secs"] / (s["op_secs"] - h) for s, h in zip(rep, held) if s["op_secs"] > h]
        ),
    }


def summarize(samples):
    """Per size and tool: medians, ratios to the raw recv lower bound, peak RSS."""
    sizes = sorted({s["n"] for s in samples})
    out = {}
    for n in sizes:
        row = {}
        for tool, _ in TOOLS:
            runs = [s for s in samples if s["n"] == n and s["tool"] == tool]
            if not runs:
                continue
            ok = [s for s in runs if s.get("ok")]

            def col(key):
                return [s[key] for s in ok if s.get(key) is not None]

            op_wall, op_cpu = col("op_secs"), col("op_cpu")
            entries = sorted({s.get("entries") for s in ok})
            rss = col("rss_kib")
            row[tool] = {
                "runs": len(runs),
                "failures": len(runs) - len(ok),
                "errors": sorted({s.get("error", "") for s in runs if not s.get("ok")}),
                "entries": entries[0] if len(entries) == 1 else entries,
                "process_wall_secs": col("wall"),
                "process_cpu_secs": col("cpu"),
                "op_wall_secs": op_wall,
                "op_cpu_secs": op_cpu,
                "median_process_wall_secs": median(col("wall")),
                "median_process_cpu_secs": median(col("cpu")),
                # The dump alone where the tool times it, else the whole process.
                "timed": "dump" if op_wall else "process",
                "median_wall_secs": median(op_wall) if op_wall else median(col("wall")),
                "median_cpu_secs": median(op_cpu) if op_cpu else median(col("cpu")),
                "peak_rss_kib": max(rss) if rss else None,
                # User-space CPU of the dump: the tool's own decoding (the kernel's work
                # runs as system time). The dump's CPU minus the process's system time.
                "median_user_secs": median(user_secs(ok)),
                # The kernel counts user time in scheduler ticks (4 ms at HZ=250, a few
                # per cent of a dump): one run's value is a multiple of a tick and a
                # median stays on that grid, while the mean of many runs converges to
                # the true time (each run's rounding is unbiased).
                "mean_user_secs": mean(user_secs(ok)),
                # The dump reader thread's report (Rust and C tools): the time the
                # decoding held the kernel's dump up, measured inside the run.
                **held_up(ok),
                # The dump's wall time by round (the rounds interleave every tool).
                "op_wall_by_rep": {
                    s["rep"]: s["op_secs"] for s in ok if s.get("op_secs") is not None
                },
            }
        raw = row.get("raw", {})
        for tool, r in row.items():
            for clock in ("wall", "cpu"):
                b, v = raw.get(f"median_{clock}_secs"), r.get(f"median_{clock}_secs")
                r[f"ratio_{clock}"] = (v / b) if (b and v is not None) else None
            # The median of the per-round ratios: each run against raw's run of the same
            # round, a few seconds apart. The kernel's speed drifts between phases that
            # last several rounds; a ratio within a round cancels most of that drift.
            mine, base = r.get("op_wall_by_rep", {}), raw.get("op_wall_by_rep", {})
            pairs = [mine[k] / base[k] for k in mine if base.get(k)]
            r["ratio_wall_paired"] = median(pairs) if pairs else None
            # The kernel's share of a dump varies by ±15 % from run to run on a shared VM;
            # the tool's user-space time does not. This ratio adds the tool's user time
            # beyond the raw reader's to the raw reader's CPU time.
            u, ru, rc = (
                r.get("mean_user_secs"),
                raw.get("mean_user_secs"),
                raw.get("median_cpu_secs"),
            )
            r["ratio_user_added"] = (
                1 + max(u - ru, 0) / rc if None not in (u, ru, rc) and rc else None
            )
            e = r["entries"]
            for clock in ("wall", "cpu"):
                m = r[f"median_{clock}_secs"]
                r[f"entries_per_{clock}_sec"] = (e / m) if (m and isinstance(e, int)) else None
        stats = [s for s in samples if s["n"] == n and s["tool"] == "stats" and s.get("ok")]
        if stats:
            row["stats"] = stats[-1]["stats"]
        out[str(n)] = row
    return sizes, out


def target(name, value, limit, better, unit="×", wall=None, decoder=None, paired=None):
    """One target. `value` is the CPU-clock measure; `wall` (the dump's duration, what the
    issue's time targets are stated in) and `decoder` (the decoder cost) are judged too:
    `met` by wall clock where there is one, `met_cpu` and `met_decoder` beside it."""

    def ok(v):
        if v is None:
            return None
        return v <= limit if better == "le" else v >= limit

    base = {"target": name, "limit": limit, "better": better, "unit": unit}
    base["measured_wall"] = round(wall, 3) if wall is not None else None
    base["measured_decoder"] = round(decoder, 3) if decoder is not None else None
    base["measured_paired"] = round(paired, 3) if paired is not None else None
    base["met_paired"] = ok(paired)
    base["met_cpu"] = ok(value)
    base["met_decoder"] = ok(decoder)
    measured = round(value, 3) if value is not None else None
    return {**base, "measured": measured, "met": ok(wall) if wall is not None else ok(value)}


def targets(sizes, res):
    """The issue's targets that a live run can check, at the largest size."""
    if not sizes:
        return []
    big = res[str(sizes[-1])]

    def get(tool, key):
        return big.get(tool, {}).get(key)

    def ratio(name, tool, limit, better="le"):
        return target(
            name,
            get(tool, "ratio_cpu"),
            limit,
            better,
            wall=get(tool, "ratio_wall"),
            decoder=get(tool, "ratio_user_added"),
            paired=get(tool, "ratio_wall_paired"),
        )

    def quotient(name, a, b, key_a, key_b, limit):
        def q(clock):
            x, y = get(a, key_a.format(clock)), get(b, key_b.format(clock))
            return (x / y) if (x and y) else None

        return target(name, q("cpu"), limit, "ge", wall=q("wall"))

    n = sizes[-1]
    out = [
        ratio(f"Rust owned dump / raw at {n}", "rust_owned", 1.10),
        ratio(f"Rust view dump / raw at {n}", "rust_view", 1.05),
        # Whole processes on both sides, as `conntrack -L -o xml > /dev/null` is timed.
        quotient(
            f"conntrack -L -o xml / Rust owned dump at {n} (whole processes)",
            "conntrack_xml",
            "rust_owned",
            "median_process_{}_secs",
            "median_process_{}_secs",
            1.8,
        ),
        ratio(f"C callback dump / raw at {n}", "c", 1.05),
        ratio(f"C view callback dump / raw at {n}", "c_view", 1.05),
        ratio(f"Python Entry iteration / raw at {n}", "py_entries", 1.5),
        ratio(f"Python DataFrame / raw at {n}", "py_dataframe", 2.0),
        # pyroute2 dumps IPv4 only (its default family): compare entries per second.
        quotient(
            f"pyroute2 dump / Python Entry iteration at {n} (time per entry)",
            "py_entries",
            "pyroute2",
            "entries_per_{}_sec",
            "entries_per_{}_sec",
            40,
        ),
    ]
    small, large = res[str(sizes[0])], big
    for tool in ("rust_view", "rust_owned", "c", "c_view"):
        a = small.get(tool, {}).get("peak_rss_kib")
        b = large.get(tool, {}).get("peak_rss_kib")
        if a is not None and b is not None and sizes[0] != sizes[-1]:
            out.append(
                target(
                    f"{tool} peak RSS growth {sizes[0]} -> {sizes[-1]} entries",
                    float(b - a),
                    1024,
                    "le",
                    "KiB",
                )
            )
    for key, name in (("count_median_secs", "count()"), ("cpu_stats_median_secs", "cpu_stats()")):
        vals = [res[str(n)].get("stats", {}).get(key) for n in sizes]
        if all(v is not None for v in vals):
            out.append(
                target(f"{name} median, slowest of all sizes", max(vals) * 1e6, 1000, "le", "µs")
            )
    return out


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else "–"


def markdown(meta, sizes, res, tg):
    lines = []
    for n in sizes:
        row = res[str(n)]
        lines.append(f"### {n:,} entries\n")
        lines.append(
            "| tool | entries seen | wall (s) | × raw | CPU (s) | × raw | entries/s (wall) "
            "| process wall (s) | peak RSS (MiB) | runs |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for tool, label in TOOLS:
            r = row.get(tool)
            if not r:
                continue
            runs = f"{r['runs'] - r['failures']}/{r['runs']}"
            rss = r["peak_rss_kib"] / 1024 if r["peak_rss_kib"] is not None else None
            star = "" if r["timed"] == "dump" else " ¹"
            lines.append(
                f"| {label}{star} | {r['entries'] if r['entries'] != [] else '–'} | "
                f"{fmt(r['median_wall_secs'], '.3f')} | {fmt(r['ratio_wall'], '.2f')} | "
                f"{fmt(r['median_cpu_secs'], '.3f')} | {fmt(r['ratio_cpu'], '.2f')} | "
                f"{fmt(r['entries_per_wall_sec'], ',.0f')} | "
                f"{fmt(r['median_process_wall_secs'], '.3f')} | {fmt(rss, '.1f')} | {runs} |"
            )
        lines.append(
            "\nMedians. Wall and CPU: the dump alone as the tool times it (after process start, "
            "imports and socket setup); ¹ whole process. CPU = user + system time."
        )
        costs = [
            (label, row[tool])
            for tool, label in TOOLS
            if tool in row and row[tool].get("ratio_user_added") is not None
        ]
        if costs:
            lines.append(
                "\nDecoder cost: the tool's user-space CPU time (its own work; the kernel's "
                "runs as system time), and raw's CPU time plus the user time beyond raw's, "
                "divided by raw's (the kernel's share varies from run to run, the decoder's "
                "does not). User time is the mean over the runs (the kernel counts it in "
                "scheduler ticks; the mean of many runs resolves below a tick):\n"
            )
            lines.append("| tool | user CPU (s), mean | (raw + added user) / raw |")
            lines.append("|---|---:|---:|")
            for label, r in costs:
                lines.append(
                    f"| {label} | {fmt(r['mean_user_secs'], '.4f')} | "
                    f"{fmt(r['ratio_user_added'], '.3f')} |"
                )
        held = [(label, row[tool]) for tool, label in TOOLS if row.get(tool, {}).get("reader_runs")]
        if held:
            lines.append(
                "\nDump reader thread, measured inside each run (`dump_reader_report`): the "
                "time the decoding held the kernel's dump up (the thread waiting for room in "
                "its queue, plus the caller's lag behind the last datagram), and each run's "
                "dump time over that time less the hold-up: what the decoding added to the "
                "kernel's time of the same run, whatever the kernel's speed (the first "
                "datagram, decoded before the thread starts, is not counted: about 10 µs):\n"
            )
            lines.append(
                "| tool | runs | held up (ms), median | max | caller waited (ms), median "
                "| queued at the end, median | dump / (dump − held up), median |"
            )
            lines.append("|---|---:|---:|---:|---:|---:|---:|")
            for label, r in held:
                lines.append(
                    f"| {label} | {r['reader_runs']} | {fmt(r['median_held_up_secs'] * 1e3, '.2f')} | "
                    f"{fmt(r['max_held_up_secs'] * 1e3, '.2f')} | "
                    f"{fmt(r['median_caller_waited_secs'] * 1e3, '.1f')} | "
                    f"{fmt(r['median_queued_at_end'], '.0f')} | {fmt(r['ratio_held_up'], '.4f')} |"
                )
        st = row.get("stats")
        if st:
            lines.append(
                f"`count()` median {st['count_median_secs'] * 1e6:.1f} µs, "
                f"`cpu_stats()` median {st['cpu_stats_median_secs'] * 1e6:.1f} µs "
                f"({st['repeats']} calls each, table of {st['entries']:,} entries)."
            )
        lines.append("")
    if tg:
        lines.append("### Targets (issue 7) at the largest size\n")
        lines.append(
            "The time targets are judged on the dump's wall-clock duration (medians), which is "
            "what they compare with the kernel's own dump; with the dump reader thread the "
            "decoder runs while the kernel builds the next datagram. Beside it: the median of "
            "the per-round ratios (each run over raw's run of the same round, which cancels "
            "most of the kernel's drift between phases), and two costs: "
            "CPU time (user + system, both threads) and the decoder cost (raw's CPU time plus "
            "the user time beyond raw's, over raw's).\n"
        )
        lines.append(
            "| target | measured (wall) | met | paired by round (wall) | met "
            "| measured (CPU) | met | decoder cost | met | limit |"
        )
        lines.append("|---|---:|:---:|---:|:---:|---:|:---:|---:|:---:|---:|")
        yes = {True: "yes", False: "**no**", None: "–"}
        for t in tg:
            met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
            unit = t.get("unit", "")
            suffix = "×" if unit == "×" else " " + unit

            def show(v):
                return f"{v}{suffix}" if v is not None else "–"

            cmp_ = "≤" if t["better"] == "le" else "≥"
            wall = t.get("measured_wall")
            lines.append(
                f"| {t['target']} | {show(wall)} | {met if wall is not None else '–'} | "
                f"{show(t.get('measured_paired'))} | {yes[t.get('met_paired')]} | "
                f"{show(t['measured'])} | {yes[t.get('met_cpu')]} | "
                f"{show(t.get('measured_decoder'))} | {yes[t.get('met_decoder')]} | "
                f"{cmp_} {t['limit']}{suffix} |"
            )
        lines.append("")
    unavailable = meta.get("unavailable", {})
    if unavailable:
        lines.append(
            "Not measured: " + "; ".join(f"{k}: {v}" for k, v in unavailable.items()) + "\n"
        )
    return "\n".join(lines)


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        meta = json.load(f)
    samples = []
    with open(argv[2]) as f:
        for line in f:
            line = line.strip()
            if line:
                samples.append(json.loads(line))
    sizes, res = summarize(samples)
    tg = targets(sizes, res)
    report = {"meta": meta, "sizes": sizes, "tools": LABEL, "results": res, "targets": tg}
    with open(argv[3], "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    md = markdown(meta, sizes, res, tg)
    print(md)
    if len(argv) > 4:
        with open(argv[4], "w") as f:
            f.write(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

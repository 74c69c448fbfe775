#!/usr/bin/env python3
"""Turns the samples of tests/bench/run.sh into a table of medians and a JSON report.

  report.py META_JSON SAMPLES_JSONL OUT_JSON [OUT_MD]

META_JSON describes the machine and the run; SAMPLES_JSONL has one object per timed
command: {"n", "tool", "rep", "ok", "wall", "rss_kib", "entries", "internal_secs",
"error"} or, for tool "stats", the output of `bench_dump stats`. Prints the tables
(markdown) on stdout and writes OUT_JSON (and OUT_MD if given). Standard library only.
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
    ("py_entries", "Python Entry iteration"),
    ("py_dataframe", "Python DataFrame"),
    ("conntrack", "conntrack -L > /dev/null"),
    ("conntrack_xml", "conntrack -L -o xml > /dev/null"),
    ("pyroute2", "pyroute2 Conntrack().dump()"),
    ("pyroute2_entries", "pyroute2 dump_entries()"),
]
LABEL = dict(TOOLS)


def median(xs):
    return statistics.median(xs) if xs else None


def summarize(samples):
    """Per size and tool: medians, ratios to the raw lower bound, peak RSS."""
    sizes = sorted({s["n"] for s in samples})
    out = {}
    for n in sizes:
        row = {}
        for tool, _ in TOOLS:
            runs = [s for s in samples if s["n"] == n and s["tool"] == tool]
            if not runs:
                continue
            ok = [s for s in runs if s.get("ok")]
            walls = [s["wall"] for s in ok]
            internal = [s["internal_secs"] for s in ok if s.get("internal_secs") is not None]
            rss = [s["rss_kib"] for s in ok if s.get("rss_kib") is not None]
            entries = sorted({s.get("entries") for s in ok})
            row[tool] = {
                "runs": len(runs),
                "failures": len(runs) - len(ok),
                "errors": sorted({s.get("error", "") for s in runs if not s.get("ok")}),
                "entries": entries[0] if len(entries) == 1 else entries,
                "wall_secs": walls,
                "median_wall_secs": median(walls),
                "internal_secs": internal,
                "median_internal_secs": median(internal),
                "peak_rss_kib": max(rss) if rss else None,
            }
        raw = row.get("raw", {})
        for tool, r in row.items():
            for key, base in (("wall", "median_wall_secs"), ("internal", "median_internal_secs")):
                b = raw.get(base)
                v = r.get(base)
                r[f"ratio_{key}"] = (v / b) if (b and v is not None) else None
            m = r["median_wall_secs"]
            e = r["entries"]
            r["entries_per_sec"] = (e / m) if (m and isinstance(e, int)) else None
        stats = [s for s in samples if s["n"] == n and s["tool"] == "stats" and s.get("ok")]
        if stats:
            row["stats"] = stats[-1]["stats"]
        out[str(n)] = row
    return sizes, out


def target(name, value, limit, better, unit="×"):
    base = {"target": name, "limit": limit, "better": better, "unit": unit}
    if value is None:
        return {**base, "measured": None, "met": None}
    met = value <= limit if better == "le" else value >= limit
    return {**base, "measured": round(value, 3), "met": met}


def targets(sizes, res):
    """The issue's targets that a live run can check, at the largest size."""
    if not sizes:
        return []
    big = res[str(sizes[-1])]

    def get(tool, key="ratio_wall"):
        return big.get(tool, {}).get(key)

    def per_entry(tool):
        r = big.get(tool, {})
        m, e = r.get("median_wall_secs"), r.get("entries")
        return (m / e) if (m and isinstance(e, int) and e) else None

    out = [
        target(f"Rust owned dump / raw at {sizes[-1]}", get("rust_owned"), 1.10, "le"),
        target(f"Rust view dump / raw at {sizes[-1]}", get("rust_view"), 1.05, "le"),
    ]
    xml, owned = get("conntrack_xml", "median_wall_secs"), get("rust_owned", "median_wall_secs")
    out.append(
        target(
            "conntrack -L -o xml / Rust owned dump",
            (xml / owned) if (xml and owned) else None,
            1.8,
            "ge",
        )
    )
    out.append(target("C callback dump / raw", get("c"), 1.05, "le"))
    out.append(target("Python Entry iteration / raw", get("py_entries"), 1.5, "le"))
    out.append(target("Python DataFrame / raw", get("py_dataframe"), 2.0, "le"))
    p2, py = per_entry("pyroute2"), per_entry("py_entries")
    out.append(
        target(
            "pyroute2 dump / Python Entry iteration (time per entry)",
            (p2 / py) if (p2 and py) else None,
            40,
            "ge",
        )
    )
    small, large = res[str(sizes[0])], big
    for tool in ("rust_view", "rust_owned", "c"):
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
            "| tool | entries seen | median wall (s) | × raw | median internal (s) | × raw (internal) | entries/s | peak RSS (MiB) | runs |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for tool, label in TOOLS:
            r = row.get(tool)
            if not r:
                continue
            runs = f"{r['runs'] - r['failures']}/{r['runs']}"
            rss = r["peak_rss_kib"] / 1024 if r["peak_rss_kib"] is not None else None
            lines.append(
                f"| {label} | {r['entries'] if r['entries'] != [] else '–'} | "
                f"{fmt(r['median_wall_secs'], '.3f')} | {fmt(r['ratio_wall'], '.2f')} | "
                f"{fmt(r['median_internal_secs'], '.3f')} | {fmt(r['ratio_internal'], '.2f')} | "
                f"{fmt(r['entries_per_sec'], ',.0f')} | {fmt(rss, '.1f')} | {runs} |"
            )
        st = row.get("stats")
        if st:
            lines.append(
                f"\n`count()` median {st['count_median_secs'] * 1e6:.0f} µs, "
                f"`cpu_stats()` median {st['cpu_stats_median_secs'] * 1e6:.0f} µs "
                f"({st['repeats']} calls each, table of {st['entries']:,} entries)."
            )
        lines.append("")
    if tg:
        lines.append("### Targets (issue 7) at the largest size\n")
        lines.append("| target | measured | limit | met |")
        lines.append("|---|---:|---:|:---:|")
        for t in tg:
            met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
            unit = t.get("unit", "")
            measured = f"{t['measured']}{' ' + unit if unit != '×' else '×'}" if t["measured"] is not None else "–"
            cmp_ = "≤" if t["better"] == "le" else "≥"
            lines.append(f"| {t['target']} | {measured} | {cmp_} {t['limit']} | {met} |")
        lines.append("")
    unavailable = meta.get("unavailable", {})
    if unavailable:
        lines.append("Not measured: " + "; ".join(f"{k}: {v}" for k, v in unavailable.items()) + "\n")
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

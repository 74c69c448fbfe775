#!/usr/bin/env python3
"""Draws dump time against table size for each tool from a run.sh results.json.

  plot.py RESULTS_JSON OUT_PNG

Three panels: median wall time per tool (log scale, every tool); for the library's tools the
wall time as a ratio to the raw recv lower bound's in the same round, median over the
rounds (what the targets judge, with the kernel's drift between rounds cancelled), and
the decoder cost (raw's CPU time plus the tool's user time beyond raw's, over raw's).
A tool `NAME_1t` (the dump reader thread off) is drawn dotted in NAME's color.
Needs matplotlib.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "raw": ("black", "o", "-"),
    "rust_view": ("tab:blue", "s", "-"),
    "rust_owned": ("tab:cyan", "D", "-"),
    "rust_list": ("tab:gray", "x", ":"),
    "c": ("tab:green", "^", "-"),
    "c_view": ("lime", "1", "-"),
    "py_entries": ("tab:olive", "v", "-"),
    "py_dataframe": ("tab:brown", "<", "-"),
    "conntrack": ("tab:orange", ">", "--"),
    "conntrack_xml": ("tab:red", "P", "--"),
    "pyroute2": ("tab:purple", "*", ":"),
    "pyroute2_entries": ("tab:pink", "X", ":"),
}
SLOW = {"pyroute2", "pyroute2_entries"}
# Other programs: drawn in the time panel only (their ratios, 2.5–5×, would squeeze the
# library's, which the targets judge within 1.05–2×).
OTHERS = {"conntrack", "conntrack_xml"}


def base(tool):
    """The tool a `NAME_1t` variant (the dump reader thread off) belongs to."""
    return tool[:-3] if tool.endswith("_1t") else tool


def style(tool):
    """Color, marker and line style: a `_1t` variant dotted in its tool's color."""
    color, marker, ls = STYLE.get(base(tool), ("tab:gray", ".", "-"))
    return (color, marker, ":") if tool.endswith("_1t") else (color, marker, ls)


def tools_in(res, sizes):
    """The tools of the results in STYLE's order, each `_1t` variant after its tool."""
    seen = {t for n in sizes for t in res[str(n)]}
    order = [t for known in STYLE for t in (known, known + "_1t") if t in seen]
    return order + sorted(seen - set(order))


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        rep = json.load(f)
    sizes = rep["sizes"]
    res = rep["results"]
    labels = rep["tools"]
    meta = rep["meta"]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(18, 5.4))
    ticks = [f"{n // 1000}k" for n in sizes]
    for tool in tools_in(res, sizes):
        color, marker, ls = style(tool)
        xs, ys, ws, rs = [], [], [], []
        for n in sizes:
            r = res[str(n)].get(tool)
            if not r or r.get("median_wall_secs") is None:
                continue
            xs.append(n)
            ys.append(r["median_wall_secs"])
            # Each run over raw's run of the same round (the kernel's speed drifts between
            # phases of several rounds); the ratio of the medians where a run has no rounds.
            ws.append(r.get("ratio_wall_paired") or r.get("ratio_wall"))
            # The decoder's cost (user time beyond raw's, over raw's CPU time) where the
            # run recorded it: the kernel's share varies from run to run, this does not.
            rs.append(r.get("ratio_user_added") or r.get("ratio_cpu"))
        if not xs:
            continue
        label = labels.get(tool, tool)
        ax1.plot(xs, ys, color=color, marker=marker, ls=ls, label=label)
        if base(tool) in SLOW or base(tool) in OTHERS:
            continue
        if all(w is not None for w in ws):
            ax2.plot(xs, ws, color=color, marker=marker, ls=ls, label=label)
        if all(r is not None for r in rs):
            ax3.plot(xs, rs, color=color, marker=marker, ls=ls, label=label)
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("entries in the table")
    ax1.set_ylabel("median wall time of a full dump (s)")
    ax1.set_title("Dump time vs table size")
    ax1.set_xticks(sizes)
    ax1.set_xticklabels(ticks)
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=7)
    for ax, title, ylabel in (
        (ax2, "Dump time relative to the kernel's own dump (the targets)",
         "wall time / raw's wall time, same round (median)"),
        (ax3, "Decoder cost relative to the kernel's own dump",
         "(raw CPU, median + added user CPU, mean) / raw CPU"),
    ):
        ax.axhline(1.0, color="black", lw=0.8)
        ax.axhline(1.10, color="gray", lw=0.8, ls="--")
        ax.text(sizes[-1], 1.10, "1.10× (owned)", fontsize=7, va="bottom", ha="right", color="gray")
        ax.axhline(1.05, color="gray", lw=0.8, ls=":")
        ax.text(sizes[0], 1.05, "1.05× (view, C)", fontsize=7, va="bottom", ha="left", color="gray")
        ax.axhline(1.5, color="gray", lw=0.6, ls="-.")
        ax.text(sizes[0], 1.5, "1.5× (Python entries)", fontsize=7, va="bottom", ha="left", color="gray")
        ax.axhline(2.0, color="gray", lw=0.6, ls="-.")
        ax.text(sizes[0], 2.0, "2× (DataFrame)", fontsize=7, va="bottom", ha="left", color="gray")
        ys = [y for line in ax.get_lines() if len(line.get_ydata()) > 1 for y in line.get_ydata()]
        ax.set_ylim(min(ys + [0.9]) * 0.95, min(max(ys + [2.1]) * 1.05, 8.0))
        ax.set_xscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels(ticks)
        ax.set_xlabel("entries in the table")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"{meta.get('cpu', '')}, {meta.get('nproc')} cores, Linux {meta.get('kernel')}, "
        f"{meta.get('date', '')}, median of {meta.get('repeats')} runs",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(argv[2], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Draws dump time against table size for each tool from a run.sh results.json.

  plot.py RESULTS_JSON OUT_PNG

Two panels: median wall time per tool (log scale, every tool), and the median CPU time
as a ratio to the raw recv lower bound's for the fast tools. Needs matplotlib.
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
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    for tool, (color, marker, ls) in STYLE.items():
        xs, ys, rs = [], [], []
        for n in sizes:
            r = res[str(n)].get(tool)
            if not r or r.get("median_wall_secs") is None:
                continue
            xs.append(n)
            ys.append(r["median_wall_secs"])
            # The decoder's cost (user time beyond raw's, over raw's CPU time) where the
            # run recorded it: the kernel's share varies from run to run, this does not.
            rs.append(r.get("ratio_user_added") or r.get("ratio_cpu"))
        if not xs:
            continue
        label = labels.get(tool, tool)
        ax1.plot(xs, ys, color=color, marker=marker, ls=ls, label=label)
        if tool not in SLOW and all(r is not None for r in rs):
            ax2.plot(xs, rs, color=color, marker=marker, ls=ls, label=label)
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("entries in the table")
    ax1.set_ylabel("median wall time of a full dump (s)")
    ax1.set_title("Dump time vs table size")
    ax1.set_xticks(sizes)
    ax1.set_xticklabels([f"{n // 1000}k" for n in sizes])
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=8)
    ax2.axhline(1.0, color="black", lw=0.8)
    ax2.axhline(1.10, color="gray", lw=0.8, ls="--")
    ax2.text(sizes[-1], 1.10, "1.10× target (owned)", fontsize=7, va="bottom", ha="right", color="gray")
    ax2.axhline(1.05, color="gray", lw=0.8, ls=":")
    ax2.text(sizes[0], 1.05, "1.05× (view, C)", fontsize=7, va="bottom", ha="left", color="gray")
    top = max([max(line.get_ydata()) for line in ax2.get_lines() if len(line.get_ydata()) > 1] + [2.0])
    ax2.set_ylim(0.5, min(top * 1.1, 8.0))
    ax2.set_xscale("log")
    ax2.set_xticks(sizes)
    ax2.set_xticklabels([f"{n // 1000}k" for n in sizes])
    ax2.set_xlabel("entries in the table")
    ax2.set_ylabel("(raw CPU, median + added user CPU, mean) / raw CPU")
    ax2.set_title("Decoder cost relative to the kernel's own dump")
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=8)
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

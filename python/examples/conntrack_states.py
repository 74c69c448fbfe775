# %% [markdown]
# # The conntrack table by state
#
# Reads the connection tracking table of a network namespace with `ipvsct` and shows
# how many entries are in each state, how long they have left before they expire
# (against the full timeout of their state), and how much room the table has left.
#
# Run it as a notebook, or as a script:
#
# ```sh
# python conntrack_states.py [--netns NAME] [--demo] [--text] [--plot FILE.png]
# ```
#
# `--demo` (root) fills a throw-away namespace with a mix of entries and reads that.
# pandas and matplotlib are optional: without them (or with `--text`) it prints text.

# %%
from __future__ import annotations

import argparse
import atexit
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from types import ModuleType
from typing import Dict, List, Optional, Tuple

import ipvsct

try:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
except ImportError:
    pd = None
plt: Optional[ModuleType]
try:
    import matplotlib

    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as _pyplot

    plt = _pyplot
except ImportError:
    plt = None

# %% [markdown]
# ## Parameters
# In a notebook, edit them here; as a script, they come from the command line.

# %%
NETNS: Optional[str] = None  # an `ip netns` name; None = this namespace
DEMO = False  # fill a throw-away namespace with example entries (needs root)
TEXT_ONLY = False  # print text even when pandas is installed
PLOT_FILE: Optional[str] = None  # where the script saves the figure

if __name__ == "__main__" and "ipykernel" not in sys.modules:
    ap = argparse.ArgumentParser(description="The conntrack table by state.")
    ap.add_argument("--netns", help="ip netns name (default: this namespace)")
    ap.add_argument("--demo", action="store_true", help="read a throw-away demo namespace")
    ap.add_argument("--text", action="store_true", help="text only, even with pandas")
    ap.add_argument("--plot", metavar="FILE", help="save the plots to FILE (PNG)")
    args = ap.parse_args()
    NETNS, DEMO, TEXT_ONLY, PLOT_FILE = args.netns, args.demo, args.text, args.plot

# %% [markdown]
# ## A demo namespace (optional)
# With `DEMO`, a namespace is created and filled with `conntrack -I`; it is deleted at exit.

# %%
DEMO_ENTRIES = [  # (conntrack -I arguments, how many, the longest timeout to give)
    ("-p tcp -s 10.7.0.{i} -d 10.7.1.1 --sport {p} --dport 443 --state ESTABLISHED -t {t} -u ASSURED", 60, 7200),
    ("-p tcp -s 10.7.0.{i} -d 10.7.1.2 --sport {p} --dport 80 --state TIME_WAIT -t {t}", 35, 120),
    ("-p tcp -s 10.7.0.{i} -d 10.7.1.3 --sport {p} --dport 22 --state SYN_SENT -t {t}", 10, 120),
    ("-p udp -s 10.7.0.{i} -d 10.7.1.4 --sport {p} --dport 53 -t {t}", 25, 30),
    ("-p udp -s 10.7.0.{i} -d 10.7.1.5 --sport {p} --dport 123 -t {t} -u SEEN_REPLY,ASSURED", 20, 120),
]


def make_demo_namespace() -> str:
    """Creates and fills a namespace; returns its name (deleted at interpreter exit)."""
    name = f"ipvsct-demo-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=20)
    atexit.register(
        lambda: subprocess.run(["ip", "netns", "del", name], check=False, timeout=20)
    )
    for k, (spec, count, longest) in enumerate(DEMO_ENTRIES):
        for i in range(1, count + 1):
            t = max(1, longest * i // (count + 1))  # spread over the range
            args = spec.format(i=i, p=20000 + 100 * k + i, t=t).split()
            subprocess.run(
                ["ip", "netns", "exec", name, "conntrack", "-I", *args],
                check=True,
                capture_output=True,
                timeout=20,
            )
    return name


if DEMO:
    NETNS = make_demo_namespace()

# %% [markdown]
# ## Read the table
# One dump; every entry carries its state, the seconds it has left (`timeout`) and the
# full timeout of its state (`state_timeout`).

# %%
ct = ipvsct.Conntrack(NETNS)
stats = ct.stats()
entries = ct.list()


def state_label(e: ipvsct.Entry) -> str:
    proto = e.orig.proto_name or str(e.proto)
    return f"{proto} {e.state.name}" if e.state is not None else proto


by_state: Dict[str, List[ipvsct.Entry]] = defaultdict(list)
for e in entries:
    by_state[state_label(e)].append(e)

print(f"namespace: {NETNS or '(this one)'}   entries: {len(entries)}")

# %% [markdown]
# ## Entries per state
# With the seconds left before expiry (min / median / max) and the state's full timeout.

# %%
rows: List[Tuple[str, int, int, float, int, Optional[int]]] = []
for label, es in sorted(by_state.items(), key=lambda kv: (-len(kv[1]), kv[0])):
    left = [e.timeout for e in es if e.timeout is not None]
    full = {e.state_timeout for e in es}
    rows.append(
        (
            label,
            len(es),
            min(left, default=0),
            statistics.median(left) if left else 0.0,
            max(left, default=0),
            full.pop() if len(full) == 1 else None,
        )
    )

if pd is not None and not TEXT_ONLY:
    table = pd.DataFrame(
        rows, columns=["state", "entries", "min_left_s", "median_left_s", "max_left_s", "state_timeout_s"]
    )
    print(table.to_string(index=False))
else:
    print(f"{'state':<18} {'entries':>7} {'min_s':>7} {'median_s':>9} {'max_s':>7} {'state_timeout_s':>15}")
    for label, n, lo, med, hi, full_t in rows:
        shown = "-" if full_t is None else str(full_t)
        print(f"{label:<18} {n:>7} {lo:>7} {med:>9.1f} {hi:>7} {shown:>15}")

# %% [markdown]
# ## Plots: entries per state, seconds to expire

# %%
if plt is not None and not TEXT_ONLY and entries:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    labels = [r[0] for r in rows]
    ax1.barh(labels, [r[1] for r in rows])
    ax1.invert_yaxis()
    ax1.set_xlabel("entries")
    ax1.set_title("Entries per state")
    # Seconds left span from 1 to days: shared bins on a log scale, stacked by state.
    longest = max((e.timeout or 1 for e in entries), default=1)
    edges = [10 ** (k / 8) for k in range(0, 8 * (len(str(max(longest, 1))) + 1))]
    ax2.hist(
        [[max(e.timeout or 0, 1) for e in by_state[label]] for label in labels],
        bins=edges,
        stacked=True,
        label=labels,
    )
    ax2.set_xscale("log")
    ax2.set_xlabel("seconds to expire (log scale)")
    ax2.set_ylabel("entries")
    ax2.set_title("Seconds to expire")
    ax2.legend(fontsize="small")
    fig.tight_layout()
    if PLOT_FILE:
        fig.savefig(PLOT_FILE)
        print(f"plots saved to {PLOT_FILE}")
elif not TEXT_ONLY:
    print("(install matplotlib for the plots)")

# %% [markdown]
# ## Capacity headroom
# `nf_conntrack_max` bounds the table; new connections are dropped once it is full.

# %%
if stats.max_entries is None:
    print(f"entries: {stats.entries}; the kernel did not report nf_conntrack_max")
else:
    soon = sum(1 for e in entries if e.timeout is not None and e.timeout <= 60)
    print(
        f"capacity: {stats.entries} of {stats.max_entries} entries in use "
        f"({100 * (stats.usage or 0):.3f} %), headroom {stats.headroom} entries; "
        f"{soon} entries expire within 60 s"
    )
    print(
        f"counters summed over CPUs: {stats.total.insert or 0} inserted, {stats.total.drop or 0} dropped, "
        f"{stats.total.early_drop or 0} early-dropped, {stats.total.insert_failed or 0} failed inserts"
    )

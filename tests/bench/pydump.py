"""Python side of the live benchmark (tests/bench/run.sh), run inside the namespace.

  pydump.py entries     iterate ipvsct.Conntrack().dump(), reading attributes of each Entry
  pydump.py dataframe   build ipvsct.Conntrack().dataframe() (pandas)
  pydump.py pyroute2    pyroute2's Conntrack().dump(): netlink messages, tuple attribute read
  pydump.py pyroute2-entries   pyroute2's Conntrack().dump_entries(): ConntrackEntry objects

Prints one JSON object: mode, entries, secs and cpu_secs (wall and CPU time of the
dump alone, imports excluded), peak_rss_kib (VmHWM at the end), and for the entries mode
the dump reader thread's report when the thread ran (reader_datagrams, reader_waited_secs,
caller_waited_secs, caller_behind_at_end_secs, queued_at_end).
"""

import json
import sys
import time
from typing import Any, Dict

# The dump reader thread's report of the entries mode (DumpIterator.reader_report).
REPORT: Dict[str, Any] = {}


def peak_rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def ipvsct_entries() -> int:
    import ipvsct

    ct = ipvsct.Conntrack()
    n = 0
    ports = 0
    dump = ct.dump()
    for e in dump:
        n += 1
        ports += e.orig.src_port or 0
        _ = (e.orig.src, e.state, e.timeout, e.state_timeout)
    report = dump.reader_report
    if report is not None:
        REPORT.update(
            reader_datagrams=int(report["datagrams"]),
            reader_waited_secs=report["reader_waited"],
            caller_waited_secs=report["caller_waited"],
            caller_behind_at_end_secs=report["caller_behind_at_end"],
            queued_at_end=int(report["queued_at_end"]),
        )
    return n


def ipvsct_dataframe() -> int:
    import ipvsct

    df = ipvsct.Conntrack().dataframe()
    return len(df)


def pyroute2_dump(entries: bool) -> int:
    from pyroute2 import Conntrack

    ct = Conntrack()
    n = 0
    try:
        if entries:
            for e in ct.dump_entries():
                _ = (e.tuple_orig, e.timeout)
                n += 1
        else:
            for msg in ct.dump():
                msg.get_attr("CTA_TUPLE_ORIG")
                n += 1
    finally:
        ct.close()
    return n


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    runners = {
        "entries": ipvsct_entries,
        "dataframe": ipvsct_dataframe,
        "pyroute2": lambda: pyroute2_dump(False),
        "pyroute2-entries": lambda: pyroute2_dump(True),
    }
    if mode not in runners:
        print("usage: pydump.py entries|dataframe|pyroute2|pyroute2-entries", file=sys.stderr)
        return 2
    # Import outside the timed part (as the Rust and C programs load before timing).
    if mode.startswith("pyroute2"):
        import pyroute2  # noqa: F401
    else:
        import ipvsct  # noqa: F401
        if mode == "dataframe":
            import pandas  # noqa: F401
    t, cpu = time.perf_counter(), time.process_time()
    n = runners[mode]()
    secs, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(
        json.dumps(
            {
                "mode": mode,
                "entries": n,
                "secs": round(secs, 6),
                "cpu_secs": round(cpu, 6),
                "peak_rss_kib": peak_rss_kib(),
                **REPORT,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

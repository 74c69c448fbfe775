"""Guest side of the IPVS listing benchmark (issue 7), run by tests/bench/ipvs/guest.sh in the
QEMU guest of tests/bench/ipvs/run.sh.

Creates SERVICES x DESTS (default 1,000 x 10) with one ``ipvsadm -R``, checks every lister
sees all of them, then times ROUNDS interleaved rounds of, each as a new process with stdout
to /dev/null:

  ipvsadm      ``ipvsadm -Ln --stats --exact``
  rust         ``bench_ipvs`` (Ipvs::snapshot: services + destinations with 64-bit stats)
  rust_print   ``bench_ipvs --print`` (the same, also printing the counters as text)
  c            ``bench_ipvs_c`` (ipvsct_ipvs_services + ipvsct_ipvs_dests), when present

and in this (already running) interpreter ``python``: ``Ipvs.services()`` then
``Ipvs.destinations(s)`` for each. Writes /results/bench.json. Exit 1 when a count is wrong.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

import ipvsct

IPVSADM = "/usr/sbin/ipvsadm"
SERVICES = int(os.environ.get("BENCH_SERVICES", "1000"))
DESTS = int(os.environ.get("BENCH_DESTS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "9"))
RUST = "/payload/bench_ipvs"
C = "/payload/bench_ipvs_c"


def vip(i: int) -> str:
    return f"10.100.{i // 250}.{i % 250 + 1}"


def rules() -> str:
    out = []
    for i in range(SERVICES):
        out.append(f"-A -t {vip(i)}:80 -s wrr")
        for j in range(DESTS):
            out.append(f"-a -t {vip(i)}:80 -r 10.200.{j // 250}.{j % 250 + 1}:8080 -m -w {j + 1}")
    return "\n".join(out) + "\n"


CPU: Dict[str, List[Tuple[float, float]]] = {}  # lister -> [(user, sys)] of each run


def timed_process(name: str, argv: List[str]) -> float:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    # stderr too: bench_ipvs --print writes its JSON there, and the guest console is slow.
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=120)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(name, []).append((r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime))
    return wall


def python_listing() -> Dict[str, int]:
    ipvs = ipvsct.Ipvs()
    svcs = ipvs.services()
    dests = 0
    with64 = 0
    for s in svcs:
        ds = ipvs.destinations(s)
        dests += len(ds)
        with64 += int(s.stats64 is not None) + sum(1 for d in ds if d.stats64 is not None)
    ipvs.close()
    return {"services": len(svcs), "dests": dests, "with_stats64": with64}


def main() -> int:
    problems: List[str] = []
    t = time.perf_counter()
    p = subprocess.run([IPVSADM, "-R"], input=rules(), text=True, capture_output=True, timeout=300)
    if p.returncode != 0:
        print(f"ipvsadm -R failed: {p.stderr}", file=sys.stderr)
        return 1
    setup = time.perf_counter() - t
    print(f"bench: {SERVICES} services x {DESTS} dests created in {setup:.2f} s", flush=True)

    # Every lister must see the whole table.
    want = {"services": SERVICES, "dests": SERVICES * DESTS}
    text = subprocess.run([IPVSADM, "-Ln", "--stats", "--exact"], capture_output=True, text=True,
                          check=True, timeout=120).stdout.splitlines()
    counts: Dict[str, Any] = {
        "ipvsadm": {
            "services": sum(1 for x in text if x.startswith("TCP ")),
            "dests": sum(1 for x in text if x.startswith("  -> ") and "RemoteAddress" not in x),
        }
    }
    rust = json.loads(subprocess.run([RUST], capture_output=True, text=True, check=True,
                                     timeout=120).stdout)
    counts["rust"] = rust
    if rust["with_stats64"] != SERVICES * (DESTS + 1):
        problems.append(f"rust: {rust['with_stats64']} objects with 64-bit stats")
    have_c = os.access(C, os.X_OK)
    if have_c:
        counts["c"] = json.loads(subprocess.run([C], capture_output=True, text=True, check=True,
                                                timeout=120).stdout)
    py = python_listing()
    counts["python"] = py
    if py["with_stats64"] != SERVICES * (DESTS + 1):
        problems.append(f"python: {py['with_stats64']} objects with 64-bit stats")
    for who, c in counts.items():
        if c["services"] != want["services"] or c["dests"] != want["dests"]:
            problems.append(f"{who} saw {c['services']} services / {c['dests']} dests, want {want}")

    runs: Dict[str, Callable[[], float]] = {
        "ipvsadm": lambda: timed_process("ipvsadm", [IPVSADM, "-Ln", "--stats", "--exact"]),
        "rust": lambda: timed_process("rust", [RUST]),
        "rust_print": lambda: timed_process("rust_print", [RUST, "--print"]),
    }
    if have_c:
        runs["c"] = lambda: timed_process("c", [C])

    def py_once() -> float:
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        python_listing()
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        CPU.setdefault("python", []).append((r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime))
        return wall

    runs["python"] = py_once
    for warm in runs.values():  # warm-up: page cache, module loading
        warm()
    CPU.clear()
    times: Dict[str, List[float]] = {k: [] for k in runs}
    for r in range(ROUNDS):
        order = list(runs)
        if r % 2:
            order.reverse()
        for k in order:
            times[k].append(runs[k]())
        print(f"bench: round {r + 1}: " + ", ".join(f"{k} {times[k][-1]:.3f}" for k in runs), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    # Also the in-process listing time of the Rust library (no process start), median of 5.
    inproc = json.loads(subprocess.run([RUST, "--repeat", "5"], capture_output=True, text=True,
                                       check=True, timeout=300).stdout)
    cpu_med = {k: {"user": statistics.median([u for u, _ in v]),
                   "sys": statistics.median([x for _, x in v])} for k, v in CPU.items()}
    result = {
        "services": SERVICES,
        "dests_per_service": DESTS,
        "rounds": ROUNDS,
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "setup_secs": setup,
        "counts": counts,
        "times_secs": times,
        "median_secs": med,
        "median_cpu_secs": cpu_med,
        "speedup_vs_ipvsadm": {k: med["ipvsadm"] / v for k, v in med.items() if k != "ipvsadm"},
        "rust_in_process": inproc,
        "problems": problems,
    }
    # Where the time goes: a syscall summary of one run of each lister (run.sh --strace).
    strace = "/payload/strace"
    if os.access(strace, os.X_OK):
        for name, argv in (("ipvsadm", [IPVSADM, "-Ln", "--stats", "--exact"]), ("rust", [RUST]),
                           ("c", [C])):
            if name == "c" and not have_c:
                continue
            subprocess.run([strace, "-c", "-o", f"/results/strace-{name}.txt", *argv],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    with open("/results/bench.json", "w") as f:
        json.dump(result, f, indent=1)
    for k, v in med.items():
        cpu = cpu_med[k]
        print(f"bench: median {k:<11} {v * 1000:9.1f} ms (user {cpu['user'] * 1000:7.1f} ms, sys "
              f"{cpu['sys'] * 1000:7.1f} ms)   ipvsadm/{k} = {med['ipvsadm'] / v:5.2f}")
    for msg in problems:
        print(f"bench: PROBLEM {msg}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

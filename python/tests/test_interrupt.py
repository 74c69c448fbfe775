"""Ctrl-C stops a long dump promptly: SIGINT to a process inside a big dump makes it
exit with KeyboardInterrupt well before the dump could have finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import HERE, Namespace

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import ipvsct
    ct = ipvsct.Conntrack(sys.argv[1])
    method = sys.argv[2]
    t = time.perf_counter()
    n = len(ct.list()) if method == "list" else sum(1 for _ in ct.dump(mark=(1, 1), kernel_filter=False))
    print("calibrate", time.perf_counter() - t, n, flush=True)
    while True:
        print("calling", flush=True)
        if method == "list":
            ct.list()
        else:
            for _ in ct.dump(mark=(1, 1), kernel_filter=False):
                pass
    """
)


@pytest.mark.parametrize("method", ["list", "dump"])
def test_sigint_stops_a_long_dump(big_netns: Namespace, method: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", SCRIPT, big_netns.name, method],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=HERE,
    ) as p:
        try:
            assert p.stdout is not None and p.stderr is not None
            calib = p.stdout.readline().split()
            assert calib and calib[0] == "calibrate", (calib, p.stderr.read())
            one_call = float(calib[1])
            assert p.stdout.readline().strip() == "calling"
            # Land inside the native call, well before it could end by itself.
            time.sleep(min(0.05, one_call / 4))
            sent = time.monotonic()
            os.kill(p.pid, signal.SIGINT)
            p.wait(timeout=30)
            latency = time.monotonic() - sent
            err = p.stderr.read()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    print(f"{method}: one call {one_call:.3f} s, exit {latency:.3f} s after SIGINT")
    assert "KeyboardInterrupt" in err, err
    assert p.returncode in (-signal.SIGINT, 130, 1), (p.returncode, err)
    # A call lasts `one_call`; an interrupt seen only after it would take that long.
    assert one_call > 0.15, f"table too small to tell: one call took {one_call:.3f} s"
    assert latency < max(0.08, one_call / 3), (latency, one_call)

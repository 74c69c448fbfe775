"""Blocking calls release the GIL: another thread makes progress during a long dump."""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, Iterator, List

import pytest

import ipvsct
from conftest import BIG_TABLE, Namespace


class Ticker:
    """A thread that counts; it yields the GIL only through time.sleep(0)."""

    def __init__(self) -> None:
        self.ticks = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            self.ticks += 1
            time.sleep(0)


@pytest.fixture
def ticker() -> Iterator[Ticker]:
    # With a 10 s switch interval the interpreter never takes the GIL from a thread
    # by force during the test: the ticker runs only when the main thread gives
    # the GIL away itself.
    old = sys.getswitchinterval()
    sys.setswitchinterval(10.0)
    t = Ticker()
    t.thread.start()
    try:
        time.sleep(0.05)
        yield t
    finally:
        t.stop.set()
        t.thread.join(timeout=20)
        sys.setswitchinterval(old)
    assert not t.thread.is_alive()


def ticks_during(t: Ticker, call: Callable[[], object]) -> int:
    before = t.ticks
    call()
    return t.ticks - before


def test_other_threads_run_during_dumps(big_netns: Namespace, ticker: Ticker) -> None:
    ct = ipvsct.Conntrack(big_netns.name)
    # The measurement can fail: a C call that keeps the GIL lets the ticker do nothing.
    assert ticks_during(ticker, lambda: sorted(range(3_000_000), key=lambda x: -x)) == 0
    results: List[int] = []
    assert ticks_during(ticker, lambda: results.append(len(ct.list()))) > 0
    assert ticks_during(ticker, lambda: results.append(sum(1 for _ in ct.dump()))) > 0
    assert ticks_during(ticker, lambda: results.append(len(ct.dataframe()))) > 0
    assert results == [BIG_TABLE, BIG_TABLE, BIG_TABLE]


def test_decode_releases_the_gil(ticker: Ticker) -> None:
    from conftest import FIXTURES

    data = (FIXTURES / "dump_all.bin").read_bytes() * 2000
    assert ticks_during(ticker, lambda: ipvsct.decode(data)) > 0

"""Events against the real kernel, in namespaces the tests create (root): real TCP traffic
seen as NEW / UPDATE / DESTROY in the order ``conntrack -E`` sees them, an overrun that
is yielded (not raised) and followed by more events, resynchronisation after it, the
async iterator under ``asyncio.run``, and Ctrl-C stopping a blocking event loop."""

from __future__ import annotations

import asyncio
import datetime
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import List, Optional, Tuple, Union

import pytest

import ipvsct
from conftest import HERE, Namespace

Item = Union[ipvsct.Event, ipvsct.ExpectEvent, ipvsct.Overrun]

TCP_TRAFFIC = """
import socket, sys
port = int(sys.argv[1])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(1)
cli = socket.create_connection(("127.0.0.1", port), timeout=5)
conn, _ = srv.accept()
cli.sendall(b"ping")
assert conn.recv(4) == b"ping"
cli.close()
conn.close()
srv.close()
"""


def track(ns: Namespace) -> None:
    """Makes the namespace track loopback traffic (a ct rule registers the hooks)."""
    ns.exec("ip", "link", "set", "lo", "up")
    ns.exec("sysctl", "-q", "-w", "net.netfilter.nf_conntrack_timestamp=1")
    ns.exec(
        "nft",
        "add table inet ipvsct_py; "
        "add chain inet ipvsct_py out { type filter hook output priority 0; }; "
        "add rule inet ipvsct_py out ct state new counter",
    )


def drain(it: ipvsct.EventIterator, quiet: float = 0.5, limit: float = 20.0) -> List[Item]:
    """Reads items until none came for `quiet` seconds (at most `limit` seconds)."""
    out: List[Item] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        item = it.get(quiet)
        if item is None:
            break
        out.append(item)
    return out


def tool_events(text: str) -> List[Tuple[str, str, int]]:
    """(type, TCP state, id) of each ``conntrack -E -o id`` line for TCP."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 5 or f[1] != "tcp":
            continue
        kind = f[0].strip("[]").lower()
        state = f[4] if kind != "destroy" else ""
        ident = next(int(x[3:]) for x in f if x.startswith("id="))
        out.append((kind, state, ident))
    return out


def test_real_traffic_gives_new_update_destroy_in_order(netns: Namespace) -> None:
    track(netns)
    ct = ipvsct.Conntrack(netns.name)
    tool = subprocess.Popen(
        ["ip", "netns", "exec", netns.name, "conntrack", "-E", "-p", "tcp", "-o", "id"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with ct.events(proto="tcp") as it:
            time.sleep(0.5)  # conntrack -E subscribes
            netns.exec(sys.executable, "-c", TCP_TRAFFIC, "8080")
            netns.conntrack("-D", "-p", "tcp", "--dport", "8080")
            got = drain(it)
            assert it.stats["overruns"] == 0
    finally:
        time.sleep(0.3)
        tool.send_signal(signal.SIGINT)
        out, _ = tool.communicate(timeout=20)
    events = [e for e in got if isinstance(e, ipvsct.Event)]
    assert len(events) == len(got) >= 4
    kinds = [e.kind for e in events]
    assert kinds[0] is ipvsct.EventKind.NEW and kinds[-1] is ipvsct.EventKind.DESTROY
    assert set(kinds[1:-1]) == {ipvsct.EventKind.UPDATE}
    ids = {e.entry.id for e in events}
    assert len(ids) == 1
    states = [e.entry.state for e in events[:-1]]
    assert states[0] == ipvsct.TcpState.SYN_SENT
    assert ipvsct.TcpState.ESTABLISHED in states and states[-1] == ipvsct.TcpState.TIME_WAIT
    first = events[0].entry
    assert (str(first.orig.src), first.orig.dst_port) == ("127.0.0.1", 8080)
    d = events[0].to_dict()
    assert (d["kind"], d["entry"]["orig"]["dst_port"], d["resync"]) == (ipvsct.EventKind.NEW, 8080, False)
    assert repr(events[-1]).startswith("<Event DESTROY <Entry tcp 127.0.0.1:")
    assert first.state_timeout == ct.default_timeouts().tcp.syn_sent
    # With timestamps on, the kernel stamps each event.
    stamps = [e.event_time for e in events]
    assert all(s is not None for s in stamps) and stamps == sorted(stamps)  # type: ignore[type-var]
    # conntrack-tools saw the same events in the same order.
    mine = [
        (e.kind.value, e.entry.state.name if e.entry.state and e.kind.value != "destroy" else "", e.entry.id)
        for e in events
    ]
    assert tool_events(out) == mine, out


def test_overrun_is_an_item_and_the_stream_goes_on(netns: Namespace) -> None:
    ct = ipvsct.Conntrack(netns.name)
    with ct.events(rcvbuf=8192, update=False) as it:
        netns.insert_batch(3000)
        # Nothing was read while the burst came: the small buffer overflowed.
        got = drain(it, quiet=0.3)
        overruns = [x for x in got if isinstance(x, ipvsct.Overrun)]
        news = [x for x in got if isinstance(x, ipvsct.Event)]
        assert overruns, [type(x).__name__ for x in got[:10]]
        o = overruns[0]
        assert o.failed_receives >= 1 and o.total == 1 == it.stats["overruns"]
        now = datetime.datetime.now(datetime.timezone.utc)
        assert o.since <= o.at <= now and (now - o.at).total_seconds() < 30
        assert 0 < len(news) < 3000
        assert all(e.kind is ipvsct.EventKind.NEW for e in news)
        # The iterator goes on after the overrun.
        t = ipvsct.Tuple("10.9.9.9", "10.9.9.8", "udp", src_port=1, dst_port=2)
        ct.create(t, timeout=60)
        after = drain(it, quiet=0.5)
    later = [x for x in after if isinstance(x, ipvsct.Event) and x.entry.orig == t]
    assert len(later) == 1 and later[0].kind is ipvsct.EventKind.NEW
    assert it.closed and next(iter(it), None) is None


def test_resync_after_overrun_repairs_the_picture(netns: Namespace) -> None:
    netns.insert_batch(50)
    ct = ipvsct.Conntrack(netns.name)
    with ct.events(rcvbuf=8192, update=False, resync=True) as it:
        assert it.table_size == 50
        netns.insert_batch(3000, start=50)
        got = drain(it, quiet=0.5)
        assert any(isinstance(x, ipvsct.Overrun) for x in got)
        resynced = [x for x in got if isinstance(x, ipvsct.Event) and x.resync]
        live = [x for x in got if isinstance(x, ipvsct.Event) and not x.resync]
        # Every entry the overrun hid came back as a resync NEW: the picture is whole.
        assert it.table_size == ct.count() == 3050
        assert resynced and all(e.kind is ipvsct.EventKind.NEW for e in resynced)
        seen = {e.entry.orig for e in live} | {e.entry.orig for e in resynced}
        assert len(seen) == 3000
    with pytest.raises(ValueError, match="reliable"):
        ct.events(resync=True, reliable=True)
    with pytest.raises(ValueError, match="at least one"):
        ct.events(new=False, update=False, destroy=False)


def test_expectation_events(netns: Namespace) -> None:
    ct = ipvsct.Conntrack(netns.name)
    master = ipvsct.Tuple("10.8.0.1", "10.8.0.2", "tcp", src_port=40000, dst_port=21)
    data = ipvsct.Tuple("10.8.0.2", "10.8.0.1", "tcp", src_port=0, dst_port=50000)
    with ct.events(new=False, update=False, destroy=False, expect=True) as it:
        # The kernel reports expectation events of masters created while someone listens.
        ct.create(master, timeout=600, helper="ftp")
        ct.create_expectation(master, data, timeout=60, helper="ftp")
        ct.flush_expectations()
        got = drain(it)
    assert [type(x).__name__ for x in got] == ["ExpectEvent", "ExpectEvent"]
    assert [x.kind for x in got if isinstance(x, ipvsct.ExpectEvent)] == [
        ipvsct.EventKind.NEW,
        ipvsct.EventKind.DESTROY,
    ]
    e = got[0]
    assert isinstance(e, ipvsct.ExpectEvent)
    assert e.expectation.tuple == data and e.expectation.master == master
    assert e.to_dict()["expectation"]["helper"] == "ftp"


def test_async_iteration_does_not_block_the_loop(netns: Namespace) -> None:
    ct = ipvsct.Conntrack(netns.name)
    tuples = [ipvsct.Tuple("10.7.0.1", "10.7.0.2", "udp", src_port=p, dst_port=53) for p in (1, 2, 3)]

    async def main() -> Tuple[List[Item], int, Optional[Item]]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        def create(t: ipvsct.Tuple) -> None:
            ct.create(t, timeout=30)

        async def producer() -> None:
            for t in tuples:
                await asyncio.sleep(0.2)
                await asyncio.get_running_loop().run_in_executor(None, create, t)

        got: List[Item] = []
        async with ct.events_async(update=False) as events:
            tick = asyncio.create_task(ticker())
            prod = asyncio.create_task(producer())

            async def collect() -> None:
                async for ev in events:
                    got.append(ev)
                    if len(got) == len(tuples):
                        return

            await asyncio.wait_for(collect(), timeout=10)
            await prod
            quiet = await events.get(timeout=0.3)
            stop.set()
            await tick
        assert events.closed
        return got, ticks, quiet

    got, ticks, quiet = asyncio.run(main())
    assert quiet is None
    assert [e.entry.orig for e in got if isinstance(e, ipvsct.Event)] == tuples
    assert all(isinstance(e, ipvsct.Event) and e.kind is ipvsct.EventKind.NEW for e in got)
    # The loop kept running while it waited for the kernel (about 0.6 s at 10 ms per tick).
    assert ticks > 20, ticks


SIGINT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import ipvsct
    ct = ipvsct.Conntrack(sys.argv[1])
    it = ct.events()
    print("waiting", flush=True)
    for ev in it:
        print("unexpected", ev, flush=True)
    """
)


def test_sigint_stops_a_blocking_event_loop(netns: Namespace) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", SIGINT_SCRIPT, netns.name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=HERE,
    ) as p:
        try:
            assert p.stdout is not None and p.stderr is not None
            assert p.stdout.readline().strip() == "waiting", p.stderr.read()
            time.sleep(0.3)
            sent = time.monotonic()
            os.kill(p.pid, signal.SIGINT)
            p.wait(timeout=30)
            latency = time.monotonic() - sent
            err = p.stderr.read()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    assert "KeyboardInterrupt" in err, err
    assert p.returncode in (-signal.SIGINT, 130, 1), (p.returncode, err)
    # Receives wait 100 ms at most between signal checks.
    assert latency < 1.0, latency


def test_poll_and_fileno_without_an_event_loop(netns: Namespace) -> None:
    ct = ipvsct.Conntrack(netns.name)
    it = ct.events()
    assert it.poll() is None
    fd = it.fileno()
    t = ipvsct.Tuple("10.6.0.1", "10.6.0.2", "udp", src_port=9, dst_port=9)
    ct.create(t, timeout=30)
    import select

    r, _, _ = select.select([fd], [], [], 5)
    assert r == [fd]
    ev = it.poll()
    assert isinstance(ev, ipvsct.Event) and ev.entry.orig == t and ev.kind is ipvsct.EventKind.NEW
    # Back to blocking mode.
    assert it.get(0.05) is None
    it.close()
    assert it.poll() is None and it.get(0.01) is None
    with pytest.raises(ipvsct.Error, match="closed"):
        it.fileno()

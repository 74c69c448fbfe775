"""Against the real kernel, in namespaces the tests create (root): the same table read by
ipvsct, by conntrack-tools (``-o xml``) and by the Rust API (``examples/ct_json.rs``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List, Set

import pytest

import ipvsct
from conftest import Namespace, XmlFlow, parse_xml, rust_reference, skip_or_fail
from test_decode import assert_matches_xml

INSERTED = [
    "-p tcp -s 10.2.0.1 -d 10.2.0.2 --sport 1111 --dport 80 --state ESTABLISHED -t 3600 "
    "-u ASSURED -m 0x1234 -w 7",
    "-p tcp -s fd00::5 -d fd00::6 --sport 1 --dport 2 --state SYN_SENT -t 60 -w 7",
    "-p tcp -s 10.2.0.11 -d 10.2.0.12 --sport 2222 --dport 443 --state TIME_WAIT -t 100 "
    "-u SEEN_REPLY,ASSURED",
    "-p udp -s 10.2.0.9 -d 10.2.0.10 --sport 1 --dport 2 -t 300 -m 0x12ff",
    "-p udp -s 10.2.0.3 -d 10.2.0.4 --sport 5000 --dport 53 -t 100 -u SEEN_REPLY",
    "-p udp -s fd00::1 -d fd00::2 --sport 6000 --dport 7000 -t 300 -u SEEN_REPLY,ASSURED",
    "-p sctp -s 10.2.0.5 -d 10.2.0.6 --sport 2905 --dport 2905 --state ESTABLISHED "
    "--orig-vtag 4369 --reply-vtag 8738 -t 200",
    "-p gre -s 10.2.0.7 -d 10.2.0.8 --srckey 0x10 --dstkey 0x20 -t 250",
    "-p icmp -s 10.2.0.1 -d 10.2.0.3 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 50",
]

TRAFFIC = """
import socket
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.bind(("127.0.0.1", 5300))
cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
cli.settimeout(5)
cli.bind(("127.0.0.1", 40004))
cli.sendto(b"ping", ("127.0.0.1", 5300))
data, peer = srv.recvfrom(100)
srv.sendto(b"pong", peer)
assert cli.recvfrom(100)[0] == b"pong"
"""


def populate(ns: Namespace) -> None:
    """Entries inserted with conntrack -I, plus a real UDP exchange on loopback."""
    for spec in INSERTED:
        ns.conntrack("-I", *spec.split())
    if shutil.which("nft"):
        ns.exec("ip", "link", "set", "lo", "up")
        ns.exec("sysctl", "-q", "-w", "net.netfilter.nf_conntrack_acct=1")
        ns.exec("sysctl", "-q", "-w", "net.netfilter.nf_conntrack_timestamp=1")
        ns.exec(
            "nft",
            "add table inet ipvsct_py; "
            "add chain inet ipvsct_py out { type filter hook output priority 0; }; "
            "add rule inet ipvsct_py out ct state new counter",
        )
        ns.exec(sys.executable, "-c", TRAFFIC)


def ids(entries: List[ipvsct.Entry]) -> Set[int]:
    return {e.id for e in entries if e.id is not None}


def xml_ids(flows: List[XmlFlow]) -> Set[int]:
    return {int(f.meta["id"]) for f in flows}


def test_dump_matches_conntrack_xml(netns: Namespace) -> None:
    populate(netns)
    ct = ipvsct.Conntrack(netns.name)
    entries = ct.list()
    flows = netns.xml()
    assert len(entries) >= len(INSERTED)
    assert ids(entries) == xml_ids(flows)
    by_id = {e.id: e for e in entries}
    for x in flows:
        assert_matches_xml(by_id[int(x.meta["id"])], x, timeout_slack=2)
    streamed = list(ct.dump())
    assert ids(streamed) == ids(entries) and len(streamed) == len(entries)
    assert ct.count() == len(entries)
    # The state timeouts in force are joined into every stateful entry.
    t = ct.default_timeouts()
    est = next(e for e in entries if e.orig.src_port == 1111)
    assert est.state == ipvsct.TcpState.ESTABLISHED
    assert est.state_timeout == t.tcp.established == int(
        netns.sysctl("net.netfilter.nf_conntrack_tcp_timeout_established")
    )
    tw = next(e for e in entries if e.orig.src_port == 2222)
    assert tw.state == ipvsct.TcpState.TIME_WAIT and tw.state_timeout == t.tcp.time_wait
    gre = next(e for e in entries if e.proto == 47)
    assert gre.state_timeout == t.gre.unreplied
    # Every entry has the state timeout of its protocol and state, in both paths (entries
    # share the int objects of equal state timeouts).
    for e in entries + streamed:
        assert e.state_timeout == t.for_state(e.proto, e.state), e


def normalize_py(e: ipvsct.Entry) -> Dict[str, Any]:
    d = e.to_dict()
    out: Dict[str, Any] = {
        "family": e.family.name.lower(),
        "state": e.state.name if e.state is not None else None,
        "status": sorted(str(m.name) for m in ipvsct.Status if m in e.status),
    }
    for k in ("orig", "reply"):
        t = dict(d[k])
        t.pop("unknown")
        t["src"], t["dst"] = str(t["src"]), str(t["dst"])
        out[k] = t
    for k in ("mark", "zone", "id", "use_count", "state_timeout", "labels"):
        out[k] = d[k]
    for k in ("counters_orig", "counters_reply", "timestamp"):
        out[k] = d[k]
    return out


def normalize_rust(j: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "family": j["family"],
        "state": j["state"],
        "status": sorted(j["status"]),
    }
    for k in ("orig", "reply"):
        t = dict(j[k])
        t.pop("unknown", None)
        out[k] = t
    for k in ("mark", "zone", "id", "use_count", "state_timeout", "labels"):
        out[k] = j[k]
    for k in ("counters_orig", "counters_reply", "timestamp"):
        out[k] = j[k]
    return out


def test_dump_matches_the_rust_api(netns: Namespace) -> None:
    exe = rust_reference()
    if exe is None:
        pytest.fail(
            "the Rust reference is not built: cargo build --release -p ipvsct-python "
            "--example ct_json (python/run-tests.sh does it), or set IPVSCT_CT_JSON"
        )
    populate(netns)
    ct = ipvsct.Conntrack(netns.name)
    py = {e.id: e for e in ct.list()}
    lines = subprocess.run(
        [str(exe), netns.name], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    assert json.loads(lines[0]) == {"count": len(py)}
    rust = [json.loads(line) for line in lines[1:]]
    assert {j["id"] for j in rust} == set(py)
    for j in rust:
        e = py[j["id"]]
        assert normalize_py(e) == normalize_rust(j), e
        assert abs((e.timeout or 0) - j["timeout"]) <= 2


def test_dump_reuses_only_entries_nobody_holds(netns: Namespace) -> None:
    """A dump iterator writes the next entry into an entry (and its ``orig``) that its
    caller has let go of: whatever the caller keeps (entries, tuples, both) never changes."""
    populate(netns)
    ct = ipvsct.Conntrack(netns.name)
    def eid(e: ipvsct.Entry) -> int:
        assert e.id is not None
        return e.id

    ref = {eid(e): (normalize_py(e), e.orig.to_dict(), hash(e.orig)) for e in ct.list()}
    timeouts = {eid(e): e.timeout for e in ct.list()}
    assert len(ref) >= len(INSERTED)

    def check(e: ipvsct.Entry) -> None:
        want, want_orig, want_hash = ref[eid(e)]
        assert normalize_py(e) == want
        assert e.timeout is not None and abs(e.timeout - (timeouts[eid(e)] or 0)) <= 2
        assert e.to_dict()["timeout"] == e.timeout and e.to_dict()["state"] == e.state
        assert e.orig.to_dict() == want_orig and hash(e.orig) == want_hash

    def check_orig(i: int, t: ipvsct.Tuple) -> None:
        assert t.to_dict() == ref[i][1] and hash(t) == ref[i][2]

    # Nothing kept: every entry still reads as its own.
    seen = []
    for e in ct.dump():
        check(e)
        seen.append(eid(e))
    assert sorted(seen) == sorted(ref)
    # Every other entry kept; the kept ones are intact after the dump.
    kept = [e for i, e in enumerate(ct.dump()) if i % 2 == 0]
    assert len(kept) == (len(ref) + 1) // 2
    for e in kept:
        check(e)
    # Only the tuples kept (the entries are let go of): the tuples are intact, and equal
    # tuples hash alike.
    origs = [(eid(e), e.orig) for e in ct.dump()]
    for i, t in origs:
        check_orig(i, t)
    assert {t for _, t in origs} == {e.orig for e in ct.list()}
    # The previous entry still held when the next one is made.
    prev = None
    held: List[ipvsct.Entry] = []
    for e in ct.dump():
        if prev is not None:
            held.append(prev)
        prev = e
    assert prev is not None
    held.append(prev)
    assert sorted(eid(e) for e in held) == sorted(ref)
    for e in held:
        check(e)
    # Entries from several iterators at once, interleaved.
    a, b = ct.dump(), ct.dump()
    pairs = list(zip(a, b))
    assert len(pairs) == len(ref)
    for x, y in pairs:
        check(x)
        check(y)


def listed(ns: Namespace, *args: str) -> Set[int]:
    return xml_ids(parse_xml(ns.conntrack("-L", *args, "-o", "xml,id")))


def test_filters_match_conntrack_tools(netns: Namespace) -> None:
    populate(netns)
    ct = ipvsct.Conntrack(netns.name)
    cases = [
        (dict(mark=0x1234), ["-m", "0x1234"]),
        (dict(mark=(0x1200, 0xFF00)), ["-m", "0x1200/0xff00"]),
        (dict(zone=7), ["-w", "7"]),
        (dict(family="ipv6"), ["-f", "ipv6"]),
        (dict(family=ipvsct.Family.IPV4, proto="tcp"), ["-f", "ipv4", "-p", "tcp"]),
        (dict(status=ipvsct.Status.ASSURED), ["-u", "ASSURED"]),
        (dict(proto="icmp"), ["-p", "icmp"]),
        (dict(proto="tcp", src="10.2.0.1", dst_port=80), ["-p", "tcp", "-s", "10.2.0.1", "--dport", "80"]),
        (dict(proto="udp", dst="fd00::2"), ["-f", "ipv6", "-p", "udp", "-d", "fd00::2"]),
    ]
    for kwargs, cli in cases:
        want = listed(netns, *cli)
        assert want, (kwargs, cli)
        assert ids(ct.list(**kwargs)) == want, kwargs  # type: ignore[arg-type]
        assert ids(ct.list(kernel_filter=False, **kwargs)) == want, kwargs  # type: ignore[arg-type]
        assert ids(list(ct.dump(**kwargs))) == want, kwargs  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ct.list(table="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ct.list(family="ipv5")
    with pytest.raises(ValueError, match="matching family"):
        ct.list(family="ipv4", src="fd00::1")
    assert ct.list(table="dying") == [] and ct.list(table="unconfirmed") == []


def test_get_by_tuple(netns: Namespace) -> None:
    populate(netns)
    ct = ipvsct.Conntrack(netns.name)
    by_port = {e.orig.src_port: e for e in ct.list() if e.proto == 6}
    e = ct.get(ipvsct.Tuple("10.2.0.11", "10.2.0.12", "tcp", src_port=2222, dst_port=443))
    assert e is not None and e.id == by_port[2222].id and e.orig == by_port[2222].orig
    assert e.state == ipvsct.TcpState.TIME_WAIT and e.state_timeout == by_port[2222].state_timeout
    x = parse_xml(
        netns.conntrack("-G", "-p", "tcp", "-s", "10.2.0.11", "-d", "10.2.0.12",
                        "--sport", "2222", "--dport", "443", "-o", "xml,id")
    )
    assert len(x) == 1 and int(x[0].meta["id"]) == e.id
    icmp = ct.get(ipvsct.Tuple("10.2.0.1", "10.2.0.3", "icmp", icmp_type=8, icmp_code=0, icmp_id=77))
    assert icmp is not None and icmp.orig.icmp_id == 77
    assert ct.get(ipvsct.Tuple("10.2.0.11", "10.2.0.12", "tcp", src_port=1, dst_port=2)) is None
    # The same tuple lives in zone 7 only.
    zoned = ipvsct.Tuple("fd00::5", "fd00::6", "tcp", src_port=1, dst_port=2, zone=7)
    z = ct.get(zoned)
    assert z is not None and z.zone == 7 and z.id == by_port[1].id
    assert ct.get(ipvsct.Tuple("fd00::5", "fd00::6", "tcp", src_port=1, dst_port=2)) is None
    for again in (
        ct.get(ipvsct.Tuple("fd00::5", "fd00::6", "tcp", src_port=1, dst_port=2), zone=7),
        ct.get(by_port[1]),
    ):
        assert again is not None and again.id == z.id
    with pytest.raises(TypeError):
        ct.get("10.2.0.1")  # type: ignore[arg-type]


def test_count_and_stats_match_conntrack_tools(netns: Namespace) -> None:
    populate(netns)
    ct = ipvsct.Conntrack(netns.name)
    n = int(netns.conntrack("-C").strip())
    assert ct.count() == n
    s = ct.stats()
    assert s.entries == n
    assert s.max_entries == int(netns.sysctl("net.netfilter.nf_conntrack_max"))
    assert s.headroom == s.max_entries - n
    assert s.usage == pytest.approx(n / s.max_entries)
    rows = [line for line in netns.conntrack("-S").splitlines() if line.startswith("cpu=")]
    assert len(s.per_cpu) == len(rows) >= 1
    for c, row in zip(s.per_cpu, rows):
        fields = dict(kv.split("=") for kv in row.split())
        assert c.cpu == int(fields.pop("cpu"))
        for k, v in fields.items():
            assert getattr(c, k) == int(v), (k, row)
    assert s.total.insert == sum(c.insert or 0 for c in s.per_cpu) >= len(INSERTED)


def test_state_timeouts_follow_the_namespace(netns: Namespace) -> None:
    netns.exec("sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_timeout_established=1234")
    netns.exec("sysctl", "-q", "-w", "net.netfilter.nf_conntrack_udp_timeout_stream=99")
    populate(netns)
    ct = ipvsct.Conntrack(netns.name)
    t = ct.default_timeouts()
    assert t.source == "cttimeout"
    assert t.tcp.established == 1234 and t.udp.replied == 99
    assert t.for_state("tcp", ipvsct.TcpState.ESTABLISHED) == 1234
    assert t.for_state(6, "TIME_WAIT") == t.tcp.time_wait
    assert t.for_state("udp", ipvsct.UdpState.STREAM) == 99
    assert t.for_state("icmp") == t.icmp == int(netns.sysctl("net.netfilter.nf_conntrack_icmp_timeout"))
    with pytest.raises(ValueError):
        t.for_state("tcp", "NOT_A_STATE")
    s = ct.sysctl_timeouts()
    assert s.source == "sysctl" and s.tcp.established == 1234 and s.udp == t.udp
    assert t.to_dict()["tcp"]["established"] == 1234
    by_port = {e.orig.src_port: e for e in ct.list()}
    assert by_port[1111].state_timeout == 1234
    assert by_port[6000].state == ipvsct.UdpState.STREAM and by_port[6000].state_timeout == 99
    # Offline decoding joins the same policy when it is given one.
    raw = ipvsct.decode(b"", timeouts=t)
    assert raw == []


def test_client_lifecycle_and_concurrent_calls(netns: Namespace) -> None:
    populate(netns)
    with ipvsct.Conntrack(netns.name, timeout=5) as ct:
        assert repr(ct) == f"<ipvsct.Conntrack netns='{netns.name}' timeout=5.0>"
        it = ct.dump()
        first = next(it)
        # Dumps have a socket of their own: other calls work in the middle of one.
        assert ct.count() >= len(INSERTED)
        again = ct.get(first)
        assert again is not None and again.id == first.id
        by_tuple = ct.get(first.orig, zone=first.zone)
        assert by_tuple is not None and by_tuple.id == first.id
        rest = list(it)
        assert len(rest) + 1 == ct.count()
        with ct.dump() as d:
            next(d)
        assert list(d) == []
        half = ct.dump()
        next(half)
    assert ct.closed
    with pytest.raises(ipvsct.Error, match="closed"):
        ct.count()
    # A dump started before close() goes on.
    assert len(list(half)) == len(rest)


def test_namespace_by_path_and_by_pid(netns: Namespace) -> None:
    netns.conntrack("-I", *INSERTED[0].split())
    by_path = ipvsct.Conntrack(Path("/run/netns") / netns.name)
    assert by_path.count() == 1 and by_path.netns == f"/run/netns/{netns.name}"
    with subprocess.Popen(["ip", "netns", "exec", netns.name, "sleep", "30"]) as p:
        try:
            # `ip netns exec` execs sleep once it has entered the namespace.
            for _ in range(100):
                if os.stat(f"/proc/{p.pid}/ns/net").st_ino == os.stat(f"/run/netns/{netns.name}").st_ino:
                    break
                time.sleep(0.05)
            by_pid = ipvsct.Conntrack(p.pid)
            assert by_pid.netns == f"/proc/{p.pid}/ns/net"
            assert [e.orig.src_port for e in by_pid.list()] == [1111]
        finally:
            p.kill()
    here = ipvsct.Conntrack()
    assert here.netns is None
    assert here.list(zone=7, proto="tcp", src="10.2.0.1", src_port=1111) == []


def test_permission_error_without_cap_net_admin(netns: Namespace) -> None:
    if shutil.which("setpriv") is None:
        skip_or_fail("setpriv (util-linux) is missing")
    code = textwrap.dedent(
        f"""
        import builtins, ipvsct
        ct = ipvsct.Conntrack({netns.name!r})
        try:
            ct.count()
        except ipvsct.PermissionError as e:
            assert isinstance(e, builtins.PermissionError) and isinstance(e, ipvsct.Error)
            print("PermissionError", e.errno, e.operation)
        """
    )
    out = subprocess.run(
        ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["PermissionError", "1", "conntrack", "count"]

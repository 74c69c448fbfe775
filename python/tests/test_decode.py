"""Offline decoding: the shared real fixtures (checked against the text conntrack-tools
printed for the same state), and bad bytes (typed errors, never a crash)."""

from __future__ import annotations

import random
import re
import struct
from pathlib import Path
from typing import Dict, List, Set

import pytest

import ipvsct
from conftest import FIXTURES, XmlFlow, first, parse_xml

NEEDED = ["dump_all", "count", "cpu_stats", "get_tcp", "get_missing", "policy_tcp"]


def fixture(name: str) -> bytes:
    p = FIXTURES / f"{name}.bin"
    if not p.is_file():
        pytest.fail(f"shared fixture {p} is missing")
    return p.read_bytes()


def text(name: str) -> str:
    return (FIXTURES / f"{name}.txt").read_text()


def body_lines(name: str) -> List[str]:
    return [line for line in text(name).splitlines() if line and not line.startswith("#")]


def label_names() -> Dict[str, int]:
    """connlabel.conf: label name -> bit."""
    out = {}
    for line in (FIXTURES / "connlabel.conf").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            out[parts[1]] = int(parts[0])
    return out


def assert_matches_xml(e: ipvsct.Entry, x: XmlFlow, timeout_slack: int = 0) -> None:
    """Compares every field `conntrack -o xml` shows with the decoded entry."""
    what = repr(e)
    assert e.family.name.lower() == x.orig["family"], what
    assert str(e.proto) == x.orig["proto"], what
    for t, d in ((e.orig, x.orig), (e.reply, x.reply)):
        assert str(t.src) == d["src"], what
        assert str(t.dst) == d["dst"], what
        if "sport" in d:
            assert t.src_port == int(d["sport"]), what
            assert t.dst_port == int(d["dport"]), what
    for c, d in ((e.counters_orig, x.orig), (e.counters_reply, x.reply)):
        if "packets" in d:
            assert c is not None, what
            assert (c.packets, c.bytes) == (int(d["packets"]), int(d["bytes"])), what
    m = x.meta
    assert e.id == int(m["id"]), what
    assert e.timeout is not None and abs(e.timeout - int(m["timeout"])) <= timeout_slack, what
    assert e.mark == int(m.get("mark", "0")), what
    assert e.zone == (int(m["zone"]) if "zone" in m else None), what
    assert e.use_count == int(m["use"]), what
    # libnetfilter_conntrack names SCTP states from the TCP table in XML: skip those.
    if "state" in m and e.proto != 132:
        assert e.state is not None and e.state.name == m["state"], what
    assert ("assured" in x.flags) == bool(e.status & ipvsct.Status.ASSURED), what
    assert ("unreplied" in x.flags) == (not e.status & ipvsct.Status.SEEN_REPLY), what
    if "timestamp_start" in m:
        assert e.timestamp is not None and e.timestamp.start == int(m["timestamp_start"]), what
    if "labels" in m:
        bits = {label_names()[n] for n in m["labels"].split(",") if n}
        assert set(e.labels or []) == bits, what
    else:
        assert not e.labels, what


@pytest.mark.parametrize("name", ["dump_all", "dump_mark", "dump_zone", "dump_ipv6", "get_tcp"])
def test_entries_match_the_conntrack_tools_text(name: str) -> None:
    entries = ipvsct.decode(fixture(name))
    assert all(isinstance(e, ipvsct.Entry) for e in entries)
    flows = parse_xml(text(name))
    assert len(flows) == len(entries) > 0
    by_id = {e.id: e for e in entries if isinstance(e, ipvsct.Entry)}
    assert len(by_id) == len(entries)
    for x in flows:
        assert_matches_xml(by_id[int(x.meta["id"])], x)


def test_dump_all_has_the_recorded_flows() -> None:
    """Values fixed by tests/fixtures/record.sh (not by the recording's timing)."""
    entries = [e for e in ipvsct.decode(fixture("dump_all")) if isinstance(e, ipvsct.Entry)]
    assert len(entries) == 16
    by_port = {(e.proto, e.orig.src_port): e for e in entries}
    web = by_port[(6, 40001)]
    assert web.state == ipvsct.TcpState.ESTABLISHED
    assert web.mark == 42 and web.labels == [5]
    assert web.state_timeout is None  # no timeouts given to decode()
    assert web.status & ipvsct.Status.ASSURED
    assert web.counters_orig is not None and web.counters_orig.bytes > 0
    closed = by_port[(6, 40002)]
    assert closed.state == ipvsct.TcpState.TIME_WAIT
    tcp = closed.protoinfo.tcp if closed.protoinfo else None
    assert tcp is not None and tcp.flags_original is not None
    assert tcp.flags_original.flags & ipvsct.TcpFlags.CLOSE_INIT
    inserted = by_port[(6, 1111)]
    assert (str(inserted.orig.src), inserted.mark, inserted.zone) == ("10.1.0.1", 0x1234, 7)
    sctp = by_port[(132, 2905)]
    assert sctp.state == ipvsct.SctpState.ESTABLISHED
    assert sctp.protoinfo is not None and sctp.protoinfo.sctp is not None
    assert (sctp.protoinfo.sctp.vtag_original, sctp.protoinfo.sctp.vtag_reply) == (
        0x11110000,
        0x22220000,
    )
    gre = by_port[(47, 0x10)]
    assert gre.state == ipvsct.UdpState.UNREPLIED and gre.orig.dst_port == 0x20
    labelled = by_port[(17, 1)]
    assert labelled.labels == [1, 33]
    snat = by_port[(17, 5000)]
    assert str(snat.reply.dst) == "192.0.2.1"
    assert snat.status & ipvsct.Status.SRC_NAT
    icmp = [e for e in entries if e.proto == 1][0]
    assert (icmp.orig.icmp_type, icmp.orig.icmp_id, icmp.reply.icmp_type) == (8, 0x1234, 0)
    assert icmp.state is None
    icmp6 = [e for e in entries if e.proto == 58][0]
    assert (icmp6.orig.icmp_type, icmp6.orig.icmp_id, icmp6.reply.icmp_type) == (128, 0x5678, 129)
    assert icmp6.family == ipvsct.Family.IPV6


def test_decode_without_timeouts_leaves_state_timeout_unset() -> None:
    entries = ipvsct.decode(fixture("dump_all"))
    assert entries and all(isinstance(e, ipvsct.Entry) for e in entries)
    assert all(e.state_timeout is None for e in entries if isinstance(e, ipvsct.Entry))
    tcp = first(ipvsct.decode(fixture("policy_tcp")))
    assert isinstance(tcp, ipvsct.TimeoutPolicy) and tcp.name is None
    assert tcp.timeouts["established"] == 432000 and tcp.timeouts["unack"] == 300


def test_count_and_cpu_stats_match_the_text() -> None:
    g = first(ipvsct.decode(fixture("count")))
    assert isinstance(g, ipvsct.GlobalStats)
    lines = body_lines("count")
    assert g.entries == int(lines[0])
    assert g.max_entries == int(lines[1].split("=")[1])
    cpus = ipvsct.decode(fixture("cpu_stats"))
    rows = [line for line in body_lines("cpu_stats") if line.startswith("cpu=")]
    assert len(cpus) == len(rows) >= 1
    for c, row in zip(cpus, rows):
        assert isinstance(c, ipvsct.CpuStats)
        fields = dict(kv.split("=") for kv in row.split())
        assert c.cpu == int(fields.pop("cpu"))
        for k, v in fields.items():
            assert getattr(c, k) == int(v), (k, c)


NFCT_NAMES = {"unacknowledged": "unack"}


@pytest.mark.parametrize(
    "name", ["tcp", "udp", "udplite", "sctp", "icmp", "icmpv6", "gre", "generic"]
)
def test_policies_match_nfct(name: str) -> None:
    p = first(ipvsct.decode(fixture(f"policy_{name}")))
    assert isinstance(p, ipvsct.TimeoutPolicy)
    t = text(f"policy_{name}")
    assert p.l3proto == int(re.search(r"\.l3proto = (\d+)", t).group(1))  # type: ignore[union-attr]
    assert p.l4proto == int(re.search(r"\.l4proto = (\d+)", t).group(1))  # type: ignore[union-attr]
    shown = {
        NFCT_NAMES.get(k.lower(), k.lower()): int(v)
        for k, v in re.findall(r"^\s+\.([A-Z_0-9]+) = (\d+),", t, re.M)
    }
    assert shown, t
    assert {k: p.timeouts[k] for k in shown} == shown


def test_recorded_kernel_errors_raise_netlink_error() -> None:
    with pytest.raises(ipvsct.NetlinkError) as missing:
        ipvsct.decode(fixture("get_missing"))
    assert missing.value.errno == 2 and missing.value.message is None
    with pytest.raises(ipvsct.NetlinkError) as bad:
        ipvsct.decode(fixture("dump_bad_mark"))
    assert bad.value.errno == 34
    assert bad.value.message == "Attribute failed policy validation"
    assert bad.value.offset == 20
    with pytest.raises(ipvsct.NetlinkError) as dccp:
        ipvsct.decode(fixture("policy_dccp"))
    assert dccp.value.errno == 95


def test_every_shared_fixture_decodes_or_is_a_kernel_error() -> None:
    files = sorted(FIXTURES.glob("*.bin"))
    assert {f.stem for f in files} >= set(NEEDED)
    for f in files:
        if f.name.endswith(".request.bin"):
            continue
        try:
            items = ipvsct.decode(f.read_bytes())
        except ipvsct.NetlinkError:
            continue
        assert items, f


def nlmsg(mtype: int, flags: int, payload: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(payload), mtype, flags, 1, 0) + payload


def attr(kind: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * (-n % 4)


def test_hand_built_entry_and_typed_decode_errors() -> None:
    ip = attr(0x8001, attr(1, bytes([192, 0, 2, 1])) + attr(2, bytes([192, 0, 2, 2])))
    proto = attr(0x8002, attr(1, bytes([17])) + attr(2, b"\x30\x39") + attr(3, b"\x00\x35"))
    rip = attr(0x8001, attr(1, bytes([192, 0, 2, 2])) + attr(2, bytes([192, 0, 2, 1])))
    rproto = attr(0x8002, attr(1, bytes([17])) + attr(2, b"\x00\x35") + attr(3, b"\x30\x39"))
    body = (
        attr(0x8001, ip + proto)
        + attr(0x8002, rip + rproto)
        + attr(3, struct.pack(">I", 0x0E))
        + attr(7, struct.pack(">I", 77))
        + attr(8, struct.pack(">I", 0xBEEF))
        + attr(99, b"\x01\x02")
        # CTA_COUNTERS_ORIG with an attribute type this library does not know (7).
        + attr(0x8009, attr(1, struct.pack(">Q", 3)) + attr(2, struct.pack(">Q", 180)) + attr(7, b"xy"))
    )
    msg = nlmsg(0x0100, 0x2, bytes([2, 0, 0, 0]) + body)
    e = first(ipvsct.decode(msg + nlmsg(3, 0x2, b"\0\0\0\0")))
    assert isinstance(e, ipvsct.Entry)
    assert (str(e.orig.src), e.orig.src_port, e.orig.dst_port) == ("192.0.2.1", 12345, 53)
    assert e.state == ipvsct.UdpState.STREAM and e.timeout == 77 and e.mark == 0xBEEF
    assert e.status == ipvsct.Status.SEEN_REPLY | ipvsct.Status.ASSURED | ipvsct.Status.CONFIRMED
    assert [(a.kind, a.value) for a in e.unknown] == [(99, b"\x01\x02")]
    assert e.counters_orig is not None and (e.counters_orig.packets, e.counters_orig.bytes) == (3, 180)
    assert [(p, a.kind, a.value) for p, a in e.unknown_nested] == [(9, 7, b"xy")]
    assert bytearray(msg) and ipvsct.decode(bytearray(msg))[0] == e
    # The CTA_PROTO_SRC_PORT of the original tuple with 3 bytes instead of 2.
    bad = msg.replace(attr(2, b"\x30\x39"), struct.pack("=HH", 7, 2) + b"\x30\x39\x00\x00")
    with pytest.raises(ipvsct.DecodeError) as err:
        ipvsct.decode(bad)
    assert err.value.kind == "wrong_size"
    assert err.value.path == "CTA_TUPLE_ORIG/CTA_TUPLE_PROTO/CTA_PROTO_SRC_PORT"
    assert isinstance(err.value, ValueError) and isinstance(err.value, ipvsct.Error)
    assert err.value.offset is not None and 0 < err.value.offset < len(bad)
    # NFNL_SUBSYS_QUEUE (3) is not a conntrack subsystem.
    with pytest.raises(ipvsct.DecodeError) as unexpected:
        ipvsct.decode(nlmsg(0x0300, 0, b"\2\0\0\0"))
    assert unexpected.value.kind == "unexpected_message"
    assert ipvsct.decode(b"") == []


def test_random_and_mutated_bytes_raise_typed_errors() -> None:
    rng = random.Random(20261126)
    seeds = [fixture(n) for n in ("dump_all", "count", "policy_tcp", "cpu_stats")]
    kinds: Set[str] = set()
    outcomes = {"ok": 0, "decode": 0, "netlink": 0}
    for i in range(20000):
        if i % 2 == 0:
            data = rng.randbytes(rng.randrange(0, 200))
        else:
            base = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 8)):
                base[rng.randrange(len(base))] = rng.randrange(256)
            data = bytes(base[: rng.randrange(len(base) + 1)])
        try:
            ipvsct.decode(data)
            outcomes["ok"] += 1
        except ipvsct.DecodeError as e:
            outcomes["decode"] += 1
            assert e.kind is not None and e.path is not None and e.offset is not None
            assert 0 <= e.offset <= len(data) + 65536
            kinds.add(e.kind)
        except ipvsct.NetlinkError:
            outcomes["netlink"] += 1
        except ipvsct.Error:
            outcomes["netlink"] += 1
    assert outcomes["decode"] > 10000
    assert {"truncated", "length_too_small"} <= kinds


def test_every_truncation_of_a_dump_is_an_error_or_a_prefix() -> None:
    data = fixture("dump_all")
    full = ipvsct.decode(data)
    for n in range(len(data)):
        try:
            got = ipvsct.decode(data[:n])
        except ipvsct.DecodeError:
            continue
        assert got == full[: len(got)]


def test_fixture_dir_is_the_shared_one() -> None:
    assert FIXTURES == Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def test_decoded_objects_are_the_standard_ones() -> None:
    """Addresses (made without calling the ipaddress constructor), cached enum members and
    the Entry's member attributes behave exactly like freshly built standard objects."""
    import copy
    import ipaddress
    import pickle
    import weakref

    entries = [e for e in ipvsct.decode(fixture("dump_all")) if isinstance(e, ipvsct.Entry)]
    seen = 0
    for e in entries:
        for t in (e.orig, e.reply):
            for a in (t.src, t.dst):
                want = ipaddress.ip_address(str(a))
                assert type(a) is type(want)
                assert a == want and hash(a) == hash(want) and repr(a) == repr(want)
                assert int(a) == int(want) and a.packed == want.packed
                assert a.is_private == want.is_private
                assert pickle.loads(pickle.dumps(a)) == want and copy.copy(a) == want
                assert weakref.ref(a)() is a and not hasattr(a, "__dict__")
                if isinstance(a, ipaddress.IPv6Address):
                    assert isinstance(want, ipaddress.IPv6Address) and a.scope_id is None
                    assert a.ipv4_mapped == want.ipv4_mapped
                seen += 1
        # Repeated reads give the same objects (frozen entry).
        assert e.orig is e.orig and e.state is e.state
        assert e.orig == ipvsct.Tuple(
            e.orig.src,
            e.orig.dst,
            e.orig.proto,
            src_port=e.orig.src_port,
            dst_port=e.orig.dst_port,
            icmp_type=e.orig.icmp_type,
            icmp_code=e.orig.icmp_code,
            icmp_id=e.orig.icmp_id,
            zone=e.orig.zone,
        )
        if e.state is not None:
            assert e.state is type(e.state)(int(e.state))
        assert e.to_dict()["orig"] == e.orig.to_dict()
        assert e.to_dict()["timeout"] == e.timeout
        with pytest.raises(AttributeError):
            e.orig = e.reply  # type: ignore[misc]
        with pytest.raises(AttributeError):
            e.timeout = 1  # type: ignore[misc]
    assert seen == 4 * len(entries) and any(
        isinstance(e.orig.src, ipaddress.IPv6Address) for e in entries
    )


def test_entries_keep_their_values_while_others_come_and_go() -> None:
    """Entries are kept in recycled boxes: many decodings, some entries kept and most
    dropped, must leave every kept entry equal to a fresh decoding of the same bytes."""
    data = fixture("dump_all")
    fresh = [e.to_dict() for e in ipvsct.decode(data) if isinstance(e, ipvsct.Entry)]
    assert len(fresh) == 16
    kept: List[ipvsct.Entry] = []
    for round_ in range(200):
        entries = [e for e in ipvsct.decode(data) if isinstance(e, ipvsct.Entry)]
        kept.append(entries[round_ % len(entries)])
        del entries
    assert len(kept) == 200
    for i, e in enumerate(kept):
        assert e.to_dict() == fresh[i % len(fresh)], i

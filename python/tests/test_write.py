"""The write path against the real kernel, in namespaces the tests create (root): entries
created, updated, deleted and flushed, checked with ``conntrack -L -o xml``; batched
creation with per-item errors; expectations checked with ``conntrack -L expect -o xml``;
timeout policies checked with ``nfct timeout``."""

from __future__ import annotations

import errno
import shutil
import xml.etree.ElementTree as ET
from typing import Dict, List

import pytest

import ipvsct
from conftest import Namespace, XmlFlow, first, skip_or_fail


def tcp(sport: int, dport: int = 80, src: str = "10.3.0.1", dst: str = "10.3.0.2") -> ipvsct.Tuple:
    return ipvsct.Tuple(src, dst, "tcp", src_port=sport, dst_port=dport)


def by_sport(flows: List[XmlFlow]) -> Dict[int, XmlFlow]:
    return {int(f.orig["sport"]): f for f in flows if "sport" in f.orig}


def test_create_update_delete_match_conntrack_tools(netns: Namespace) -> None:
    ct = ipvsct.Conntrack(netns.name)
    ct.create(tcp(1000), timeout=300, state=ipvsct.TcpState.ESTABLISHED, mark=7,
              status=ipvsct.Status.ASSURED | ipvsct.Status.SEEN_REPLY)
    ct.create(tcp(1001), timeout=200, state="SYN_SENT", zone=3)
    ct.create(ipvsct.Tuple("fd00::1", "fd00::2", "udp", src_port=5, dst_port=53), timeout=100)
    ct.create(ipvsct.Tuple("10.3.0.5", "10.3.0.6", "sctp", src_port=9, dst_port=9), timeout=100,
              state=ipvsct.SctpState.ESTABLISHED, vtags=(11, 22))
    flows = netns.xml()
    assert len(flows) == 4
    x = by_sport(flows)
    assert x[1000].meta["state"] == "ESTABLISHED" and x[1000].meta["mark"] == "7"
    assert "assured" in x[1000].flags and "unreplied" not in x[1000].flags
    assert 298 <= int(x[1000].meta["timeout"]) <= 300
    assert x[1001].meta["state"] == "SYN_SENT" and x[1001].meta["zone"] == "3"
    assert "unreplied" in x[1001].flags
    got = ct.get(tcp(1001), zone=3)
    assert got is not None and got.zone == 3 and got.state == ipvsct.TcpState.SYN_SENT
    sctp = ct.list(proto="sctp")[0]
    assert sctp.protoinfo is not None and sctp.protoinfo.sctp is not None
    assert (sctp.protoinfo.sctp.vtag_original, sctp.protoinfo.sctp.vtag_reply) == (11, 22)

    # Update: timeout, mark under a mask, state.
    ct.update(tcp(1000), timeout=1000, mark=0x30, mark_mask=0xF0)
    ct.update(tcp(1001), zone=3, state="ESTABLISHED")
    x = by_sport(netns.xml())
    assert 998 <= int(x[1000].meta["timeout"]) <= 1000
    assert x[1000].meta["mark"] == str((7 & ~0xF0) ^ 0x30)
    assert x[1001].meta["state"] == "ESTABLISHED"
    with pytest.raises(ipvsct.NetlinkError) as missing:
        ct.update(tcp(4444), timeout=5)
    assert missing.value.errno == errno.ENOENT
    with pytest.raises(ValueError, match="nothing to change"):
        ct.update(tcp(1000))

    # Create again: EEXIST; recreate a dumped entry after deleting it.
    with pytest.raises(ipvsct.NetlinkError) as dup:
        ct.create(tcp(1000), timeout=5)
    assert dup.value.errno == errno.EEXIST
    e = ct.get(tcp(1000))
    assert e is not None
    ct.delete(e)
    assert ct.get(tcp(1000)) is None
    ct.create(e)
    again = ct.get(tcp(1000))
    assert again is not None and again.timeout is not None and again.timeout <= (e.timeout or 0)
    assert (again.mark, again.state, again.status & ipvsct.Status.ASSURED) == (
        e.mark, e.state, ipvsct.Status.ASSURED)

    # Delete by reply tuple, by id, with a wrong id.
    ct.delete(tcp(1001).reversed(), zone=3, reply=True)
    assert ct.get(tcp(1001), zone=3) is None
    with pytest.raises(ipvsct.NetlinkError) as wrong:
        ct.delete(again, id=(again.id or 0) + 1)
    assert wrong.value.errno == errno.ENOENT
    ct.delete(id=again.id)
    assert {int(f.orig.get("sport", 0)) for f in netns.xml()} == {5, 9}
    with pytest.raises(TypeError):
        ct.delete()
    with pytest.raises(ValueError, match="timeout"):
        ct.create(tcp(2000))


def test_flush_with_filters_matches_conntrack_tools(netns: Namespace) -> None:
    ct = ipvsct.Conntrack(netns.name)
    for i in range(6):
        ct.create(tcp(3000 + i), timeout=300, mark=i % 2)
    ct.create(ipvsct.Tuple("fd00::1", "fd00::2", "udp", src_port=1, dst_port=2), timeout=300, mark=1)
    ct.flush(family="ipv4", mark=1)
    left = by_sport(netns.xml())
    assert sorted(left) == [1, 3000, 3002, 3004]
    ct.flush(family="ipv6")
    assert sorted(by_sport(netns.xml())) == [3000, 3002, 3004]
    ct.flush(proto="tcp", src="10.3.0.1", dst_port=80)
    assert netns.xml() == []
    ct.create(tcp(1), timeout=10)
    ct.flush()
    assert ct.count() == 0


def test_create_many_reports_each_item(netns: Namespace) -> None:
    ct = ipvsct.Conntrack(netns.name)
    ct.create(tcp(5), timeout=100)
    items = [{"orig": tcp(p), "timeout": 600, "mark": p} for p in range(1, 2001)]
    res = ct.create_many(items, max_in_flight=64)
    assert (res.requests, res.succeeded, res.failed, res.lost) == (2000, 1999, [4], [])
    assert res.datagrams >= 2000 // 64 and not res.ok and res.elapsed > 0
    errs = res.errors
    assert len(errs) == 2000 and [i for i, e in enumerate(errs) if e is not None] == [4]
    e4 = errs[4]
    assert isinstance(e4, ipvsct.NetlinkError) and e4.errno == errno.EEXIST
    assert int(netns.conntrack("-C").strip()) == 2000
    flows = netns.xml("-m", "1500")
    assert len(flows) == 1 and first(flows).orig["sport"] == "1500"
    # Dumped entries go back in as they were.
    entries = ct.list(mark=(0, 1))
    ct.flush()
    res = ct.create_many(entries)
    # Even marks, and tcp(5) created without one.
    assert res.ok and res.succeeded == len(entries) == 1001
    assert {e.orig for e in ct.list()} == {e.orig for e in entries}
    with pytest.raises(ValueError, match="item 1"):
        ct.create_many([{"orig": tcp(1), "timeout": 1}, {"orig": tcp(2)}])
    with pytest.raises(TypeError, match="unknown key"):
        ct.create_many([{"orig": tcp(1), "timeout": 1, "colour": "red"}])


def test_dump_reader_thread_gives_the_same_entries(netns: Namespace) -> None:
    """A long dump received on the reader thread: the same entries, in the same order."""
    ct = ipvsct.Conntrack(netns.name)
    items = [{"orig": tcp(p), "timeout": 600} for p in range(1, 5001)]
    assert ct.create_many(items).ok
    off = ipvsct.Conntrack(netns.name, dump_reader=False)
    on = ipvsct.Conntrack(netns.name, dump_reader=True)
    assert (off.dump_reader, on.dump_reader) == (False, True)
    plain = off.dump()
    ids_off = [e.id for e in plain]
    threaded = on.dump()
    assert threaded.reader_report is None, "no report before the dump ends"
    ids_on = [e.id for e in threaded]
    assert len(ids_off) == 5000 and ids_on == ids_off
    assert plain.reader_report is None, "no thread, no report"
    report = threaded.reader_report
    assert report is not None
    # 32 KiB datagrams hold 100-200 entries; the thread takes over after two.
    assert 5000 / 200 - 2 <= report["datagrams"] <= 5000 / 100
    assert 1 <= report["queued_at_end"] <= 8
    assert abs(report["held_up"] - report["reader_waited"] - report["caller_behind_at_end"]) < 1e-6
    assert 0 <= report["held_up"] < 1.0 and report["caller_waited"] >= 0


def parse_expect_xml(text: str) -> List[Dict[str, str]]:
    """``conntrack -L expect -o xml``: one {"group.tag": text} per flow."""
    start = text.find("<expect>")
    if start < 0:
        return []
    out = []
    for flow in ET.fromstring(text[start:]).iter("flow"):
        d: Dict[str, str] = {}
        for layer in flow:
            for group in layer:
                if layer.tag == "meta" and group.text:
                    d[f"meta.{group.tag}"] = group.text
                for el in group:
                    if el.text:
                        d[f"{group.tag}.{el.tag}"] = el.text
        out.append(d)
    return out


def test_expectations_match_conntrack_tools(netns: Namespace) -> None:
    ct = ipvsct.Conntrack(netns.name)
    masters = [tcp(40000 + i, 21, "10.8.0.1", "10.8.0.2") for i in range(2)]
    for m in masters:
        ct.create(m, timeout=600, helper="ftp")
    data = [ipvsct.Tuple("10.8.0.2", "10.8.0.1", "tcp", src_port=0, dst_port=50000 + i) for i in range(2)]
    mask = ipvsct.Tuple("255.255.255.255", "255.255.255.255", "tcp", src_port=0, dst_port=0xFFFF)
    ct.create_expectation(masters[0], data[0], timeout=60, helper="ftp", mask=mask)
    ct.create_expectation(masters[1], data[1], timeout=60, helper="ftp",
                          flags=ipvsct.ExpectFlags.PERMANENT, class_=0)
    with pytest.raises(ipvsct.NetlinkError) as dup:
        ct.create_expectation(masters[0], data[0], timeout=60, helper="ftp", mask=mask)
    assert dup.value.errno == errno.EEXIST
    mine = {e.tuple.dst_port or 0: e for e in ct.expectations()}
    assert sorted(mine) == [50000, 50001]
    tool = {int(x["expected.dport"]): x for x in parse_expect_xml(
        netns.conntrack("-L", "expect", "-o", "xml"))}
    assert sorted(tool) == sorted(mine)
    for port, e in mine.items():
        x = tool[port]
        assert (str(e.master.src), e.master.src_port) == (x["master.src"], int(x["master.sport"]))
        assert (str(e.tuple.src), str(e.tuple.dst)) == (x["expected.src"], x["expected.dst"])
        assert e.mask.dst_port == int(x["mask.dport"]) == 0xFFFF
        assert e.helper == x["meta.helper-name"] == "ftp"
        assert e.timeout is not None and abs(e.timeout - int(x["meta.timeout"])) <= 2
        assert e.id is not None and e.family is ipvsct.Family.IPV4
    assert mine[50000].mask.src_port == 0
    assert mine[50001].flags is not None and mine[50001].flags & ipvsct.ExpectFlags.PERMANENT
    assert ct.expectations(family="ipv6") == []
    ct.delete_expectation(mine[50000])
    assert [e.tuple.dst_port for e in ct.expectations()] == [50001]
    with pytest.raises(ipvsct.NetlinkError) as gone:
        ct.delete_expectation(data[0])
    assert gone.value.errno == errno.ENOENT
    ct.flush_expectations(helper="ftp")
    assert ct.expectations() == [] and parse_expect_xml(
        netns.conntrack("-L", "expect", "-o", "xml")) == []


def nfct_policies(ns: Namespace) -> Dict[str, Dict[str, int]]:
    """``nfct timeout list``: {name: {state: seconds}} (names lower-case)."""
    out: Dict[str, Dict[str, int]] = {}
    cur: Dict[str, int] = {}
    for line in ns.exec("nfct", "timeout", "list").splitlines():
        line = line.strip()
        if line.endswith("= {") and line.startswith(".") and not line.startswith(".policy"):
            cur = {}
            out[line[1:].split()[0]] = cur
        elif line.startswith(".") and "=" in line and not line.startswith(".policy"):
            k, v = line[1:].rstrip(",").split(" = ")
            cur[k.lower()] = int(v)
    return out


def test_timeout_policies_match_nfct(netns: Namespace) -> None:
    if shutil.which("nfct") is None:
        skip_or_fail("nfct is missing (apt-get install -y nfct)")
    ct = ipvsct.Conntrack(netns.name)
    ct.add_timeout_policy("web", "tcp", {"established": 600, "time_wait": 5})
    ct.add_timeout_policy("dns", 17, {"unreplied": 3, "replied": 7}, family="ipv6")
    tool = nfct_policies(netns)
    assert sorted(tool) == ["dns", "web"]
    mine = {p.name or "": p for p in ct.timeout_policies()}
    assert sorted(mine) == ["dns", "web"]
    web, dns = mine["web"], mine["dns"]
    assert (web.l3proto, web.l4proto, dns.l3proto, dns.l4proto) == (2, 6, 10, 17)
    assert tool["web"]["l3proto"] == 2 and tool["dns"]["l3proto"] == 10
    assert web.timeouts["established"] == tool["web"]["established"] == 600
    assert web.timeouts["time_wait"] == tool["web"]["time_wait"] == 5
    # States not given take the namespace defaults.
    assert web.timeouts["syn_sent"] == tool["web"]["syn_sent"] == ct.default_timeouts().tcp.syn_sent
    assert dns.timeouts == {"unreplied": 3, "replied": 7}
    assert tool["dns"]["unreplied"] == 3 and tool["dns"]["replied"] == 7
    with pytest.raises(ipvsct.NetlinkError) as dup:
        ct.add_timeout_policy("web", "tcp", {"established": 1})
    assert dup.value.errno == errno.EEXIST
    ct.add_timeout_policy("web", "tcp", {"established": 900}, replace=True)
    assert nfct_policies(netns)["web"]["established"] == 900
    got = ct.timeout_policy("web")
    assert got is not None and got.timeouts["established"] == 900
    assert ct.timeout_policy("nope") is None
    with pytest.raises(ValueError, match="unknown timeout"):
        ct.add_timeout_policy("bad", "tcp", {"establishd": 1})
    ct.delete_timeout_policy("web")
    assert sorted(nfct_policies(netns)) == ["dns"]
    with pytest.raises(ipvsct.NetlinkError) as gone:
        ct.delete_timeout_policy("web")
    assert gone.value.errno == errno.ENOENT


def test_set_default_timeouts_changes_the_namespace(netns: Namespace) -> None:
    ct = ipvsct.Conntrack(netns.name)
    ct.set_default_timeouts("tcp", {"established": 4321, "close": 7})
    ct.set_default_timeouts("udp", {"replied": 77})
    assert netns.sysctl("net.netfilter.nf_conntrack_tcp_timeout_established") == "4321"
    assert netns.sysctl("net.netfilter.nf_conntrack_tcp_timeout_close") == "7"
    assert netns.sysctl("net.netfilter.nf_conntrack_udp_timeout_stream") == "77"
    t = ct.default_timeouts()
    assert (t.tcp.established, t.tcp.close, t.udp.replied) == (4321, 7, 77)
    # Entries dumped afterwards carry the new state timeout.
    ct.create(tcp(1), timeout=100, state="ESTABLISHED")
    e = ct.get(tcp(1))
    assert e is not None and e.state_timeout == 4321

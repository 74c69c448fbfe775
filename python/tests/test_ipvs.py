"""IPVS without IPVS in the host kernel: the recorded IPVS answers (``tests/fixtures/ipvs``,
made in the VM harness) decoded offline and compared with what ipvsadm printed for the
same state; netlink captures (``tests/fixtures/nlmon``) decoded by ``decode_pcap``; and
``Ipvs()`` failing with a clear ``UnsupportedError`` on a kernel without ``ip_vs``."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import ipvsct
from conftest import FIXTURES

IPVS = FIXTURES / "ipvs"
NLMON = FIXTURES / "nlmon"


def raw(name: str) -> bytes:
    p = IPVS / name
    if not p.is_file():
        pytest.fail(f"shared fixture {p} is missing")
    return p.read_bytes()


def family_id() -> int:
    fam = ipvsct.decode(raw("family.bin"))
    assert len(fam) == 1 and isinstance(fam[0], ipvsct.GenlFamily)
    assert fam[0].name == "IPVS" and fam[0].version == 1 and fam[0].id >= 16
    return fam[0].id


def services() -> List[ipvsct.Service]:
    out = ipvsct.decode(raw("services.bin"), ipvs_family=family_id())
    assert all(isinstance(s, ipvsct.Service) for s in out)
    return [s for s in out if isinstance(s, ipvsct.Service)]


def ipvsadm_key(line: str) -> str:
    """`TCP  10.0.0.1:80 rr …` / `FWM  8 IPv6 lc` → the text ServiceKey prints."""
    f = line.split()
    if f[0] == "FWM":
        return f"FWM {f[1]}" + (" inet6" if len(f) > 2 and f[2] == "IPv6" else "")
    return f"{f[0]} {f[1]}"


def ipvsadm_table(name: str) -> Dict[str, Tuple[List[str], List[List[str]]]]:
    """Service key → (the service line's words, the words of each destination line)."""
    out: Dict[str, Tuple[List[str], List[List[str]]]] = {}
    cur: Optional[str] = None
    for line in (IPVS / name).read_text().splitlines()[3:]:
        if line.startswith("  ->"):
            assert cur is not None
            out[cur][1].append(line.split()[1:])
        elif line.strip():
            cur = ipvsadm_key(line)
            out[cur] = (line.split(), [])
    return out


def test_services_match_ipvsadm() -> None:
    svcs = {str(s.key): s for s in services()}
    table = ipvsadm_table("ipvsadm-Ln.txt")
    assert sorted(svcs) == sorted(table)
    for key, (words, _) in table.items():
        s = svcs[key]
        sched_at = 2 if words[0] != "FWM" or words[2] != "IPv6" else 3
        assert s.scheduler == words[sched_at], key
        if "persistent" in words:
            assert "PERSISTENT" in s.flags and s.timeout == int(words[words.index("persistent") + 1])
        else:
            assert "PERSISTENT" not in s.flags and s.timeout == 0
        if "mask" in words:
            assert s.netmask == words[words.index("mask") + 1]
        if "pe" in words:
            assert s.pe_name == words[words.index("pe") + 1]
        assert "HASHED" in s.flags
    mh = svcs["SCTP 10.0.0.1:3000"]
    assert "SCHED2" in mh.flags  # ipvsadm's "(mh-port)"
    stats = ipvsadm_table("ipvsadm-stats.txt")
    for key, (words, _) in stats.items():
        st = svcs[key].stats64
        assert st is not None and st.width == 64
        conns, inpkts, outpkts, inbytes, outbytes = map(int, words[-5:])
        assert (st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes) == (
            conns, inpkts, outpkts, inbytes, outbytes), key
    k = svcs["TCP 10.0.0.1:80"].key
    assert (k.protocol, k.addr, k.port, k.fwmark, k.family) == (
        "TCP", ipaddress.IPv4Address("10.0.0.1"), 80, None, ipvsct.Family.IPV4)
    f8 = svcs["FWM 8 inet6"].key
    assert (f8.fwmark, f8.family, f8.protocol) == (8, ipvsct.Family.IPV6, None)
    one = ipvsct.decode(raw("service-get.bin"), ipvs_family=family_id())
    assert one == [svcs["TCP 10.0.0.1:80"]]


def test_destinations_match_ipvsadm() -> None:
    fid = family_id()
    table = ipvsadm_table("ipvsadm-Ln.txt")
    thresholds = ipvsadm_table("ipvsadm-thresholds.txt")
    tunnels = ipvsadm_table("ipvsadm-tun-info.txt")
    manifest = (IPVS / "dests.manifest").read_text().split("\n")
    checked = 0
    for line in filter(None, manifest):
        fname, spec = line.split()
        key = ipvsct.ServiceKey.parse(spec)
        dests = ipvsct.decode(raw(fname), ipvs_family=fid)
        want = table[str(key)][1]
        assert len(dests) == len(want), spec
        # ipvsadm sorts destinations its own way: match them by address.
        by_addr = {w[0]: (w, th, tun) for w, th, tun in zip(
            want, thresholds[str(key)][1], tunnels[str(key)][1])}
        for d in dests:
            assert isinstance(d, ipvsct.Destination)
            host = str(d.addr) if d.addr.version == 4 else f"[{d.addr}]"
            w, th, tun = by_addr.pop(f"{host}:{d.port}")
            forward = {"masq": "Masq", "route": "Route", "tunnel": "Tunnel", "local": "Local"}
            assert forward[d.fwd_method] == w[1]
            assert [d.weight, d.active_conns, d.inactive_conns] == [int(x) for x in w[2:5]]
            assert [d.upper_threshold, d.lower_threshold] == [int(th[1]), int(th[2])]
            if d.fwd_method == "tunnel":
                assert tun[2].split(":")[0] == d.tun_type
                if d.tun_type == "gue":
                    assert d.tun_port == int(tun[2].split(":")[1])
            d_dict = d.to_dict()
            assert d_dict["addr"] == d.addr and isinstance(d_dict["stats64"], dict)
            checked += 1
    assert checked == 11


def test_config_daemons_info_match_ipvsadm() -> None:
    fid = family_id()
    (cfg,) = ipvsct.decode(raw("config.bin"), ipvs_family=fid)
    assert isinstance(cfg, ipvsct.IpvsTimeouts)
    m = re.search(r"(\d+) (\d+) (\d+)", (IPVS / "ipvsadm-timeout.txt").read_text())
    assert m is not None and (cfg.tcp, cfg.tcp_fin, cfg.udp) == tuple(int(x) for x in m.groups())
    daemons = ipvsct.decode(raw("daemons.bin"), ipvs_family=fid)
    lines = (IPVS / "ipvsadm-daemon.txt").read_text().splitlines()
    assert len(daemons) == len(lines) == 2
    for d, line in zip(daemons, lines):
        assert isinstance(d, ipvsct.SyncDaemon)
        kv = dict(x.split("=") for x in re.findall(r"\w+=[^,)]+", line))
        assert line.startswith(d.state)
        assert (d.mcast_ifn, d.sync_id, d.sync_maxlen) == (kv["mcast"], int(kv["syncid"]), int(kv["maxlen"]))
        assert (str(d.mcast_group), d.mcast_port, d.mcast_ttl) == (kv["group"], int(kv["port"]), int(kv["ttl"]))
    (info,) = ipvsct.decode(raw("info.bin"), ipvs_family=fid)
    assert isinstance(info, ipvsct.IpvsInfo)
    head = (IPVS / "ipvsadm-Ln.txt").read_text().splitlines()[0]
    assert head == f"IP Virtual Server version {info.version} (size={info.conn_tab_size})"
    assert info.version_code == 0x010201


def test_family_found_in_the_same_bytes_and_required_otherwise() -> None:
    # An nlctrl answer earlier in the data tells which messages are IPVS.
    both = ipvsct.decode(raw("family.bin") + raw("services.bin"))
    assert isinstance(both[0], ipvsct.GenlFamily) and both[1:] == services()
    with pytest.raises(ipvsct.DecodeError) as e:
        ipvsct.decode(raw("services.bin"))
    assert e.value.kind == "unexpected_message"


def test_corrupt_ipvs_bytes_raise_decode_errors() -> None:
    fid = family_id()
    good = raw("dests-4.bin") + raw("services.bin")
    rng = random.Random(5)
    errors = 0
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        try:
            out = ipvsct.decode(bytes(data), ipvs_family=fid)
        except ipvsct.DecodeError:
            errors += 1
        except ipvsct.NetlinkError:
            errors += 1
        else:
            for o in out:
                o.to_dict()
    assert errors > 100


def test_service_key_api() -> None:
    k = ipvsct.ServiceKey("tcp", "10.0.0.1", 80)
    assert k == ipvsct.ServiceKey.parse("tcp:10.0.0.1:80") == ipvsct.ServiceKey(6, ipaddress.ip_address("10.0.0.1"), 80)
    assert hash(k) == hash(ipvsct.ServiceKey.parse("TCP:10.0.0.1:80"))
    assert str(k) == "TCP 10.0.0.1:80" and k.spec() == "tcp:10.0.0.1:80"
    assert repr(k) == 'ServiceKey.parse("tcp:10.0.0.1:80")'
    v6 = ipvsct.ServiceKey.parse("udp:[2001:db8::1]:53")
    assert v6.family is ipvsct.Family.IPV6 and v6.spec() == "udp:[2001:db8::1]:53"
    fw = ipvsct.ServiceKey.from_fwmark(7, family="ipv6")
    assert fw == ipvsct.ServiceKey.parse("fwmark6:7") and fw.to_dict()["fwmark"] == 7
    with pytest.raises(ValueError):
        ipvsct.ServiceKey("icmp", "10.0.0.1", 1)
    with pytest.raises(ValueError):
        ipvsct.ServiceKey.parse("tcp:nowhere")


def test_ipvs_without_the_kernel_module_is_unsupported() -> None:
    if Path("/proc/net/ip_vs").exists():
        # A kernel with IPVS: the client opens and answers.
        with ipvsct.Ipvs() as ipvs:
            assert ipvs.info().version.count(".") == 2
        return
    with pytest.raises(ipvsct.UnsupportedError) as e:
        ipvsct.Ipvs()
    assert e.value.feature == "IPVS"
    assert "not registered" in str(e.value) and "IPVS" in str(e.value)
    assert isinstance(e.value, ipvsct.Error)


# ---- captures -------------------------------------------------------------------


def test_decode_pcap_of_an_ipvs_query_matches_what_it_printed() -> None:
    cap = ipvsct.decode_pcap(NLMON / "ipvsct-ipvs.pcap")
    printed: List[Dict[str, Any]] = json.loads((NLMON / "ipvsct-ipvs.json").read_text())
    assert cap.ipvs_family == 32 and cap.records == 15 and len(cap) == len(cap.messages)
    svcs = cap.bodies("ipvs_service")
    assert len(svcs) == len(printed) == 2
    for s, p in zip(svcs, printed):
        ps = p["service"]
        assert s.scheduler == ps["scheduler"] and s.flags == ps["flags"]
        target = ps["key"]["target"]
        if "inet" in target:
            assert (s.key.protocol, str(s.key.addr), s.key.port) == (
                target["inet"]["protocol"], target["inet"]["addr"], target["inet"]["port"])
        else:
            assert s.key.fwmark == target["fwmark"]
    dests = cap.bodies("ipvs_dest")
    want = [d for p in printed for d in p["dests"]]
    assert [(str(d.addr), d.port, d.fwd_method, d.weight) for d in dests] == [
        (d["addr"], d["port"], d["fwd_method"], d["weight"]) for d in want]
    first = cap.messages[0]
    assert (first.direction, first.kind, first.name, first.protocol) == (
        "sent", "request", "CTRL_CMD_GETFAMILY", 16)
    fam = cap.bodies("family")
    assert len(fam) == 1 and fam[0].name == "IPVS" and fam[0].id == 32
    assert first.to_dict()["name"] == "CTRL_CMD_GETFAMILY"


def test_decode_pcap_of_tcpdump_matches_conntrack_tools() -> None:
    cap = ipvsct.decode_pcap(NLMON / "nlmon.pcap")
    assert cap.records == 106
    ng = ipvsct.decode_pcap(NLMON / "nlmon.pcapng")
    assert [(m.kind, m.name, m.seq) for m in ng.messages] == [(m.kind, m.name, m.seq) for m in cap.messages]
    # The listing: entries as `conntrack -L` printed them (ids, marks, states).
    listed = {}
    for line in (NLMON / "ct-list.txt").read_text().splitlines():
        if "id=" in line:
            f = line.split()
            listed[int(f[-1][3:])] = f
    entries = {e.id: e for e in cap.bodies("entry")}
    assert set(listed) <= set(entries)
    for ident, f in listed.items():
        e = entries[ident]
        assert e.family.name.lower() == f[0] and str(e.proto) == f[3]
        kv: Dict[str, str] = {}
        for x in f:
            if "=" in x:
                kv.setdefault(*x.split("=", 1))  # the original direction comes first
        assert str(e.orig.src) == kv["src"] and e.mark == int(kv["mark"])
    (tw_id,) = [i for i, f in listed.items() if "TIME_WAIT" in f]
    assert entries[tw_id].state == ipvsct.TcpState.TIME_WAIT and entries[tw_id].mark == 42
    # The events conntrack -E printed are in the capture too (NEW x3, DESTROY x1).
    event_ids = []
    for line in (NLMON / "ct-events.txt").read_text().splitlines():
        m = re.search(r"id=(\d+)", line)
        if m:
            event_ids.append(int(m.group(1)))
    assert set(event_ids) <= set(entries)
    errors = cap.bodies("error")
    assert all(isinstance(x, ipvsct.NetlinkError) for x in errors)
    svcs = cap.bodies("ipvs_service")
    assert sorted(str(s.key) for s in svcs) >= ["FWM 7", "TCP 10.9.0.100:80"]


def test_decode_pcap_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ipvsct.decode_pcap(tmp_path / "missing.pcap")
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all" * 10)
    with pytest.raises(ipvsct.DecodeError, match="pcap"):
        ipvsct.decode_pcap(bad)
    # A capture cut in the middle of a record fails cleanly, never crashes.
    data = (NLMON / "nlmon.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    for n in (24, 40, len(data) // 2, len(data) - 3):
        cut.write_bytes(data[:n])
        try:
            c = ipvsct.decode_pcap(cut)
        except ipvsct.DecodeError:
            continue
        assert c.records <= 106
    assert os.path.exists(cut)

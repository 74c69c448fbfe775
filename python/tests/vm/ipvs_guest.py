"""ipvsct.Ipvs against a real ip_vs, compared field by field with ipvsadm.

Runs inside the QEMU guest of the VM harness (``tests/vm/python/run.sh`` boots it and
``tests/vm/python/guest.sh`` builds the lab: VIPs 10.0.0.1-3 and 2001:db8::1 on ``vip0``,
namespaces ``client`` 10.0.1.2, ``rs1`` 10.0.2.2 and ``rs2`` 10.0.3.2 with busybox httpd
on port 80, an empty namespace ``ipvs2``, ``sync0`` 10.9.9.1/24 for the sync daemon).
The guest has no pytest: this is a plain script. Every ``test_*`` function runs on an
empty IPVS table; the last line is ``N passed, M failed`` and the exit status is 1 when
anything failed. ``ipvs_guest.py NAME`` runs only the tests whose name contains NAME.

The file is not named ``test_*.py``: pytest on the host must not collect it (there is no
ip_vs there); mypy --strict checks it with the other tests.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple, Type

import ipvsct

IPVSADM = os.environ.get("IPVSADM", "/usr/sbin/ipvsadm")
IP = os.environ.get("IP", "/usr/sbin/ip")
VIP = "10.0.0.1"
RS = ("10.0.2.2", "10.0.3.2")
REQUESTS = 10

# ipvsadm's names of the scheduler flags, by scheduler (ipvsadm -b).
SCHED_FLAGS = {
    "sh": {"sh-fallback": "SCHED1", "sh-port": "SCHED2"},
    "mh": {"mh-fallback": "SCHED1", "mh-port": "SCHED2"},
}
FORWARD = {"masq": "Masq", "route": "Route", "tunnel": "Tunnel", "local": "Local"}
FORWARD_OPT = {"-m": "masq", "-g": "route", "-i": "tunnel"}


# ---- running things -------------------------------------------------------------------


def run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({p.returncode}): {p.stdout}{p.stderr}")
    return p


def adm(*args: str, ns: Optional[str] = None) -> str:
    """Runs ipvsadm (in namespace ``ns`` when given) and returns its output."""
    argv = [IPVSADM, *args]
    if ns is not None:
        argv = [IP, "netns", "exec", ns, *argv]
    return run(argv).stdout


def restore(lines: str, ns: Optional[str] = None) -> None:
    """``ipvsadm -R`` of the given rules."""
    argv = [IPVSADM, "-R"]
    if ns is not None:
        argv = [IP, "netns", "exec", ns, *argv]
    p = subprocess.run(argv, input=lines, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"ipvsadm -R failed: {p.stdout}{p.stderr}\n{lines}"


def wait_for(what: str, cond: Callable[[], bool], secs: float = 10.0) -> None:
    deadline = time.monotonic() + secs
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {secs} s waiting for {what}")
        time.sleep(0.25)


# ---- what ipvsadm prints, parsed -----------------------------------------------------


def key_of_words(w: Sequence[str]) -> str:
    """The first words of an -Ln service line (`TCP 10.0.0.1:80`, `FWM 8 IPv6`) as the
    text ``str(ServiceKey)`` prints."""
    if w[0] == "FWM":
        return f"FWM {w[1]}" + (" inet6" if len(w) > 2 and w[2] == "IPv6" else "")
    return f"{w[0]} {w[1]}"


def endpoint(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> str:
    return f"{addr}:{port}" if addr.version == 4 else f"[{addr}]:{port}"


Table = Dict[str, Tuple[List[str], Dict[str, List[str]]]]


def listing(*opts: str, ns: Optional[str] = None) -> Table:
    """``ipvsadm -Ln OPTS``: service key -> (service line words, dest endpoint -> words)."""
    out: Table = {}
    cur: Optional[str] = None
    for line in adm("-L", "-n", *opts, ns=ns).splitlines():
        if not line.strip() or line.startswith(("IP Virtual Server", "Prot ", "  -> RemoteAddress")):
            continue
        if line.startswith("  -> "):
            assert cur is not None, line
            w = line.split()[1:]
            out[cur][1][w[0]] = w[1:]
        else:
            w = line.split()
            cur = key_of_words(w)
            out[cur] = (w, {})
    return out


@dataclass
class SvcRule:
    """One ``-A`` line of ``ipvsadm -S -n``."""

    key: str
    sched: str = ""
    persistent: Optional[int] = None
    netmask: Optional[str] = None
    pe: Optional[str] = None
    sched_flags: Set[str] = field(default_factory=set)
    ops: bool = False
    dests: Dict[str, "DestRule"] = field(default_factory=dict)


@dataclass
class DestRule:
    """One ``-a`` line of ``ipvsadm -S -n``."""

    method: str
    weight: int
    tun_type: Optional[str] = None
    tun_port: Optional[int] = None
    tun_csum: Optional[str] = None


def rule_key(args: List[str]) -> Tuple[str, List[str]]:
    """Takes the service options off an -S line: (key text, the rest)."""
    opt, val = args[0], args[1]
    rest = args[2:]
    if opt == "-f":
        v6 = "-6" in rest
        rest = [a for a in rest if a != "-6"]
        return f"FWM {val}" + (" inet6" if v6 else ""), rest
    proto = {"-t": "TCP", "-u": "UDP", "--sctp-service": "SCTP"}[opt]
    return f"{proto} {val}", rest


def saved(ns: Optional[str] = None) -> Dict[str, SvcRule]:
    """``ipvsadm -S -n`` parsed."""
    svcs: Dict[str, SvcRule] = {}
    for line in adm("-S", "-n", ns=ns).splitlines():
        a = line.split()
        if not a:
            continue
        key, rest = rule_key(a[1:])
        if a[0] == "-A":
            s = SvcRule(key)
            i = 0
            while i < len(rest):
                o = rest[i]
                if o == "-o":
                    s.ops = True
                    i += 1
                    continue
                v = rest[i + 1]
                if o == "-s":
                    s.sched = v
                elif o == "-p":
                    s.persistent = int(v)
                elif o == "-M":
                    s.netmask = v
                elif o == "--pe":
                    s.pe = v
                elif o == "-b":
                    s.sched_flags = set(v.split(","))
                else:
                    raise AssertionError(f"unknown service option {o} in {line!r}")
                i += 2
            svcs[key] = s
        else:
            assert a[0] == "-a", line
            assert rest[0] == "-r", line
            d = DestRule(method="", weight=-1)
            addr = rest[1]
            i = 2
            while i < len(rest):
                o = rest[i]
                if o in FORWARD_OPT:
                    d.method = FORWARD_OPT[o]
                    i += 1
                elif o in ("--tun-nocsum", "--tun-csum", "--tun-remcsum"):
                    d.tun_csum = o
                    i += 1
                elif o == "-w":
                    d.weight = int(rest[i + 1])
                    i += 2
                elif o == "--tun-type":
                    d.tun_type = rest[i + 1]
                    i += 2
                elif o == "--tun-port":
                    d.tun_port = int(rest[i + 1])
                    i += 2
                else:
                    raise AssertionError(f"unknown destination option {o} in {line!r}")
            svcs[key].dests[addr] = d
    return svcs


def timeouts_of_ipvsadm() -> Tuple[int, int, int]:
    m = re.search(r"Timeout \(tcp tcpfin udp\): (\d+) (\d+) (\d+)", adm("-L", "--timeout"))
    assert m is not None
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


# ---- ipvsct against ipvsadm ----------------------------------------------------------------

TUN_FLAGS_TEXT = {0: "-c", 1: "+c", 2: "r+c"}  # IP_VS_TUNNEL_ENCAP_FLAG_{NOCSUM,CSUM,REMCSUM}
TUN_FLAGS_OPT = {0: "--tun-nocsum", 1: "--tun-csum", 2: "--tun-remcsum"}


def stat_fields(st: Optional[ipvsct.IpvsStats]) -> List[int]:
    assert st is not None
    return [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes]


def rate_fields(st: Optional[ipvsct.IpvsStats]) -> List[int]:
    assert st is not None
    return [st.cps, st.inpps, st.outpps, st.inbps, st.outbps]


def check_stats(obj: ipvsct.Service | ipvsct.Destination, words: List[str], what: str) -> None:
    s64, s32 = obj.stats64, obj.stats
    assert s64 is not None and s64.width == 64, what
    assert stat_fields(s64) == [int(x) for x in words[-5:]], (what, stat_fields(s64), words)
    # The 32-bit counters are the same numbers, truncated.
    assert s32 is not None and s32.width == 32, what
    assert stat_fields(s32) == [v & 0xFFFFFFFF for v in stat_fields(s64)], what


def compare_with_ipvsadm(ipvs: ipvsct.Ipvs, ns: Optional[str] = None) -> int:
    """Everything ipvsct reads about services and destinations against ipvsadm's
    -S, -Ln, --stats, --rate, --thresholds, --persistent-conn and --tun-info output.
    Returns the number of destinations checked."""
    rules = saved(ns)
    plain = listing("--exact", ns=ns)
    stats = listing("--stats", "--exact", ns=ns)
    thresholds = listing("--thresholds", ns=ns)
    persist = listing("--persistent-conn", ns=ns)
    tun = listing("--tun-info", ns=ns)
    svcs = ipvs.services()
    assert sorted(str(s.key) for s in svcs) == sorted(rules), (
        [str(s.key) for s in svcs], sorted(rules))
    n = 0
    for s in svcs:
        k = str(s.key)
        r = rules[k]
        assert s.scheduler == r.sched, k
        assert "HASHED" in s.flags, (k, s.flags)
        if r.persistent is not None:
            assert "PERSISTENT" in s.flags and s.timeout == r.persistent, (k, s.flags, s.timeout)
        else:
            assert "PERSISTENT" not in s.flags and s.timeout == 0, (k, s.flags, s.timeout)
        if r.netmask is not None:
            assert s.netmask == r.netmask, (k, s.netmask, r.netmask)
        assert s.pe_name == r.pe, (k, s.pe_name)
        want_flags = {SCHED_FLAGS[r.sched][f] for f in r.sched_flags}
        got_flags = {f for f in s.flags if f.startswith("SCHED")}
        assert got_flags == want_flags, (k, s.flags, r.sched_flags)
        assert ("ONEPACKET" in s.flags) == r.ops, (k, s.flags)
        assert s.key == ipvsct.ServiceKey.parse(s.key.spec()), k
        one = ipvs.service(s.key)  # the single-service GET
        assert one is not None and (one.key, one.scheduler, one.flags, one.timeout, one.netmask) == (
            s.key, s.scheduler, s.flags, s.timeout, s.netmask), (k, one)
        check_stats(s, stats[k][0], k)
        dests = ipvs.destinations(s)
        by_ep = {endpoint(d.addr, d.port): d for d in dests}
        assert sorted(by_ep) == sorted(r.dests), (k, sorted(by_ep), sorted(r.dests))
        assert sorted(by_ep) == sorted(plain[k][1]), k
        for ep, d in by_ep.items():
            dr = r.dests[ep]
            what = f"{k} -> {ep}"
            assert d.service == s.key, what
            assert d.family == s.key.family or s.key.fwmark is not None, what
            assert d.fwd_method == dr.method, (what, d.fwd_method, dr.method)
            assert d.weight == dr.weight, (what, d.weight, dr.weight)
            pw = plain[k][1][ep]
            assert [FORWARD[d.fwd_method], d.weight, d.active_conns, d.inactive_conns] == [
                pw[0], int(pw[1]), int(pw[2]), int(pw[3])], (what, pw)
            tw = thresholds[k][1][ep]
            assert [d.upper_threshold, d.lower_threshold] == [int(tw[0]), int(tw[1])], (what, tw)
            cw = persist[k][1][ep]
            assert [d.weight, d.persist_conns] == [int(cw[0]), int(cw[1])], (what, cw)
            info = tun[k][1][ep][1]
            if d.fwd_method == "tunnel":
                assert d.tun_type == (dr.tun_type or "ipip"), (what, d.tun_type)
                parts = info.split(":")
                assert parts[0] == d.tun_type, (what, info)
                if d.tun_type == "gue":
                    assert d.tun_port == dr.tun_port == int(parts[1]), (what, d.tun_port, info)
                if d.tun_type in ("gue", "gre"):
                    assert d.tun_flags is not None and TUN_FLAGS_TEXT[d.tun_flags] == parts[-1], (
                        what, d.tun_flags, info)
                    assert TUN_FLAGS_OPT[d.tun_flags] == dr.tun_csum, (what, dr.tun_csum)
            else:
                assert info == "n/a", (what, info)
            check_stats(d, stats[k][1][ep], what)
            n += 1
    return n


# ---- the tests ----------------------------------------------------------------------------


def test_info_and_family() -> None:
    with ipvsct.Ipvs() as ipvs:
        info = ipvs.info()
        head = adm("-L", "-n").splitlines()[0]
        assert head == f"IP Virtual Server version {info.version} (size={info.conn_tab_size})", head
        major, minor, patch = (int(x) for x in info.version.split("."))
        assert info.version_code == (major << 16) | (minor << 8) | patch
        with open("/sys/module/ip_vs/parameters/conn_tab_bits") as f:
            assert info.conn_tab_size == 1 << int(f.read()), info
        assert ipvs.family_id >= 16 and ipvs.netns is None and not ipvs.closed
        assert ipvs.services() == []
    assert ipvs.closed
    try:
        ipvs.services()
    except ipvsct.Error as e:
        assert "closed" in str(e), e
    else:
        raise AssertionError("a closed Ipvs answered")


def test_timeouts_both_ways() -> None:
    before = timeouts_of_ipvsadm()
    ipvs = ipvsct.Ipvs()
    try:
        c = ipvs.config()
        assert (c.tcp, c.tcp_fin, c.udp) == before
        ipvs.set_timeouts(tcp=1000, tcp_fin=100, udp=200)
        assert timeouts_of_ipvsadm() == (1000, 100, 200)
        ipvs.set_timeouts(udp=250)  # the others stay
        assert timeouts_of_ipvsadm() == (1000, 100, 250)
        adm("--set", "777", "66", "55")
        c = ipvs.config()
        assert (c.tcp, c.tcp_fin, c.udp) == (777, 66, 55)
        assert c.to_dict() == {"tcp": 777, "tcp_fin": 66, "udp": 55}
    finally:
        adm("--set", *(str(x) for x in before))
    c = ipvs.config()
    assert (c.tcp, c.tcp_fin, c.udp) == before


def add_lab_by_ipvsct(ipvs: ipvsct.Ipvs, vip: str) -> None:
    tcp = f"tcp:{vip}:80"
    ipvs.add_service(tcp, "rr")
    ipvs.add_service(f"udp:{vip}:53", "wlc", persistent=300, netmask="255.255.255.0")
    ipvs.add_service("tcp:[2001:db8::1]:443", "sh", persistent=60, netmask=64,
                     flags=["sched1", "sched2"])
    ipvs.add_service(ipvsct.ServiceKey.from_fwmark(7), "lc")
    ipvs.add_service(ipvsct.ServiceKey.from_fwmark(8, family="ipv6"), "mh", flags=["sched2"])
    ipvs.add_service(f"udp:{vip}:5060", "rr", persistent=100, pe="sip")
    ipvs.add_service(f"udp:{vip}:123", "rr", flags=["onepacket"])
    ipvs.add_service(f"sctp:{vip}:3868", "wrr")
    ipvs.add_destination(tcp, "10.0.2.2", 80, method="masq", weight=3,
                         upper_threshold=100, lower_threshold=50)
    ipvs.add_destination(tcp, "10.0.3.2", 80, method="route", weight=0)
    ipvs.add_destination(tcp, "10.0.4.2", 80, method="tunnel", tun_type="gue", tun_port=6080,
                         tun_flags=0)
    ipvs.add_destination(tcp, "10.0.5.2", 80, method="tunnel", tun_type="gre", tun_flags=1)
    ipvs.add_destination(tcp, "10.0.6.2", 80, method="tunnel")
    ipvs.add_destination("tcp:[2001:db8::1]:443", "2001:db8::2", 443, weight=2)
    ipvs.add_destination(ipvsct.ServiceKey.from_fwmark(7), "10.0.2.2", 0, method="route")
    ipvs.add_destination(f"sctp:{vip}:3868", "10.0.2.2", 3868, weight=5)
    ipvs.add_destination(f"sctp:{vip}:3868", "10.0.3.2", 3868, weight=1)


def test_services_made_by_ipvsct_as_ipvsadm_shows_them() -> None:
    ipvs = ipvsct.Ipvs()
    add_lab_by_ipvsct(ipvs, "10.0.0.3")
    rules = saved()
    # What was asked for is what ipvsadm sees...
    t = rules["TCP 10.0.0.3:80"]
    assert (t.sched, t.persistent, t.pe, t.ops) == ("rr", None, None, False)
    got = {ep: (d.method, d.weight, d.tun_type, d.tun_port, d.tun_csum) for ep, d in t.dests.items()}
    assert got == {
        "10.0.2.2:80": ("masq", 3, None, None, None),
        "10.0.3.2:80": ("route", 0, None, None, None),
        "10.0.4.2:80": ("tunnel", 1, "gue", 6080, "--tun-nocsum"),
        "10.0.5.2:80": ("tunnel", 1, "gre", None, "--tun-csum"),
        "10.0.6.2:80": ("tunnel", 1, "ipip", None, None),  # ipvsct sends the type: -S prints it
    }, got
    u = rules["UDP 10.0.0.3:53"]
    assert (u.sched, u.persistent, u.netmask) == ("wlc", 300, "255.255.255.0")
    v6 = rules["TCP [2001:db8::1]:443"]
    assert (v6.sched, v6.persistent, v6.netmask, v6.sched_flags) == ("sh", 60, "64", {"sh-fallback", "sh-port"})
    assert v6.dests["[2001:db8::2]:443"].method == "masq" and v6.dests["[2001:db8::2]:443"].weight == 2
    assert rules["FWM 7"].sched == "lc" and rules["FWM 7"].dests["10.0.2.2:0"].method == "route"
    assert rules["FWM 8 inet6"].sched_flags == {"mh-port"}
    assert (rules["UDP 10.0.0.3:5060"].pe, rules["UDP 10.0.0.3:5060"].persistent) == ("sip", 100)
    assert rules["UDP 10.0.0.3:123"].ops
    assert {ep: d.weight for ep, d in rules["SCTP 10.0.0.3:3868"].dests.items()} == {
        "10.0.2.2:3868": 5, "10.0.3.2:3868": 1}
    th = listing("--thresholds")["TCP 10.0.0.3:80"][1]["10.0.2.2:80"]
    assert th[:2] == ["100", "50"], th
    # ...and what ipvsct reads back is what ipvsadm shows.
    assert compare_with_ipvsadm(ipvs) == 9


def test_services_made_by_ipvsadm_as_ipvsct_reads_them() -> None:
    restore(
        "-A -t 10.0.0.2:80 -s wrr -p 120 -M 255.255.0.0\n"
        "-a -t 10.0.0.2:80 -r 10.0.2.2:80 -m -w 7 -x 30 -y 20\n"
        "-a -t 10.0.0.2:80 -r 10.0.3.2:80 -g -w 2\n"
        "-a -t 10.0.0.2:80 -r 10.0.4.2:80 -i -w 1 --tun-type gue --tun-port 7777 --tun-remcsum\n"
        "-A -u [2001:db8::1]:53 -s sed\n"
        "-a -u [2001:db8::1]:53 -r [2001:db8::5]:5353 -m -w 4\n"
        "-a -u [2001:db8::1]:53 -r [2001:db8::6]:5353 -m -w 0\n"
        "-A -f 42 -s dh\n"
        "-a -f 42 -r 10.0.2.2:0 -g -w 1\n"
        "-A -f 43 -6 -s sh -b sh-port\n"
        "-A -u 10.0.0.2:5060 -s lblc -p 30 --pe sip\n"
        "-A -u 10.0.0.2:514 -s nq -o\n"
        "-A --sctp-service 10.0.0.2:2905 -s fo\n"
        "-a --sctp-service 10.0.0.2:2905 -r 10.0.3.2:2905 -m -w 9\n"
    )
    ipvs = ipvsct.Ipvs()
    assert compare_with_ipvsadm(ipvs) == 7
    by_key = {str(s.key): s for s in ipvs.services()}
    s = by_key["TCP 10.0.0.2:80"]
    k = s.key
    assert (k.protocol, k.addr, k.port, k.fwmark, k.family) == (
        "TCP", ipaddress.IPv4Address("10.0.0.2"), 80, None, ipvsct.Family.IPV4)
    assert (s.scheduler, s.timeout, s.netmask) == ("wrr", 120, "255.255.0.0")
    d = {endpoint(x.addr, x.port): x for x in ipvs.destinations(k)}
    assert (d["10.0.4.2:80"].tun_type, d["10.0.4.2:80"].tun_port, d["10.0.4.2:80"].tun_flags) == ("gue", 7777, 2)
    assert (d["10.0.2.2:80"].upper_threshold, d["10.0.2.2:80"].lower_threshold) == (30, 20)
    f43 = by_key["FWM 43 inet6"].key
    assert (f43.fwmark, f43.family, f43.protocol, f43.addr) == (43, ipvsct.Family.IPV6, None, None)
    u6 = {endpoint(x.addr, x.port): x for x in ipvs.destinations("udp:[2001:db8::1]:53")}
    assert sorted(u6) == ["[2001:db8::5]:5353", "[2001:db8::6]:5353"]
    assert u6["[2001:db8::5]:5353"].addr == ipaddress.IPv6Address("2001:db8::5")
    assert by_key["UDP 10.0.0.2:5060"].pe_name == "sip"
    # to_dict() carries the same values.
    sd = s.to_dict()
    assert sd["scheduler"] == "wrr" and sd["timeout"] == 120


def test_edit_and_delete_round_trips() -> None:
    ipvs = ipvsct.Ipvs()
    add_lab_by_ipvsct(ipvs, "10.0.0.3")
    tcp = "tcp:10.0.0.3:80"
    # ipvsct edits, ipvsadm sees.
    ipvs.edit_service(tcp, "wlc", persistent=30, netmask="255.255.255.0")
    r = saved()["TCP 10.0.0.3:80"]
    assert (r.sched, r.persistent, r.netmask) == ("wlc", 30, "255.255.255.0")
    ipvs.edit_destination(tcp, "10.0.2.2", 80, method="masq", weight=7, upper_threshold=20,
                          lower_threshold=10)
    assert saved()["TCP 10.0.0.3:80"].dests["10.0.2.2:80"].weight == 7
    assert listing("--thresholds")["TCP 10.0.0.3:80"][1]["10.0.2.2:80"][:2] == ["20", "10"]
    ipvs.edit_destination(tcp, "10.0.3.2", 80, method="masq", weight=4)
    d = saved()["TCP 10.0.0.3:80"].dests["10.0.3.2:80"]
    assert (d.method, d.weight) == ("masq", 4)
    # ipvsadm edits, ipvsct sees.
    adm("-E", "-t", "10.0.0.3:80", "-s", "lc")
    s = ipvs.service(tcp)
    assert s is not None and s.scheduler == "lc" and "PERSISTENT" not in s.flags and s.timeout == 0
    adm("-e", "-t", "10.0.0.3:80", "-r", "10.0.2.2:80", "-m", "-w", "9", "-x", "0", "-y", "0")
    (d2,) = [x for x in ipvs.destinations(tcp) if str(x.addr) == "10.0.2.2"]
    assert (d2.weight, d2.upper_threshold, d2.lower_threshold) == (9, 0, 0)
    assert compare_with_ipvsadm(ipvs) == 9
    # Deletions, both ways.
    ipvs.delete_destination(tcp, "10.0.4.2", 80)
    assert "10.0.4.2:80" not in saved()["TCP 10.0.0.3:80"].dests
    adm("-d", "-t", "10.0.0.3:80", "-r", "10.0.5.2:80")
    assert sorted(str(x.addr) for x in ipvs.destinations(tcp)) == ["10.0.2.2", "10.0.3.2", "10.0.6.2"]
    ipvs.delete_service(tcp)
    assert "TCP 10.0.0.3:80" not in saved()
    assert ipvs.service(tcp) is None
    adm("-D", "-f", "7")
    assert "FWM 7" not in {str(s.key) for s in ipvs.services()}
    assert ipvs.service(ipvsct.ServiceKey.from_fwmark(7)) is None
    # A Service object works as the argument too.
    (sctp,) = [s for s in ipvs.services() if s.key.protocol == "SCTP"]
    ipvs.delete_service(sctp)
    assert "SCTP 10.0.0.3:3868" not in saved()
    assert compare_with_ipvsadm(ipvs) == 1
    ipvs.flush()
    assert adm("-S", "-n").strip() == "" and ipvs.services() == []


def expect_error(
    fn: Callable[[], object], code: int, exc: Type[ipvsct.Error] = ipvsct.NetlinkError
) -> ipvsct.Error:
    try:
        fn()
    except exc as e:
        assert isinstance(e, ipvsct.Error), type(e)
        assert e.errno == code, (e, e.errno, code)
        return e
    raise AssertionError(f"no {exc.__name__} (errno {errno.errorcode[code]})")


def test_kernel_errors_are_named_exceptions() -> None:
    ipvs = ipvsct.Ipvs()
    e = expect_error(lambda: ipvs.delete_service("tcp:10.0.0.9:80"), errno.ESRCH)
    assert "ESRCH" in str(e) or "No such process" in str(e) or "such" in str(e), str(e)
    # ipvsadm reports the same condition for the same request.
    p = run([IPVSADM, "-D", "-t", "10.0.0.9:80"], check=False)
    assert p.returncode != 0 and "No such service" in p.stderr + p.stdout
    ipvs.add_service("tcp:10.0.0.9:80", "rr")
    expect_error(lambda: ipvs.add_service("tcp:10.0.0.9:80", "rr"), errno.EEXIST)
    expect_error(lambda: ipvs.add_service("tcp:10.0.0.9:81", "nosuchsched"), errno.ENOENT)
    assert [str(s.key) for s in ipvs.services()] == ["TCP 10.0.0.9:80"]
    expect_error(lambda: ipvs.add_destination("tcp:10.0.0.8:80", "10.0.2.2", 80), errno.ESRCH)
    ipvs.add_destination("tcp:10.0.0.9:80", "10.0.2.2", 80)
    expect_error(lambda: ipvs.add_destination("tcp:10.0.0.9:80", "10.0.2.2", 80), errno.EEXIST)
    expect_error(lambda: ipvs.delete_destination("tcp:10.0.0.9:80", "10.0.2.3", 80), errno.ENOENT)
    expect_error(lambda: ipvs.edit_destination("tcp:10.0.0.9:80", "10.0.2.3", 80), errno.ENOENT)
    p = run([IPVSADM, "-d", "-t", "10.0.0.9:80", "-r", "10.0.2.3:80"], check=False)
    assert p.returncode != 0 and "No such destination" in p.stderr + p.stdout
    # Bad arguments never reach the kernel.
    bad_calls: List[Callable[[], None]] = [
        lambda: ipvs.add_destination("tcp:10.0.0.9:80", "10.0.2.2", 80, method="carrier-pigeon"),
        lambda: ipvs.add_service("tcp:10.0.0.9:82", "rr", flags=["nonsense"]),
        lambda: ipvs.add_service("tcp:nowhere", "rr"),
    ]
    for bad in bad_calls:
        try:
            bad()
        except ValueError:
            pass
        else:
            raise AssertionError("a bad argument was accepted")
    assert adm("-S", "-n").split("\n")[:2] == ["-A -t 10.0.0.9:80 -s rr",
                                               "-a -t 10.0.0.9:80 -r 10.0.2.2:80 -m -w 1"]
    try:
        ipvsct.Ipvs("no-such-namespace")
    except ipvsct.NamespaceError as ne:
        assert ne.netns is not None and "no-such-namespace" in ne.netns, ne.netns
        assert ne.errno == errno.ENOENT, ne.errno
    else:
        raise AssertionError("Ipvs() opened a namespace that does not exist")


def test_namespaces_are_separate() -> None:
    adm("-A", "-t", "10.1.1.1:8080", "-s", "rr", ns="ipvs2")
    adm("-a", "-t", "10.1.1.1:8080", "-r", "10.1.1.2:8080", "-m", "-w", "3", ns="ipvs2")
    adm("-A", "-u", "10.0.0.1:53", "-s", "rr")
    with ipvsct.Ipvs("ipvs2") as other, ipvsct.Ipvs("/run/netns/ipvs2") as by_path:
        assert other.netns is not None and "ipvs2" in other.netns
        assert [str(s.key) for s in other.services()] == ["TCP 10.1.1.1:8080"]
        assert by_path.services() == other.services()
        assert compare_with_ipvsadm(other, ns="ipvs2") == 1
        other.add_service("udp:10.1.1.1:53", "lc")
        assert "UDP 10.1.1.1:53" in saved("ipvs2") and "UDP 10.1.1.1:53" not in saved()
        other.flush()
        assert saved("ipvs2") == {}
    assert [str(s.key) for s in ipvsct.Ipvs().services()] == ["UDP 10.0.0.1:53"]


def test_daemons_as_ipvsadm_shows_them() -> None:
    ipvs = ipvsct.Ipvs()
    assert ipvs.daemons() == []
    adm("--start-daemon", "master", "--mcast-interface", "sync0", "--syncid", "5")
    adm("--start-daemon", "backup", "--mcast-interface", "sync0", "--syncid", "6",
        "--sync-maxlen", "1400", "--mcast-group", "224.0.0.82", "--mcast-port", "8850",
        "--mcast-ttl", "2")
    try:
        lines = adm("-L", "--daemon").splitlines()
        daemons = ipvs.daemons()
        assert len(daemons) == len(lines) == 2, (daemons, lines)
        by_state = {d.state: d for d in daemons}
        for line in lines:
            kv = dict(x.split("=") for x in re.findall(r"\w+=[^,)]+", line))
            d = by_state[line.split()[0]]
            assert (d.mcast_ifn, d.sync_id, d.sync_maxlen) == (kv["mcast"], int(kv["syncid"]), int(kv["maxlen"]))
            assert (str(d.mcast_group), d.mcast_port, d.mcast_ttl) == (
                kv["group"], int(kv["port"]), int(kv["ttl"]))
        assert (by_state["backup"].sync_id, by_state["backup"].mcast_port) == (6, 8850)
    finally:
        adm("--stop-daemon", "master")
        adm("--stop-daemon", "backup")
    wait_for("the daemons to stop", lambda: ipvs.daemons() == [], 10)


def fetch(vip: str) -> str:
    p = run([IP, "netns", "exec", "client", "timeout", "5", "wget", "-q", "-O", "-",
             f"http://{vip}/index.html"], check=False)
    assert p.returncode == 0, f"wget through {vip} failed: {p.stderr}"
    return p.stdout


def conn_rows() -> List[List[str]]:
    """``ipvsadm -Lnc``: [proto, expire, state, source, virtual, destination]."""
    return [line.split() for line in adm("-L", "-n", "-c").splitlines()[2:] if line.strip()]


def mmss(text: str) -> int:
    m, s = text.split(":")
    return int(m) * 60 + int(s)


AGREE_TRIES = 20
AGREE_PAUSE = 0.2


def retry_pause(what: str) -> None:
    """Notes a retry of two reads that did not agree (in the log), then waits."""
    print(f"retrying: {what}")
    time.sleep(AGREE_PAUSE)


def conn_key_row(r: List[str]) -> Tuple[str, str, str, str, str]:
    """An ``ipvsadm -Lnc`` row without its expiry (it ticks between two reads)."""
    return (r[0], r[3], r[4], r[5], r[2])


def conn_key(c: ipvsct.IpvsConnection) -> Tuple[str, str, str, str, str]:
    return (c.protocol, endpoint(*c.client), endpoint(*c.virtual_addr), endpoint(*c.dest), c.state)


def test_traffic_connections_and_stats() -> None:
    ipvs = ipvsct.Ipvs()
    svc = f"tcp:{VIP}:80"
    ipvs.add_service(svc, "rr")
    for rs in RS:
        ipvs.add_destination(svc, rs, 80, method="masq", weight=1)
    answers = [fetch(VIP) for _ in range(REQUESTS)]
    # rr over two servers: each answered half of the requests.
    assert sorted(set(answers)) == ["hello from rs1\n", "hello from rs2\n"], answers
    assert answers.count("hello from rs1\n") == REQUESTS // 2

    # Connections: every entry ipvsadm lists, with the same state and expiry. The library
    # and ipvsadm are two reads: read them back to back, again (bounded) until they list
    # the same entries, as a closing connection can change state between them. There is
    # an entry for each request at least (TIME_WAIT lasts 120 s).
    for _ in range(AGREE_TRIES):
        conns = ipvs.connections()
        rows = conn_rows()
        if sorted(conn_key(c) for c in conns) == sorted(conn_key_row(r) for r in rows):
            break
        retry_pause("connections() and ipvsadm -Lnc differ")
    assert sorted(conn_key(c) for c in conns) == sorted(conn_key_row(r) for r in rows), (conns, rows)
    assert len(conns) == len(rows) >= REQUESTS, (conns, rows)
    want = {(r[0], r[3], r[4], r[5]): (r[2], mmss(r[1])) for r in rows}
    for c in conns:
        k = (c.protocol, endpoint(*c.client), endpoint(*c.virtual_addr), endpoint(*c.dest))
        assert k in want, (k, sorted(want))
        state, expires = want.pop(k)
        assert c.state == state, (k, c.state, state)
        assert abs(c.expires - expires) <= 3, (k, c.expires, expires)
        assert c.activity == ("active" if state == "ESTABLISHED" else "inactive"), (k, c.activity)
    assert not want
    assert {endpoint(*c.dest) for c in conns} == {f"{rs}:80" for rs in RS}
    assert {c.state for c in conns} <= {"TIME_WAIT", "FIN_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK"}, conns
    time_wait = sum(1 for c in conns if c.state == "TIME_WAIT")

    # Destinations: the counters as ipvsadm -Ln shows them (read right after; retried,
    # bounded, until the two agree), at least each server's half of the requests.
    def counters() -> List[Tuple[str, List[int]]]:
        return sorted((endpoint(d.addr, d.port), [d.active_conns, d.inactive_conns])
                      for d in ipvs.destinations(svc))

    def adm_counters() -> List[Tuple[str, List[int]]]:
        plain = listing("--exact")[f"TCP {VIP}:80"][1]
        return sorted((ep, [int(x) for x in w[2:4]]) for ep, w in plain.items())

    for _ in range(AGREE_TRIES):
        lib, theirs = counters(), adm_counters()
        if lib == theirs:
            break
        retry_pause("destination counters and ipvsadm -Ln differ")
    assert lib == theirs, (lib, theirs)
    for ep, (active, inactive) in lib:
        assert active + inactive >= REQUESTS // 2, (ep, active, inactive)
    # explain(): the entries listed per destination equal the counters read with them
    # (one call; again, bounded, until they agree).
    for _ in range(AGREE_TRIES):
        ex = ipvs.explain()
        if all((dr.listed_active, dr.listed_inactive) == (dr.active_conns, dr.inactive_conns)
               for rep in ex.services for dr in rep.dests):
            break
        retry_pause("explain(): listing and counters differ")
    (rep,) = ex.services
    assert str(rep.service) == f"TCP {VIP}:80" and rep.scheduler == "rr"
    for dr in rep.dests:
        assert (dr.listed_active, dr.listed_inactive) == (dr.active_conns, dr.inactive_conns), dr
        assert dr.listed_inactive + dr.listed_active >= REQUESTS // 2, dr
        assert sum(g.count for g in dr.states) == dr.listed_inactive + dr.listed_active, dr

    # Stats: the kernel copies the per-CPU counters every 2 s; wait until ipvsadm shows every
    # connection and two reads agree, then ipvsct must give the same numbers.
    def settled() -> bool:
        a = listing("--stats", "--exact")[f"TCP {VIP}:80"][0]
        time.sleep(2.2)
        b = listing("--stats", "--exact")[f"TCP {VIP}:80"][0]
        return a == b and int(b[-5]) >= REQUESTS

    wait_for("the IPVS counters to settle", settled, 20)
    # ipvsadm's listings and the library's are read at different moments: the live
    # counters (an entry can still expire) may differ, so the whole comparison is read
    # again (bounded) until it passes; every field is compared exactly.
    for attempt in range(5):
        try:
            assert compare_with_ipvsadm(ipvs) == 2
            break
        except AssertionError:
            if attempt == 4:
                raise
            retry_pause("compare_with_ipvsadm()")
    s = ipvs.service(svc)
    assert s is not None and s.stats64 is not None
    st = s.stats64
    assert st.conns >= REQUESTS and st.inpkts >= 5 * REQUESTS and st.outpkts >= 4 * REQUESTS, st
    assert st.inbytes > st.inpkts * 40 and st.outbytes > st.outpkts * 40, st
    dests = ipvs.destinations(svc)
    per_dest = [x.stats64 for x in dests]
    assert sum(x.conns for x in per_dest if x is not None) == st.conns
    assert sum(x.inbytes for x in per_dest if x is not None) == st.inbytes
    # No entry without a connection the service counted.
    assert sum(d.active_conns + d.inactive_conns for d in dests) <= st.conns, (dests, st)

    # Rates decay towards 0 once the traffic has stopped: what ipvsct reads lies between two
    # ipvsadm reads around it.
    r1 = listing("--rate", "--exact")[f"TCP {VIP}:80"][0][-5:]
    got = rate_fields(ipvs.service(svc).stats64)  # type: ignore[union-attr]
    r2 = listing("--rate", "--exact")[f"TCP {VIP}:80"][0][-5:]
    for name, g, a, b in zip(("cps", "inpps", "outpps", "inbps", "outbps"), got, r1, r2):
        assert min(int(a), int(b)) <= g <= max(int(a), int(b)), (name, g, a, b)
    assert any(int(x) > 0 for x in r1 + r2) or all(g == 0 for g in got)

    # zero(): the counters of that service restart from 0, as ipvsadm sees them.
    ipvs.zero(svc)
    z = listing("--stats", "--exact")[f"TCP {VIP}:80"]
    assert [int(x) for x in z[0][-5:]] == [0, 0, 0, 0, 0], z
    s = ipvs.service(svc)
    assert s is not None and stat_fields(s.stats64) == [0, 0, 0, 0, 0]
    # ...and the connection entries are still there: as many as the destinations' counters
    # read right after (bounded retries), at least the TIME_WAIT ones listed before.
    for _ in range(AGREE_TRIES):
        left = ipvs.connections()
        counted = sum(d.active_conns + d.inactive_conns for d in ipvs.destinations(svc))
        if len(left) == counted:
            break
        retry_pause("connections() and the counters differ")
    assert len(left) == counted >= time_wait >= 1, (left, counted, time_wait)


def test_dataframe_without_pandas() -> None:
    ipvs = ipvsct.Ipvs()
    ipvs.add_service(f"tcp:{VIP}:80", "rr")
    ipvs.add_destination(f"tcp:{VIP}:80", RS[0], 80)
    try:
        import pandas  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        have_pandas = False
    else:
        have_pandas = True
    for kind in ("destinations", "services", "connections"):
        try:
            df = ipvs.dataframe(kind)
        except ImportError as e:
            assert not have_pandas
            assert "Ipvs.dataframe() needs pandas" in str(e) and "pip install" in str(e), str(e)
        else:
            assert have_pandas
            assert len(df) == (0 if kind == "connections" else 1)
    try:
        ipvs.dataframe("nonsense")  # type: ignore[arg-type]
    except (ValueError, ImportError):
        pass
    else:
        raise AssertionError("dataframe('nonsense') returned")


# ---- runner --------------------------------------------------------------------------------


def reset() -> None:
    adm("-C")
    adm("-C", ns="ipvs2")
    for state in ("master", "backup"):
        run([IPVSADM, "--stop-daemon", state], check=False)


def main(argv: List[str]) -> int:
    pattern = argv[1] if len(argv) > 1 else ""
    tests = [(n, f) for n, f in sorted(globals().items())
             if n.startswith("test_") and callable(f) and pattern in n]
    passed = failed = 0
    for name, fn in tests:
        t0 = time.monotonic()
        try:
            reset()
            fn()
        except Exception:  # noqa: BLE001 - every failure is reported, then the next test runs
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - t0:.1f} s)")
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"PASS {name} ({time.monotonic() - t0:.1f} s)")
        sys.stdout.flush()
    try:
        reset()
    except Exception as e:  # noqa: BLE001
        print(f"ERROR cleaning up: {e}")
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 0 if passed and not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

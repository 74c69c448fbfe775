"""The Python surface without a kernel: enums mirror the core, value semantics,
argument checking, the exception hierarchy and the optional pandas dependency."""

from __future__ import annotations

import builtins
import ipaddress
import subprocess
import sys
import textwrap

import pytest

import ipvsct
from ipvsct import _enums, _native
from conftest import FIXTURES


def test_enums_have_the_core_names() -> None:
    core = _native._core_enum_names()
    for cls_name, names in core.items():
        cls = getattr(_enums, cls_name)
        py = {m.value: m.name for m in cls}
        assert {v: n.upper() for v, n in names.items()} == py, cls_name


def test_open_enums_keep_unknown_values() -> None:
    s = ipvsct.TcpState(200)
    assert s == 200 and s.name == "UNKNOWN_200" and isinstance(s, ipvsct.TcpState)
    assert ipvsct.TcpState(3) is ipvsct.TcpState.ESTABLISHED
    with pytest.raises(ValueError):
        ipvsct.TcpState(-1)
    st = ipvsct.Status(0x0E | 1 << 20)
    assert st & ipvsct.Status.ASSURED and int(st) == 0x0E | 1 << 20
    assert int(ipvsct.Family.IPV6) == 10 and ipvsct.Family(10) is ipvsct.Family.IPV6


def test_tuple_construction_and_value_semantics() -> None:
    t = ipvsct.Tuple("10.0.0.1", ipaddress.ip_address("10.0.0.2"), "tcp", src_port=1, dst_port=2)
    assert t.src == ipaddress.IPv4Address("10.0.0.1") and t.proto == 6 and t.proto_name == "tcp"
    same = ipvsct.Tuple("10.0.0.1", "10.0.0.2", 6, src_port=1, dst_port=2)
    assert t == same and hash(t) == hash(same) and len({t, same}) == 1
    r = t.reversed()
    assert (str(r.src), r.src_port, r.dst_port) == ("10.0.0.2", 2, 1)
    assert str(t) == "tcp 10.0.0.1:1 -> 10.0.0.2:2"
    assert repr(t) == (
        "Tuple(src=IPv4Address('10.0.0.1'), dst=IPv4Address('10.0.0.2'), proto=6, "
        "src_port=1, dst_port=2)"
    )
    assert t.to_dict()["src_port"] == 1
    i6 = ipvsct.Tuple("fd00::1", "fd00::2", "icmpv6", icmp_type=128, icmp_code=0, icmp_id=7)
    assert i6.reversed().icmp_type == 129
    with pytest.raises(AttributeError):
        t.src = ipaddress.IPv4Address("1.1.1.1")  # type: ignore[misc]
    with pytest.raises(ValueError, match="both be IPv4"):
        ipvsct.Tuple("10.0.0.1", "fd00::1", "tcp")
    with pytest.raises(ValueError, match="unknown L4 protocol"):
        ipvsct.Tuple("10.0.0.1", "10.0.0.2", "nope")
    with pytest.raises(ValueError, match="0..=255"):
        ipvsct.Tuple("10.0.0.1", "10.0.0.2", 300)
    with pytest.raises(ValueError):
        ipvsct.Tuple("10.0.0.999", "10.0.0.2", "tcp")
    with pytest.raises(OverflowError):
        ipvsct.Tuple("10.0.0.1", "10.0.0.2", "tcp", src_port=70000)


def test_entries_are_frozen_comparable_and_unhashable() -> None:
    data = (FIXTURES / "dump_all.bin").read_bytes()
    a = ipvsct.decode(data)
    b = ipvsct.decode(data)
    assert a == b and a[0] is not b[0]
    e = a[0]
    assert isinstance(e, ipvsct.Entry)
    with pytest.raises(AttributeError):
        e.mark = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(e)
    with pytest.raises(TypeError):
        ipvsct.Entry()


def test_to_dict_has_every_attribute() -> None:
    entries = ipvsct.decode((FIXTURES / "dump_all.bin").read_bytes())
    for e in entries:
        assert isinstance(e, ipvsct.Entry)
        d = e.to_dict()
        for k, v in d.items():
            attr = getattr(e, k)
            if hasattr(attr, "to_dict"):
                assert attr.to_dict() == v, k
            elif k == "unknown_nested":
                assert [(p, a.to_dict()) for p, a in attr] == v, k
            elif isinstance(attr, list) and attr and hasattr(attr[0], "to_dict"):
                assert [x.to_dict() for x in attr] == v, k
            else:
                assert attr == v, k
        public = {n for n in dir(ipvsct.Entry) if not n.startswith("_")}
        assert public - set(d) == {"to_dict", "proto", "seconds_since_refresh"}


def test_exception_hierarchy() -> None:
    for cls in (
        ipvsct.NetlinkError,
        ipvsct.DecodeError,
        ipvsct.PermissionError,
        ipvsct.NamespaceError,
        ipvsct.TimeoutError,
        ipvsct.DumpInterruptedError,
        ipvsct.UnsupportedError,
    ):
        assert issubclass(cls, ipvsct.Error), cls
        assert cls.__module__ == "ipvsct"
    assert issubclass(ipvsct.PermissionError, builtins.PermissionError)
    assert issubclass(ipvsct.TimeoutError, builtins.TimeoutError)
    assert issubclass(ipvsct.DecodeError, ValueError)
    assert not issubclass(ipvsct.Error, OSError)


def test_namespace_errors() -> None:
    with pytest.raises(ipvsct.NamespaceError) as e:
        ipvsct.Conntrack("ipvsct-py-no-such-namespace")
    assert e.value.errno == 2 and e.value.netns == "ipvsct-py-no-such-namespace"
    with pytest.raises(ipvsct.NamespaceError):
        ipvsct.Conntrack("/proc/self/no-such-file")
    with pytest.raises(TypeError):
        ipvsct.Conntrack(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ipvsct.Conntrack(timeout=0)


def test_dataframe_without_pandas_says_how_to_install() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pandas"] = None  # as if pandas were not installed
        import ipvsct
        ct = ipvsct.Conntrack()  # opening a socket needs no privilege
        try:
            ct.dataframe()  # checks for pandas before asking the kernel anything
        except ImportError as e:
            print("ImportError:", e)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "ImportError: Conntrack.dataframe() needs pandas" in out
    assert "pip install pandas" in out


def test_public_names_are_exported() -> None:
    for name in ipvsct.__all__:
        assert getattr(ipvsct, name) is not None, name
    assert set(_native.__all__) - set(ipvsct.__all__) == {"_core_enum_names"}

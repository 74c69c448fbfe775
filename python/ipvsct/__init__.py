"""ipvsct: the Linux connection tracking table (and, later, IPVS) from Python.

Every entry is decoded by the Rust core into a frozen :class:`Entry` carrying its
state and the state's full timeout::

    import ipvsct

    ct = ipvsct.Conntrack()                 # or Conntrack("blue") for `ip netns` blue
    for e in ct.dump(family="ipv4", status=ipvsct.Status.ASSURED):
        print(e.orig.src, e.state, e.timeout, "of", e.state_timeout)

Blocking calls release the GIL; a dump can be stopped with Ctrl-C. Errors are
subclasses of :class:`ipvsct.Error`.
"""

from __future__ import annotations

from ._enums import (
    DccpRole,
    DccpState,
    Family,
    SctpState,
    Status,
    TcpFlags,
    TcpState,
    UdpState,
)
from ._native import (
    Conntrack,
    Counters,
    CpuStats,
    DccpInfo,
    DccpTimeouts,
    DecodeError,
    DumpInterruptedError,
    DumpIterator,
    Entry,
    Error,
    GlobalStats,
    Helper,
    MessageInfo,
    NamespaceError,
    NatRange,
    NetlinkError,
    PermissionError,
    ProtoInfo,
    RawAttr,
    SctpInfo,
    SctpTimeouts,
    SeqAdj,
    StateTimeouts,
    Stats,
    Synproxy,
    TcpFlagsMask,
    TcpInfo,
    TcpTimeouts,
    TimeoutError,
    TimeoutPolicy,
    Timestamp,
    Tuple,
    UdpTimeouts,
    UnsupportedError,
    decode,
)

__version__ = "0.1.0"

__all__ = [
    "Conntrack",
    "Counters",
    "CpuStats",
    "DccpInfo",
    "DccpRole",
    "DccpState",
    "DccpTimeouts",
    "DecodeError",
    "DumpInterruptedError",
    "DumpIterator",
    "Entry",
    "Error",
    "Family",
    "GlobalStats",
    "Helper",
    "MessageInfo",
    "NamespaceError",
    "NatRange",
    "NetlinkError",
    "PermissionError",
    "ProtoInfo",
    "RawAttr",
    "SctpInfo",
    "SctpState",
    "SctpTimeouts",
    "SeqAdj",
    "StateTimeouts",
    "Stats",
    "Status",
    "Synproxy",
    "TcpFlags",
    "TcpFlagsMask",
    "TcpInfo",
    "TcpState",
    "TcpTimeouts",
    "TimeoutError",
    "TimeoutPolicy",
    "Timestamp",
    "Tuple",
    "UdpState",
    "UdpTimeouts",
    "UnsupportedError",
    "decode",
]

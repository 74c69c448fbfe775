"""Enums of conntrack values: open ``IntEnum`` states (unknown values become
``UNKNOWN_<n>`` pseudo-members instead of errors) and ``IntFlag`` bit words."""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "EventKind",
    "ExpectFlags",
    "Family",
    "Status",
    "TcpFlags",
    "TcpState",
    "SctpState",
    "DccpState",
    "DccpRole",
    "UdpState",
]


class _OpenIntEnum(enum.IntEnum):
    """An IntEnum that keeps values it does not know as ``UNKNOWN_<n>`` members."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            member = int.__new__(cls, value)
            member._name_ = f"UNKNOWN_{value}"
            member._value_ = value
            return member
        return None


class Family(_OpenIntEnum):
    """Address family of an entry (an AF_* value)."""

    UNSPEC = 0
    IPV4 = 2
    IPV6 = 10


class Status(enum.IntFlag):
    """Connection status bits (``IPS_*``); unknown bits are kept."""

    EXPECTED = 1 << 0
    SEEN_REPLY = 1 << 1
    ASSURED = 1 << 2
    CONFIRMED = 1 << 3
    SRC_NAT = 1 << 4
    DST_NAT = 1 << 5
    SEQ_ADJUST = 1 << 6
    SRC_NAT_DONE = 1 << 7
    DST_NAT_DONE = 1 << 8
    DYING = 1 << 9
    FIXED_TIMEOUT = 1 << 10
    TEMPLATE = 1 << 11
    UNTRACKED = 1 << 12
    HELPER = 1 << 13
    OFFLOAD = 1 << 14
    HW_OFFLOAD = 1 << 15


class TcpFlags(enum.IntFlag):
    """TCP conntrack per-direction flags (``IP_CT_TCP_FLAG_*``)."""

    WINDOW_SCALE = 0x01
    SACK_PERM = 0x02
    CLOSE_INIT = 0x04
    BE_LIBERAL = 0x08
    DATA_UNACKNOWLEDGED = 0x10
    MAXACK_SET = 0x20
    CHALLENGE_ACK = 0x40
    SIMULTANEOUS_OPEN = 0x80


class TcpState(_OpenIntEnum):
    """TCP connection tracking state (``enum tcp_conntrack``)."""

    NONE = 0
    SYN_SENT = 1
    SYN_RECV = 2
    ESTABLISHED = 3
    FIN_WAIT = 4
    CLOSE_WAIT = 5
    LAST_ACK = 6
    TIME_WAIT = 7
    CLOSE = 8
    SYN_SENT2 = 9
    MAX = 10
    IGNORE = 11
    RETRANS = 12
    UNACK = 13


class SctpState(_OpenIntEnum):
    """SCTP connection tracking state (``enum sctp_conntrack``)."""

    NONE = 0
    CLOSED = 1
    COOKIE_WAIT = 2
    COOKIE_ECHOED = 3
    ESTABLISHED = 4
    SHUTDOWN_SENT = 5
    SHUTDOWN_RECD = 6
    SHUTDOWN_ACK_SENT = 7
    HEARTBEAT_SENT = 8
    HEARTBEAT_ACKED = 9


class DccpState(_OpenIntEnum):
    """DCCP connection tracking state (``enum ct_dccp_states``)."""

    NONE = 0
    REQUEST = 1
    RESPOND = 2
    PARTOPEN = 3
    OPEN = 4
    CLOSEREQ = 5
    CLOSING = 6
    TIMEWAIT = 7
    IGNORE = 8
    INVALID = 9


class DccpRole(_OpenIntEnum):
    """DCCP role of the original sender (``enum ct_dccp_roles``)."""

    CLIENT = 0
    SERVER = 1


class UdpState(_OpenIntEnum):
    """UDP, UDP-Lite and GRE pseudo-states, which select the timeout the kernel applies."""

    UNREPLIED = 0
    REPLIED = 1
    STREAM = 2


class EventKind(enum.Enum):
    """What an event reports: a connection (or expectation) created, changed or destroyed."""

    NEW = "new"
    UPDATE = "update"
    DESTROY = "destroy"


class ExpectFlags(enum.IntFlag):
    """Expectation flags (``NF_CT_EXPECT_*``)."""

    PERMANENT = 1 << 0
    INACTIVE = 1 << 1
    USERSPACE = 1 << 2

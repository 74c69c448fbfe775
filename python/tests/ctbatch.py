#!/usr/bin/env python3
"""Inserts many conntrack entries quickly over ctnetlink, in batches (test helper).

Run it inside the target namespace, e.g. ``ip netns exec NS python3 ctbatch.py 5000``.
It is written from the kernel's uapi headers (``nfnetlink_conntrack.h``) with the
standard library only, so it does not depend on the code under test.

Entry ``i`` is a TCP connection ``10.(i>>16).(i>>8).(i)+1 :(1024 + i % 60000) ->
10.255.255.254:80`` in state ESTABLISHED, status SEEN_REPLY|ASSURED|CONFIRMED (the kernel refuses
to create an entry whose CONFIRMED bit the request would clear), with the given
timeout and mark. Prints the number of entries created.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import struct
import sys

NETLINK_NETFILTER = 12
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLMSG_ERROR = 0x2
NLA_F_NESTED = 0x8000
# nfnetlink_conntrack.h
IPCTNL_MSG_CT_NEW = 0
NFNL_SUBSYS_CTNETLINK = 1
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO = 1, 2, 3, 4
CTA_TIMEOUT, CTA_MARK = 7, 8
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE = 1, 1
TCP_CONNTRACK_ESTABLISHED = 3
IPS_SEEN_REPLY, IPS_ASSURED, IPS_CONFIRMED = 1 << 1, 1 << 2, 1 << 3

CHUNK = 256


def attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def nest(kind: int, *parts: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(parts))


def tuple_attr(kind: int, src: bytes, dst: bytes, sport: int, dport: int) -> bytes:
    return nest(
        kind,
        nest(CTA_TUPLE_IP, attr(CTA_IP_V4_SRC, src), attr(CTA_IP_V4_DST, dst)),
        nest(
            CTA_TUPLE_PROTO,
            attr(CTA_PROTO_NUM, bytes([socket.IPPROTO_TCP])),
            attr(CTA_PROTO_SRC_PORT, struct.pack(">H", sport)),
            attr(CTA_PROTO_DST_PORT, struct.pack(">H", dport)),
        ),
    )


def entry(i: int, seq: int, flags: int, timeout: int, mark: int) -> bytes:
    src = ipaddress.IPv4Address(0x0A000001 + i).packed
    dst = ipaddress.IPv4Address("10.255.255.254").packed
    sport, dport = 1024 + i % 60000, 80
    body = b"".join(
        [
            tuple_attr(CTA_TUPLE_ORIG, src, dst, sport, dport),
            tuple_attr(CTA_TUPLE_REPLY, dst, src, dport, sport),
            attr(CTA_STATUS, struct.pack(">I", IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED)),
            attr(CTA_TIMEOUT, struct.pack(">I", timeout)),
            attr(CTA_MARK, struct.pack(">I", mark)),
            nest(
                CTA_PROTOINFO,
                nest(
                    CTA_PROTOINFO_TCP,
                    attr(CTA_PROTOINFO_TCP_STATE, bytes([TCP_CONNTRACK_ESTABLISHED])),
                ),
            ),
        ]
    )
    nfgen = struct.pack("=BBH", socket.AF_INET, 0, 0)
    mtype = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
    return struct.pack("=IHHII", 16 + len(nfgen) + len(body), mtype, flags, seq, 0) + nfgen + body


def wait_ack(sock: socket.socket, seq: int) -> None:
    """Reads until the ACK of `seq`; raises on any error message."""
    for _ in range(100000):
        data = sock.recv(1 << 16)
        off = 0
        while off + 16 <= len(data):
            length, mtype, _flags, mseq, _port = struct.unpack_from("=IHHII", data, off)
            if length < 16:
                raise RuntimeError(f"bad netlink length {length}")
            if mtype == NLMSG_ERROR:
                (err,) = struct.unpack_from("=i", data, off + 16)
                if err != 0:
                    raise OSError(-err, f"conntrack insert (seq {mseq}) failed")
                if mseq == seq:
                    return
            off += (length + 3) & ~3
    raise RuntimeError("no ACK")


def insert(count: int, start: int, timeout: int, mark: int) -> int:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.settimeout(20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((0, 0))
    seq = 1
    for base in range(start, start + count, CHUNK):
        n = min(CHUNK, start + count - base)
        batch = []
        for k in range(n):
            last = k == n - 1
            flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | (NLM_F_ACK if last else 0)
            batch.append(entry(base + k, seq, flags, timeout, mark))
            seq += 1
        sock.sendto(b"".join(batch), (0, 0))
        wait_ack(sock, seq - 1)
    sock.close()
    return count


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("count", type=int)
    p.add_argument("--start", type=int, default=0, help="index of the first entry")
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--mark", type=int, default=0)
    a = p.parse_args()
    print(insert(a.count, a.start, a.timeout, a.mark))
    return 0


if __name__ == "__main__":
    sys.exit(main())

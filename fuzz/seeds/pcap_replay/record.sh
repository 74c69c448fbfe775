#!/usr/bin/env bash
# Records the seed captures of the pcap_replay fuzz target with `ipvsct capture`, in a
# throw-away network namespace of the running kernel (as root), then writes byte-order and
# format variants of ct-list.pcap (big-endian microsecond pcap, little- and big-endian
# pcapng with if_tsresol 9) so that every reader path has a valid seed.
#
#   fuzz/seeds/pcap_replay/record.sh
#
# Recorded on Linux 6.18 (Debian 12 userland, conntrack-tools 1.4.7; no IPVS module, so
# ipvs-absent.pcap holds nlctrl's "no such family" answer). IPVS captures come from
# tests/fixtures/nlmon/. Needs root, iproute2, nftables, conntrack, python3, cargo.
set -euo pipefail

OUT=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$OUT/../../.." && pwd)
(cd "$REPO" && cargo build -q -p ipvs-conntrack --features cli --bin ipvsct)
BIN="$REPO/target/debug/ipvsct"
NS=ipvsct-seedrec-$$
trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
ct=(ip netns exec "$NS" conntrack)
ip netns exec "$NS" nft 'add table inet t; add chain inet t out { type filter hook output priority 0; };
    add rule inet t out ct state new counter; add rule inet t out meta mark 0x7ffffffe ct label set 127'
ip netns exec "$NS" sysctl -qw net.netfilter.nf_conntrack_acct=1 net.netfilter.nf_conntrack_timestamp=1

"${ct[@]}" -I -p tcp -s 127.0.0.1 -d 127.0.0.1 --sport 41000 --dport 80 --state ESTABLISHED -t 300 -m 7 -u SEEN_REPLY,ASSURED
"${ct[@]}" -I -p tcp -s 127.0.0.1 -d 127.0.0.1 --sport 41001 --dport 80 --state TIME_WAIT -t 60 --zone 3
"${ct[@]}" -I -p udp -s 127.0.0.1 -d 127.0.0.2 --sport 5353 --dport 53 -t 30
"${ct[@]}" -I -p icmp -s 127.0.0.1 -d 127.0.0.1 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 30
"${ct[@]}" -I -p sctp -s 127.0.0.1 -d 127.0.0.1 --sport 3000 --dport 3001 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -t 100 || true
"${ct[@]}" -I -p dccp -s 127.0.0.1 -d 127.0.0.1 --sport 3002 --dport 3003 --state OPEN --role CLIENT -t 100 || true
"${ct[@]}" -I -p gre -s 127.0.0.1 -d 127.0.0.1 --srckey 1 --dstkey 2 -t 100 || true
"${ct[@]}" -I -p tcp -s ::1 -d ::1 --sport 41002 --dport 443 --state SYN_SENT -t 120
"${ct[@]}" -I -p icmpv6 -s ::1 -d ::1 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 9 -t 30

cap() { local name=$1; shift; "$BIN" capture -o "$OUT/$name.pcap" -- "$@" >/dev/null; }
cap ct-list conntrack list --netns "$NS"
cap ct-list-ipv6 conntrack list --netns "$NS" --family ipv6
cap ct-count conntrack count --netns "$NS"
cap ct-stats conntrack stats --netns "$NS"
cap ct-timeouts conntrack timeouts --netns "$NS"
cap ct-get-missing conntrack get --netns "$NS" --proto tcp --src 127.0.0.9 --dst 127.0.0.9 --sport 1 --dport 2 || true
cap ipvs-absent ipvs services --netns "$NS" || true
# NEW, UPDATE and DESTROY events while another writer changes the table.
( sleep 0.5
  "${ct[@]}" -I -p udp -s 127.0.0.1 -d 127.0.0.3 --sport 6000 --dport 53 -t 30 -m 5
  "${ct[@]}" -U -p udp -s 127.0.0.1 -d 127.0.0.3 --sport 6000 --dport 53 -m 9
  "${ct[@]}" -D -p udp -s 127.0.0.1 -d 127.0.0.3 --sport 6000 --dport 53
) >/dev/null 2>&1 &
cap ct-events conntrack events --netns "$NS" --timeout 2
wait

python3 - "$OUT" <<'PY'
import struct, sys
out = sys.argv[1]
src = open(f"{out}/ct-list.pcap", "rb").read()
assert struct.unpack_from("<I", src, 0)[0] == 0xA1B23C4D, "expected a little-endian nanosecond pcap"
snap, link = struct.unpack_from("<II", src, 16)
recs, pos = [], 24
while pos + 16 <= len(src):
    s, f, incl, orig = struct.unpack_from("<IIII", src, pos)
    recs.append((s, f, src[pos + 16:pos + 16 + incl], orig))
    pos += 16 + incl

def pad(b):
    return b + b"\0" * ((4 - len(b) % 4) % 4)

def block(e, t, body):
    body = pad(body)
    n = 12 + len(body)
    return struct.pack(e + "II", t, n) + body + struct.pack(e + "I", n)

def classic_be_usec():
    b = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snap, link)
    for s, f, d, o in recs:
        b += struct.pack(">IIII", s, f // 1000, len(d), o) + d
    return b

def pcapng(e):
    b = block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = struct.pack(e + "HH", 9, 1) + b"\x09\0\0\0" + struct.pack(e + "HH", 0, 0)
    b += block(e, 1, struct.pack(e + "HHI", link, 0, snap) + opts)
    for s, f, d, o in recs:
        ts = s * 10**9 + f
        b += block(e, 6, struct.pack(e + "IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(d), o) + pad(d))
    return b

open(f"{out}/ct-list-be-usec.pcap", "wb").write(classic_be_usec())
open(f"{out}/ct-list.pcapng", "wb").write(pcapng("<"))
open(f"{out}/ct-list-be.pcapng", "wb").write(pcapng(">"))
PY
for f in "$OUT"/*.pcap*; do
    printf '%-22s %s\n' "$(basename "$f")" "$("$BIN" decode "$f" | tail -1)"
done

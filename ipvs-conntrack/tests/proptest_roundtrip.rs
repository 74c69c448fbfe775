//! Property tests: what the library emits parses back to the same value (tuples, protocol
//! info, timeout policies, arbitrary nests built with `MessageBuilder`), and attributes the
//! decoders do not know survive decoding as `RawAttr`s, byte for byte and in order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipvs_conntrack::conntrack::protoinfo::{
    DccpInfo, DccpRole, DccpState, ProtoInfo, SctpInfo, SctpState, TcpFlags, TcpFlagsMask, TcpInfo,
    TcpState,
};
use ipvs_conntrack::conntrack::timeout::{DccpTimeouts, SctpTimeouts, TcpTimeouts, UdpTimeouts};
use ipvs_conntrack::conntrack::tuple::*;
use ipvs_conntrack::conntrack::wire::*;
use ipvs_conntrack::conntrack::{
    CpuStats, Entry, EntryView, GlobalStats, ProtoTimeouts, TimeoutPolicy, Tuple, TupleView,
};
use ipvs_conntrack::netlink::attr::{NLA_F_NESTED, NLA_HDRLEN};
use ipvs_conntrack::netlink::emit::MessageBuilder;
use ipvs_conntrack::netlink::nfnetlink::{message_type, NFNL_SUBSYS_CTNETLINK_TIMEOUT};
use ipvs_conntrack::netlink::{Attr, Attrs, Frame, Frames, RawAttr};
use ipvs_conntrack::AttrPath;
use proptest::collection::vec;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The single frame of a finished message.
fn only_frame(msg: &[u8]) -> Frame<'_> {
    let mut frames = Frames::new(msg);
    let f = frames.next().expect("one frame").expect("valid frame");
    assert!(frames.next().is_none(), "exactly one frame");
    f
}

/// The first top-level attribute of a message whose family header is `hdr` bytes long.
fn first_attr<'a>(f: &Frame<'a>, hdr: usize) -> Attr<'a> {
    Attrs::new(&f.payload[hdr..], 16 + hdr, AttrPath::ROOT, CTA_NAMES)
        .next()
        .expect("an attribute")
        .expect("a valid attribute")
}

// ---------------------------------------------------------------------------------------
// Strategies

fn addr_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<u32>(), any::<u32>())
            .prop_map(|(a, b)| (IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V4(Ipv4Addr::from(b)))),
        (any::<u128>(), any::<u128>())
            .prop_map(|(a, b)| (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)))),
    ]
}

prop_compose! {
    fn tuple()(
        (src, dst) in addr_pair(),
        proto in any::<u8>(),
        src_port in any::<Option<u16>>(),
        dst_port in any::<Option<u16>>(),
        icmp in any::<(Option<u8>, Option<u8>, Option<u16>)>(),
        zone in any::<Option<u16>>(),
    ) -> Tuple {
        Tuple {
            src,
            dst,
            proto,
            src_port,
            dst_port,
            icmp_type: icmp.0,
            icmp_code: icmp.1,
            icmp_id: icmp.2,
            zone,
            unknown: Vec::new(),
        }
    }
}

fn flags_mask() -> impl Strategy<Value = TcpFlagsMask> {
    (any::<u8>(), any::<u8>()).prop_map(|(f, m)| TcpFlagsMask {
        flags: TcpFlags::from_bits_retain(f),
        mask: TcpFlags::from_bits_retain(m),
    })
}

prop_compose! {
    fn tcp_info()(
        state in any::<Option<u8>>(),
        wscale_original in any::<Option<u8>>(),
        wscale_reply in any::<Option<u8>>(),
        flags_original in proptest::option::of(flags_mask()),
        flags_reply in proptest::option::of(flags_mask()),
    ) -> TcpInfo {
        TcpInfo {
            state: state.map(TcpState::from),
            wscale_original,
            wscale_reply,
            flags_original,
            flags_reply,
        }
    }
}

prop_compose! {
    fn protoinfo()(
        tcp in proptest::option::of(tcp_info()),
        sctp in proptest::option::of(any::<(Option<u8>, Option<u32>, Option<u32>)>()),
        dccp in proptest::option::of(any::<(Option<u8>, Option<u8>, Option<u64>)>()),
    ) -> ProtoInfo {
        ProtoInfo {
            tcp,
            sctp: sctp.map(|(s, o, r)| SctpInfo {
                state: s.map(SctpState::from),
                vtag_original: o,
                vtag_reply: r,
            }),
            dccp: dccp.map(|(s, r, h)| DccpInfo {
                state: s.map(DccpState::from),
                role: r.map(DccpRole::from),
                handshake_seq: h,
            }),
            unknown: Vec::new(),
        }
    }
}

fn opt32() -> impl Strategy<Value = Option<u32>> {
    any::<Option<u32>>()
}

/// A protocol's timeouts together with the L4 protocol number that selects them.
fn proto_timeouts() -> impl Strategy<Value = (u8, ProtoTimeouts)> {
    let udp = || {
        (opt32(), opt32()).prop_map(|(u, r)| UdpTimeouts {
            unreplied: u,
            replied: r,
        })
    };
    let known = [
        IPPROTO_TCP,
        IPPROTO_UDP,
        IPPROTO_UDPLITE,
        IPPROTO_SCTP,
        IPPROTO_DCCP,
        IPPROTO_ICMP,
        IPPROTO_ICMPV6,
        IPPROTO_GRE,
    ];
    prop_oneof![
        vec(opt32(), 11).prop_map(|v| (
            IPPROTO_TCP,
            ProtoTimeouts::Tcp(TcpTimeouts {
                syn_sent: v[0],
                syn_recv: v[1],
                established: v[2],
                fin_wait: v[3],
                close_wait: v[4],
                last_ack: v[5],
                time_wait: v[6],
                close: v[7],
                syn_sent2: v[8],
                retrans: v[9],
                unack: v[10],
            })
        )),
        udp().prop_map(|u| (IPPROTO_UDP, ProtoTimeouts::Udp(u))),
        udp().prop_map(|u| (IPPROTO_UDPLITE, ProtoTimeouts::UdpLite(u))),
        udp().prop_map(|u| (IPPROTO_GRE, ProtoTimeouts::Gre(u))),
        vec(opt32(), 9).prop_map(|v| (
            IPPROTO_SCTP,
            ProtoTimeouts::Sctp(SctpTimeouts {
                closed: v[0],
                cookie_wait: v[1],
                cookie_echoed: v[2],
                established: v[3],
                shutdown_sent: v[4],
                shutdown_recd: v[5],
                shutdown_ack_sent: v[6],
                heartbeat_sent: v[7],
                heartbeat_acked: v[8],
            })
        )),
        vec(opt32(), 7).prop_map(|v| (
            IPPROTO_DCCP,
            ProtoTimeouts::Dccp(DccpTimeouts {
                request: v[0],
                respond: v[1],
                partopen: v[2],
                open: v[3],
                closereq: v[4],
                closing: v[5],
                timewait: v[6],
            })
        )),
        opt32().prop_map(|x| (IPPROTO_ICMP, ProtoTimeouts::Icmp(x))),
        opt32().prop_map(|x| (IPPROTO_ICMPV6, ProtoTimeouts::Icmpv6(x))),
        (
            any::<u8>().prop_filter("not a protocol with its own policy", move |p| {
                !known.contains(p)
            }),
            opt32()
        )
            .prop_map(|(p, x)| (p, ProtoTimeouts::Generic(x))),
    ]
}

/// Unknown attributes with distinct types from `kinds` (flag bits excluded), in increasing
/// type order, each randomly flagged nested, with random values (also empty ones).
fn unknown_attrs(kinds: std::ops::Range<u16>, max: usize) -> impl Strategy<Value = Vec<RawAttr>> {
    proptest::sample::subsequence(kinds.collect::<Vec<u16>>(), 0..=max).prop_flat_map(|kinds| {
        let n = kinds.len();
        (vec(any::<bool>(), n), vec(vec(any::<u8>(), 0..24), n)).prop_map(
            move |(nested, values)| {
                kinds
                    .iter()
                    .zip(nested)
                    .zip(values)
                    .map(|((&kind, nested), value)| RawAttr {
                        kind,
                        nested,
                        value,
                    })
                    .collect()
            },
        )
    })
}

fn put_raw_attr(b: &mut MessageBuilder, a: &RawAttr) {
    let kind = if a.nested {
        a.kind | NLA_F_NESTED
    } else {
        a.kind
    };
    b.put_bytes(kind, &a.value);
}

/// A tree of attributes for the `MessageBuilder` nest property.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Leaf(u16, Vec<u8>),
    Nest(u16, Vec<Node>),
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = (1u16..0x3fff, vec(any::<u8>(), 0..40)).prop_map(|(k, v)| Node::Leaf(k, v));
    leaf.prop_recursive(4, 48, 6, |inner| {
        (1u16..0x3fff, vec(inner, 0..6)).prop_map(|(k, c)| Node::Nest(k, c))
    })
}

fn emit_node(b: &mut MessageBuilder, n: &Node) {
    match n {
        Node::Leaf(k, v) => {
            b.put_bytes(*k, v);
        }
        Node::Nest(k, children) => {
            let nest = b.begin_nest(*k);
            for c in children {
                emit_node(b, c);
            }
            b.end_nest(nest);
        }
    }
}

fn parse_nodes(attrs: Attrs<'_>) -> Vec<Node> {
    attrs
        .map(|a| {
            let a = a.expect("an emitted attribute parses");
            if a.is_nested() {
                Node::Nest(a.kind(), parse_nodes(a.nested(&[])))
            } else {
                Node::Leaf(a.kind(), a.value().to_vec())
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config())]

    /// `Tuple::emit` then `TupleView::parse` gives the same tuple, for every protocol,
    /// both families and every combination of optional fields.
    #[test]
    fn tuple_round_trip(t in tuple(), kind in prop_oneof![
        Just(CTA_TUPLE_ORIG), Just(CTA_TUPLE_REPLY), Just(CTA_TUPLE_MASTER)
    ]) {
        let mut b = MessageBuilder::new(0x0100, 0);
        b.put_raw(&[2, 0, 0, 0]);
        t.emit(&mut b, kind);
        let msg = b.finish();
        let f = only_frame(&msg);
        let a = first_attr(&f, 4);
        prop_assert_eq!(a.kind(), kind);
        prop_assert!(a.is_nested());
        let view = TupleView::parse(&a).expect("an emitted tuple parses");
        prop_assert_eq!(view.to_owned(), t);
    }

    /// A tuple whose two addresses have different families is emitted as IPv6 (the IPv4
    /// one v4-mapped): it parses back with both addresses as IPv6, the rest unchanged.
    #[test]
    fn mixed_family_tuple_becomes_v6(a in any::<u32>(), b6 in any::<u128>(), p in any::<u8>()) {
        let v4 = Ipv4Addr::from(a);
        let v6 = Ipv6Addr::from(b6);
        let t = Tuple::with_ports(p, IpAddr::V4(v4), 1, IpAddr::V6(v6), 2);
        let mut b = MessageBuilder::new(0x0100, 0);
        b.put_raw(&[10, 0, 0, 0]);
        t.emit(&mut b, CTA_TUPLE_ORIG);
        let msg = b.finish();
        let f = only_frame(&msg);
        let back = TupleView::parse(&first_attr(&f, 4)).expect("parses").to_owned();
        prop_assert_eq!(back.src, IpAddr::V6(v4.to_ipv6_mapped()));
        prop_assert_eq!(back.dst, IpAddr::V6(v6));
        prop_assert_eq!((back.proto, back.src_port, back.dst_port), (p, Some(1), Some(2)));
    }

    /// `ProtoInfo::emit` then `ProtoInfo::parse` gives the same protocol info.
    #[test]
    fn protoinfo_round_trip(p in protoinfo()) {
        let mut b = MessageBuilder::new(0x0100, 0);
        b.put_raw(&[2, 0, 0, 0]);
        p.emit(&mut b);
        let msg = b.finish();
        let f = only_frame(&msg);
        let a = first_attr(&f, 4);
        prop_assert_eq!(a.kind(), CTA_PROTOINFO);
        prop_assert_eq!(ProtoInfo::parse(&a).expect("emitted protoinfo parses"), p);
    }

    /// A whole cttimeout policy (name, L3, L4, `ProtoTimeouts::emit`, use count, unknown
    /// top-level attributes and unknown members of CTA_TIMEOUT_DATA) decodes back to itself.
    #[test]
    fn timeout_policy_round_trip(
        (l4, timeouts) in proto_timeouts(),
        name in proptest::option::of("[a-zA-Z0-9_-]{1,31}"),
        l3 in any::<u16>(),
        use_count in opt32(),
        top_unknown in unknown_attrs(7..80, 3),
        data_unknown in vec(any::<u32>(), 0..3),
    ) {
        let mut b = MessageBuilder::new(
            message_type(NFNL_SUBSYS_CTNETLINK_TIMEOUT, IPCTNL_MSG_TIMEOUT_NEW),
            0,
        );
        b.put_raw(&[0, 0, 0, 0]);
        if let Some(n) = &name {
            b.put_str(CTA_TIMEOUT_NAME, n);
        }
        b.put_be16(CTA_TIMEOUT_L3PROTO, l3);
        b.put_u8(CTA_TIMEOUT_L4PROTO, l4);
        // CTA_TIMEOUT_DATA as ProtoTimeouts::emit writes it, then unknown members appended
        // by a second encoding of the same nest.
        let mut data = MessageBuilder::new(0, 0);
        timeouts.emit(&mut data);
        let data = data.finish();
        let data_value = &data[16 + NLA_HDRLEN..];
        let mut data_value = data_value.to_vec();
        let mut expect_unknown = Vec::new();
        for a in &top_unknown {
            expect_unknown.push(a.clone());
        }
        let mut data_extra = Vec::new();
        for (i, v) in data_unknown.iter().enumerate() {
            // Types past every protocol's table (TCP has the most: 11).
            let kind = 40 + i as u16;
            data_value.extend_from_slice(&8u16.to_ne_bytes());
            data_value.extend_from_slice(&kind.to_ne_bytes());
            data_value.extend_from_slice(&v.to_be_bytes());
            data_extra.push(RawAttr { kind, nested: false, value: v.to_be_bytes().to_vec() });
        }
        b.put_bytes(CTA_TIMEOUT_DATA | NLA_F_NESTED, &data_value);
        if let Some(u) = use_count {
            b.put_be32(CTA_TIMEOUT_USE, u);
        }
        for a in &top_unknown {
            put_raw_attr(&mut b, a);
        }
        let msg = b.finish();
        let p = TimeoutPolicy::from_frame(&only_frame(&msg)).expect("emitted policy decodes");
        prop_assert_eq!(&p.timeouts, &timeouts);
        prop_assert_eq!(p.name, name);
        prop_assert_eq!(p.l3proto, l3);
        prop_assert_eq!(p.l4proto, l4);
        prop_assert_eq!(p.use_count, use_count);
        // Top-level unknowns are collected while reading the message, DATA's afterwards.
        expect_unknown.extend(data_extra);
        prop_assert_eq!(p.unknown, expect_unknown);
        // values() lists exactly the Some fields, in attribute order.
        let vals = timeouts.values();
        prop_assert!(vals.windows(2).all(|w| w[0].0 < w[1].0));
    }

    /// Any tree of nests and leaves built with `MessageBuilder` parses back to the same tree,
    /// with NLA_F_NESTED set exactly on the nests.
    #[test]
    fn message_builder_nests_round_trip(nodes in vec(node(), 0..6), ty in any::<u16>(), fl in any::<u16>()) {
        let mut b = MessageBuilder::new(ty, fl);
        b.put_raw(&[1, 2, 3]);
        for n in &nodes {
            emit_node(&mut b, n);
        }
        let msg = b.finish();
        prop_assert_eq!(msg.len() % 4, 0);
        let f = only_frame(&msg);
        prop_assert_eq!(f.header.length as usize, msg.len());
        prop_assert_eq!(f.header.message_type, ty);
        prop_assert_eq!(f.header.flags, fl);
        prop_assert_eq!(&f.payload[..3], &[1u8, 2, 3][..]);
        // The 3-byte family header is padded to 4.
        let back = parse_nodes(Attrs::new(&f.payload[4..], 20, AttrPath::ROOT, &[]));
        // A nest emitted with no children and a leaf with no value are both 4-byte
        // attributes; the nested flag tells them apart.
        prop_assert_eq!(back, nodes);
    }

    /// Typed puts read back through the matching typed accessors.
    #[test]
    fn typed_values_round_trip(
        a in any::<u8>(), b16 in any::<u16>(), b32 in any::<u32>(), b64 in any::<u64>(),
        n32 in any::<u32>(), s in "[^\u{0}]{0,40}",
    ) {
        let mut b = MessageBuilder::new(0x0100, 0);
        b.put_u8(1, a).put_be16(2, b16).put_be32(3, b32).put_be64(4, b64)
            .put_ne32(5, n32).put_ne16(6, b16).put_str(7, &s);
        let msg = b.finish();
        let f = only_frame(&msg);
        let attrs: Vec<_> = Attrs::new(f.payload, 16, AttrPath::ROOT, &[])
            .collect::<Result<_, _>>()
            .expect("valid attributes");
        prop_assert_eq!(attrs.len(), 7);
        prop_assert_eq!(attrs[0].u8().unwrap(), a);
        prop_assert_eq!(attrs[1].be16().unwrap(), b16);
        prop_assert_eq!(attrs[2].be32().unwrap(), b32);
        prop_assert_eq!(attrs[3].be64().unwrap(), b64);
        prop_assert_eq!(attrs[4].ne32().unwrap(), n32);
        prop_assert_eq!(attrs[5].ne16().unwrap(), b16);
        prop_assert_eq!(attrs[6].str().unwrap(), s.as_str());
        // Offsets are absolute and every value is inside the message.
        for at in &attrs {
            prop_assert_eq!(&msg[at.offset()..at.offset() + at.value().len()], at.value());
        }
    }

    /// Unknown attributes of an entry survive decoding into `RawAttr`s, in order and
    /// byte for byte: at the top level (after CTA_TIMESTAMP_EVENT), inside a tuple, inside
    /// CTA_TUPLE_IP / CTA_TUPLE_PROTO and inside CTA_PROTOINFO_TCP.
    #[test]
    fn unknown_entry_attributes_survive(
        t in tuple(),
        top in unknown_attrs(CTA_TIMESTAMP_EVENT + 1..CTA_TIMESTAMP_EVENT + 40, 4),
        in_tuple in unknown_attrs(CTA_TUPLE_ZONE + 1..CTA_TUPLE_ZONE + 20, 3),
        in_ip in unknown_attrs(CTA_IP_V6_DST + 1..CTA_IP_V6_DST + 20, 2),
        in_proto in unknown_attrs(CTA_PROTO_ICMPV6_CODE + 1..CTA_PROTO_ICMPV6_CODE + 20, 2),
        in_tcp in unknown_attrs(6..30, 2),
    ) {
        let mut b = MessageBuilder::new(0x0100, 0);
        b.put_raw(&[if t.src.is_ipv4() { 2 } else { 10 }, 0, 0, 0]);
        // CTA_TUPLE_ORIG by hand, with unknown members at each level.
        let outer = b.begin_nest(CTA_TUPLE_ORIG);
        let ip = b.begin_nest(CTA_TUPLE_IP);
        match (t.src, t.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                b.put_bytes(CTA_IP_V4_SRC, &s.octets()).put_bytes(CTA_IP_V4_DST, &d.octets());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                b.put_bytes(CTA_IP_V6_SRC, &s.octets()).put_bytes(CTA_IP_V6_DST, &d.octets());
            }
            _ => unreachable!("addr_pair gives one family"),
        }
        for a in &in_ip { put_raw_attr(&mut b, a); }
        b.end_nest(ip);
        let proto = b.begin_nest(CTA_TUPLE_PROTO);
        b.put_u8(CTA_PROTO_NUM, t.proto);
        for a in &in_proto { put_raw_attr(&mut b, a); }
        b.end_nest(proto);
        for a in &in_tuple { put_raw_attr(&mut b, a); }
        b.end_nest(outer);
        t.reversed().emit(&mut b, CTA_TUPLE_REPLY);
        let pi = b.begin_nest(CTA_PROTOINFO);
        let tcp = b.begin_nest(CTA_PROTOINFO_TCP);
        b.put_u8(CTA_PROTOINFO_TCP_STATE, 3);
        for a in &in_tcp { put_raw_attr(&mut b, a); }
        b.end_nest(tcp);
        b.end_nest(pi);
        b.put_be32(CTA_TIMEOUT, 120);
        for a in &top { put_raw_attr(&mut b, a); }
        let msg = b.finish();
        let f = only_frame(&msg);
        let view = EntryView::from_frame(&f).expect("entry with unknown attributes decodes");
        prop_assert_eq!(view.unknown(), top.clone());
        let e = Entry::from_frame(&f).expect("owned entry");
        prop_assert_eq!(&e.unknown, &top);
        let mut expect_tuple = in_ip.clone();
        expect_tuple.extend(in_proto.iter().cloned());
        expect_tuple.extend(in_tuple.iter().cloned());
        prop_assert_eq!(&e.orig.unknown, &expect_tuple);
        prop_assert_eq!(e.orig.src, t.src);
        prop_assert_eq!(e.orig.proto, t.proto);
        prop_assert_eq!(e.timeout, Some(120));
        let pinfo = e.protoinfo.expect("protoinfo");
        prop_assert_eq!(pinfo.tcp.and_then(|x| x.state), Some(TcpState::Established));
        prop_assert_eq!(pinfo.unknown, in_tcp);
    }

    /// Unknown attributes of the statistics messages are kept too.
    #[test]
    fn unknown_stats_attributes_survive(
        entries in any::<u32>(),
        found in any::<u32>(),
        extra in unknown_attrs(3..60, 3),
        extra_cpu in unknown_attrs(18..60, 3),
        cpu in any::<u16>(),
    ) {
        let mut b = MessageBuilder::new(0x0105, 0);
        b.put_raw(&[0, 0, 0, 0]);
        b.put_be32(CTA_STATS_GLOBAL_ENTRIES, entries);
        for a in &extra { put_raw_attr(&mut b, a); }
        let msg = b.finish();
        let g = GlobalStats::from_frame(&only_frame(&msg)).expect("stats decode");
        prop_assert_eq!(g.entries, entries);
        prop_assert_eq!(g.unknown, extra);

        let mut b = MessageBuilder::new(0x0104, 0);
        b.put_raw(&[0, 0, (cpu >> 8) as u8, cpu as u8]);
        b.put_be32(CTA_STATS_FOUND, found);
        for a in &extra_cpu { put_raw_attr(&mut b, a); }
        let msg = b.finish();
        let c = CpuStats::from_frame(&only_frame(&msg)).expect("cpu stats decode");
        prop_assert_eq!(c.cpu, cpu);
        prop_assert_eq!(c.found, Some(found));
        prop_assert_eq!(c.unknown, extra_cpu);
    }
}

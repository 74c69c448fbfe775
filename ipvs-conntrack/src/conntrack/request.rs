//! Typed write requests for the conntrack table — create, update, delete, flush — and the
//! counter-zeroing dump. Every request is checked before anything is sent: combinations
//! the kernel would reject (or silently ignore) fail with [`Error::InvalidRequest`].

use std::net::IpAddr;
use std::ops::ControlFlow;

use crate::conntrack::client::Conntrack;
use crate::conntrack::entry::{Entry, EntryView, Family, Labels, NatRange, SeqAdj, Synproxy};
use crate::conntrack::filter::DumpFilter;
use crate::conntrack::protoinfo::ProtoInfo;
use crate::conntrack::status::Status;
use crate::conntrack::tuple::*;
use crate::conntrack::wire::*;
use crate::error::{Error, Result};
use crate::netlink::emit::MessageBuilder;
use crate::netlink::frame::flags::*;
use crate::netlink::nfnetlink::{message_type, NfGenMsg, NFNETLINK_V0, NFNL_SUBSYS_CTNETLINK};
use crate::socket::{NlSocket, Step};

/// AF_INET.
const AF_INET: u8 = 2;
/// AF_INET6.
const AF_INET6: u8 = 10;
/// Largest label bit the kernel stores (`NF_CT_LABELS_MAX_SIZE` is 16 bytes).
pub const MAX_LABEL_BIT: u16 = 127;
/// Longest helper name the kernel accepts, without the NUL (`NF_CT_HELPER_NAME_LEN - 1`).
pub const MAX_HELPER_NAME: usize = 15;

/// Status bits the kernel never lets user space change (`IPS_UNCHANGEABLE_MASK`).
pub const UNCHANGEABLE_STATUS: Status = Status::from_bits_retain(
    Status::EXPECTED.bits()
        | Status::CONFIRMED.bits()
        | Status::SRC_NAT.bits()
        | Status::DST_NAT.bits()
        | Status::SEQ_ADJUST.bits()
        | Status::SRC_NAT_DONE.bits()
        | Status::DST_NAT_DONE.bits()
        | Status::DYING.bits()
        | Status::TEMPLATE.bits()
        | Status::UNTRACKED.bits()
        | Status::OFFLOAD.bits()
        | Status::HW_OFFLOAD.bits(),
);

/// A request that can be sent alone ([`Conntrack::execute`]) or in a batch.
pub trait WriteRequest {
    /// Name of the operation, used in errors (for example `conntrack create`).
    fn operation(&self) -> &'static str;
    /// Checks the request without sending it.
    fn validate(&self) -> Result<()>;
    /// Validates, then appends the encoded netlink message to `buf` (left unchanged on error).
    fn encode_into(&self, buf: &mut Vec<u8>) -> Result<()>;
    /// Validates and encodes into a fresh buffer.
    fn encode(&self) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(256);
        self.encode_into(&mut buf)?;
        Ok(buf)
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidRequest(msg.into())
}

/// The address family (AF_INET / AF_INET6) of an address.
pub(crate) fn family_of(a: &IpAddr) -> u8 {
    if a.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

/// Starts a ctnetlink-family message (`nfgenmsg` included).
pub(crate) fn nfnl_message(
    buf: Vec<u8>,
    subsys: u8,
    msg: u8,
    flags: u16,
    family: u8,
    version: u8,
) -> MessageBuilder {
    let mut b = MessageBuilder::append_to(buf, message_type(subsys, msg), NLM_F_REQUEST | flags);
    b.put_raw(
        &NfGenMsg {
            family,
            version,
            res_id: 0,
        }
        .to_bytes(),
    );
    b
}

/// True for L4 protocols whose tuples carry ports.
fn has_ports(proto: u8) -> bool {
    matches!(
        proto,
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_SCTP | IPPROTO_DCCP
    )
}

/// Checks that a tuple is complete enough for the kernel to parse it; `what` names it.
pub(crate) fn check_tuple(t: &Tuple, what: &str) -> Result<()> {
    if t.src.is_ipv4() != t.dst.is_ipv4() {
        return Err(invalid(format!(
            "{what} tuple: source {} and destination {} are of different families",
            t.src, t.dst
        )));
    }
    if has_ports(t.proto) && (t.src_port.is_none() || t.dst_port.is_none()) {
        return Err(invalid(format!(
            "{what} tuple: protocol {} needs both ports",
            proto_name(t.proto).unwrap_or("?")
        )));
    }
    if matches!(t.proto, IPPROTO_ICMP | IPPROTO_ICMPV6) {
        if t.icmp_type.is_none() || t.icmp_code.is_none() || t.icmp_id.is_none() {
            return Err(invalid(format!(
                "{what} tuple: ICMP needs type, code and id"
            )));
        }
        let v4 = t.src.is_ipv4();
        if (t.proto == IPPROTO_ICMP) != v4 {
            return Err(invalid(format!(
                "{what} tuple: use ICMP with IPv4 and ICMPv6 with IPv6"
            )));
        }
    }
    if !has_ports(t.proto)
        && t.proto != IPPROTO_GRE
        && (t.src_port.is_some() || t.dst_port.is_some())
    {
        return Err(invalid(format!(
            "{what} tuple: protocol {} has no ports",
            t.proto
        )));
    }
    if !t.unknown.is_empty() {
        return Err(invalid(format!(
            "{what} tuple: carries attributes this library does not know; they cannot be sent"
        )));
    }
    Ok(())
}

/// Appends a NAT range nest (CTA_NAT_SRC / CTA_NAT_DST).
fn emit_nat(b: &mut MessageBuilder, kind: u16, n: &NatRange) {
    let nest = b.begin_nest(kind);
    let put_ip = |b: &mut MessageBuilder, ip: IpAddr, v4: u16, v6: u16| match ip {
        IpAddr::V4(a) => {
            b.put_bytes(v4, &a.octets());
        }
        IpAddr::V6(a) => {
            b.put_bytes(v6, &a.octets());
        }
    };
    if let Some(ip) = n.min_ip {
        put_ip(b, ip, CTA_NAT_V4_MINIP, CTA_NAT_V6_MINIP);
    }
    if let Some(ip) = n.max_ip {
        put_ip(b, ip, CTA_NAT_V4_MAXIP, CTA_NAT_V6_MAXIP);
    }
    if n.min_port.is_some() || n.max_port.is_some() {
        let p = b.begin_nest(CTA_NAT_PROTO);
        if let Some(v) = n.min_port {
            b.put_be16(CTA_PROTONAT_PORT_MIN, v);
        }
        if let Some(v) = n.max_port {
            b.put_be16(CTA_PROTONAT_PORT_MAX, v);
        }
        b.end_nest(p);
    }
    b.end_nest(nest);
}

fn check_nat(n: &NatRange, family: u8, proto: u8, what: &str) -> Result<()> {
    if n.min_ip.is_none() && n.max_ip.is_some() {
        return Err(invalid(format!(
            "{what}: a maximum address needs a minimum"
        )));
    }
    for ip in [n.min_ip, n.max_ip].into_iter().flatten() {
        if family_of(&ip) != family {
            return Err(invalid(format!(
                "{what}: address {ip} is not of the entry's family"
            )));
        }
    }
    if let (Some(a), Some(b)) = (n.min_ip, n.max_ip) {
        if a > b {
            return Err(invalid(format!(
                "{what}: minimum address {a} above maximum {b}"
            )));
        }
    }
    if n.min_port.is_some() || n.max_port.is_some() {
        if !has_ports(proto) {
            return Err(invalid(format!(
                "{what}: port ranges need a protocol with ports"
            )));
        }
        if n.min_port.is_none() {
            return Err(invalid(format!("{what}: a maximum port needs a minimum")));
        }
        if let (Some(a), Some(b)) = (n.min_port, n.max_port) {
            if a > b {
                return Err(invalid(format!(
                    "{what}: minimum port {a} above maximum {b}"
                )));
            }
        }
    }
    if n.min_ip.is_none() && n.min_port.is_none() {
        return Err(invalid(format!("{what}: empty NAT range")));
    }
    Ok(())
}

fn emit_seqadj(b: &mut MessageBuilder, kind: u16, s: &SeqAdj) {
    let n = b.begin_nest(kind);
    if let Some(v) = s.correction_pos {
        b.put_be32(CTA_SEQADJ_CORRECTION_POS, v);
    }
    if let Some(v) = s.offset_before {
        b.put_be32(CTA_SEQADJ_OFFSET_BEFORE, v as u32);
    }
    if let Some(v) = s.offset_after {
        b.put_be32(CTA_SEQADJ_OFFSET_AFTER, v as u32);
    }
    b.end_nest(n);
}

fn check_seqadj(s: &SeqAdj, what: &str) -> Result<()> {
    if s.correction_pos.is_none() || s.offset_before.is_none() || s.offset_after.is_none() {
        return Err(invalid(format!(
            "{what}: sequence adjustment needs correction position, offset before and after"
        )));
    }
    Ok(())
}

/// Attributes that both create and update can set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryAttrs {
    /// CTA_TIMEOUT: seconds until expiry.
    pub timeout: Option<u32>,
    /// CTA_STATUS: bits to set (IPS_CONFIRMED is added; SEEN_REPLY and ASSURED can only be set).
    pub status: Option<Status>,
    /// CTA_MARK.
    pub mark: Option<u32>,
    /// CTA_MARK_MASK: bits of the old mark to replace (update; the new mark is `(old & !mask) ^ mark`).
    pub mark_mask: Option<u32>,
    /// CTA_LABELS: label bits (0..=127).
    pub labels: Option<Labels>,
    /// CTA_LABELS_MASK: which label bits to change (needs `labels`).
    pub labels_mask: Option<Labels>,
    /// CTA_PROTOINFO (TCP / SCTP / DCCP state).
    pub protoinfo: Option<ProtoInfo>,
    /// CTA_HELP name (create: assign; update: only the same helper, or "" to detach).
    pub helper: Option<String>,
    /// CTA_SEQ_ADJ_ORIG.
    pub seq_adj_orig: Option<SeqAdj>,
    /// CTA_SEQ_ADJ_REPLY.
    pub seq_adj_reply: Option<SeqAdj>,
    /// CTA_SYNPROXY.
    pub synproxy: Option<Synproxy>,
}

impl EntryAttrs {
    fn check(&self, proto: u8, creating: bool, what: &str) -> Result<()> {
        if let Some(l) = &self.labels {
            if let Some(b) = l.0.iter().find(|b| **b > MAX_LABEL_BIT) {
                return Err(invalid(format!(
                    "{what}: label bit {b} is above the kernel's maximum {MAX_LABEL_BIT}"
                )));
            }
        }
        if let Some(m) = &self.labels_mask {
            if self.labels.is_none() {
                return Err(invalid(format!("{what}: a label mask needs labels")));
            }
            if let Some(b) = m.0.iter().find(|b| **b > MAX_LABEL_BIT) {
                return Err(invalid(format!(
                    "{what}: label mask bit {b} is above the kernel's maximum {MAX_LABEL_BIT}"
                )));
            }
        }
        if self.mark_mask.is_some() && self.mark.is_none() {
            return Err(invalid(format!("{what}: a mark mask needs a mark")));
        }
        if let Some(s) = self.status {
            if s.contains(Status::DYING) {
                return Err(invalid(format!("{what}: the DYING bit cannot be set")));
            }
            if creating {
                let bad = s & UNCHANGEABLE_STATUS & !Status::CONFIRMED;
                if !bad.is_empty() {
                    let names: Vec<_> = bad.names().collect();
                    return Err(invalid(format!(
                        "{what}: status bits {} are set by the kernel, not by requests \
                         (use nat_src/nat_dst, seq_adj or master instead)",
                        names.join("|")
                    )));
                }
            }
        }
        if let Some(p) = &self.protoinfo {
            if !p.unknown.is_empty() {
                return Err(invalid(format!(
                    "{what}: protocol info carries attributes this library does not know"
                )));
            }
            let kinds = [
                (p.tcp.is_some(), IPPROTO_TCP, "TCP"),
                (p.sctp.is_some(), IPPROTO_SCTP, "SCTP"),
                (p.dccp.is_some(), IPPROTO_DCCP, "DCCP"),
            ];
            for (set, want, name) in kinds {
                if set && proto != want {
                    return Err(invalid(format!(
                        "{what}: {name} protocol info on a {} entry",
                        proto_name(proto).unwrap_or("non-matching")
                    )));
                }
            }
            if p.tcp.is_none() && p.sctp.is_none() && p.dccp.is_none() {
                return Err(invalid(format!("{what}: empty protocol info")));
            }
            if let Some(t) = &p.tcp {
                if let Some(s) = t.state {
                    if s.value() >= 10 {
                        return Err(invalid(format!(
                            "{what}: TCP state {s} is not a state the kernel accepts"
                        )));
                    }
                }
            }
            if let Some(s) = &p.sctp {
                if s.state.is_none() || s.vtag_original.is_none() || s.vtag_reply.is_none() {
                    return Err(invalid(format!(
                        "{what}: SCTP protocol info needs state and both verification tags"
                    )));
                }
            }
        }
        if let Some(h) = &self.helper {
            if h.len() > MAX_HELPER_NAME || h.contains('\0') {
                return Err(invalid(format!(
                    "{what}: helper name {h:?} is longer than {MAX_HELPER_NAME} bytes or has a NUL"
                )));
            }
            if creating && h.is_empty() {
                return Err(invalid(format!("{what}: empty helper name")));
            }
        }
        if let Some(s) = &self.seq_adj_orig {
            check_seqadj(s, what)?;
        }
        if let Some(s) = &self.seq_adj_reply {
            check_seqadj(s, what)?;
        }
        if let Some(s) = &self.synproxy {
            if s.isn.is_none() || s.its.is_none() || s.tsoff.is_none() {
                return Err(invalid(format!(
                    "{what}: SYN proxy state needs ISN, ITS and TSOFF"
                )));
            }
        }
        Ok(())
    }

    fn emit(&self, b: &mut MessageBuilder) {
        if let Some(t) = self.timeout {
            b.put_be32(CTA_TIMEOUT, t);
        }
        if let Some(s) = self.status {
            b.put_be32(CTA_STATUS, (s | Status::CONFIRMED).bits());
        }
        if let Some(p) = &self.protoinfo {
            p.emit(b);
        }
        if let Some(h) = &self.helper {
            let n = b.begin_nest(CTA_HELP);
            b.put_str(CTA_HELP_NAME, h);
            b.end_nest(n);
        }
        if let Some(m) = self.mark {
            b.put_be32(CTA_MARK, m);
        }
        if let Some(m) = self.mark_mask {
            b.put_be32(CTA_MARK_MASK, m);
        }
        if let Some(s) = &self.seq_adj_orig {
            emit_seqadj(b, CTA_SEQ_ADJ_ORIG, s);
        }
        if let Some(s) = &self.seq_adj_reply {
            emit_seqadj(b, CTA_SEQ_ADJ_REPLY, s);
        }
        if let Some(s) = &self.synproxy {
            let n = b.begin_nest(CTA_SYNPROXY);
            b.put_be32(CTA_SYNPROXY_ISN, s.isn.unwrap_or(0));
            b.put_be32(CTA_SYNPROXY_ITS, s.its.unwrap_or(0));
            b.put_be32(CTA_SYNPROXY_TSOFF, s.tsoff.unwrap_or(0));
            b.end_nest(n);
        }
        if let Some(l) = &self.labels {
            // Both bitmaps have the kernel's full size, as it requires equal lengths.
            b.put_bytes(CTA_LABELS, &label_bitmap(l));
            if let Some(m) = &self.labels_mask {
                b.put_bytes(CTA_LABELS_MASK, &label_bitmap(m));
            }
        }
    }
}

/// A label bitmap of exactly 16 bytes (128 bits), as the kernel stores it.
fn label_bitmap(l: &Labels) -> Vec<u8> {
    let mut bytes = l.to_bitmap();
    bytes.resize(16, 0);
    bytes
}

/// Creates an entry (IPCTNL_MSG_CT_NEW with NLM_F_CREATE|NLM_F_EXCL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateRequest {
    /// Original direction tuple.
    pub orig: Tuple,
    /// Reply direction tuple (defaults to the original reversed).
    pub reply: Tuple,
    /// CTA_ZONE.
    pub zone: Option<u16>,
    /// CTA_NAT_SRC: source NAT to set up.
    pub nat_src: Option<NatRange>,
    /// CTA_NAT_DST: destination NAT to set up.
    pub nat_dst: Option<NatRange>,
    /// CTA_TUPLE_MASTER: makes this an expected (related) connection of that master.
    pub master: Option<Tuple>,
    /// The settable attributes; `timeout` is required.
    pub attrs: EntryAttrs,
}

impl CreateRequest {
    /// A new entry with original tuple `orig`, reply `orig.reversed()` and a timeout in seconds.
    pub fn new(orig: Tuple, timeout: u32) -> Self {
        CreateRequest {
            reply: orig.reversed(),
            orig,
            zone: None,
            nat_src: None,
            nat_dst: None,
            master: None,
            attrs: EntryAttrs {
                timeout: Some(timeout),
                ..EntryAttrs::default()
            },
        }
    }

    /// A request that recreates `e` (tuples, zone, timeout, settable status, mark, labels,
    /// protocol info, helper, sequence adjustment, master).
    pub fn from_entry(e: &Entry) -> Self {
        let strip = |t: &Tuple| Tuple {
            zone: None,
            unknown: Vec::new(),
            ..t.clone()
        };
        let mut p = e.protoinfo.clone();
        if let Some(p) = p.as_mut() {
            p.unknown.clear();
        }
        let seq = e.status.contains(Status::SEQ_ADJUST);
        CreateRequest {
            orig: strip(&e.orig),
            reply: strip(&e.reply),
            zone: e.zone.or(e.orig.zone),
            nat_src: None,
            nat_dst: None,
            master: e.master.as_ref().map(strip),
            attrs: EntryAttrs {
                timeout: Some(e.timeout.unwrap_or(1).max(1)),
                status: Some(e.status - UNCHANGEABLE_STATUS),
                mark: e.mark.filter(|m| *m != 0),
                mark_mask: None,
                labels: e.labels.clone().filter(|l| !l.0.is_empty()),
                labels_mask: None,
                protoinfo: p,
                helper: e.helper.as_ref().map(|h| h.name.clone()),
                seq_adj_orig: if seq { e.seq_adj_orig } else { None },
                seq_adj_reply: if seq { e.seq_adj_reply } else { None },
                synproxy: None,
            },
        }
    }

    /// Sets the reply tuple.
    pub fn reply(mut self, t: Tuple) -> Self {
        self.reply = t;
        self
    }
    /// Sets the zone.
    pub fn zone(mut self, z: u16) -> Self {
        self.zone = Some(z);
        self
    }
    /// Sets the timeout in seconds.
    pub fn timeout(mut self, s: u32) -> Self {
        self.attrs.timeout = Some(s);
        self
    }
    /// Sets status bits (IPS_CONFIRMED is always added).
    pub fn status(mut self, s: Status) -> Self {
        self.attrs.status = Some(s);
        self
    }
    /// Sets the mark.
    pub fn mark(mut self, m: u32) -> Self {
        self.attrs.mark = Some(m);
        self
    }
    /// Sets label bits.
    pub fn labels(mut self, l: Labels) -> Self {
        self.attrs.labels = Some(l);
        self
    }
    /// Sets the protocol info.
    pub fn protoinfo(mut self, p: ProtoInfo) -> Self {
        self.attrs.protoinfo = Some(p);
        self
    }
    /// Assigns a helper by name (`ftp`, `sip`, …).
    pub fn helper(mut self, name: impl Into<String>) -> Self {
        self.attrs.helper = Some(name.into());
        self
    }
    /// Sets up source NAT.
    pub fn nat_src(mut self, n: NatRange) -> Self {
        self.nat_src = Some(n);
        self
    }
    /// Sets up destination NAT.
    pub fn nat_dst(mut self, n: NatRange) -> Self {
        self.nat_dst = Some(n);
        self
    }
    /// Sets the sequence adjustment of both directions.
    pub fn seq_adj(mut self, orig: SeqAdj, reply: SeqAdj) -> Self {
        self.attrs.seq_adj_orig = Some(orig);
        self.attrs.seq_adj_reply = Some(reply);
        self
    }
    /// Sets the SYN proxy state.
    pub fn synproxy(mut self, s: Synproxy) -> Self {
        self.attrs.synproxy = Some(s);
        self
    }
    /// Makes the entry an expected connection of `master` (its original tuple).
    pub fn master(mut self, master: Tuple) -> Self {
        self.master = Some(master);
        self
    }

    /// The nfgenmsg family (from the original tuple).
    pub fn family(&self) -> u8 {
        family_of(&self.orig.src)
    }
}

impl WriteRequest for CreateRequest {
    fn operation(&self) -> &'static str {
        "conntrack create"
    }

    fn validate(&self) -> Result<()> {
        let what = "create";
        check_tuple(&self.orig, "original")?;
        check_tuple(&self.reply, "reply")?;
        if self.orig.src.is_ipv4() != self.reply.src.is_ipv4() {
            return Err(invalid(
                "create: original and reply tuples are of different families",
            ));
        }
        if self.orig.proto != self.reply.proto {
            return Err(invalid(format!(
                "create: original protocol {} differs from reply protocol {}",
                self.orig.proto, self.reply.proto
            )));
        }
        if self.orig.zone.is_some() || self.reply.zone.is_some() {
            return Err(invalid(
                "create: set the zone with CreateRequest::zone, not in the tuples",
            ));
        }
        if self.attrs.timeout.is_none() {
            return Err(invalid("create: a timeout is required"));
        }
        if self.attrs.mark_mask.is_some() {
            return Err(invalid("create: a mark mask only applies to updates"));
        }
        if self.attrs.labels_mask.is_some() {
            return Err(invalid("create: a label mask only applies to updates"));
        }
        if let Some(m) = &self.master {
            check_tuple(m, "master")?;
            if m.src.is_ipv4() != self.orig.src.is_ipv4() {
                return Err(invalid("create: master tuple is of another family"));
            }
            if m.zone.is_some() {
                return Err(invalid("create: master tuple must not carry a zone"));
            }
        }
        let fam = self.family();
        if let Some(n) = &self.nat_src {
            check_nat(n, fam, self.orig.proto, "create: source NAT")?;
        }
        if let Some(n) = &self.nat_dst {
            check_nat(n, fam, self.orig.proto, "create: destination NAT")?;
        }
        self.attrs.check(self.orig.proto, true, what)
    }

    fn encode_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        self.validate()?;
        let mut b = nfnl_message(
            std::mem::take(buf),
            NFNL_SUBSYS_CTNETLINK,
            IPCTNL_MSG_CT_NEW,
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            self.family(),
            NFNETLINK_V0,
        );
        self.orig.emit(&mut b, CTA_TUPLE_ORIG);
        self.reply.emit(&mut b, CTA_TUPLE_REPLY);
        if let Some(z) = self.zone {
            b.put_be16(CTA_ZONE, z);
        }
        if let Some(n) = &self.nat_src {
            emit_nat(&mut b, CTA_NAT_SRC, n);
        }
        if let Some(n) = &self.nat_dst {
            emit_nat(&mut b, CTA_NAT_DST, n);
        }
        if let Some(m) = &self.master {
            m.emit(&mut b, CTA_TUPLE_MASTER);
        }
        self.attrs.emit(&mut b);
        *buf = b.finish();
        Ok(())
    }
}

/// Changes an existing entry (IPCTNL_MSG_CT_NEW without NLM_F_CREATE; ENOENT if absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateRequest {
    /// Original tuple of the entry to change.
    pub orig: Tuple,
    /// Zone of the entry.
    pub zone: Option<u16>,
    /// What to change.
    pub attrs: EntryAttrs,
}

impl UpdateRequest {
    /// Changes the entry whose original tuple is `orig`.
    pub fn new(orig: Tuple) -> Self {
        UpdateRequest {
            orig,
            zone: None,
            attrs: EntryAttrs::default(),
        }
    }
    /// The zone of the entry.
    pub fn zone(mut self, z: u16) -> Self {
        self.zone = Some(z);
        self
    }
    /// New timeout in seconds.
    pub fn timeout(mut self, s: u32) -> Self {
        self.attrs.timeout = Some(s);
        self
    }
    /// Status bits to set (IPS_CONFIRMED is added; SEEN_REPLY and ASSURED cannot be cleared).
    pub fn status(mut self, s: Status) -> Self {
        self.attrs.status = Some(s);
        self
    }
    /// New mark; with a mask only the masked bits change (`(old & !mask) ^ mark`).
    pub fn mark(mut self, m: u32, mask: Option<u32>) -> Self {
        self.attrs.mark = Some(m);
        self.attrs.mark_mask = mask;
        self
    }
    /// New labels; with a mask only the masked bits change.
    pub fn labels(mut self, l: Labels, mask: Option<Labels>) -> Self {
        self.attrs.labels = Some(l);
        self.attrs.labels_mask = mask;
        self
    }
    /// New protocol info.
    pub fn protoinfo(mut self, p: ProtoInfo) -> Self {
        self.attrs.protoinfo = Some(p);
        self
    }
    /// Helper: the entry's own helper (updates helper data) or `""` to detach it.
    pub fn helper(mut self, name: impl Into<String>) -> Self {
        self.attrs.helper = Some(name.into());
        self
    }
    /// New sequence adjustment of both directions.
    pub fn seq_adj(mut self, orig: SeqAdj, reply: SeqAdj) -> Self {
        self.attrs.seq_adj_orig = Some(orig);
        self.attrs.seq_adj_reply = Some(reply);
        self
    }
    /// New SYN proxy state.
    pub fn synproxy(mut self, s: Synproxy) -> Self {
        self.attrs.synproxy = Some(s);
        self
    }
}

impl WriteRequest for UpdateRequest {
    fn operation(&self) -> &'static str {
        "conntrack update"
    }

    fn validate(&self) -> Result<()> {
        check_tuple(&self.orig, "original")?;
        if self.orig.zone.is_some() {
            return Err(invalid(
                "update: set the zone with UpdateRequest::zone, not in the tuple",
            ));
        }
        if self.attrs == EntryAttrs::default() {
            return Err(invalid("update: nothing to change"));
        }
        self.attrs.check(self.orig.proto, false, "update")
    }

    fn encode_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        self.validate()?;
        let mut b = nfnl_message(
            std::mem::take(buf),
            NFNL_SUBSYS_CTNETLINK,
            IPCTNL_MSG_CT_NEW,
            NLM_F_ACK,
            family_of(&self.orig.src),
            NFNETLINK_V0,
        );
        self.orig.emit(&mut b, CTA_TUPLE_ORIG);
        if let Some(z) = self.zone {
            b.put_be16(CTA_ZONE, z);
        }
        self.attrs.emit(&mut b);
        *buf = b.finish();
        Ok(())
    }
}

/// Which direction a tuple given to [`DeleteRequest`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TupleDirection {
    /// The original direction (CTA_TUPLE_ORIG).
    Original,
    /// The reply direction (CTA_TUPLE_REPLY).
    Reply,
}

/// Deletes one entry by tuple, optionally checking its id (IPCTNL_MSG_CT_DELETE).
///
/// A tuple is always required: a delete request without one would flush the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteRequest {
    /// The entry's tuple.
    pub tuple: Tuple,
    /// Which direction `tuple` is.
    pub direction: TupleDirection,
    /// The entry's zone.
    pub zone: Option<u16>,
    /// Only delete if the entry has this CTA_ID (ENOENT otherwise).
    pub id: Option<u32>,
}

impl DeleteRequest {
    /// Deletes the entry whose original tuple is `t`.
    pub fn orig(t: Tuple) -> Self {
        DeleteRequest {
            tuple: t,
            direction: TupleDirection::Original,
            zone: None,
            id: None,
        }
    }
    /// Deletes the entry whose reply tuple is `t`.
    pub fn reply(t: Tuple) -> Self {
        DeleteRequest {
            direction: TupleDirection::Reply,
            ..DeleteRequest::orig(t)
        }
    }
    /// Deletes exactly the dumped entry `e` (its original tuple, zone and id).
    pub fn entry(e: &Entry) -> Self {
        DeleteRequest {
            tuple: Tuple {
                zone: None,
                unknown: Vec::new(),
                ..e.orig.clone()
            },
            direction: TupleDirection::Original,
            zone: e.zone.or(e.orig.zone),
            id: e.id,
        }
    }
    /// The entry's zone.
    pub fn zone(mut self, z: u16) -> Self {
        self.zone = Some(z);
        self
    }
    /// Requires this entry id.
    pub fn id(mut self, id: u32) -> Self {
        self.id = Some(id);
        self
    }
}

impl WriteRequest for DeleteRequest {
    fn operation(&self) -> &'static str {
        "conntrack delete"
    }

    fn validate(&self) -> Result<()> {
        check_tuple(&self.tuple, "delete")?;
        if self.tuple.zone.is_some() {
            return Err(invalid(
                "delete: set the zone with DeleteRequest::zone, not in the tuple",
            ));
        }
        Ok(())
    }

    fn encode_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        self.validate()?;
        let mut b = nfnl_message(
            std::mem::take(buf),
            NFNL_SUBSYS_CTNETLINK,
            IPCTNL_MSG_CT_DELETE,
            NLM_F_ACK,
            family_of(&self.tuple.src),
            NFNETLINK_V0,
        );
        let kind = match self.direction {
            TupleDirection::Original => CTA_TUPLE_ORIG,
            TupleDirection::Reply => CTA_TUPLE_REPLY,
        };
        self.tuple.emit(&mut b, kind);
        if let Some(z) = self.zone {
            b.put_be16(CTA_ZONE, z);
        }
        if let Some(id) = self.id {
            b.put_be32(CTA_ID, id);
        }
        *buf = b.finish();
        Ok(())
    }
}

/// Deletes every entry, every entry of one family, or every entry matching a
/// kernel-side filter (mark/mask, zone, status/mask, tuple fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushRequest {
    /// What to delete; the default deletes everything.
    pub filter: DumpFilter,
}

impl FlushRequest {
    /// Deletes the whole table.
    pub fn all() -> Self {
        FlushRequest::default()
    }
    /// Deletes the entries of one family.
    pub fn family(f: Family) -> Self {
        FlushRequest {
            filter: DumpFilter::all().family(f),
        }
    }
    /// Deletes the entries matching `filter` (evaluated by the kernel).
    pub fn matching(filter: DumpFilter) -> Self {
        FlushRequest { filter }
    }
}

impl WriteRequest for FlushRequest {
    fn operation(&self) -> &'static str {
        "conntrack flush"
    }

    fn validate(&self) -> Result<()> {
        let f = &self.filter;
        if f.user_space_only {
            return Err(invalid(
                "flush: the kernel evaluates flush filters; user_space_only cannot apply",
            ));
        }
        f.validate()?;
        if f.family == Some(Family::Unspec) {
            return Err(invalid(
                "flush: family must be IPv4 or IPv6 (or none for all)",
            ));
        }
        let tuple_filter = f.orig != Default::default() || f.reply != Default::default();
        if tuple_filter && f.family.is_none() {
            return Err(invalid(
                "flush: a tuple filter needs a family (DumpFilter::family)",
            ));
        }
        if let Some((s, mask)) = f.status {
            if mask.is_empty() && !s.is_empty() {
                return Err(invalid("flush: a status filter needs a non-empty mask"));
            }
        }
        Ok(())
    }

    fn encode_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        self.validate()?;
        let mut f = self.filter.clone();
        // The kernel compares `mark & mask` with the value as given.
        f.mark = f.mark.map(|(v, m)| (v & m, m));
        // Version 1 asks the kernel to honour the family (version 0 flushes every family).
        let version = u8::from(f.family.is_some());
        let mut b = nfnl_message(
            std::mem::take(buf),
            NFNL_SUBSYS_CTNETLINK,
            IPCTNL_MSG_CT_DELETE,
            NLM_F_ACK,
            f.nfgen_family(),
            version,
        );
        f.emit(&mut b);
        *buf = b.finish();
        Ok(())
    }
}

/// Sends one finished message and waits for its acknowledgement.
pub(crate) fn send_and_ack(
    sock: &mut NlSocket,
    mut bytes: Vec<u8>,
    op: &'static str,
) -> Result<()> {
    let seq = sock.send(&mut bytes, op)?;
    let mut ex = sock.exchange(seq, op);
    // Bounded by the answer: data frames (none expected) are skipped until the ACK.
    loop {
        match ex.next_frame()? {
            Step::Data(_) => continue,
            Step::Finished => return Ok(()),
        }
    }
}

impl Conntrack {
    /// Sends one write request and waits for the kernel's acknowledgement.
    pub fn execute(&mut self, req: &impl WriteRequest) -> Result<()> {
        let bytes = req.encode()?;
        send_and_ack(self.socket_mut(), bytes, req.operation())
    }

    /// Creates an entry (EEXIST if one with the same tuple exists).
    pub fn create(&mut self, req: &CreateRequest) -> Result<()> {
        self.execute(req)
    }

    /// Changes an existing entry (ENOENT if there is none).
    pub fn update(&mut self, req: &UpdateRequest) -> Result<()> {
        self.execute(req)
    }

    /// Deletes one entry.
    pub fn delete(&mut self, req: &DeleteRequest) -> Result<()> {
        self.execute(req)
    }

    /// Flushes the table, one family, or what matches a kernel-side filter.
    pub fn flush(&mut self, req: &FlushRequest) -> Result<()> {
        self.execute(req)
    }

    /// Deletes the entry with CTA_ID `id`: finds it by dumping, then deletes it by
    /// tuple and id (so a reused tuple is never hit). Returns the deleted entry.
    pub fn delete_by_id(&mut self, id: u32) -> Result<Entry> {
        let mut found = None;
        self.for_each_view(&DumpFilter::all(), |v| {
            if v.id() == Some(id) {
                found = Some(v.to_owned());
                ControlFlow::Break(Ok(()))
            } else {
                ControlFlow::Continue(())
            }
        })?;
        let entry = match found {
            Some(e) => e?,
            None => {
                return Err(Error::Kernel(crate::error::KernelError {
                    errno: crate::error::libc_errno::ENOENT,
                    message: Some(format!("no entry with id {id}")),
                    offset: None,
                    request: "conntrack delete",
                }))
            }
        };
        self.delete(&DeleteRequest::entry(&entry))?;
        Ok(entry)
    }

    /// Dumps the entries matching `filter` (kernel-side mark/zone/status/tuple filter)
    /// and zeroes their counters in the same pass (IPCTNL_MSG_CT_GET_CTRZERO); `f` sees
    /// each entry with the counters it had before zeroing. Returns the number of entries.
    pub fn for_each_zeroing<F>(&mut self, filter: &DumpFilter, mut f: F) -> Result<u64>
    where
        F: FnMut(&EntryView<'_>),
    {
        filter.validate()?;
        if filter.user_space_only {
            return Err(invalid(
                "zeroing dump: the kernel zeroes every entry it sends, so the filter must be \
                 evaluated by the kernel (user_space_only = false)",
            ));
        }
        let mut filter = filter.clone();
        // The kernel compares `mark & mask` with the value as given.
        filter.mark = filter.mark.map(|(v, m)| (v & m, m));
        let filter = &filter;
        let mut b = nfnl_message(
            Vec::with_capacity(128),
            NFNL_SUBSYS_CTNETLINK,
            IPCTNL_MSG_CT_GET_CTRZERO,
            NLM_F_DUMP,
            filter.nfgen_family(),
            NFNETLINK_V0,
        );
        filter.emit(&mut b);
        let mut bytes = b.finish();
        let op = "conntrack dump and zero counters";
        let sock = self.socket_mut();
        let seq = sock.send(&mut bytes, op)?;
        let mut ex = sock.exchange(seq, op);
        let mut n = 0u64;
        // Bounded by the dump: each turn consumes one frame of the answer.
        while let Some(meta) = ex.next_meta()? {
            let frame = ex.frame(&meta);
            let v = EntryView::from_frame(&frame)?;
            if filter.matches(&v)? {
                n += 1;
                f(&v);
            }
        }
        if ex.interrupted() {
            return Err(Error::DumpInterrupted);
        }
        Ok(n)
    }

    /// Dumps the matching entries into a `Vec` and zeroes their counters.
    pub fn zero_counters(&mut self, filter: &DumpFilter) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut err = None;
        self.for_each_zeroing(filter, |v| match v.to_owned() {
            Ok(e) => out.push(e),
            Err(e) => {
                err.get_or_insert(e);
            }
        })?;
        match err {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::protoinfo::{TcpInfo, TcpState};
    use crate::netlink::frame::Frames;

    fn tcp() -> Tuple {
        Tuple::with_ports(
            IPPROTO_TCP,
            "10.0.0.1".parse().unwrap(),
            1000,
            "10.0.0.2".parse().unwrap(),
            80,
        )
    }

    fn err_text(r: Result<Vec<u8>>) -> String {
        match r {
            Err(Error::InvalidRequest(m)) => m,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    #[test]
    fn create_encodes_and_decodes_back() {
        let req = CreateRequest::new(tcp(), 300)
            .zone(7)
            .mark(0x42)
            .status(Status::SEEN_REPLY | Status::ASSURED)
            .labels(Labels(vec![1, 70]))
            .protoinfo(ProtoInfo {
                tcp: Some(TcpInfo {
                    state: Some(TcpState::Established),
                    ..TcpInfo::default()
                }),
                ..ProtoInfo::default()
            });
        let msg = req.encode().unwrap();
        let f = Frames::new(&msg).next().unwrap().unwrap();
        assert_eq!(
            f.header.flags,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        );
        let e = Entry::from_frame(&f).unwrap();
        assert_eq!(e.orig, tcp());
        assert_eq!(e.reply, tcp().reversed());
        assert_eq!(e.zone, Some(7));
        assert_eq!(e.mark, Some(0x42));
        assert_eq!(e.timeout, Some(300));
        assert_eq!(
            e.status,
            Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED
        );
        assert_eq!(e.labels, Some(Labels(vec![1, 70])));
        assert_eq!(
            e.protoinfo.unwrap().tcp.unwrap().state,
            Some(TcpState::Established)
        );
    }

    #[test]
    fn nat_and_seqadj_encode() {
        let nat = NatRange {
            min_ip: Some("10.9.9.9".parse().unwrap()),
            max_ip: None,
            min_port: Some(8080),
            max_port: Some(8080),
        };
        let sa = SeqAdj {
            correction_pos: Some(5),
            offset_before: Some(-3),
            offset_after: Some(7),
        };
        let msg = CreateRequest::new(tcp(), 10)
            .nat_dst(nat)
            .seq_adj(sa, sa)
            .encode()
            .unwrap();
        let f = Frames::new(&msg).next().unwrap().unwrap();
        let e = Entry::from_frame(&f).unwrap();
        assert_eq!(e.nat_dst, Some(nat));
        assert_eq!(e.seq_adj_orig, Some(sa));
        assert_eq!(e.seq_adj_reply, Some(sa));
    }

    #[test]
    fn invalid_combinations_are_rejected() {
        let mut no_port = tcp();
        no_port.dst_port = None;
        assert!(err_text(CreateRequest::new(no_port, 5).encode()).contains("both ports"));

        let mut mixed = CreateRequest::new(tcp(), 5);
        mixed.reply.proto = IPPROTO_UDP;
        assert!(err_text(mixed.encode()).contains("differs"));

        let mut no_timeout = CreateRequest::new(tcp(), 5);
        no_timeout.attrs.timeout = None;
        assert!(err_text(no_timeout.encode()).contains("timeout is required"));

        let sctp_on_tcp = CreateRequest::new(tcp(), 5).protoinfo(ProtoInfo {
            sctp: Some(Default::default()),
            ..ProtoInfo::default()
        });
        assert!(err_text(sctp_on_tcp.encode()).contains("SCTP protocol info on a tcp"));

        let v6_nat = CreateRequest::new(tcp(), 5).nat_src(NatRange {
            min_ip: Some("fd00::1".parse().unwrap()),
            ..NatRange::default()
        });
        assert!(err_text(v6_nat.encode()).contains("not of the entry's family"));

        let nat_status = CreateRequest::new(tcp(), 5).status(Status::SRC_NAT);
        assert!(err_text(nat_status.encode()).contains("SRC_NAT"));

        let big_label = CreateRequest::new(tcp(), 5).labels(Labels(vec![128]));
        assert!(err_text(big_label.encode()).contains("label bit 128"));

        let icmp = Tuple {
            icmp_id: None,
            ..Tuple::icmp(
                "10.0.0.1".parse().unwrap(),
                "10.0.0.2".parse().unwrap(),
                8,
                0,
                1,
            )
        };
        assert!(err_text(CreateRequest::new(icmp, 5).encode()).contains("type, code and id"));

        assert!(err_text(UpdateRequest::new(tcp()).encode()).contains("nothing to change"));

        let ported_flush = FlushRequest::matching(DumpFilter {
            orig: crate::conntrack::filter::TupleFilter {
                proto: Some(IPPROTO_TCP),
                dst_port: Some(80),
                ..Default::default()
            },
            ..DumpFilter::default()
        });
        assert!(err_text(ported_flush.encode()).contains("needs a family"));
    }

    #[test]
    fn delete_always_carries_a_tuple_and_flush_family_uses_version_1() {
        let msg = DeleteRequest::orig(tcp()).id(9).encode().unwrap();
        let f = Frames::new(&msg).next().unwrap().unwrap();
        let e = crate::conntrack::entry::EntryView::from_frame(&f).unwrap();
        assert!(e.orig().unwrap().is_some());
        assert_eq!(e.id(), Some(9));

        let msg = FlushRequest::family(Family::Ipv6).encode().unwrap();
        let f = Frames::new(&msg).next().unwrap().unwrap();
        let g = NfGenMsg::parse(f.payload, 16).unwrap();
        assert_eq!((g.family, g.version), (10, 1));
        let msg = FlushRequest::all().encode().unwrap();
        let f = Frames::new(&msg).next().unwrap().unwrap();
        let g = NfGenMsg::parse(f.payload, 16).unwrap();
        assert_eq!((g.family, g.version), (0, 0));
        assert_eq!(f.payload.len(), 4);
    }
}

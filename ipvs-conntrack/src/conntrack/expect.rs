//! Expectations (NFNL_SUBSYS_CTNETLINK_EXP): connections a helper expects, such as
//! the data connection an FTP control connection announced. Decoding of every
//! CTA_EXPECT_* attribute, dump/get/create/update/delete/flush requests and the
//! per-CPU expectation counters.

use crate::conntrack::client::Conntrack;
use crate::conntrack::entry::{Family, MessageInfo};
use crate::conntrack::request::{check_tuple, family_of, nfnl_message, WriteRequest};
use crate::conntrack::tuple::{Tuple, TupleView, IPPROTO_ICMP, IPPROTO_ICMPV6};
use crate::conntrack::wire::*;
use crate::error::{AttrPath, DecodeError, DecodeErrorKind, Error, Result};
use crate::netlink::attr::{Attr, Attrs, RawAttr, Seen};
use crate::netlink::frame::flags::*;
use crate::netlink::frame::{Frame, NLMSG_HDRLEN};
use crate::netlink::nfnetlink::{
    split_type, NfGenMsg, NFGENMSG_LEN, NFNETLINK_V0, NFNL_SUBSYS_CTNETLINK,
    NFNL_SUBSYS_CTNETLINK_EXP,
};
use crate::socket::Step;

bitflags::bitflags! {
    /// CTA_EXPECT_FLAGS (`NF_CT_EXPECT_*`). Unknown bits are kept.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct ExpectFlags: u32 {
        /// NF_CT_EXPECT_PERMANENT: stays after a connection matched it.
        const PERMANENT = 1 << 0;
        /// NF_CT_EXPECT_INACTIVE: does not match until activated.
        const INACTIVE = 1 << 1;
        /// NF_CT_EXPECT_USERSPACE: created from user space (the kernel sets it).
        const USERSPACE = 1 << 2;
        // Unknown bits are kept as data.
        const _ = !0;
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for ExpectFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u32(self.bits())
    }
}

/// The NAT part of an expectation (CTA_EXPECT_NAT).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ExpectNat {
    /// CTA_EXPECT_NAT_DIR: 0 original, 1 reply.
    pub dir: u32,
    /// CTA_EXPECT_NAT_TUPLE: the saved address and port (source fields are the ones used).
    pub tuple: Tuple,
}

/// An expectation, owned and typed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Expectation {
    /// Address family.
    pub family: Family,
    /// Message this expectation came in (IPCTNL_MSG_EXP_NEW / _DELETE and flags).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub message: MessageInfo,
    /// CTA_EXPECT_MASTER: original tuple of the master connection.
    pub master: Tuple,
    /// CTA_EXPECT_TUPLE: the expected connection's tuple.
    pub tuple: Tuple,
    /// CTA_EXPECT_MASK: which bits of `tuple` must match (addresses and ports as masks).
    pub mask: Tuple,
    /// CTA_EXPECT_TIMEOUT: seconds left.
    pub timeout: Option<u32>,
    /// CTA_EXPECT_ID.
    pub id: Option<u32>,
    /// CTA_EXPECT_HELP_NAME: the master's helper.
    pub helper: Option<String>,
    /// CTA_EXPECT_ZONE.
    pub zone: Option<u16>,
    /// CTA_EXPECT_FLAGS.
    pub flags: Option<ExpectFlags>,
    /// CTA_EXPECT_CLASS: the helper's expectation class.
    pub class: Option<u32>,
    /// CTA_EXPECT_NAT.
    pub nat: Option<ExpectNat>,
    /// CTA_EXPECT_FN: name of the function run when the expectation matches.
    pub expect_fn: Option<String>,
    /// Attributes this library does not know, in order.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub unknown: Vec<RawAttr>,
}

/// Names of the nests inside expectation messages, for error paths.
fn exp_child_names(parent: crate::error::Names, kind: u16) -> Option<crate::error::Names> {
    child_names(parent, kind)
}

fn tuple_of(a: &Attr<'_>) -> Result<Tuple, DecodeError> {
    Ok(TupleView::parse(a)?.to_owned())
}

fn nat_of(a: &Attr<'_>, unknown: &mut Vec<RawAttr>) -> Result<ExpectNat, DecodeError> {
    let mut dir = None;
    let mut tuple = None;
    let mut seen = Seen::default();
    for x in a.nested(CTA_EXPECT_NAT_NAMES) {
        let x = x?;
        seen.check(&x)?;
        match x.kind() {
            CTA_EXPECT_NAT_DIR => dir = Some(x.be32()?),
            CTA_EXPECT_NAT_TUPLE => tuple = Some(tuple_of(&x)?),
            _ => unknown.push(x.to_raw()),
        }
    }
    match (dir, tuple) {
        (Some(dir), Some(tuple)) => Ok(ExpectNat { dir, tuple }),
        _ => Err(a.error(DecodeErrorKind::Missing)),
    }
}

impl Expectation {
    /// Decodes an expectation message (dump answer, get answer or event).
    pub fn from_frame(frame: &Frame<'_>) -> Result<Expectation, DecodeError> {
        let (subsys, msg) = split_type(frame.header.message_type);
        if subsys != NFNL_SUBSYS_CTNETLINK_EXP {
            return Err(DecodeError::new(
                DecodeErrorKind::UnexpectedMessage {
                    message_type: frame.header.message_type,
                },
                AttrPath::ROOT,
                frame.offset,
            ));
        }
        let base = frame.offset + NLMSG_HDRLEN;
        let gen = NfGenMsg::parse(frame.payload, base)?;
        let body = frame.payload.get(NFGENMSG_LEN..).unwrap_or_default();
        let off = base + NFGENMSG_LEN;
        let info = MessageInfo {
            msg,
            flags: frame.header.flags,
            res_id: gen.res_id,
        };
        Self::parse_body(gen.family, info, body, off)
            .map_err(|e| e.resolve(body, off, CTA_EXPECT_NAMES, exp_child_names))
    }

    /// Decodes the attributes of an expectation (the bytes after `nfgenmsg`, at `offset`).
    pub fn parse_body(
        family: u8,
        message: MessageInfo,
        body: &[u8],
        offset: usize,
    ) -> Result<Expectation, DecodeError> {
        let mut master = None;
        let mut tuple = None;
        let mut mask = None;
        let mut e = Expectation {
            family: Family::from(family),
            message,
            master: placeholder(),
            tuple: placeholder(),
            mask: placeholder(),
            timeout: None,
            id: None,
            helper: None,
            zone: None,
            flags: None,
            class: None,
            nat: None,
            expect_fn: None,
            unknown: Vec::new(),
        };
        let mut seen = Seen::default();
        for a in Attrs::new(body, offset, AttrPath::ROOT, CTA_EXPECT_NAMES) {
            let a = a?;
            seen.check(&a)?;
            match a.kind() {
                CTA_EXPECT_MASTER => master = Some(tuple_of(&a)?),
                CTA_EXPECT_TUPLE => tuple = Some(tuple_of(&a)?),
                CTA_EXPECT_MASK => mask = Some(tuple_of(&a)?),
                CTA_EXPECT_TIMEOUT => e.timeout = Some(a.be32()?),
                CTA_EXPECT_ID => e.id = Some(a.be32()?),
                CTA_EXPECT_HELP_NAME => e.helper = Some(a.str()?.to_owned()),
                CTA_EXPECT_ZONE => e.zone = Some(a.be16()?),
                CTA_EXPECT_FLAGS => e.flags = Some(ExpectFlags::from_bits_retain(a.be32()?)),
                CTA_EXPECT_CLASS => e.class = Some(a.be32()?),
                CTA_EXPECT_NAT => e.nat = Some(nat_of(&a, &mut e.unknown)?),
                CTA_EXPECT_FN => e.expect_fn = Some(a.str()?.to_owned()),
                _ => e.unknown.push(a.to_raw()),
            }
        }
        let missing = || DecodeError::new(DecodeErrorKind::Missing, AttrPath::ROOT, offset);
        e.master = master.ok_or_else(missing)?;
        e.tuple = tuple.ok_or_else(missing)?;
        e.mask = mask.ok_or_else(missing)?;
        Ok(e)
    }

    /// True if the message was an IPCTNL_MSG_EXP_DELETE (a destroy event).
    pub fn is_delete(&self) -> bool {
        self.message.msg == IPCTNL_MSG_EXP_DELETE
    }
}

fn placeholder() -> Tuple {
    Tuple::with_ports(
        0,
        std::net::Ipv4Addr::UNSPECIFIED.into(),
        0,
        std::net::Ipv4Addr::UNSPECIFIED.into(),
        0,
    )
}

/// A mask that requires every address bit and every port or ICMP field of `t` to match.
pub fn exact_mask(t: &Tuple) -> Tuple {
    let ones: std::net::IpAddr = if t.src.is_ipv4() {
        std::net::Ipv4Addr::BROADCAST.into()
    } else {
        std::net::Ipv6Addr::from(u128::MAX).into()
    };
    let icmp = matches!(t.proto, IPPROTO_ICMP | IPPROTO_ICMPV6);
    Tuple {
        src: ones,
        dst: ones,
        proto: t.proto,
        src_port: t.src_port.map(|_| u16::MAX),
        dst_port: t.dst_port.map(|_| u16::MAX),
        icmp_type: if icmp {
            t.icmp_type.map(|_| u8::MAX)
        } else {
            None
        },
        icmp_code: if icmp {
            t.icmp_code.map(|_| u8::MAX)
        } else {
            None
        },
        icmp_id: if icmp {
            t.icmp_id.map(|_| u16::MAX)
        } else {
            None
        },
        zone: None,
        unknown: Vec::new(),
    }
}

/// Per-CPU expectation counters (IPCTNL_MSG_EXP_GET_STATS_CPU).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ExpectCpuStats {
    /// CPU number.
    pub cpu: u16,
    /// CTA_STATS_EXP_NEW: expectations matched by a new connection.
    pub new: Option<u32>,
    /// CTA_STATS_EXP_CREATE: expectations created.
    pub create: Option<u32>,
    /// CTA_STATS_EXP_DELETE: expectations deleted.
    pub delete: Option<u32>,
    /// Attributes this library does not know.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub unknown: Vec<RawAttr>,
}

impl ExpectCpuStats {
    /// Decodes one answer message (the kernel sends it with the CTNETLINK subsystem id).
    pub fn from_frame(frame: &Frame<'_>) -> Result<ExpectCpuStats, DecodeError> {
        let base = frame.offset + NLMSG_HDRLEN;
        let gen = NfGenMsg::parse(frame.payload, base)?;
        let body = frame.payload.get(NFGENMSG_LEN..).unwrap_or_default();
        let mut s = ExpectCpuStats {
            cpu: gen.res_id,
            ..ExpectCpuStats::default()
        };
        let mut seen = Seen::default();
        for a in Attrs::new(
            body,
            base + NFGENMSG_LEN,
            AttrPath::ROOT,
            CTA_STATS_EXP_NAMES,
        ) {
            let a = a?;
            seen.check(&a)?;
            match a.kind() {
                CTA_STATS_EXP_NEW => s.new = Some(a.be32()?),
                CTA_STATS_EXP_CREATE => s.create = Some(a.be32()?),
                CTA_STATS_EXP_DELETE => s.delete = Some(a.be32()?),
                _ => s.unknown.push(a.to_raw()),
            }
        }
        Ok(s)
    }
}

/// Creates an expectation (NLM_F_CREATE|NLM_F_EXCL), or with `update` changes the
/// timeout of an existing one. The master connection must have a helper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectRequest {
    /// Original tuple of the master connection.
    pub master: Tuple,
    /// The expected connection's tuple.
    pub tuple: Tuple,
    /// Which fields of `tuple` must match (see [`exact_mask`]).
    pub mask: Tuple,
    /// Seconds until the expectation expires.
    pub timeout: u32,
    /// CTA_EXPECT_ZONE (the master's zone).
    pub zone: Option<u16>,
    /// CTA_EXPECT_HELP_NAME: helper of the expectation (the master's, usually).
    pub helper: Option<String>,
    /// CTA_EXPECT_FLAGS (USERSPACE is cleared by the kernel).
    pub flags: Option<ExpectFlags>,
    /// CTA_EXPECT_CLASS (needs `helper`; at most the helper's class count).
    pub class: Option<u32>,
    /// CTA_EXPECT_NAT.
    pub nat: Option<ExpectNat>,
    /// CTA_EXPECT_FN: an expectation function registered by a NAT helper (`nat-follow-master`).
    pub expect_fn: Option<String>,
    /// False: create (EEXIST if present). True: update the timeout (ENOENT if absent).
    pub update: bool,
}

impl ExpectRequest {
    /// Expects `tuple` (matched exactly) for `timeout` seconds, on behalf of `master`.
    pub fn new(master: Tuple, tuple: Tuple, timeout: u32) -> Self {
        ExpectRequest {
            mask: exact_mask(&tuple),
            master,
            tuple,
            timeout,
            zone: None,
            helper: None,
            flags: None,
            class: None,
            nat: None,
            expect_fn: None,
            update: false,
        }
    }
    /// Sets the mask.
    pub fn mask(mut self, m: Tuple) -> Self {
        self.mask = m;
        self
    }
    /// Sets the zone.
    pub fn zone(mut self, z: u16) -> Self {
        self.zone = Some(z);
        self
    }
    /// Sets the helper name.
    pub fn helper(mut self, h: impl Into<String>) -> Self {
        self.helper = Some(h.into());
        self
    }
    /// Sets the flags.
    pub fn flags(mut self, f: ExpectFlags) -> Self {
        self.flags = Some(f);
        self
    }
    /// Sets the class.
    pub fn class(mut self, c: u32) -> Self {
        self.class = Some(c);
        self
    }
    /// Sets the NAT part.
    pub fn nat(mut self, n: ExpectNat) -> Self {
        self.nat = Some(n);
        self
    }
    /// Sets the expectation function.
    pub fn expect_fn(mut self, name: impl Into<String>) -> Self {
        self.expect_fn = Some(name.into());
        self
    }
    /// Turns the request into a timeout update of an existing expectation.
    pub fn as_update(mut self) -> Self {
        self.update = true;
        self
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidRequest(msg.into())
}

impl WriteRequest for ExpectRequest {
    fn operation(&self) -> &'static str {
        if self.update {
            "expectation update"
        } else {
            "expectation create"
        }
    }

    fn validate(&self) -> Result<()> {
        check_tuple(&self.master, "master")?;
        check_tuple(&self.tuple, "expected")?;
        let fam = family_of(&self.master.src);
        for (t, what) in [(&self.tuple, "expected"), (&self.mask, "mask")] {
            if family_of(&t.src) != fam || family_of(&t.dst) != fam {
                return Err(invalid(format!(
                    "expectation: {what} tuple is not of the master's family"
                )));
            }
        }
        if self.mask.proto != self.tuple.proto {
            return Err(invalid(
                "expectation: mask protocol differs from the tuple's",
            ));
        }
        if [&self.master, &self.tuple, &self.mask]
            .iter()
            .any(|t| t.zone.is_some())
        {
            return Err(invalid(
                "expectation: set the zone with ExpectRequest::zone",
            ));
        }
        if self.class.is_some() && self.helper.is_none() {
            return Err(invalid(
                "expectation: a class is only checked against a named helper; set helper",
            ));
        }
        if let Some(h) = &self.helper {
            if h.is_empty() || h.len() > 15 || h.contains('\0') {
                return Err(invalid(format!("expectation: bad helper name {h:?}")));
            }
        }
        if let Some(n) = &self.nat {
            if n.dir > 1 {
                return Err(invalid("expectation: NAT direction must be 0 or 1"));
            }
            if family_of(&n.tuple.src) != fam {
                return Err(invalid(
                    "expectation: NAT tuple is not of the master's family",
                ));
            }
        }
        Ok(())
    }

    fn encode_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        self.validate()?;
        let flags = if self.update {
            NLM_F_ACK
        } else {
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        };
        let mut b = nfnl_message(
            std::mem::take(buf),
            NFNL_SUBSYS_CTNETLINK_EXP,
            IPCTNL_MSG_EXP_NEW,
            flags,
            family_of(&self.master.src),
            NFNETLINK_V0,
        );
        self.master.emit(&mut b, CTA_EXPECT_MASTER);
        self.tuple.emit(&mut b, CTA_EXPECT_TUPLE);
        self.mask.emit(&mut b, CTA_EXPECT_MASK);
        b.put_be32(CTA_EXPECT_TIMEOUT, self.timeout);
        if let Some(z) = self.zone {
            b.put_be16(CTA_EXPECT_ZONE, z);
        }
        if let Some(h) = &self.helper {
            b.put_str(CTA_EXPECT_HELP_NAME, h);
        }
        if let Some(f) = self.flags {
            b.put_be32(CTA_EXPECT_FLAGS, f.bits());
        }
        if let Some(c) = self.class {
            b.put_be32(CTA_EXPECT_CLASS, c);
        }
        if let Some(n) = &self.nat {
            let nest = b.begin_nest(CTA_EXPECT_NAT);
            b.put_be32(CTA_EXPECT_NAT_DIR, n.dir);
            n.tuple.emit(&mut b, CTA_EXPECT_NAT_TUPLE);
            b.end_nest(nest);
        }
        if let Some(f) = &self.expect_fn {
            b.put_str(CTA_EXPECT_FN, f);
        }
        *buf = b.finish();
        Ok(())
    }
}

/// Deletes one expectation by its tuple (and optionally id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectDeleteRequest {
    /// The expected tuple.
    pub tuple: Tuple,
    /// Zone.
    pub zone: Option<u16>,
    /// Only delete if the id matches.
    pub id: Option<u32>,
}

impl ExpectDeleteRequest {
    /// Deletes the expectation of `tuple`.
    pub fn new(tuple: Tuple) -> Self {
        ExpectDeleteRequest {
            tuple,
            zone: None,
            id: None,
        }
    }
    /// Deletes exactly the dumped expectation `e` (tuple, zone and id).
    pub fn expectation(e: &Expectation) -> Self {
        ExpectDeleteRequest {
            tuple: Tuple {
                zone: None,
                unknown: Vec::new(),
                ..e.tuple.clone()
            },
            zone: e.zone,
            id: e.id,
        }
    }
}

impl WriteRequest for ExpectDeleteRequest {
    fn operation(&self) -> &'static str {
        "expectation delete"
    }
    fn validate(&self) -> Result<()> {
        check_tuple(&self.tuple, "expected")?;
        if self.tuple.zone.is_some() {
            return Err(invalid(
                "expectation delete: set the zone with the zone field",
            ));
        }
        Ok(())
    }
    fn encode_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        self.validate()?;
        let mut b = nfnl_message(
            std::mem::take(buf),
            NFNL_SUBSYS_CTNETLINK_EXP,
            IPCTNL_MSG_EXP_DELETE,
            NLM_F_ACK,
            family_of(&self.tuple.src),
            NFNETLINK_V0,
        );
        self.tuple.emit(&mut b, CTA_EXPECT_TUPLE);
        if let Some(z) = self.zone {
            b.put_be16(CTA_EXPECT_ZONE, z);
        }
        if let Some(id) = self.id {
            b.put_be32(CTA_EXPECT_ID, id);
        }
        *buf = b.finish();
        Ok(())
    }
}

/// Deletes every expectation, or those whose master uses one helper.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpectFlushRequest {
    /// Only expectations of this helper (None = all).
    pub helper: Option<String>,
}

impl WriteRequest for ExpectFlushRequest {
    fn operation(&self) -> &'static str {
        "expectation flush"
    }
    fn validate(&self) -> Result<()> {
        match &self.helper {
            Some(h) if h.is_empty() || h.len() > 15 || h.contains('\0') => {
                Err(invalid(format!("expectation flush: bad helper name {h:?}")))
            }
            _ => Ok(()),
        }
    }
    fn encode_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        self.validate()?;
        let mut b = nfnl_message(
            std::mem::take(buf),
            NFNL_SUBSYS_CTNETLINK_EXP,
            IPCTNL_MSG_EXP_DELETE,
            NLM_F_ACK,
            0,
            NFNETLINK_V0,
        );
        if let Some(h) = &self.helper {
            b.put_str(CTA_EXPECT_HELP_NAME, h);
        }
        *buf = b.finish();
        Ok(())
    }
}

impl Conntrack {
    fn read_expectations(
        &mut self,
        mut bytes: Vec<u8>,
        op: &'static str,
    ) -> Result<Vec<Expectation>> {
        let sock = self.socket_mut();
        let seq = sock.send(&mut bytes, op)?;
        let mut ex = sock.exchange(seq, op);
        let mut out = Vec::new();
        // Bounded by the answer: each turn consumes one frame.
        while let Step::Data(frame) = ex.next_frame()? {
            out.push(Expectation::from_frame(&frame)?);
        }
        if ex.interrupted() {
            return Err(Error::DumpInterrupted);
        }
        Ok(out)
    }

    /// Every expectation of the namespace (IPCTNL_MSG_EXP_GET dump); `family` narrows it.
    pub fn expectations(&mut self, family: Option<Family>) -> Result<Vec<Expectation>> {
        let b = nfnl_message(
            Vec::with_capacity(64),
            NFNL_SUBSYS_CTNETLINK_EXP,
            IPCTNL_MSG_EXP_GET,
            NLM_F_DUMP,
            family.map_or(0, |f| f.value()),
            NFNETLINK_V0,
        );
        self.read_expectations(b.finish(), "expectation dump")
    }

    /// The expectations of one master connection (its original tuple and zone).
    pub fn expectations_of(
        &mut self,
        master: &Tuple,
        zone: Option<u16>,
    ) -> Result<Vec<Expectation>> {
        check_tuple(master, "master")?;
        let mut b = nfnl_message(
            Vec::with_capacity(128),
            NFNL_SUBSYS_CTNETLINK_EXP,
            IPCTNL_MSG_EXP_GET,
            NLM_F_DUMP,
            family_of(&master.src),
            NFNETLINK_V0,
        );
        master.emit(&mut b, CTA_EXPECT_MASTER);
        if let Some(z) = zone {
            b.put_be16(CTA_EXPECT_ZONE, z);
        }
        self.read_expectations(b.finish(), "expectation dump by master")
    }

    /// One expectation by its expected tuple.
    pub fn get_expectation(&mut self, tuple: &Tuple, zone: Option<u16>) -> Result<Expectation> {
        check_tuple(tuple, "expected")?;
        let mut b = nfnl_message(
            Vec::with_capacity(128),
            NFNL_SUBSYS_CTNETLINK_EXP,
            IPCTNL_MSG_EXP_GET,
            NLM_F_ACK,
            family_of(&tuple.src),
            NFNETLINK_V0,
        );
        tuple.emit(&mut b, CTA_EXPECT_TUPLE);
        if let Some(z) = zone {
            b.put_be16(CTA_EXPECT_ZONE, z);
        }
        let mut all = self.read_expectations(b.finish(), "expectation get")?;
        if all.is_empty() {
            return Err(Error::Kernel(crate::error::KernelError {
                errno: crate::error::libc_errno::ENOENT,
                message: None,
                offset: None,
                request: "expectation get",
            }));
        }
        Ok(all.swap_remove(0))
    }

    /// Creates (or with `update`, changes) an expectation.
    pub fn create_expectation(&mut self, req: &ExpectRequest) -> Result<()> {
        self.execute(req)
    }

    /// Deletes one expectation.
    pub fn delete_expectation(&mut self, req: &ExpectDeleteRequest) -> Result<()> {
        self.execute(req)
    }

    /// Deletes every expectation, or those of one helper.
    pub fn flush_expectations(&mut self, helper: Option<&str>) -> Result<()> {
        self.execute(&ExpectFlushRequest {
            helper: helper.map(str::to_owned),
        })
    }

    /// Per-CPU expectation counters (IPCTNL_MSG_EXP_GET_STATS_CPU).
    pub fn expect_cpu_stats(&mut self) -> Result<Vec<ExpectCpuStats>> {
        let mut bytes = nfnl_message(
            Vec::with_capacity(32),
            NFNL_SUBSYS_CTNETLINK_EXP,
            IPCTNL_MSG_EXP_GET_STATS_CPU,
            NLM_F_DUMP,
            0,
            NFNETLINK_V0,
        )
        .finish();
        let op = "expectation per-CPU stats";
        let sock = self.socket_mut();
        let seq = sock.send(&mut bytes, op)?;
        let mut ex = sock.exchange(seq, op);
        let mut out = Vec::new();
        // Bounded by the answer: one message per CPU.
        while let Step::Data(frame) = ex.next_frame()? {
            let (subsys, _) = split_type(frame.header.message_type);
            if subsys != NFNL_SUBSYS_CTNETLINK && subsys != NFNL_SUBSYS_CTNETLINK_EXP {
                return Err(DecodeError::new(
                    DecodeErrorKind::UnexpectedMessage {
                        message_type: frame.header.message_type,
                    },
                    AttrPath::ROOT,
                    frame.offset,
                )
                .into());
            }
            out.push(ExpectCpuStats::from_frame(&frame)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::tuple::IPPROTO_TCP;
    use crate::netlink::frame::Frames;

    fn tcp(sport: u16, dport: u16) -> Tuple {
        Tuple::with_ports(
            IPPROTO_TCP,
            "10.0.0.1".parse().unwrap(),
            sport,
            "10.0.0.2".parse().unwrap(),
            dport,
        )
    }

    #[test]
    fn request_round_trips_through_the_decoder() {
        let req = ExpectRequest::new(tcp(40000, 21), tcp(0, 50000), 60)
            .helper("ftp")
            .zone(3)
            .flags(ExpectFlags::PERMANENT)
            .class(0)
            .nat(ExpectNat {
                dir: 1,
                tuple: tcp(0, 0),
            })
            .expect_fn("nat-follow-master");
        let msg = req.encode().unwrap();
        let f = Frames::new(&msg).next().unwrap().unwrap();
        let e = Expectation::from_frame(&f).unwrap();
        assert_eq!(e.master, tcp(40000, 21));
        assert_eq!(e.tuple, tcp(0, 50000));
        assert_eq!(
            e.mask.src,
            "255.255.255.255".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(e.mask.dst_port, Some(0xffff));
        assert_eq!(e.timeout, Some(60));
        assert_eq!(e.helper.as_deref(), Some("ftp"));
        assert_eq!(e.zone, Some(3));
        assert_eq!(e.flags, Some(ExpectFlags::PERMANENT));
        assert_eq!(e.class, Some(0));
        assert_eq!(e.nat.as_ref().map(|n| n.dir), Some(1));
        assert_eq!(e.expect_fn.as_deref(), Some("nat-follow-master"));
        assert!(e.unknown.is_empty());
        assert_eq!(
            f.header.flags,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        );
    }

    #[test]
    fn missing_mask_is_a_typed_error_and_bad_requests_are_refused() {
        let req = ExpectRequest::new(tcp(1, 21), tcp(0, 2), 5);
        let mut msg = req.encode().unwrap();
        // Cut the message after the master and tuple nests: the mask is then missing.
        let f = Frames::new(&msg).next().unwrap().unwrap();
        let body = &f.payload[NFGENMSG_LEN..];
        let mut cut = 0;
        for a in Attrs::new(body, 0, AttrPath::ROOT, CTA_EXPECT_NAMES).flatten() {
            if a.kind() == CTA_EXPECT_MASK {
                cut = a.offset() - 4;
            }
        }
        let keep = NLMSG_HDRLEN + NFGENMSG_LEN + cut;
        msg.truncate(keep);
        msg[..4].copy_from_slice(&(keep as u32).to_ne_bytes());
        let f = Frames::new(&msg).next().unwrap().unwrap();
        let err = Expectation::from_frame(&f).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::Missing);

        let mut v6 = tcp(0, 2);
        v6.src = "fd00::1".parse().unwrap();
        v6.dst = "fd00::2".parse().unwrap();
        let bad = ExpectRequest::new(tcp(1, 21), v6, 5);
        assert!(matches!(bad.encode(), Err(Error::InvalidRequest(m)) if m.contains("family")));
        let no_helper = ExpectRequest::new(tcp(1, 21), tcp(0, 2), 5).class(1);
        assert!(matches!(no_helper.encode(), Err(Error::InvalidRequest(m)) if m.contains("class")));
    }

    #[test]
    fn every_truncation_of_an_expectation_is_an_error_not_a_panic() {
        let msg = ExpectRequest::new(tcp(1, 21), tcp(0, 2), 5)
            .helper("ftp")
            .encode()
            .unwrap();
        let mut decoded = 0;
        for cut in 0..msg.len() {
            let mut m = msg[..cut].to_vec();
            if m.len() >= 4 {
                m[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
            }
            if let Some(Ok(f)) = Frames::new(&m).next() {
                // The helper name is the last attribute: a cut message never has it.
                if let Ok(e) = Expectation::from_frame(&f) {
                    assert_eq!(e.helper, None, "cut at {cut}");
                    decoded += 1;
                }
            }
        }
        // Only the cuts right after the mask and after the timeout decode (both without helper).
        assert_eq!(decoded, 2);
    }
}

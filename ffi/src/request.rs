//! The conntrack write request in C form (`ipvsct_ct_request`): a tuple plus optional
//! fields, mapped onto the core's create, update and delete requests.

use std::ffi::c_char;

use ipvs_conntrack::conntrack::{
    CreateRequest, DeleteRequest, EntryAttrs, Labels, ProtoInfo, Status, TcpFlags, TcpFlagsMask,
    TcpInfo, TcpState, Tuple, TupleDirection, UpdateRequest,
};

use crate::entry::{IPVSCT_HELPER_NAME_LEN, IPVSCT_LABEL_WORDS};
use crate::error::FfiError;
use crate::tuple::{ipvsct_tuple, IPVSCT_TUPLE_HAS_ZONE};

/// `ipvsct_ct_request.fields`: `reply` is set (create; default: `orig` reversed).
pub const IPVSCT_CT_REQUEST_HAS_REPLY: u32 = 0x1;
/// `ipvsct_ct_request.fields`: `master` is set (create: an expected connection of it).
pub const IPVSCT_CT_REQUEST_HAS_MASTER: u32 = 0x2;
/// `ipvsct_ct_request.fields`: `timeout` is set (required to create).
pub const IPVSCT_CT_REQUEST_HAS_TIMEOUT: u32 = 0x4;
/// `ipvsct_ct_request.fields`: `status` is set (IPS_* bits to set; IPS_CONFIRMED is added).
pub const IPVSCT_CT_REQUEST_HAS_STATUS: u32 = 0x8;
/// `ipvsct_ct_request.fields`: `mark` is set.
pub const IPVSCT_CT_REQUEST_HAS_MARK: u32 = 0x10;
/// `ipvsct_ct_request.fields`: `mark_mask` is set (update: new mark = (old & ~mask) ^ mark).
pub const IPVSCT_CT_REQUEST_HAS_MARK_MASK: u32 = 0x20;
/// `ipvsct_ct_request.fields`: `id` is set (delete: only the entry with this id).
pub const IPVSCT_CT_REQUEST_HAS_ID: u32 = 0x40;
/// `ipvsct_ct_request.fields`: `labels` is set.
pub const IPVSCT_CT_REQUEST_HAS_LABELS: u32 = 0x80;
/// `ipvsct_ct_request.fields`: `labels_mask` is set (update: only these label bits change).
pub const IPVSCT_CT_REQUEST_HAS_LABELS_MASK: u32 = 0x100;
/// `ipvsct_ct_request.fields`: `zone` is set.
pub const IPVSCT_CT_REQUEST_HAS_ZONE: u32 = 0x200;
/// `ipvsct_ct_request.fields`: `tcp_state` is set (TCP entries).
pub const IPVSCT_CT_REQUEST_HAS_TCP_STATE: u32 = 0x400;
/// `ipvsct_ct_request.fields`: `tcp_wscale_orig` and `tcp_wscale_reply` are set.
pub const IPVSCT_CT_REQUEST_HAS_TCP_WSCALE: u32 = 0x800;
/// `ipvsct_ct_request.fields`: `tcp_flags_*` and their masks are set.
pub const IPVSCT_CT_REQUEST_HAS_TCP_FLAGS: u32 = 0x1000;
/// `ipvsct_ct_request.fields`: `helper` is set (create: assign; update: the entry's own or "" to detach).
pub const IPVSCT_CT_REQUEST_HAS_HELPER: u32 = 0x2000;

const ALL_BITS: u32 = 0x3fff;
const TCP_BITS: u32 = IPVSCT_CT_REQUEST_HAS_TCP_STATE
    | IPVSCT_CT_REQUEST_HAS_TCP_WSCALE
    | IPVSCT_CT_REQUEST_HAS_TCP_FLAGS;

/// `ipvsct_ct_request.direction` (delete): `orig` is the original-direction tuple.
pub const IPVSCT_DIR_ORIGINAL: u8 = 0;
/// `ipvsct_ct_request.direction` (delete): `orig` holds the reply-direction tuple.
pub const IPVSCT_DIR_REPLY: u8 = 1;

/// A conntrack write: create, update or delete one entry. Start from all-zero (`{0}`),
/// fill `orig` (src, dst, proto; ports for TCP/UDP/SCTP/DCCP/UDP-Lite; type, code and id
/// for ICMP) and set the optional members with their `IPVSCT_CT_REQUEST_HAS_*` bit.
/// Tuples must not carry IPVSCT_TUPLE_HAS_ZONE (use `zone`). Which members apply:
///  - create: reply, master, timeout (required), status, mark, labels, zone, tcp_*, helper;
///  - update: timeout, status, mark, mark_mask, labels, labels_mask, zone, tcp_*, helper;
///  - delete: zone, id, direction.
///
/// A member set for an operation it does not apply to gives IPVSCT_ERR_INVALID_ARGUMENT.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ct_request {
    /// The entry's original tuple (for delete with IPVSCT_DIR_REPLY: its reply tuple).
    pub orig: ipvsct_tuple,
    /// Reply tuple.
    pub reply: ipvsct_tuple,
    /// Original tuple of the master connection.
    pub master: ipvsct_tuple,
    /// `IPVSCT_CT_REQUEST_HAS_*` bits.
    pub fields: u32,
    /// Seconds until the entry expires.
    pub timeout: u32,
    /// Status bits (IPS_*).
    pub status: u32,
    /// Connection mark.
    pub mark: u32,
    /// Bits of the old mark to replace (update).
    pub mark_mask: u32,
    /// Entry id (CTA_ID) the entry must have (delete).
    pub id: u32,
    /// Label bitmap: label `n` is bit `n % 32` of word `n / 32`.
    pub labels: [u32; IPVSCT_LABEL_WORDS],
    /// Which label bits to change (update).
    pub labels_mask: [u32; IPVSCT_LABEL_WORDS],
    /// Conntrack zone.
    pub zone: u16,
    /// Delete: `IPVSCT_DIR_ORIGINAL` or `IPVSCT_DIR_REPLY`.
    pub direction: u8,
    /// TCP conntrack state (TCP_CONNTRACK_*: 3 ESTABLISHED, 7 TIME_WAIT, …; below 10).
    pub tcp_state: u8,
    /// TCP window scale, original direction.
    pub tcp_wscale_orig: u8,
    /// TCP window scale, reply direction.
    pub tcp_wscale_reply: u8,
    /// TCP conntrack flags (IP_CT_TCP_FLAG_*), original direction.
    pub tcp_flags_orig: u8,
    /// Which of `tcp_flags_orig` to change.
    pub tcp_flags_orig_mask: u8,
    /// TCP conntrack flags, reply direction.
    pub tcp_flags_reply: u8,
    /// Which of `tcp_flags_reply` to change.
    pub tcp_flags_reply_mask: u8,
    /// Zero.
    pub reserved: [u8; 6],
    /// Helper name ("ftp", …), NUL-terminated.
    pub helper: [c_char; IPVSCT_HELPER_NAME_LEN],
}

/// The label bits of a bitmap.
fn labels_of(words: &[u32; IPVSCT_LABEL_WORDS]) -> Labels {
    let mut bits = Vec::new();
    for (w, word) in words.iter().enumerate() {
        for b in 0..32u16 {
            if word & (1 << b) != 0 {
                // At most 4 words: the bit number fits in u16.
                bits.push(w as u16 * 32 + b);
            }
        }
    }
    Labels(bits)
}

impl ipvsct_ct_request {
    fn has(&self, bit: u32) -> bool {
        self.fields & bit != 0
    }

    fn opt<T>(&self, bit: u32, v: T) -> Option<T> {
        self.has(bit).then_some(v)
    }

    fn check(&self, op: &str, allowed: u32) -> Result<(), FfiError> {
        if self.fields & !ALL_BITS != 0 {
            return Err(FfiError::invalid(format!(
                "{op}: unknown bits {:#x} in request fields",
                self.fields & !ALL_BITS
            )));
        }
        let extra = self.fields & !allowed;
        if extra != 0 {
            return Err(FfiError::invalid(format!(
                "{op}: request fields {extra:#x} do not apply to this operation"
            )));
        }
        Ok(())
    }

    fn tuple(t: &ipvsct_tuple, what: &str) -> Result<Tuple, FfiError> {
        if t.fields & IPVSCT_TUPLE_HAS_ZONE != 0 {
            return Err(FfiError::invalid(format!(
                "{what}: a request tuple must not carry a zone (use IPVSCT_CT_REQUEST_HAS_ZONE)"
            )));
        }
        t.to_core(what)
    }

    fn helper_name(&self) -> Result<String, FfiError> {
        let bytes: Vec<u8> = self
            .helper
            .iter()
            .map(|c| *c as u8)
            .take_while(|b| *b != 0)
            .collect();
        if bytes.len() == self.helper.len() {
            return Err(FfiError::invalid("helper: not NUL-terminated"));
        }
        String::from_utf8(bytes).map_err(|_| FfiError::invalid("helper: not UTF-8"))
    }

    fn attrs(&self) -> Result<EntryAttrs, FfiError> {
        let tcp = if self.fields & TCP_BITS != 0 {
            let pair = |f: u8, m: u8| TcpFlagsMask {
                flags: TcpFlags::from_bits_retain(f),
                mask: TcpFlags::from_bits_retain(m),
            };
            let flags = self.has(IPVSCT_CT_REQUEST_HAS_TCP_FLAGS);
            let wscale = self.has(IPVSCT_CT_REQUEST_HAS_TCP_WSCALE);
            Some(ProtoInfo {
                tcp: Some(TcpInfo {
                    state: self.opt(
                        IPVSCT_CT_REQUEST_HAS_TCP_STATE,
                        TcpState::from(self.tcp_state),
                    ),
                    wscale_original: wscale.then_some(self.tcp_wscale_orig),
                    wscale_reply: wscale.then_some(self.tcp_wscale_reply),
                    flags_original: flags
                        .then(|| pair(self.tcp_flags_orig, self.tcp_flags_orig_mask)),
                    flags_reply: flags
                        .then(|| pair(self.tcp_flags_reply, self.tcp_flags_reply_mask)),
                }),
                ..ProtoInfo::default()
            })
        } else {
            None
        };
        Ok(EntryAttrs {
            timeout: self.opt(IPVSCT_CT_REQUEST_HAS_TIMEOUT, self.timeout),
            status: self.opt(
                IPVSCT_CT_REQUEST_HAS_STATUS,
                Status::from_bits_retain(self.status),
            ),
            mark: self.opt(IPVSCT_CT_REQUEST_HAS_MARK, self.mark),
            mark_mask: self.opt(IPVSCT_CT_REQUEST_HAS_MARK_MASK, self.mark_mask),
            labels: self
                .has(IPVSCT_CT_REQUEST_HAS_LABELS)
                .then(|| labels_of(&self.labels)),
            labels_mask: self
                .has(IPVSCT_CT_REQUEST_HAS_LABELS_MASK)
                .then(|| labels_of(&self.labels_mask)),
            protoinfo: tcp,
            helper: if self.has(IPVSCT_CT_REQUEST_HAS_HELPER) {
                Some(self.helper_name()?)
            } else {
                None
            },
            seq_adj_orig: None,
            seq_adj_reply: None,
            synproxy: None,
        })
    }

    /// The core create request.
    pub(crate) fn to_create(self) -> Result<CreateRequest, FfiError> {
        self.check(
            "create",
            ALL_BITS
                & !(IPVSCT_CT_REQUEST_HAS_MARK_MASK
                    | IPVSCT_CT_REQUEST_HAS_LABELS_MASK
                    | IPVSCT_CT_REQUEST_HAS_ID),
        )?;
        if !self.has(IPVSCT_CT_REQUEST_HAS_TIMEOUT) {
            return Err(FfiError::invalid(
                "create: a timeout is required (IPVSCT_CT_REQUEST_HAS_TIMEOUT)",
            ));
        }
        let orig = Self::tuple(&self.orig, "orig")?;
        let reply = if self.has(IPVSCT_CT_REQUEST_HAS_REPLY) {
            Self::tuple(&self.reply, "reply")?
        } else {
            orig.reversed()
        };
        let master = if self.has(IPVSCT_CT_REQUEST_HAS_MASTER) {
            Some(Self::tuple(&self.master, "master")?)
        } else {
            None
        };
        Ok(CreateRequest {
            orig,
            reply,
            zone: self.has(IPVSCT_CT_REQUEST_HAS_ZONE).then_some(self.zone),
            nat_src: None,
            nat_dst: None,
            master,
            attrs: self.attrs()?,
        })
    }

    /// The core update request.
    pub(crate) fn to_update(self) -> Result<UpdateRequest, FfiError> {
        self.check(
            "update",
            ALL_BITS
                & !(IPVSCT_CT_REQUEST_HAS_REPLY
                    | IPVSCT_CT_REQUEST_HAS_MASTER
                    | IPVSCT_CT_REQUEST_HAS_ID),
        )?;
        Ok(UpdateRequest {
            orig: Self::tuple(&self.orig, "orig")?,
            zone: self.has(IPVSCT_CT_REQUEST_HAS_ZONE).then_some(self.zone),
            attrs: self.attrs()?,
        })
    }

    /// The core delete request.
    pub(crate) fn to_delete(self) -> Result<DeleteRequest, FfiError> {
        self.check(
            "delete",
            IPVSCT_CT_REQUEST_HAS_ZONE | IPVSCT_CT_REQUEST_HAS_ID,
        )?;
        let direction = match self.direction {
            IPVSCT_DIR_ORIGINAL => TupleDirection::Original,
            IPVSCT_DIR_REPLY => TupleDirection::Reply,
            d => {
                return Err(FfiError::invalid(format!(
                    "delete: direction {d} is neither IPVSCT_DIR_ORIGINAL nor IPVSCT_DIR_REPLY"
                )))
            }
        };
        Ok(DeleteRequest {
            tuple: Self::tuple(&self.orig, "orig")?,
            direction,
            zone: self.has(IPVSCT_CT_REQUEST_HAS_ZONE).then_some(self.zone),
            id: self.has(IPVSCT_CT_REQUEST_HAS_ID).then_some(self.id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::ipvsct_result::*;
    use ipvs_conntrack::conntrack::WriteRequest;

    fn tcp_request() -> ipvsct_ct_request {
        let t = Tuple::with_ports(
            6,
            "10.0.0.1".parse().unwrap(),
            40000,
            "10.0.0.2".parse().unwrap(),
            80,
        );
        ipvsct_ct_request {
            orig: ipvsct_tuple::from_core(&t),
            ..Default::default()
        }
    }

    #[test]
    fn create_maps_every_field() {
        let mut r = tcp_request();
        r.fields = IPVSCT_CT_REQUEST_HAS_TIMEOUT
            | IPVSCT_CT_REQUEST_HAS_MARK
            | IPVSCT_CT_REQUEST_HAS_ZONE
            | IPVSCT_CT_REQUEST_HAS_STATUS
            | IPVSCT_CT_REQUEST_HAS_LABELS
            | IPVSCT_CT_REQUEST_HAS_TCP_STATE
            | IPVSCT_CT_REQUEST_HAS_HELPER;
        r.timeout = 120;
        r.mark = 42;
        r.zone = 3;
        r.status = 0x6;
        r.labels = [1 << 2, 0, 0, 1 << 31];
        r.tcp_state = 3;
        r.helper[..3].copy_from_slice(&[b'f' as c_char, b't' as c_char, b'p' as c_char]);
        let c = r.to_create().unwrap();
        assert_eq!(c.reply, c.orig.reversed());
        assert_eq!(c.zone, Some(3));
        assert_eq!(c.attrs.timeout, Some(120));
        assert_eq!(c.attrs.mark, Some(42));
        assert_eq!(c.attrs.status, Some(Status::from_bits_retain(6)));
        assert_eq!(c.attrs.labels, Some(Labels(vec![2, 127])));
        assert_eq!(
            c.attrs.protoinfo.clone().unwrap().tcp.unwrap().state,
            Some(TcpState::Established)
        );
        assert_eq!(c.attrs.helper.as_deref(), Some("ftp"));
        assert!(c.encode().is_ok());
    }

    #[test]
    fn fields_outside_the_operation_are_rejected() {
        let mut r = tcp_request();
        r.fields = IPVSCT_CT_REQUEST_HAS_TIMEOUT | IPVSCT_CT_REQUEST_HAS_ID;
        r.timeout = 1;
        let e = r.to_create().unwrap_err();
        assert_eq!(e.code, IPVSCT_ERR_INVALID_ARGUMENT);
        assert!(e.message.contains("0x40"), "{}", e.message);
        r.fields = IPVSCT_CT_REQUEST_HAS_MARK;
        assert!(r
            .to_create()
            .unwrap_err()
            .message
            .contains("timeout is required"));
        let mut zoned = tcp_request();
        zoned.orig.fields |= IPVSCT_TUPLE_HAS_ZONE;
        assert!(zoned.to_delete().unwrap_err().message.contains("zone"));
        let mut d = tcp_request();
        d.direction = 2;
        assert_eq!(d.to_delete().unwrap_err().code, IPVSCT_ERR_INVALID_ARGUMENT);
        d.direction = IPVSCT_DIR_REPLY;
        d.fields = IPVSCT_CT_REQUEST_HAS_ID;
        d.id = 77;
        let del = d.to_delete().unwrap();
        assert_eq!((del.direction, del.id), (TupleDirection::Reply, Some(77)));
        let mut u = tcp_request();
        u.fields = IPVSCT_CT_REQUEST_HAS_MARK | IPVSCT_CT_REQUEST_HAS_MARK_MASK;
        u.mark = 1;
        u.mark_mask = 0xf;
        let up = u.to_update().unwrap();
        assert_eq!((up.attrs.mark, up.attrs.mark_mask), (Some(1), Some(0xf)));
        let mut unterminated = tcp_request();
        unterminated.fields = IPVSCT_CT_REQUEST_HAS_HELPER;
        unterminated.helper = [b'x' as c_char; IPVSCT_HELPER_NAME_LEN];
        assert!(unterminated
            .to_update()
            .unwrap_err()
            .message
            .contains("NUL"));
    }
}

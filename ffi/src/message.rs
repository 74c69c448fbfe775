//! Offline decoding: raw netlink bytes (a capture, a recorded dump) into the same C structs
//! the live calls fill, delivered one message at a time: ctnetlink and cttimeout messages
//! (`ipvsct_decode`), IPVS generic netlink messages (`ipvsct_ipvs_decode`).

use std::ffi::{c_char, c_int, c_void};

use ipvs_conntrack::conntrack::wire::{
    IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_CT_GET_STATS, IPCTNL_MSG_CT_GET_STATS_CPU, IPCTNL_MSG_CT_NEW,
    IPCTNL_MSG_EXP_DELETE, IPCTNL_MSG_EXP_NEW,
};
use ipvs_conntrack::conntrack::{CpuStats, Entry, Expectation, GlobalStats, TimeoutPolicy};
use ipvs_conntrack::ipvs::{AddressFamily, Body, Message};
use ipvs_conntrack::netlink::frame::{flags, Control, Frame, Frames};
use ipvs_conntrack::netlink::genl::{FamilyInfo, GENL_ID_CTRL};
use ipvs_conntrack::netlink::nfnetlink::{
    split_type, NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_CTNETLINK_EXP, NFNL_SUBSYS_CTNETLINK_TIMEOUT,
};
use ipvs_conntrack::Error;

use crate::addr::{IPVSCT_AF_INET, IPVSCT_AF_INET6};
use crate::boundary::boundary;
use crate::cstr;
use crate::entry::ipvsct_ct_entry;
use crate::error::{ipvsct_error, FfiError};
use crate::expect::ipvsct_ct_expect;
use crate::ipvs_types::{
    ipvsct_ipvs_config, ipvsct_ipvs_daemon, ipvsct_ipvs_dest, ipvsct_ipvs_info, ipvsct_ipvs_service,
};
use crate::ptr::{in_bytes, in_cstr, Out};
use crate::result::ipvsct_result;
use crate::result::ipvsct_result::*;
use crate::stats::{ipvsct_ct_cpu_stats, ipvsct_ct_global_stats};
use crate::timeouts::ipvsct_ct_timeout_policy;

/// `ipvsct_message.kind`: a message without a decoded body (NLMSG_DONE, acknowledgements,
/// NLMSG_NOOP, requests, other subsystems); only the header fields are set.
pub const IPVSCT_MSG_UNKNOWN: u32 = 0;
/// `ipvsct_message.kind`: `data.ct_entry` (IPCTNL_MSG_CT_NEW / _DELETE).
pub const IPVSCT_MSG_CT_ENTRY: u32 = 1;
/// `ipvsct_message.kind`: `data.ct_global_stats` (IPCTNL_MSG_CT_GET_STATS answer).
pub const IPVSCT_MSG_CT_GLOBAL_STATS: u32 = 2;
/// `ipvsct_message.kind`: `data.ct_cpu_stats` (IPCTNL_MSG_CT_GET_STATS_CPU answer).
pub const IPVSCT_MSG_CT_CPU_STATS: u32 = 3;
/// `ipvsct_message.kind`: `data.ct_timeout_policy` (a cttimeout message).
pub const IPVSCT_MSG_CT_TIMEOUT_POLICY: u32 = 4;
/// `ipvsct_message.kind`: `data.kernel_error` (NLMSG_ERROR with an error, or a failed NLMSG_DONE).
pub const IPVSCT_MSG_KERNEL_ERROR: u32 = 5;
/// `ipvsct_message.kind`: NLMSG_OVERRUN: the kernel lost messages; no data.
pub const IPVSCT_MSG_OVERRUN: u32 = 6;
/// `ipvsct_message.kind`: `data.ct_expect` (IPCTNL_MSG_EXP_NEW / _DELETE).
pub const IPVSCT_MSG_CT_EXPECT: u32 = 7;
/// `ipvsct_message.kind`: `data.genl_family` (an nlctrl NEWFAMILY answer).
pub const IPVSCT_MSG_GENL_FAMILY: u32 = 8;
/// `ipvsct_message.kind`: `data.ipvs_service` (IPVS NEW_SERVICE).
pub const IPVSCT_MSG_IPVS_SERVICE: u32 = 9;
/// `ipvsct_message.kind`: `data.ipvs_dest` (IPVS NEW_DEST).
pub const IPVSCT_MSG_IPVS_DEST: u32 = 10;
/// `ipvsct_message.kind`: `data.ipvs_daemon` (IPVS NEW_DAEMON).
pub const IPVSCT_MSG_IPVS_DAEMON: u32 = 11;
/// `ipvsct_message.kind`: `data.ipvs_config` (IPVS SET_CONFIG, the answer to GET_CONFIG).
pub const IPVSCT_MSG_IPVS_CONFIG: u32 = 12;
/// `ipvsct_message.kind`: `data.ipvs_info` (IPVS SET_INFO, the answer to GET_INFO).
pub const IPVSCT_MSG_IPVS_INFO: u32 = 13;

/// Size of `ipvsct_message_data` in 8-byte words (later members grow into it, not beyond).
pub const IPVSCT_MESSAGE_DATA_WORDS: usize = 160;
/// Size of `ipvsct_genl_family.name` (GENL_NAMSIZ).
pub const IPVSCT_GENL_NAME_LEN: usize = 16;

/// A generic netlink family as nlctrl describes it (to learn the IPVS family id of a capture).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_genl_family {
    /// The family id (the netlink message type of its messages).
    pub id: u16,
    /// Zero.
    pub reserved: u16,
    /// Protocol version.
    pub version: u32,
    /// Size of the family header.
    pub hdrsize: u32,
    /// Highest attribute type.
    pub maxattr: u32,
    /// Family name ("IPVS"), NUL-terminated.
    pub name: [c_char; IPVSCT_GENL_NAME_LEN],
}

/// The decoded body of an `ipvsct_message`; `kind` says which member is valid.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types)]
pub union ipvsct_message_data {
    /// IPVSCT_MSG_CT_ENTRY.
    pub ct_entry: ipvsct_ct_entry,
    /// IPVSCT_MSG_CT_GLOBAL_STATS.
    pub ct_global_stats: ipvsct_ct_global_stats,
    /// IPVSCT_MSG_CT_CPU_STATS.
    pub ct_cpu_stats: ipvsct_ct_cpu_stats,
    /// IPVSCT_MSG_CT_TIMEOUT_POLICY.
    pub ct_timeout_policy: ipvsct_ct_timeout_policy,
    /// IPVSCT_MSG_KERNEL_ERROR.
    pub kernel_error: ipvsct_error,
    /// IPVSCT_MSG_CT_EXPECT.
    pub ct_expect: ipvsct_ct_expect,
    /// IPVSCT_MSG_GENL_FAMILY.
    pub genl_family: ipvsct_genl_family,
    /// IPVSCT_MSG_IPVS_SERVICE.
    pub ipvs_service: ipvsct_ipvs_service,
    /// IPVSCT_MSG_IPVS_DEST.
    pub ipvs_dest: ipvsct_ipvs_dest,
    /// IPVSCT_MSG_IPVS_DAEMON.
    pub ipvs_daemon: ipvsct_ipvs_daemon,
    /// IPVSCT_MSG_IPVS_CONFIG.
    pub ipvs_config: ipvsct_ipvs_config,
    /// IPVSCT_MSG_IPVS_INFO.
    pub ipvs_info: ipvsct_ipvs_info,
    /// Room for members of later versions.
    pub reserved: [u64; IPVSCT_MESSAGE_DATA_WORDS],
}

/// One decoded netlink message. Only ever handed out by the library (by pointer, valid
/// during the callback); do not allocate it yourself.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct ipvsct_message {
    /// Which member of `data` is valid (`IPVSCT_MSG_*`).
    pub kind: u32,
    /// Netlink message type (nlmsg_type).
    pub nlmsg_type: u16,
    /// Netlink flags (nlmsg_flags).
    pub nlmsg_flags: u16,
    /// Sequence number (nlmsg_seq).
    pub nlmsg_seq: u32,
    /// Sender port id (nlmsg_pid; 0 for the kernel).
    pub nlmsg_pid: u32,
    /// Byte offset of the message in the decoded buffer.
    pub offset: u64,
    /// The decoded body.
    pub data: ipvsct_message_data,
}

/// Callback for decoded messages; `msg` is valid only during the call. Return 0 to go on,
/// anything else to stop. It must not unwind or longjmp out of the library.
#[allow(non_camel_case_types)]
pub type ipvsct_message_cb =
    Option<unsafe extern "C" fn(msg: *const ipvsct_message, user: *mut c_void) -> c_int>;

impl ipvsct_genl_family {
    fn from_core(f: &FamilyInfo) -> Self {
        ipvsct_genl_family {
            id: f.id,
            reserved: 0,
            version: f.version,
            hdrsize: f.hdrsize,
            maxattr: f.maxattr,
            name: cstr::fixed(&f.name).0,
        }
    }
}

impl ipvsct_message {
    fn empty(frame: &Frame<'_>, kind: u32) -> Self {
        ipvsct_message {
            kind,
            nlmsg_type: frame.header.message_type,
            nlmsg_flags: frame.header.flags,
            nlmsg_seq: frame.header.sequence,
            nlmsg_pid: frame.header.port,
            offset: frame.offset as u64,
            data: ipvsct_message_data {
                reserved: [0; IPVSCT_MESSAGE_DATA_WORDS],
            },
        }
    }

    /// The message for a control frame or a request (no decoded body), or `None` for data.
    fn control(frame: &Frame<'_>) -> Result<Option<Self>, FfiError> {
        match frame.control("decoded message")? {
            Control::Data => {}
            Control::Error(k) | Control::Done(Some(k)) => {
                let mut m = Self::empty(frame, IPVSCT_MSG_KERNEL_ERROR);
                m.data.kernel_error = FfiError::from(Error::Kernel(k)).to_c();
                return Ok(Some(m));
            }
            Control::Overrun => return Ok(Some(Self::empty(frame, IPVSCT_MSG_OVERRUN))),
            Control::Done(None) | Control::Ack | Control::Noop => {
                return Ok(Some(Self::empty(frame, IPVSCT_MSG_UNKNOWN)))
            }
        }
        if frame.header.flags & flags::NLM_F_REQUEST != 0 {
            return Ok(Some(Self::empty(frame, IPVSCT_MSG_UNKNOWN)));
        }
        Ok(None)
    }

    /// Decodes an nlctrl message (a family description).
    fn genl_family(frame: &Frame<'_>) -> Result<(Self, FamilyInfo), FfiError> {
        let f = FamilyInfo::from_frame(frame)?;
        let mut m = Self::empty(frame, IPVSCT_MSG_GENL_FAMILY);
        m.data.genl_family = ipvsct_genl_family::from_core(&f);
        Ok((m, f))
    }

    /// Decodes one netfilter (or nlctrl) frame.
    pub(crate) fn decode(frame: &Frame<'_>) -> Result<Self, FfiError> {
        if let Some(m) = Self::control(frame)? {
            return Ok(m);
        }
        if frame.header.message_type == GENL_ID_CTRL {
            return Ok(Self::genl_family(frame)?.0);
        }
        let (subsys, msg) = split_type(frame.header.message_type);
        let mut m;
        match (subsys, msg) {
            (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW | IPCTNL_MSG_CT_DELETE) => {
                m = Self::empty(frame, IPVSCT_MSG_CT_ENTRY);
                m.data.ct_entry = ipvsct_ct_entry::from_core(&Entry::from_frame(frame)?);
            }
            (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS) => {
                m = Self::empty(frame, IPVSCT_MSG_CT_GLOBAL_STATS);
                m.data.ct_global_stats = (&GlobalStats::from_frame(frame)?).into();
            }
            (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS_CPU) => {
                m = Self::empty(frame, IPVSCT_MSG_CT_CPU_STATS);
                m.data.ct_cpu_stats = (&CpuStats::from_frame(frame)?).into();
            }
            (NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_NEW | IPCTNL_MSG_EXP_DELETE) => {
                m = Self::empty(frame, IPVSCT_MSG_CT_EXPECT);
                m.data.ct_expect = ipvsct_ct_expect::from_core(&Expectation::from_frame(frame)?);
            }
            (NFNL_SUBSYS_CTNETLINK_TIMEOUT, _) => {
                m = Self::empty(frame, IPVSCT_MSG_CT_TIMEOUT_POLICY);
                m.data.ct_timeout_policy = (&TimeoutPolicy::from_frame(frame)?).into();
            }
            _ => m = Self::empty(frame, IPVSCT_MSG_UNKNOWN),
        }
        Ok(m)
    }

    /// Decodes one IPVS message (the frame's type is the IPVS family id).
    fn decode_ipvs(frame: &Frame<'_>, dest_af: AddressFamily) -> Result<Self, FfiError> {
        let msg = Message::from_frame(frame, dest_af)?;
        let mut m;
        match &msg.body {
            Body::Service(s) => {
                m = Self::empty(frame, IPVSCT_MSG_IPVS_SERVICE);
                m.data.ipvs_service = ipvsct_ipvs_service::from_core(s);
            }
            Body::Dest(_, d) => {
                m = Self::empty(frame, IPVSCT_MSG_IPVS_DEST);
                m.data.ipvs_dest = ipvsct_ipvs_dest::from_core(d);
            }
            Body::Daemon(d) => {
                m = Self::empty(frame, IPVSCT_MSG_IPVS_DAEMON);
                m.data.ipvs_daemon = ipvsct_ipvs_daemon::from_core(d);
            }
            Body::Config(t) => {
                m = Self::empty(frame, IPVSCT_MSG_IPVS_CONFIG);
                m.data.ipvs_config = ipvsct_ipvs_config::from_core(t);
            }
            Body::Info(i) => {
                m = Self::empty(frame, IPVSCT_MSG_IPVS_INFO);
                m.data.ipvs_info = i.into();
            }
            Body::Other => m = Self::empty(frame, IPVSCT_MSG_UNKNOWN),
        }
        Ok(m)
    }
}

/// Calls `cb` with each decoded message until it returns non-zero; the shared loop of the
/// decode calls.
fn decode_all(
    bytes: &[u8],
    cb: unsafe extern "C" fn(*const ipvsct_message, *mut c_void) -> c_int,
    user: *mut c_void,
    count_out: Option<Out<'_, usize>>,
    mut decode: impl FnMut(&Frame<'_>) -> Result<ipvsct_message, FfiError>,
) -> Result<ipvsct_result, FfiError> {
    let mut n = 0usize;
    let mut result = IPVSCT_OK;
    for frame in Frames::new(bytes) {
        let m = decode(&frame?)?;
        n += 1;
        // SAFETY: `cb` is a valid function (the callers' contract); `m` outlives the call.
        if unsafe { cb(&m, user) } != 0 {
            result = IPVSCT_STOPPED;
            break;
        }
    }
    if let Some(out) = count_out {
        out.write(n);
    }
    Ok(result)
}

/// Decodes every netlink message in `buf` (for example datagrams captured from a netlink
/// socket, concatenated) and calls `cb` with each, in order, also for control and unknown
/// messages (see `ipvsct_message.kind`).
///
/// Stops at the first message that does not decode (IPVSCT_ERR_DECODE, with the attribute
/// path and byte offset in the last error; the messages before it were delivered) or when
/// `cb` returns non-zero (IPVSCT_STOPPED). On IPVSCT_OK and IPVSCT_STOPPED, writes the
/// number of messages delivered to `*count_out` if `count_out` is not NULL. An empty
/// buffer (`buf_len` 0) is valid. Thread-safe and re-entrant.
///
/// # Safety
/// `buf` is NULL or points to `buf_len` readable bytes; `cb` is NULL or a valid function;
/// `count_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_decode(
    buf: *const u8,
    buf_len: usize,
    cb: ipvsct_message_cb,
    user: *mut c_void,
    count_out: *mut usize,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or `buf_len` readable bytes (contract above).
        let bytes = unsafe { in_bytes(buf, buf_len, "buf") }?;
        let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
        // SAFETY: the caller passes NULL or a writable size_t.
        let count_out = (!count_out.is_null())
            .then(|| unsafe { Out::new(count_out, "count_out") })
            .transpose()?;
        decode_all(bytes, cb, user, count_out, ipvsct_message::decode)
    })
}

/// Decodes every IPVS generic netlink message in `buf` (for example the kernel's answers to
/// IPVS requests, captured) and calls `cb` with each, in order: services, destinations,
/// daemons, configuration and info in their `ipvsct_message.data` member, nlctrl family
/// descriptions as IPVSCT_MSG_GENL_FAMILY, control messages as for `ipvsct_decode`.
///
/// `family_id` is the IPVS family id the messages were sent with (the kernel assigns it at
/// boot; an nlctrl answer names it). With 0 it is learned from an nlctrl answer for "IPVS"
/// earlier in the buffer; before one, IPVS messages come as IPVSCT_MSG_UNKNOWN.
/// `dest_af` (AF_INET, AF_INET6, 0 for AF_INET) is the family of destinations whose
/// message names none (kernels before 4.1). Errors and counts as for `ipvsct_decode`.
///
/// # Safety
/// `buf` is NULL or points to `buf_len` readable bytes; `cb` is NULL or a valid function;
/// `count_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_decode(
    buf: *const u8,
    buf_len: usize,
    family_id: u16,
    dest_af: u16,
    cb: ipvsct_message_cb,
    user: *mut c_void,
    count_out: *mut usize,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or `buf_len` readable bytes (contract above).
        let bytes = unsafe { in_bytes(buf, buf_len, "buf") }?;
        let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
        // SAFETY: the caller passes NULL or a writable size_t.
        let count_out = (!count_out.is_null())
            .then(|| unsafe { Out::new(count_out, "count_out") })
            .transpose()?;
        let af = match dest_af {
            0 | IPVSCT_AF_INET => AddressFamily::Inet,
            IPVSCT_AF_INET6 => AddressFamily::Inet6,
            f => {
                return Err(FfiError::invalid(format!(
                    "dest_af: {f} is neither 0, AF_INET (2) nor AF_INET6 (10)"
                )))
            }
        };
        let mut ipvs = IpvsDecoder::new(family_id, af);
        decode_all(bytes, cb, user, count_out, |frame| ipvs.decode(frame))
    })
}

/// Decodes generic netlink messages: nlctrl family answers (learning the IPVS family id
/// from them when it was not given) and IPVS messages.
struct IpvsDecoder {
    given: bool,
    id: Option<u16>,
    af: AddressFamily,
}

impl IpvsDecoder {
    fn new(family_id: u16, af: AddressFamily) -> Self {
        IpvsDecoder {
            given: family_id != 0,
            id: (family_id != 0).then_some(family_id),
            af,
        }
    }

    fn decode(&mut self, frame: &Frame<'_>) -> Result<ipvsct_message, FfiError> {
        if let Some(m) = ipvsct_message::control(frame)? {
            return Ok(m);
        }
        let t = frame.header.message_type;
        if t == GENL_ID_CTRL {
            let (m, f) = ipvsct_message::genl_family(frame)?;
            if !self.given && f.name == "IPVS" {
                self.id = Some(f.id);
            }
            return Ok(m);
        }
        if Some(t) == self.id {
            return ipvsct_message::decode_ipvs(frame, self.af);
        }
        Ok(ipvsct_message::empty(frame, IPVSCT_MSG_UNKNOWN))
    }
}

/// Decodes a pcap or pcapng capture of netlink traffic (LINKTYPE_NETLINK: written by
/// `ipvsct capture`, or by tcpdump on an nlmon device) and calls `cb` with every message of
/// every captured datagram, in capture order: ctnetlink/cttimeout messages as for
/// `ipvsct_decode`, generic netlink messages as for `ipvsct_ipvs_decode` (`family_id` 0
/// learns the IPVS family id from the capture's nlctrl answers). Only datagrams from the
/// kernel are delivered; the requests in the capture are skipped.
///
/// IPVSCT_ERR_IO if the file cannot be read, IPVSCT_ERR_DECODE if it is not a netlink
/// capture or a message does not decode (the messages before it were delivered).
/// Stopping, counting and thread safety as for `ipvsct_decode`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `cb` is NULL or a valid function;
/// `count_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_decode_pcap(
    path: *const c_char,
    family_id: u16,
    cb: ipvsct_message_cb,
    user: *mut c_void,
    count_out: *mut usize,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a NUL-terminated string (contract above).
        let path = unsafe { in_cstr(path) }.ok_or_else(|| FfiError::null("path"))?;
        let path = path
            .to_str()
            .map_err(|_| FfiError::invalid("path: not UTF-8"))?;
        let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
        // SAFETY: the caller passes NULL or a writable size_t.
        let count_out = (!count_out.is_null())
            .then(|| unsafe { Out::new(count_out, "count_out") })
            .transpose()?;
        let records =
            ipvs_conntrack::capture::read_pcap_file(std::path::Path::new(path)).map_err(|e| {
                let code = match e {
                    ipvs_conntrack::capture::CaptureError::Io { .. } => IPVSCT_ERR_IO,
                    _ => IPVSCT_ERR_DECODE,
                };
                FfiError::new(code, e.to_string())
            })?;
        let mut ipvs = IpvsDecoder::new(family_id, AddressFamily::Inet);
        let mut total = 0usize;
        let mut result = IPVSCT_OK;
        // The kernel's side: requests (and what other programs sent) are not delivered.
        for r in records
            .iter()
            .filter(|r| r.direction == ipvs_conntrack::socket::Direction::Received)
        {
            let mut n = 0usize;
            let out = Some(Out::from_mut(&mut n));
            result = if r.protocol == ipvs_conntrack::socket::NETLINK_GENERIC as u16 {
                decode_all(&r.data, cb, user, out, |f| ipvs.decode(f))?
            } else {
                decode_all(&r.data, cb, user, out, ipvsct_message::decode)?
            };
            total += n;
            if result == IPVSCT_STOPPED {
                break;
            }
        }
        if let Some(out) = count_out {
            out.write(total);
        }
        Ok(result)
    })
}

/// Decodes the single ctnetlink entry message at the start of `buf` (an IPCTNL_MSG_CT_NEW
/// or _DELETE message, e.g. one event) into `*out`. Bytes after that message are ignored.
///
/// IPVSCT_ERR_DECODE if the bytes are not a well-formed entry message. Thread-safe.
///
/// # Safety
/// `buf` is NULL or points to `buf_len` readable bytes; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_entry_decode(
    buf: *const u8,
    buf_len: usize,
    out: *mut ipvsct_ct_entry,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or `buf_len` readable bytes (contract above).
        let bytes = unsafe { in_bytes(buf, buf_len, "buf") }?;
        // SAFETY: the caller passes NULL or a writable ipvsct_ct_entry.
        let out = unsafe { Out::new(out, "out") }?;
        let frame = match Frames::new(bytes).next() {
            Some(f) => f?,
            None => return Err(FfiError::invalid("buf: empty buffer (buf_len is 0)")),
        };
        out.write(ipvsct_ct_entry::from_core(&Entry::from_frame(&frame)?));
        Ok(IPVSCT_OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::last;
    use ipvs_conntrack::conntrack::wire::{
        CTA_ID, CTA_MARK, CTA_STATS_GLOBAL_ENTRIES, CTA_STATUS, CTA_TIMEOUT, CTA_TUPLE_ORIG,
        CTA_TUPLE_REPLY,
    };
    use ipvs_conntrack::conntrack::{ProtoInfo, TcpInfo, TcpState, Tuple};
    use ipvs_conntrack::netlink::emit::MessageBuilder;
    use ipvs_conntrack::netlink::frame::msg_type::NLMSG_DONE;
    use ipvs_conntrack::netlink::nfnetlink::{message_type, NfGenMsg};

    fn header(b: &mut MessageBuilder, family: u8) {
        b.put_raw(
            &NfGenMsg {
                family,
                version: 0,
                res_id: 0,
            }
            .to_bytes(),
        );
    }

    /// A TCP entry, global statistics and NLMSG_DONE, as a dump answer would hold them.
    fn capture() -> (Vec<u8>, usize) {
        let t = Tuple::with_ports(
            6,
            "192.0.2.1".parse().unwrap(),
            40000,
            "192.0.2.2".parse().unwrap(),
            80,
        );
        let mut b = MessageBuilder::new(
            message_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW),
            flags::NLM_F_MULTI,
        );
        header(&mut b, 2);
        t.emit(&mut b, CTA_TUPLE_ORIG);
        t.reversed().emit(&mut b, CTA_TUPLE_REPLY);
        b.put_be32(CTA_STATUS, 0xe);
        b.put_be32(CTA_TIMEOUT, 99);
        b.put_be32(CTA_MARK, 7);
        b.put_be32(CTA_ID, 1234);
        ProtoInfo {
            tcp: Some(TcpInfo {
                state: Some(TcpState::Established),
                ..TcpInfo::default()
            }),
            ..ProtoInfo::default()
        }
        .emit(&mut b);
        let mut bytes = b.finish();
        let first_len = bytes.len();
        let mut s = MessageBuilder::new(
            message_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS),
            0,
        );
        header(&mut s, 0);
        s.put_be32(CTA_STATS_GLOBAL_ENTRIES, 3);
        bytes.extend(s.finish());
        let mut d = MessageBuilder::new(NLMSG_DONE, flags::NLM_F_MULTI);
        d.put_raw(&0i32.to_ne_bytes());
        bytes.extend(d.finish());
        (bytes, first_len)
    }

    unsafe extern "C" fn collect(msg: *const ipvsct_message, user: *mut c_void) -> c_int {
        // SAFETY: the library passes a valid message; `user` is the test's Vec.
        unsafe { (*user.cast::<Vec<ipvsct_message>>()).push(*msg) };
        0
    }

    unsafe extern "C" fn stop(_msg: *const ipvsct_message, user: *mut c_void) -> c_int {
        // SAFETY: `user` is the test's counter.
        unsafe { *user.cast::<u32>() += 1 };
        1
    }

    #[test]
    fn decodes_entries_stats_and_control_messages() {
        let (bytes, first_len) = capture();
        let mut seen: Vec<ipvsct_message> = Vec::new();
        let mut n = 0usize;
        // SAFETY: valid buffer, callback, user pointer and count.
        let r = unsafe {
            ipvsct_decode(
                bytes.as_ptr(),
                bytes.len(),
                Some(collect),
                (&mut seen as *mut Vec<ipvsct_message>).cast(),
                &mut n,
            )
        };
        assert_eq!(r, IPVSCT_OK);
        assert_eq!(n, 3);
        let kinds: Vec<u32> = seen.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [
                IPVSCT_MSG_CT_ENTRY,
                IPVSCT_MSG_CT_GLOBAL_STATS,
                IPVSCT_MSG_UNKNOWN
            ]
        );
        // SAFETY: `kind` says which union member was written.
        let (e, g) = unsafe { (seen[0].data.ct_entry, seen[1].data.ct_global_stats) };
        assert_eq!(
            (e.orig.src_port, e.orig.dst_port, e.reply.src_port),
            (40000, 80, 80)
        );
        assert_eq!(e.orig.src.addr[..4], [192, 0, 2, 1]);
        assert_eq!((e.status, e.timeout, e.mark, e.id), (0xe, 99, 7, 1234));
        assert_eq!(
            (e.state_kind, e.state),
            (crate::entry::IPVSCT_STATE_KIND_TCP, 3)
        );
        assert_eq!(
            e.state_name[..12]
                .iter()
                .map(|c| *c as u8)
                .collect::<Vec<_>>(),
            b"ESTABLISHED\0"
        );
        assert_eq!(g.entries, 3);
        assert_eq!(seen[1].offset, first_len as u64);
        assert_eq!(seen[2].nlmsg_type, NLMSG_DONE);

        let mut one = std::mem::MaybeUninit::<ipvsct_ct_entry>::uninit();
        // SAFETY: valid buffer and output.
        let r = unsafe { ipvsct_ct_entry_decode(bytes.as_ptr(), bytes.len(), one.as_mut_ptr()) };
        assert_eq!(r, IPVSCT_OK);
        // SAFETY: written on IPVSCT_OK.
        assert_eq!(unsafe { one.assume_init() }, e);
    }

    #[test]
    fn stops_on_request_and_fails_on_truncation_without_output() {
        let (bytes, first_len) = capture();
        let mut calls = 0u32;
        let mut n = 77usize;
        // SAFETY: valid buffer, callback, user pointer and count.
        let r = unsafe {
            ipvsct_decode(
                bytes.as_ptr(),
                bytes.len(),
                Some(stop),
                (&mut calls as *mut u32).cast(),
                &mut n,
            )
        };
        assert_eq!((r, calls, n), (IPVSCT_STOPPED, 1, 1));
        let mut n = 77usize;
        calls = 0;
        // SAFETY: a shorter prefix of a valid buffer.
        let r = unsafe {
            ipvsct_decode(
                bytes.as_ptr(),
                first_len + 8,
                Some(stop),
                (&mut calls as *mut u32).cast(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(r, IPVSCT_STOPPED, "the first message still arrives");
        // SAFETY: a buffer cut inside the second message; the callback never stops.
        let r = unsafe {
            ipvsct_decode(
                bytes.as_ptr(),
                first_len + 8,
                Some(collect),
                (&mut Vec::<ipvsct_message>::new() as *mut Vec<ipvsct_message>).cast(),
                &mut n,
            )
        };
        assert_eq!(r, IPVSCT_ERR_DECODE);
        assert_eq!(n, 77, "count untouched on failure");
        let e = last().unwrap();
        assert_eq!(e.decode.unwrap().1, first_len);
    }
}

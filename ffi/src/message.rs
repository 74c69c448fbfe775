//! Offline decoding: raw netlink bytes (a capture, a recorded dump) into the same C structs
//! the live calls fill, delivered one message at a time.

use std::ffi::{c_int, c_void};

use ipvs_conntrack::conntrack::wire::{
    IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_CT_GET_STATS, IPCTNL_MSG_CT_GET_STATS_CPU, IPCTNL_MSG_CT_NEW,
};
use ipvs_conntrack::conntrack::{CpuStats, Entry, GlobalStats, TimeoutPolicy};
use ipvs_conntrack::netlink::frame::{flags, Control, Frame, Frames};
use ipvs_conntrack::netlink::nfnetlink::{
    split_type, NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_CTNETLINK_TIMEOUT,
};
use ipvs_conntrack::Error;

use crate::boundary::boundary;
use crate::entry::ipvsct_ct_entry;
use crate::error::{ipvsct_error, FfiError};
use crate::ptr::{in_bytes, Out};
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

/// Size of `ipvsct_message_data` in 8-byte words (later members grow into it, not beyond).
pub const IPVSCT_MESSAGE_DATA_WORDS: usize = 160;

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
    /// Room for members of later versions (IPVS objects, events).
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

    /// Decodes one frame.
    pub(crate) fn decode(frame: &Frame<'_>) -> Result<Self, FfiError> {
        let kernel_error = |k| {
            let mut m = Self::empty(frame, IPVSCT_MSG_KERNEL_ERROR);
            m.data.kernel_error = FfiError::from(Error::Kernel(k)).to_c();
            m
        };
        match frame.control("decoded message")? {
            Control::Data => {}
            Control::Error(k) | Control::Done(Some(k)) => return Ok(kernel_error(k)),
            Control::Overrun => return Ok(Self::empty(frame, IPVSCT_MSG_OVERRUN)),
            Control::Done(None) | Control::Ack | Control::Noop => {
                return Ok(Self::empty(frame, IPVSCT_MSG_UNKNOWN))
            }
        }
        if frame.header.flags & flags::NLM_F_REQUEST != 0 {
            return Ok(Self::empty(frame, IPVSCT_MSG_UNKNOWN));
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
            (NFNL_SUBSYS_CTNETLINK_TIMEOUT, _) => {
                m = Self::empty(frame, IPVSCT_MSG_CT_TIMEOUT_POLICY);
                m.data.ct_timeout_policy = (&TimeoutPolicy::from_frame(frame)?).into();
            }
            _ => m = Self::empty(frame, IPVSCT_MSG_UNKNOWN),
        }
        Ok(m)
    }
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
        let mut n = 0usize;
        let mut result = IPVSCT_OK;
        for frame in Frames::new(bytes) {
            let m = ipvsct_message::decode(&frame?)?;
            n += 1;
            // SAFETY: `cb` is a valid function (contract); `m` outlives the call.
            if unsafe { cb(&m, user) } != 0 {
                result = IPVSCT_STOPPED;
                break;
            }
        }
        if let Some(out) = count_out {
            out.write(n);
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

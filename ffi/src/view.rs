//! The lazy view dump (`ipvsct_conntrack_dump_view`): the callback receives an opaque
//! `ipvsct_ct_view` over the entry's bytes in the receive buffer, and reads only the
//! fields it asks for through the `ipvsct_ct_view_*` accessors (nothing is decoded
//! before that).

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use ipvs_conntrack::conntrack::{EntryView, State, StateTimeouts, TupleView};
use ipvs_conntrack::DecodeError;

use crate::boundary::{boundary, caught_panic, failed};
use crate::conntrack::{callback_dump, fill_entry, ipvsct_conntrack};
use crate::entry::{ipvsct_ct_entry, state_parts};
use crate::error::FfiError;
use crate::filter::ipvsct_dump_filter;
use crate::ptr::Out;
use crate::result::ipvsct_result;
use crate::result::ipvsct_result::*;
use crate::tuple::ipvsct_tuple;

/// One conntrack entry as a dump received it (opaque), read through the
/// `ipvsct_ct_view_*` accessors.
///
/// VALID ONLY DURING THE CALLBACK THAT RECEIVED IT: it points into the dump's receive
/// buffer, which the next entry reuses. Do not keep the pointer, do not pass it to
/// another thread; copy out what you need (`ipvsct_ct_view_entry` copies everything).
pub struct ipvsct_ct_view {
    _opaque: [u8; 0],
}

/// What an `ipvsct_ct_view` pointer really points to (on the dump's stack).
pub(crate) struct ViewCtx<'a> {
    /// The entry (borrowed where the dump returned it: not copied).
    pub view: &'a EntryView<'a>,
    /// The dump's state timeouts, joined on demand (`ipvsct_ct_view_state_timeout`).
    pub timeouts: Option<&'a StateTimeouts>,
    /// The L4 protocol of the core's original tuple, once `ipvsct_ct_view_orig` read it
    /// (`_state_timeout` then need not ask for it again).
    proto: Cell<Option<u8>>,
}

impl<'a> ViewCtx<'a> {
    /// The context of `view` in a dump that joins `timeouts`.
    #[inline(always)]
    pub(crate) fn new(view: &'a EntryView<'a>, timeouts: Option<&'a StateTimeouts>) -> Self {
        ViewCtx {
            view,
            timeouts,
            proto: Cell::new(None),
        }
    }

    /// The opaque pointer handed to C.
    pub(crate) fn as_c(&self) -> *const ipvsct_ct_view {
        (self as *const Self).cast()
    }
}

/// Callback for entry views; `view` is valid only during the call (see `ipvsct_ct_view`).
/// Return 0 to go on, anything else to stop. It must not unwind or longjmp out of the
/// library.
#[allow(non_camel_case_types)]
pub type ipvsct_ct_view_cb =
    Option<unsafe extern "C" fn(view: *const ipvsct_ct_view, user: *mut c_void) -> c_int>;

/// Streams the table (or `filter`'s part of it; NULL for everything) and calls `cb` with a
/// lazy view of each entry: nothing of the entry is decoded until an `ipvsct_ct_view_*`
/// accessor asks for it, so a callback pays only for the fields it reads. The view is
/// valid only during the call. Memory does not grow with the table.
///
/// The same contract as `ipvsct_conntrack_dump`: IPVSCT_OK at the end, IPVSCT_STOPPED if
/// `cb` returned non-zero; on both, writes the number of entries passed to `cb` to
/// `*count_out` if it is not NULL. IPVSCT_ERR_DUMP_INTERRUPTED after the last entry if the
/// table changed during the dump. The handle stays locked while `cb` runs: calls on the
/// same handle from `cb` return IPVSCT_ERR_BUSY. A malformed entry is passed to `cb` like
/// any other: its accessors return IPVSCT_ERR_DECODE.
///
/// # Safety
/// `ct` is NULL or a live handle; `filter` is NULL or readable; `cb` is NULL or a valid
/// function; `count_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_dump_view(
    ct: *const ipvsct_conntrack,
    filter: *const ipvsct_dump_filter,
    cb: ipvsct_ct_view_cb,
    user: *mut c_void,
    count_out: *mut u64,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe {
            callback_dump(ct, filter, count_out, cb, |cb, dump, timeouts| {
                // Matched by reference: the view stays where `next_view` put it.
                let next = dump.next_view()?;
                Some(match &next {
                    Ok(view) => {
                        let ctx = ViewCtx::new(view, timeouts);
                        // SAFETY: `cb` is a valid function (contract); `ctx` outlives the
                        // call, and the pointer is documented as valid during it only.
                        Ok(cb(ctx.as_c(), user) != 0)
                    }
                    // The error, moved out.
                    Err(_) => next.map(|_| false),
                })
            })
        }
    })
}

/// The view behind a C pointer.
///
/// # Safety
/// `view` is NULL or a pointer passed to an `ipvsct_ct_view_cb`, during that call.
#[inline(always)]
unsafe fn ctx<'a>(view: *const ipvsct_ct_view) -> Result<&'a ViewCtx<'a>, FfiError> {
    if view.is_null() {
        return Err(FfiError::null("view"));
    }
    // SAFETY: such a pointer is `ViewCtx::as_c` of a live ViewCtx (contract above).
    Ok(unsafe { &*view.cast::<ViewCtx<'a>>() })
}

/// Runs accessor `f` on the view and writes its value to `*out`: IPVSCT_OK, or
/// IPVSCT_ABSENT (nothing written) if it gives none.
///
/// # Safety
/// `view` as for [`ctx`]; `out` is NULL or writable.
#[inline(always)]
unsafe fn get<T: Copy>(
    view: *const ipvsct_ct_view,
    out: *mut T,
    f: impl FnOnce(&ViewCtx<'_>) -> Result<Option<T>, DecodeError>,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe { get_as(view, out, f, |x| x) }
}

/// [`get`] of a value that `conv` turns into the C form as it is written (so that a
/// large C struct is built where it goes, not built aside and copied).
///
/// # Safety
/// As for [`get`].
#[inline(always)]
unsafe fn get_as<'c, V, T: Copy>(
    view: *const ipvsct_ct_view,
    out: *mut T,
    f: impl FnOnce(&'c ViewCtx<'c>) -> Result<Option<V>, DecodeError>,
    conv: impl FnOnce(V) -> T,
) -> ipvsct_result {
    if view.is_null() || out.is_null() {
        return null_argument(view.is_null());
    }
    // SAFETY: forwarded contract (`view` is not NULL); `'c` ends with this call.
    let v: &'c ViewCtx<'c> = unsafe { &*view.cast::<ViewCtx<'c>>() };
    // SAFETY: forwarded contract: `out` is not NULL, so it is writable.
    unsafe { guarded(v, out, f, conv) }
}

/// [`get_as`] of a tuple, converted to C as it is written.
///
/// # Safety
/// As for [`get`].
#[inline(always)]
unsafe fn get_tuple<'c>(
    view: *const ipvsct_ct_view,
    out: *mut ipvsct_tuple,
    f: impl FnOnce(&'c ViewCtx<'c>) -> Result<Option<TupleView<'c>>, DecodeError>,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe { get_as(view, out, f, |t| ipvsct_tuple::from_view(&t)) }
}

/// The error of an accessor called with a NULL `view` (`view_is_null`) or `out`.
#[cold]
#[inline(never)]
fn null_argument(view_is_null: bool) -> ipvsct_result {
    failed(FfiError::null(if view_is_null { "view" } else { "out" }))
}

/// Runs `f` on `v` inside a panic boundary and writes its value, as `conv` makes it, to
/// `*out`: IPVSCT_OK, IPVSCT_ABSENT (nothing written) if it gives none, its error's code
/// (and last error) if it fails, IPVSCT_ERR_PANIC if it panics.
///
/// The panic boundary of [`boundary`], with a lean success path: the error (a decode
/// error, small) becomes an `FfiError` only when there is one.
///
/// # Safety
/// `out` is writable.
#[inline(always)]
unsafe fn guarded<'c, V, T: Copy>(
    v: &'c ViewCtx<'c>,
    out: *mut T,
    f: impl FnOnce(&'c ViewCtx<'c>) -> Result<Option<V>, DecodeError>,
    conv: impl FnOnce(V) -> T,
) -> ipvsct_result {
    // The closure returns the code alone (what crosses `catch_unwind` stays small).
    let run = || match f(v) {
        Ok(Some(x)) => {
            // SAFETY: forwarded contract: `out` is writable.
            unsafe { out.write(conv(x)) };
            IPVSCT_OK
        }
        Ok(None) => IPVSCT_ABSENT,
        Err(e) => decode_failed(e),
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(code) => code,
        Err(payload) => caught_panic(payload),
    }
}

/// Records a decode error as the last error and returns its code.
#[cold]
#[inline(never)]
fn decode_failed(e: DecodeError) -> ipvsct_result {
    failed(e.into())
}

/// Writes the original-direction tuple to `*out`. IPVSCT_ABSENT if the entry has none
/// (kernel entries always have it), IPVSCT_ERR_DECODE if it is malformed.
///
/// # Safety
/// `view` is NULL or the pointer passed to the running view callback; `out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_orig(
    view: *const ipvsct_ct_view,
    out: *mut ipvsct_tuple,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe {
        get_tuple(view, out, |c| {
            let t = c.view.orig()?;
            if let Some(t) = &t {
                c.proto.set(Some(t.proto()));
            }
            Ok(t)
        })
    }
}

/// Writes the reply-direction tuple to `*out`. IPVSCT_ABSENT if the entry has none,
/// IPVSCT_ERR_DECODE if it is malformed.
///
/// # Safety
/// As for `ipvsct_ct_view_orig`.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_reply(
    view: *const ipvsct_ct_view,
    out: *mut ipvsct_tuple,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe { get_tuple(view, out, |c| c.view.reply()) }
}

/// Writes the master tuple (of an expected connection) to `*out`. IPVSCT_ABSENT if there
/// is none, IPVSCT_ERR_DECODE if it is malformed.
///
/// # Safety
/// As for `ipvsct_ct_view_orig`.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_master(
    view: *const ipvsct_ct_view,
    out: *mut ipvsct_tuple,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe { get_tuple(view, out, |c| c.view.master()) }
}

/// Writes the L4 protocol number (IPPROTO_*, from the original tuple, read without
/// decoding the tuple) to `*out`. IPVSCT_ABSENT without an original tuple.
///
/// # Safety
/// As for `ipvsct_ct_view_orig`.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_proto(
    view: *const ipvsct_ct_view,
    out: *mut u8,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe { get(view, out, |c| c.view.proto()) }
}

/// Writes the address family (AF_INET 2, AF_INET6 10) to `*out`; always IPVSCT_OK.
///
/// # Safety
/// As for `ipvsct_ct_view_orig`.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_family(
    view: *const ipvsct_ct_view,
    out: *mut u8,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe { get(view, out, |c| Ok(Some(c.view.family().value()))) }
}

/// Writes the status bits (IPS_*) to `*out`. IPVSCT_ABSENT if the message has none
/// (`ipvsct_ct_entry.status` is 0 then).
///
/// # Safety
/// As for `ipvsct_ct_view_orig`.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_status(
    view: *const ipvsct_ct_view,
    out: *mut u32,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe { get(view, out, |c| Ok(c.view.status().map(|s| s.bits()))) }
}

/// Writes the seconds left before the entry expires to `*out` (0 is a value).
/// IPVSCT_ABSENT if the kernel sent none.
///
/// # Safety
/// As for `ipvsct_ct_view_orig`.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_timeout(
    view: *const ipvsct_ct_view,
    out: *mut u32,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe { get(view, out, |c| Ok(c.view.timeout())) }
}

/// Writes the connection state as `ipvsct_ct_entry` encodes it: the protocol's state kind
/// (`IPVSCT_STATE_KIND_*`) to `*kind_out` and the state's kernel number to `*state_out`.
/// Always IPVSCT_OK for a well-formed entry (IPVSCT_STATE_KIND_UNKNOWN for a TCP/SCTP/DCCP
/// entry without protocol info); IPVSCT_ERR_DECODE if the protocol info is malformed.
///
/// # Safety
/// As for `ipvsct_ct_view_orig`; `kind_out` and `state_out` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_state(
    view: *const ipvsct_ct_view,
    kind_out: *mut u8,
    state_out: *mut u8,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let (v, kind_out, state_out) = unsafe {
            (
                ctx(view)?,
                Out::new(kind_out, "kind_out")?,
                Out::new(state_out, "state_out")?,
            )
        };
        let (kind, state) = state_parts(v.view.state()?);
        kind_out.write(kind);
        state_out.write(state);
        Ok(IPVSCT_OK)
    })
}

/// Writes the full timeout of the entry's current state under the policy in force, in
/// seconds, to `*out` (what `ipvsct_ct_entry.state_timeout` holds), computed on demand.
/// IPVSCT_ABSENT if it is unknown (the timeouts could not be read, or the state has none).
///
/// # Safety
/// As for `ipvsct_ct_view_orig`.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_state_timeout(
    view: *const ipvsct_ct_view,
    out: *mut u32,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe {
        get(view, out, |c| match c.timeouts {
            Some(t) => state_timeout(c, t),
            None => Ok(None),
        })
    }
}

/// The state timeout of the view's entry: the core's state (`EntryView::state`) looked
/// up in `t` as `Dump` joins it (`StateTimeouts::for_state`).
#[inline(always)]
fn state_timeout(c: &ViewCtx<'_>, t: &StateTimeouts) -> Result<Option<u32>, DecodeError> {
    let state = c.view.state()?;
    // The protocol number matters only to tell UDP from UDP-Lite and ICMP from ICMPv6;
    // `ipvsct_ct_view_orig` may have read it already.
    let proto = match state {
        State::Udp(_) | State::Icmp => match c.proto.get() {
            Some(p) => p,
            None => c.view.proto()?.unwrap_or(0),
        },
        _ => 0,
    };
    Ok(t.for_state(proto, state))
}

/// Writes the connection mark to `*out`. IPVSCT_ABSENT if the kernel sent none.
///
/// # Safety
/// As for `ipvsct_ct_view_orig`.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_mark(
    view: *const ipvsct_ct_view,
    out: *mut u32,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe { get(view, out, |c| Ok(c.view.mark())) }
}

/// Writes the conntrack zone (CTA_ZONE) to `*out`. IPVSCT_ABSENT if the kernel sent none.
///
/// # Safety
/// As for `ipvsct_ct_view_orig`.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_zone(
    view: *const ipvsct_ct_view,
    out: *mut u16,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe { get(view, out, |c| Ok(c.view.zone())) }
}

/// Writes the reference count (CTA_USE) to `*out`. IPVSCT_ABSENT if the kernel sent none.
///
/// # Safety
/// As for `ipvsct_ct_view_orig`.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_use_count(
    view: *const ipvsct_ct_view,
    out: *mut u32,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe { get(view, out, |c| Ok(c.view.use_count())) }
}

/// Writes the entry id (CTA_ID) to `*out`. IPVSCT_ABSENT if the kernel sent none.
///
/// # Safety
/// As for `ipvsct_ct_view_orig`.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_id(
    view: *const ipvsct_ct_view,
    out: *mut u32,
) -> ipvsct_result {
    // SAFETY: forwarded contract.
    unsafe { get(view, out, |c| Ok(c.view.id())) }
}

/// Writes the whole entry to `*out`, with its state timeout: exactly the struct
/// `ipvsct_conntrack_dump` passes for it (for callbacks that want everything of some
/// entries). IPVSCT_ERR_DECODE (nothing written) if the entry is malformed.
///
/// # Safety
/// As for `ipvsct_ct_view_orig`.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ct_view_entry(
    view: *const ipvsct_ct_view,
    out: *mut ipvsct_ct_entry,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let (v, out) = unsafe { (ctx(view)?, Out::new(out, "out")?) };
        let mut e = ipvsct_ct_entry::default();
        fill_entry(v.view, v.timeouts, &mut e)?;
        out.write(e);
        Ok(IPVSCT_OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{IPVSCT_STATE_KIND_TCP, IPVSCT_STATE_KIND_UDP};
    use crate::error::last;
    use crate::timeouts::IPVSCT_TIMEOUT_UNSET;
    use crate::tuple::IPVSCT_TUPLE_HAS_SRC_PORT;
    use ipvs_conntrack::conntrack::wire::{
        CTA_MARK, CTA_PROTOINFO, CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE, CTA_STATUS,
        CTA_TIMEOUT, CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, IPCTNL_MSG_CT_NEW,
    };
    use ipvs_conntrack::conntrack::{TimeoutSource, Tuple};
    use ipvs_conntrack::netlink::emit::MessageBuilder;
    use ipvs_conntrack::netlink::frame::Frames;
    use ipvs_conntrack::netlink::nfnetlink::{message_type, NfGenMsg, NFNL_SUBSYS_CTNETLINK};

    /// The bytes of one conntrack message: `proto` from 10.0.0.1:5000 to 10.0.0.2:80,
    /// status SEEN_REPLY, with what `extra` adds.
    fn message(proto: u8, extra: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        let orig = Tuple::with_ports(
            proto,
            "10.0.0.1".parse().unwrap(),
            5000,
            "10.0.0.2".parse().unwrap(),
            80,
        );
        let mut b = MessageBuilder::new(message_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW), 0);
        b.put_raw(
            &NfGenMsg {
                family: 2,
                version: 0,
                res_id: 0,
            }
            .to_bytes(),
        );
        orig.emit(&mut b, CTA_TUPLE_ORIG);
        orig.reversed().emit(&mut b, CTA_TUPLE_REPLY);
        b.put_be32(CTA_STATUS, 0x2);
        extra(&mut b);
        b.finish()
    }

    /// Runs `f` with a C view pointer over the message `bytes`.
    fn with_view<R>(
        bytes: &[u8],
        timeouts: Option<&StateTimeouts>,
        f: impl FnOnce(*const ipvsct_ct_view) -> R,
    ) -> R {
        let frame = Frames::new(bytes).next().unwrap().unwrap();
        let view = EntryView::from_frame(&frame).unwrap();
        let ctx = ViewCtx::new(&view, timeouts);
        f(ctx.as_c())
    }

    fn timeouts() -> StateTimeouts {
        let mut t = StateTimeouts::empty(TimeoutSource::Sysctl);
        t.tcp.established = Some(432000);
        t.udp.unreplied = Some(30);
        t.udp.replied = Some(120);
        t
    }

    #[test]
    fn accessors_match_the_entry_struct() {
        let bytes = message(6, |b| {
            b.put_be32(CTA_TIMEOUT, 77);
            b.put_be32(CTA_MARK, 42);
            let p = b.begin_nest(CTA_PROTOINFO);
            let t = b.begin_nest(CTA_PROTOINFO_TCP);
            b.put_u8(CTA_PROTOINFO_TCP_STATE, 3);
            b.end_nest(t);
            b.end_nest(p);
        });
        let t = timeouts();
        with_view(&bytes, Some(&t), |v| {
            let mut e = ipvsct_ct_entry::default();
            let (mut orig, mut reply) = (ipvsct_tuple::default(), ipvsct_tuple::default());
            let (mut u32v, mut u8a, mut u8b, mut u16v) = (0u32, 0u8, 0u8, 0u16);
            // SAFETY: `v` is a live view for the closure; outputs are writable locals.
            unsafe {
                assert_eq!(ipvsct_ct_view_entry(v, &mut e), IPVSCT_OK);
                assert_eq!(ipvsct_ct_view_orig(v, &mut orig), IPVSCT_OK);
                assert_eq!(orig, e.orig);
                assert_eq!(orig.src_port, 5000);
                assert_ne!(orig.fields & IPVSCT_TUPLE_HAS_SRC_PORT, 0);
                assert_eq!(ipvsct_ct_view_reply(v, &mut reply), IPVSCT_OK);
                assert_eq!(reply, e.reply);
                assert_eq!(reply.src_port, 80);
                assert_eq!(ipvsct_ct_view_master(v, &mut reply), IPVSCT_ABSENT);
                assert_eq!(reply, e.reply, "untouched when absent");
                assert_eq!(ipvsct_ct_view_proto(v, &mut u8a), IPVSCT_OK);
                assert_eq!(u8a, 6);
                assert_eq!(ipvsct_ct_view_family(v, &mut u8a), IPVSCT_OK);
                assert_eq!(u8a, e.family);
                assert_eq!(ipvsct_ct_view_status(v, &mut u32v), IPVSCT_OK);
                assert_eq!(u32v, e.status);
                assert_eq!(ipvsct_ct_view_timeout(v, &mut u32v), IPVSCT_OK);
                assert_eq!((u32v, e.timeout), (77, 77));
                assert_eq!(ipvsct_ct_view_mark(v, &mut u32v), IPVSCT_OK);
                assert_eq!((u32v, e.mark), (42, 42));
                assert_eq!(ipvsct_ct_view_state(v, &mut u8a, &mut u8b), IPVSCT_OK);
                assert_eq!((u8a, u8b), (IPVSCT_STATE_KIND_TCP, 3));
                assert_eq!((e.state_kind, e.state), (u8a, u8b));
                assert_eq!(ipvsct_ct_view_state_timeout(v, &mut u32v), IPVSCT_OK);
                assert_eq!((u32v, e.state_timeout), (432000, 432000));
                u32v = 9;
                assert_eq!(ipvsct_ct_view_use_count(v, &mut u32v), IPVSCT_ABSENT);
                assert_eq!(ipvsct_ct_view_id(v, &mut u32v), IPVSCT_ABSENT);
                assert_eq!(ipvsct_ct_view_zone(v, &mut u16v), IPVSCT_ABSENT);
                assert_eq!((u32v, u16v), (9, 0), "outputs untouched when absent");
            }
        });
    }

    #[test]
    fn absent_values_and_state_timeout_without_timeouts() {
        let bytes = message(17, |_| {});
        with_view(&bytes, None, |v| {
            let mut e = ipvsct_ct_entry::default();
            let (mut u32v, mut kind, mut state) = (5u32, 0u8, 0u8);
            // SAFETY: `v` is a live view for the closure; outputs are writable locals.
            unsafe {
                assert_eq!(ipvsct_ct_view_entry(v, &mut e), IPVSCT_OK);
                assert_eq!(ipvsct_ct_view_timeout(v, &mut u32v), IPVSCT_ABSENT);
                assert_eq!(e.timeout, IPVSCT_TIMEOUT_UNSET);
                assert_eq!(ipvsct_ct_view_state_timeout(v, &mut u32v), IPVSCT_ABSENT);
                assert_eq!(e.state_timeout, IPVSCT_TIMEOUT_UNSET);
                assert_eq!(ipvsct_ct_view_mark(v, &mut u32v), IPVSCT_ABSENT);
                assert_eq!(u32v, 5);
                assert_eq!(ipvsct_ct_view_state(v, &mut kind, &mut state), IPVSCT_OK);
                assert_eq!((kind, state), (IPVSCT_STATE_KIND_UDP, 1));
                assert_eq!((e.state_kind, e.state), (kind, state));
            }
        });
        let t = timeouts();
        with_view(&bytes, Some(&t), |v| {
            let mut u32v = 0u32;
            // SAFETY: as above.
            unsafe {
                assert_eq!(ipvsct_ct_view_state_timeout(v, &mut u32v), IPVSCT_OK);
            }
            assert_eq!(
                u32v, 30,
                "a REPLIED (not yet stream) UDP entry has the short timeout"
            );
        });
    }

    #[test]
    fn malformed_nests_are_decode_errors_and_null_is_rejected() {
        // A protocol-info nest whose TCP state has the wrong size.
        let bytes = message(6, |b| {
            let p = b.begin_nest(CTA_PROTOINFO);
            let t = b.begin_nest(CTA_PROTOINFO_TCP);
            b.put_be32(CTA_PROTOINFO_TCP_STATE, 3);
            b.end_nest(t);
            b.end_nest(p);
        });
        with_view(&bytes, None, |v| {
            let mut e = ipvsct_ct_entry::default();
            let (mut kind, mut state) = (0u8, 0u8);
            let mut t = ipvsct_tuple::default();
            // SAFETY: `v` is a live view for the closure; outputs are writable locals.
            unsafe {
                assert_eq!(
                    ipvsct_ct_view_state(v, &mut kind, &mut state),
                    IPVSCT_ERR_DECODE
                );
                assert!(last().unwrap().decode.is_some());
                assert_eq!(ipvsct_ct_view_entry(v, &mut e), IPVSCT_ERR_DECODE);
                assert_eq!(e, ipvsct_ct_entry::default(), "nothing written on failure");
                assert_eq!(
                    ipvsct_ct_view_orig(v, &mut t),
                    IPVSCT_OK,
                    "the tuple is fine"
                );
                assert_eq!(
                    ipvsct_ct_view_orig(v, std::ptr::null_mut()),
                    IPVSCT_ERR_NULL_ARGUMENT
                );
                assert_eq!(
                    ipvsct_ct_view_state(v, std::ptr::null_mut(), &mut state),
                    IPVSCT_ERR_NULL_ARGUMENT
                );
            }
        });
        let mut u32v = 0u32;
        // SAFETY: a NULL view is reported before anything is read.
        unsafe {
            assert_eq!(
                ipvsct_ct_view_timeout(std::ptr::null(), &mut u32v),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_conntrack_dump_view(
                    std::ptr::null(),
                    std::ptr::null(),
                    None,
                    std::ptr::null_mut(),
                    std::ptr::null_mut()
                ),
                IPVSCT_ERR_NULL_ARGUMENT
            );
        }
    }
}

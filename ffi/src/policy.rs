//! cttimeout policies on `ipvsct_conntrack` (what `nfct timeout` manages): list, get,
//! add, replace, delete, and a protocol's default policy (read and set).

use std::ffi::{c_char, c_int, c_void};

use ipvs_conntrack::conntrack::timeout::{DccpTimeouts, SctpTimeouts, TcpTimeouts, UdpTimeouts};
use ipvs_conntrack::conntrack::{ProtoTimeouts, TimeoutPolicy};

use crate::boundary::boundary;
use crate::conntrack::ipvsct_conntrack;
use crate::error::FfiError;
use crate::ptr::{in_cstr, in_ref, out_opt, Out};
use crate::result::ipvsct_result;
use crate::result::ipvsct_result::*;
use crate::timeouts::{ipvsct_ct_timeout_policy, IPVSCT_TIMEOUT_UNSET, IPVSCT_TIMEOUT_VALUES_LEN};

/// `ipvsct_ct_timeout_policy.l4proto` of the generic policy (every other protocol).
pub const IPVSCT_L4PROTO_GENERIC: u8 = 255;

/// Callback for timeout policies; `policy` is valid only during the call. Return 0 to go
/// on, anything else to stop. It must not unwind or longjmp out of the library.
#[allow(non_camel_case_types)]
pub type ipvsct_ct_timeout_policy_cb = Option<
    unsafe extern "C" fn(policy: *const ipvsct_ct_timeout_policy, user: *mut c_void) -> c_int,
>;

/// Number of values (attributes 1..=n) a protocol's policy has.
fn value_count(l4: u8) -> Option<usize> {
    Some(match l4 {
        6 => 11,
        17 | 136 | 47 => 2,
        132 => 9,
        33 => 7,
        1 | 58 | IPVSCT_L4PROTO_GENERIC => 1,
        _ => return None,
    })
}

/// The core timeouts of protocol `l4` from values indexed by attribute number.
fn proto_timeouts(
    l4: u8,
    values: &[u32; IPVSCT_TIMEOUT_VALUES_LEN],
) -> Result<ProtoTimeouts, FfiError> {
    let n = value_count(l4).ok_or_else(|| {
        FfiError::invalid(format!(
            "policy: L4 protocol {l4} has no timeout policy (TCP 6, UDP 17, UDP-Lite 136, \
             SCTP 132, DCCP 33, ICMP 1, ICMPv6 58, GRE 47, generic 255)"
        ))
    })?;
    for (i, v) in values.iter().enumerate() {
        if (i == 0 || i > n) && *v != IPVSCT_TIMEOUT_UNSET {
            return Err(FfiError::invalid(format!(
                "policy: values[{i}] is set, but protocol {l4} has values 1..={n} only \
                 (leave the others IPVSCT_TIMEOUT_UNSET)"
            )));
        }
    }
    let v = |i: usize| {
        values
            .get(i)
            .copied()
            .filter(|x| *x != IPVSCT_TIMEOUT_UNSET)
    };
    let udp = || UdpTimeouts {
        unreplied: v(1),
        replied: v(2),
    };
    Ok(match l4 {
        6 => ProtoTimeouts::Tcp(TcpTimeouts {
            syn_sent: v(1),
            syn_recv: v(2),
            established: v(3),
            fin_wait: v(4),
            close_wait: v(5),
            last_ack: v(6),
            time_wait: v(7),
            close: v(8),
            syn_sent2: v(9),
            retrans: v(10),
            unack: v(11),
        }),
        17 => ProtoTimeouts::Udp(udp()),
        136 => ProtoTimeouts::UdpLite(udp()),
        47 => ProtoTimeouts::Gre(udp()),
        132 => ProtoTimeouts::Sctp(SctpTimeouts {
            closed: v(1),
            cookie_wait: v(2),
            cookie_echoed: v(3),
            established: v(4),
            shutdown_sent: v(5),
            shutdown_recd: v(6),
            shutdown_ack_sent: v(7),
            heartbeat_sent: v(8),
            heartbeat_acked: v(9),
        }),
        33 => ProtoTimeouts::Dccp(DccpTimeouts {
            request: v(1),
            respond: v(2),
            partopen: v(3),
            open: v(4),
            closereq: v(5),
            closing: v(6),
            timewait: v(7),
        }),
        1 => ProtoTimeouts::Icmp(v(1)),
        58 => ProtoTimeouts::Icmpv6(v(1)),
        _ => ProtoTimeouts::Generic(v(1)),
    })
}

/// The name in a fixed buffer, checked to be NUL-terminated UTF-8.
fn name_of(buf: &[c_char]) -> Result<String, FfiError> {
    let bytes: Vec<u8> = buf
        .iter()
        .map(|c| *c as u8)
        .take_while(|b| *b != 0)
        .collect();
    if bytes.len() == buf.len() {
        return Err(FfiError::invalid("policy: name is not NUL-terminated"));
    }
    String::from_utf8(bytes).map_err(|_| FfiError::invalid("policy: name is not UTF-8"))
}

impl ipvsct_ct_timeout_policy {
    /// The core policy (named if `name` is not empty).
    pub(crate) fn to_core(self) -> Result<TimeoutPolicy, FfiError> {
        let name = name_of(&self.name)?;
        Ok(TimeoutPolicy {
            name: (!name.is_empty()).then_some(name),
            l3proto: self.l3proto,
            l4proto: self.l4proto,
            timeouts: proto_timeouts(self.l4proto, &self.values)?,
            use_count: None,
            unknown: Vec::new(),
        })
    }
}

/// A policy name argument.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn name_arg(p: *const c_char) -> Result<String, FfiError> {
    // SAFETY: forwarded contract.
    let s = unsafe { in_cstr(p) }.ok_or_else(|| FfiError::null("name"))?;
    s.to_str()
        .map(str::to_owned)
        .map_err(|_| FfiError::invalid("name: not UTF-8"))
}

/// Calls `cb` with every named timeout policy of the namespace (`nfct timeout list`),
/// writing their number to `*count_out` if it is not NULL. IPVSCT_ERR_UNSUPPORTED without
/// cttimeout. Returns IPVSCT_OK, or IPVSCT_STOPPED if `cb` returned non-zero.
///
/// # Safety
/// `ct` is NULL or a live handle; `cb` is NULL or a valid function; `count_out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_policies(
    ct: *const ipvsct_conntrack,
    cb: ipvsct_ct_timeout_policy_cb,
    user: *mut c_void,
    count_out: *mut usize,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, count_out) = unsafe { (in_ref(ct, "ct")?, out_opt(count_out, "count_out")?) };
        let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
        // Read all first (a handful), so `cb` may call the handle.
        let all = ct.lock()?.ct.timeout_policies()?;
        let mut n = 0usize;
        let mut result = IPVSCT_OK;
        for p in &all {
            let c = ipvsct_ct_timeout_policy::from(p);
            n += 1;
            // SAFETY: `cb` is a valid function (contract); `c` outlives the call.
            if unsafe { cb(&c, user) } != 0 {
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

/// Writes the named policy `name` to `*out`; IPVSCT_ERR_NOT_FOUND if there is none.
///
/// # Safety
/// `ct` is NULL or a live handle; `name` is NULL or a NUL-terminated string; `out` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_policy_get(
    ct: *const ipvsct_conntrack,
    name: *const c_char,
    out: *mut ipvsct_ct_timeout_policy,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, name, out) =
            unsafe { (in_ref(ct, "ct")?, name_arg(name)?, Out::new(out, "out")?) };
        let p = ct.lock()?.ct.timeout_policy(&name)?;
        out.write((&p).into());
        Ok(IPVSCT_OK)
    })
}

/// Creates the named policy `*policy` (its `name`, `l3proto` AF_INET/AF_INET6, `l4proto`
/// and the `values` that are not IPVSCT_TIMEOUT_UNSET, indexed by the protocol's
/// CTA_TIMEOUT_* attribute number). IPVSCT_ERR_KERNEL with EEXIST if the name is taken.
///
/// # Safety
/// `ct` is NULL or a live handle; `policy` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_policy_add(
    ct: *const ipvsct_conntrack,
    policy: *const ipvsct_ct_timeout_policy,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, policy) = unsafe { (in_ref(ct, "ct")?, in_ref(policy, "policy")?) };
        let p = policy.to_core()?;
        ct.lock()?.ct.add_timeout_policy(&p)?;
        Ok(IPVSCT_OK)
    })
}

/// Sets every value of the named policy anew (values left IPVSCT_TIMEOUT_UNSET take the
/// namespace defaults), creating it if absent (EINVAL if it exists for other protocols).
///
/// # Safety
/// `ct` is NULL or a live handle; `policy` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_policy_replace(
    ct: *const ipvsct_conntrack,
    policy: *const ipvsct_ct_timeout_policy,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, policy) = unsafe { (in_ref(ct, "ct")?, in_ref(policy, "policy")?) };
        let p = policy.to_core()?;
        ct.lock()?.ct.replace_timeout_policy(&p)?;
        Ok(IPVSCT_OK)
    })
}

/// Deletes the named policy `name`: IPVSCT_ERR_NOT_FOUND if absent, IPVSCT_ERR_KERNEL with
/// EBUSY while a rule or an entry uses it.
///
/// # Safety
/// `ct` is NULL or a live handle; `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_policy_delete(
    ct: *const ipvsct_conntrack,
    name: *const c_char,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, name) = unsafe { (in_ref(ct, "ct")?, name_arg(name)?) };
        ct.lock()?.ct.delete_timeout_policy(&name)?;
        Ok(IPVSCT_OK)
    })
}

/// Deletes every named policy nothing uses.
///
/// # Safety
/// `ct` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_policy_delete_unused(
    ct: *const ipvsct_conntrack,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a live handle (contract above).
        let ct = unsafe { in_ref(ct, "ct") }?;
        ct.lock()?.ct.delete_unused_timeout_policies()?;
        Ok(IPVSCT_OK)
    })
}

/// Writes the default policy of L4 protocol `l4proto` (IPPROTO_*, or 255 for the generic
/// one) for L3 protocol `l3proto` (AF_INET 2 / AF_INET6 10) to `*out`
/// (IPCTNL_MSG_TIMEOUT_DEFAULT_GET).
///
/// # Safety
/// `ct` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_default_policy(
    ct: *const ipvsct_conntrack,
    l3proto: u16,
    l4proto: u8,
    out: *mut ipvsct_ct_timeout_policy,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, out) = unsafe { (in_ref(ct, "ct")?, Out::new(out, "out")?) };
        if value_count(l4proto).is_none() {
            return Err(FfiError::invalid(format!(
                "l4proto: protocol {l4proto} has no timeout policy"
            )));
        }
        let p = ct.lock()?.ct.default_policy(l3proto, l4proto)?;
        out.write((&p).into());
        Ok(IPVSCT_OK)
    })
}

/// Sets the default timeouts of `policy->l4proto` in the namespace
/// (IPCTNL_MSG_TIMEOUT_DEFAULT_SET): the `values` that are not IPVSCT_TIMEOUT_UNSET change,
/// the others stay. `policy->name` must be "". The handle's cached state timeouts are
/// refreshed.
///
/// # Safety
/// `ct` is NULL or a live handle; `policy` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_set_default_policy(
    ct: *const ipvsct_conntrack,
    policy: *const ipvsct_ct_timeout_policy,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, policy) = unsafe { (in_ref(ct, "ct")?, in_ref(policy, "policy")?) };
        let p = policy.to_core()?;
        if p.name.is_some() {
            return Err(FfiError::invalid(
                "policy: a default policy has no name (name must be \"\")",
            ));
        }
        let mut l = ct.lock()?;
        l.ct.set_default_policy(p.l3proto, &p.timeouts)?;
        l.forget_state_timeouts();
        Ok(IPVSCT_OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, l4: u8) -> ipvsct_ct_timeout_policy {
        let mut p = ipvsct_ct_timeout_policy {
            values: [IPVSCT_TIMEOUT_UNSET; IPVSCT_TIMEOUT_VALUES_LEN],
            use_count: 0,
            fields: 0,
            l3proto: 2,
            l4proto: l4,
            reserved: 0,
            name: [0; crate::timeouts::IPVSCT_TIMEOUT_NAME_LEN],
        };
        for (d, s) in p.name.iter_mut().zip(name.bytes()) {
            *d = s as c_char;
        }
        p
    }

    #[test]
    fn values_map_by_attribute_number_and_round_trip() {
        let mut p = policy("web", 6);
        p.values[3] = 600;
        p.values[7] = 30;
        let core = p.to_core().unwrap();
        assert_eq!(core.name.as_deref(), Some("web"));
        match &core.timeouts {
            ProtoTimeouts::Tcp(t) => {
                assert_eq!(
                    (t.established, t.time_wait, t.close),
                    (Some(600), Some(30), None)
                )
            }
            other => panic!("{other:?}"),
        }
        core.validate().unwrap();
        let back = ipvsct_ct_timeout_policy::from(&core);
        assert_eq!(back.values, p.values);
        let mut g = policy("", 255);
        g.values[1] = 99;
        let core = g.to_core().unwrap();
        assert_eq!(core.name, None);
        assert_eq!(core.timeouts, ProtoTimeouts::Generic(Some(99)));
    }

    #[test]
    fn bad_policies_are_refused() {
        let mut p = policy("u", 17);
        p.values[3] = 5;
        assert!(p.to_core().unwrap_err().message.contains("values[3]"));
        assert_eq!(
            policy("x", 99).to_core().unwrap_err().code,
            IPVSCT_ERR_INVALID_ARGUMENT
        );
        let mut long = policy("", 6);
        long.name = [b'a' as c_char; crate::timeouts::IPVSCT_TIMEOUT_NAME_LEN];
        assert!(long.to_core().unwrap_err().message.contains("NUL"));
    }
}

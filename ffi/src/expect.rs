//! Conntrack expectations in C form (what expectation events and messages carry).

use std::ffi::c_char;

use ipvs_conntrack::conntrack::Expectation;

use crate::cstr;
use crate::timeouts::IPVSCT_TIMEOUT_UNSET;
use crate::tuple::ipvsct_tuple;

/// Size of `ipvsct_ct_expect.expect_fn` (bytes, including the NUL).
pub const IPVSCT_EXPECT_FN_LEN: usize = 32;

/// `ipvsct_ct_expect.fields`: `timeout` is set.
pub const IPVSCT_CT_EXPECT_HAS_TIMEOUT: u32 = 0x1;
/// `ipvsct_ct_expect.fields`: `id` is set.
pub const IPVSCT_CT_EXPECT_HAS_ID: u32 = 0x2;
/// `ipvsct_ct_expect.fields`: `helper` is set.
pub const IPVSCT_CT_EXPECT_HAS_HELPER: u32 = 0x4;
/// `ipvsct_ct_expect.fields`: `zone` is set.
pub const IPVSCT_CT_EXPECT_HAS_ZONE: u32 = 0x8;
/// `ipvsct_ct_expect.fields`: `flags` is set.
pub const IPVSCT_CT_EXPECT_HAS_FLAGS: u32 = 0x10;
/// `ipvsct_ct_expect.fields`: `class` is set.
pub const IPVSCT_CT_EXPECT_HAS_CLASS: u32 = 0x20;
/// `ipvsct_ct_expect.fields`: `nat_dir` and `nat_tuple` are set.
pub const IPVSCT_CT_EXPECT_HAS_NAT: u32 = 0x40;
/// `ipvsct_ct_expect.fields`: `expect_fn` is set.
pub const IPVSCT_CT_EXPECT_HAS_FN: u32 = 0x80;
/// `ipvsct_ct_expect.fields`: the message carried attributes this struct does not hold.
pub const IPVSCT_CT_EXPECT_HAS_MORE: u32 = 0x40000000;
/// `ipvsct_ct_expect.fields`: a string did not fit its field and was cut.
pub const IPVSCT_CT_EXPECT_TRUNCATED: u32 = 0x80000000;

/// One conntrack expectation (a connection a helper such as ftp expects). Optional
/// members are valid when their `IPVSCT_CT_EXPECT_HAS_*` bit is set. Plain data.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ct_expect {
    /// Original tuple of the master connection (CTA_EXPECT_MASTER).
    pub master: ipvsct_tuple,
    /// The expected connection's tuple (CTA_EXPECT_TUPLE).
    pub tuple: ipvsct_tuple,
    /// Which bits of `tuple` must match: addresses and ports as masks (CTA_EXPECT_MASK).
    pub mask: ipvsct_tuple,
    /// The saved address and port of the NAT part (CTA_EXPECT_NAT_TUPLE).
    pub nat_tuple: ipvsct_tuple,
    /// `IPVSCT_CT_EXPECT_*` bits.
    pub fields: u32,
    /// Seconds left (IPVSCT_TIMEOUT_UNSET if absent).
    pub timeout: u32,
    /// CTA_EXPECT_ID.
    pub id: u32,
    /// NF_CT_EXPECT_* flags (1 PERMANENT, 2 INACTIVE, 4 USERSPACE).
    pub flags: u32,
    /// The helper's expectation class.
    pub class: u32,
    /// NAT direction (0 original, 1 reply).
    pub nat_dir: u32,
    /// Conntrack zone.
    pub zone: u16,
    /// Netlink header flags of the message (NLM_F_*).
    pub nlmsg_flags: u16,
    /// Address family (AF_INET 2, AF_INET6 10).
    pub family: u8,
    /// ctnetlink_exp message: IPCTNL_MSG_EXP_NEW (0) or IPCTNL_MSG_EXP_DELETE (2).
    pub msg_type: u8,
    /// Zero.
    pub reserved: [u8; 2],
    /// The master's helper name, NUL-terminated, "" if none.
    pub helper: [c_char; crate::entry::IPVSCT_HELPER_NAME_LEN],
    /// Name of the function run when the expectation matches, NUL-terminated, "" if none.
    pub expect_fn: [c_char; IPVSCT_EXPECT_FN_LEN],
}

impl ipvsct_ct_expect {
    /// The C form of an expectation.
    pub(crate) fn from_core(x: &Expectation) -> Self {
        let mut f = 0u32;
        let mut bit = |b: u32, on: bool| {
            if on {
                f |= b;
            }
        };
        bit(IPVSCT_CT_EXPECT_HAS_TIMEOUT, x.timeout.is_some());
        bit(IPVSCT_CT_EXPECT_HAS_ID, x.id.is_some());
        bit(IPVSCT_CT_EXPECT_HAS_HELPER, x.helper.is_some());
        bit(IPVSCT_CT_EXPECT_HAS_ZONE, x.zone.is_some());
        bit(IPVSCT_CT_EXPECT_HAS_FLAGS, x.flags.is_some());
        bit(IPVSCT_CT_EXPECT_HAS_CLASS, x.class.is_some());
        bit(IPVSCT_CT_EXPECT_HAS_NAT, x.nat.is_some());
        bit(IPVSCT_CT_EXPECT_HAS_FN, x.expect_fn.is_some());
        let more = !x.unknown.is_empty()
            || !x.master.unknown.is_empty()
            || !x.tuple.unknown.is_empty()
            || !x.mask.unknown.is_empty();
        bit(IPVSCT_CT_EXPECT_HAS_MORE, more);
        let (helper, cut_h) = cstr::fixed(x.helper.as_deref().unwrap_or(""));
        let (expect_fn, cut_f) = cstr::fixed(x.expect_fn.as_deref().unwrap_or(""));
        bit(IPVSCT_CT_EXPECT_TRUNCATED, cut_h || cut_f);
        ipvsct_ct_expect {
            master: ipvsct_tuple::from_core(&x.master),
            tuple: ipvsct_tuple::from_core(&x.tuple),
            mask: ipvsct_tuple::from_core(&x.mask),
            nat_tuple: x
                .nat
                .as_ref()
                .map(|n| ipvsct_tuple::from_core(&n.tuple))
                .unwrap_or_default(),
            fields: f,
            timeout: x.timeout.unwrap_or(IPVSCT_TIMEOUT_UNSET),
            id: x.id.unwrap_or(0),
            flags: x.flags.map_or(0, |v| v.bits()),
            class: x.class.unwrap_or(0),
            nat_dir: x.nat.as_ref().map_or(0, |n| n.dir),
            zone: x.zone.unwrap_or(0),
            nlmsg_flags: x.message.flags,
            family: x.family.value(),
            msg_type: x.message.msg,
            reserved: [0; 2],
            helper,
            expect_fn,
        }
    }
}

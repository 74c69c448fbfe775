//! Connection status bits (`enum ip_conntrack_status`, IPS_*).

bitflags::bitflags! {
    /// The CTA_STATUS word. Unknown bits are kept.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct Status: u32 {
        /// IPS_EXPECTED: an expected connection.
        const EXPECTED = 1 << 0;
        /// IPS_SEEN_REPLY: packets seen in both directions.
        const SEEN_REPLY = 1 << 1;
        /// IPS_ASSURED: will not be early-dropped.
        const ASSURED = 1 << 2;
        /// IPS_CONFIRMED: in the main table.
        const CONFIRMED = 1 << 3;
        /// IPS_SRC_NAT: source NAT applies.
        const SRC_NAT = 1 << 4;
        /// IPS_DST_NAT: destination NAT applies.
        const DST_NAT = 1 << 5;
        /// IPS_SEQ_ADJUST: sequence numbers are adjusted.
        const SEQ_ADJUST = 1 << 6;
        /// IPS_SRC_NAT_DONE: source NAT set up.
        const SRC_NAT_DONE = 1 << 7;
        /// IPS_DST_NAT_DONE: destination NAT set up.
        const DST_NAT_DONE = 1 << 8;
        /// IPS_DYING: being destroyed.
        const DYING = 1 << 9;
        /// IPS_FIXED_TIMEOUT: timeout is not refreshed by packets.
        const FIXED_TIMEOUT = 1 << 10;
        /// IPS_TEMPLATE: a template (not a real connection).
        const TEMPLATE = 1 << 11;
        /// IPS_UNTRACKED (IPS_NAT_CLASH in newer kernels).
        const UNTRACKED = 1 << 12;
        /// IPS_HELPER: a helper was assigned explicitly.
        const HELPER = 1 << 13;
        /// IPS_OFFLOAD: offloaded to the flow table.
        const OFFLOAD = 1 << 14;
        /// IPS_HW_OFFLOAD: offloaded to hardware.
        const HW_OFFLOAD = 1 << 15;
        // Unknown bits are kept as data.
        const _ = !0;
    }
}

/// Kernel names (without the `IPS_` prefix) of the status bits, by bit index.
pub const STATUS_NAMES: [&str; 16] = [
    "EXPECTED",
    "SEEN_REPLY",
    "ASSURED",
    "CONFIRMED",
    "SRC_NAT",
    "DST_NAT",
    "SEQ_ADJUST",
    "SRC_NAT_DONE",
    "DST_NAT_DONE",
    "DYING",
    "FIXED_TIMEOUT",
    "TEMPLATE",
    "UNTRACKED",
    "HELPER",
    "OFFLOAD",
    "HW_OFFLOAD",
];

impl Status {
    /// Names of the set bits (kernel names without `IPS_`; unknown bits as `BIT<n>`).
    pub fn names(&self) -> impl Iterator<Item = std::borrow::Cow<'static, str>> + '_ {
        let bits = self.bits();
        (0..32u32).filter(move |b| bits & (1 << b) != 0).map(|b| {
            match STATUS_NAMES.get(b as usize) {
                Some(n) => std::borrow::Cow::Borrowed(*n),
                None => std::borrow::Cow::Owned(format!("BIT{b}")),
            }
        })
    }

    /// Parses a kernel status name (with or without `IPS_`).
    pub fn from_kernel_name(name: &str) -> Option<Status> {
        let n = name.strip_prefix("IPS_").unwrap_or(name);
        let upper = n.to_ascii_uppercase();
        STATUS_NAMES
            .iter()
            .position(|s| *s == upper)
            .map(|i| Status::from_bits_retain(1 << i))
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_unknown_bits() {
        let s = Status::from_bits_retain(0b1110 | (1 << 20));
        let n: Vec<_> = s.names().collect();
        assert_eq!(n, ["SEEN_REPLY", "ASSURED", "CONFIRMED", "BIT20"]);
        assert_eq!(s.bits() & (1 << 20), 1 << 20);
        assert_eq!(
            Status::from_kernel_name("IPS_ASSURED"),
            Some(Status::ASSURED)
        );
        assert_eq!(Status::from_kernel_name("dying"), Some(Status::DYING));
    }
}

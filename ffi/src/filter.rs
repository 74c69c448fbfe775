//! Dump filters in C form: table, family, mark/mask, zone, status/mask and tuple fields.

use ipvs_conntrack::conntrack::{DumpFilter, Family, Status, Table};

use crate::error::FfiError;
use crate::tuple::ipvsct_tuple;

/// `ipvsct_dump_filter.fields`: only entries of `family`.
pub const IPVSCT_DUMP_FILTER_HAS_FAMILY: u32 = 0x1;
/// `ipvsct_dump_filter.fields`: only entries with `entry.mark & mark_mask == mark & mark_mask`.
pub const IPVSCT_DUMP_FILTER_HAS_MARK: u32 = 0x2;
/// `ipvsct_dump_filter.fields`: only entries in `zone`.
pub const IPVSCT_DUMP_FILTER_HAS_ZONE: u32 = 0x4;
/// `ipvsct_dump_filter.fields`: only entries with `entry.status & status_mask == status & status_mask`.
pub const IPVSCT_DUMP_FILTER_HAS_STATUS: u32 = 0x8;
/// `ipvsct_dump_filter.fields`: do not send the filter to the kernel; filter in the library only.
pub const IPVSCT_DUMP_FILTER_USER_SPACE_ONLY: u32 = 0x10;

const ALL_BITS: u32 = 0x1f;

/// `ipvsct_dump_filter.table`: the main table.
pub const IPVSCT_TABLE_MAIN: u8 = 0;
/// `ipvsct_dump_filter.table`: entries being destroyed (filters other than family are ignored).
pub const IPVSCT_TABLE_DYING: u8 = 1;
/// `ipvsct_dump_filter.table`: entries not yet confirmed (filters other than family are ignored).
pub const IPVSCT_TABLE_UNCONFIRMED: u8 = 2;

/// What a dump returns. All-zero (`{0}`) means the whole main table. The filter is sent to
/// the kernel and checked again on every entry. Tuple fields match when set in their
/// `fields` (`IPVSCT_TUPLE_HAS_*`, not _ZONE); an address filter needs `family`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_dump_filter {
    /// Original-direction fields to match.
    pub orig: ipvsct_tuple,
    /// Reply-direction fields to match.
    pub reply: ipvsct_tuple,
    /// `IPVSCT_DUMP_FILTER_*` bits.
    pub fields: u32,
    /// Mark value.
    pub mark: u32,
    /// Mark mask.
    pub mark_mask: u32,
    /// Status value (IPS_* bits).
    pub status: u32,
    /// Status mask.
    pub status_mask: u32,
    /// Zone.
    pub zone: u16,
    /// Family (AF_INET 2 or AF_INET6 10).
    pub family: u8,
    /// Which table (`IPVSCT_TABLE_*`).
    pub table: u8,
}

impl ipvsct_dump_filter {
    /// The table and core filter, checked.
    pub(crate) fn to_core(self) -> Result<(Table, DumpFilter), FfiError> {
        if self.fields & !ALL_BITS != 0 {
            return Err(FfiError::invalid(format!(
                "filter: unknown bits {:#x} in fields",
                self.fields & !ALL_BITS
            )));
        }
        let table = match self.table {
            IPVSCT_TABLE_MAIN => Table::Main,
            IPVSCT_TABLE_DYING => Table::Dying,
            IPVSCT_TABLE_UNCONFIRMED => Table::Unconfirmed,
            t => return Err(FfiError::invalid(format!("filter: unknown table {t}"))),
        };
        let has = |bit: u32| self.fields & bit != 0;
        let family = if has(IPVSCT_DUMP_FILTER_HAS_FAMILY) {
            match Family::from(self.family) {
                f @ (Family::Ipv4 | Family::Ipv6) => Some(f),
                _ => {
                    return Err(FfiError::invalid(format!(
                        "filter: family {} is neither AF_INET (2) nor AF_INET6 (10)",
                        self.family
                    )))
                }
            }
        } else {
            None
        };
        let f = DumpFilter {
            family,
            mark: has(IPVSCT_DUMP_FILTER_HAS_MARK).then_some((self.mark, self.mark_mask)),
            zone: has(IPVSCT_DUMP_FILTER_HAS_ZONE).then_some(self.zone),
            status: has(IPVSCT_DUMP_FILTER_HAS_STATUS).then_some((
                Status::from_bits_retain(self.status),
                Status::from_bits_retain(self.status_mask),
            )),
            orig: self.orig.to_filter("filter.orig")?,
            reply: self.reply.to_filter("filter.reply")?,
            user_space_only: has(IPVSCT_DUMP_FILTER_USER_SPACE_ONLY),
        };
        f.validate()?;
        Ok((table, f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::ipvsct_addr;
    use crate::result::ipvsct_result::*;
    use crate::tuple::*;

    #[test]
    fn zero_filter_is_everything() {
        let (t, f) = ipvsct_dump_filter::default().to_core().unwrap();
        assert_eq!(t, Table::Main);
        assert_eq!(f, DumpFilter::all());
    }

    #[test]
    fn fields_map_to_the_core_filter() {
        let mut c = ipvsct_dump_filter {
            fields: IPVSCT_DUMP_FILTER_HAS_MARK
                | IPVSCT_DUMP_FILTER_HAS_FAMILY
                | IPVSCT_DUMP_FILTER_HAS_ZONE,
            mark: 42,
            mark_mask: 0xff,
            zone: 7,
            family: 2,
            table: IPVSCT_TABLE_DYING,
            ..Default::default()
        };
        c.orig.fields = IPVSCT_TUPLE_HAS_PROTO | IPVSCT_TUPLE_HAS_DST_PORT | IPVSCT_TUPLE_HAS_DST;
        c.orig.proto = 6;
        c.orig.dst_port = 8080;
        c.orig.dst = ipvsct_addr::from_ip("127.0.0.1".parse().unwrap());
        let (t, f) = c.to_core().unwrap();
        assert_eq!(t, Table::Dying);
        assert_eq!(f.mark, Some((42, 0xff)));
        assert_eq!(f.zone, Some(7));
        assert_eq!(f.family, Some(Family::Ipv4));
        assert_eq!(f.orig.dst_port, Some(8080));
        assert_eq!(f.orig.dst, Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn invalid_filters_are_rejected() {
        let bad_bits = ipvsct_dump_filter {
            fields: 0x100,
            ..Default::default()
        };
        assert_eq!(
            bad_bits.to_core().unwrap_err().code,
            IPVSCT_ERR_INVALID_ARGUMENT
        );
        let bad_table = ipvsct_dump_filter {
            table: 9,
            ..Default::default()
        };
        assert!(bad_table.to_core().unwrap_err().message.contains("table 9"));
        let mut port_without_proto = ipvsct_dump_filter::default();
        port_without_proto.orig.fields = IPVSCT_TUPLE_HAS_DST_PORT;
        let e = port_without_proto.to_core().unwrap_err();
        assert_eq!(e.code, IPVSCT_ERR_INVALID_ARGUMENT);
        assert!(e.message.contains("L4 protocol"), "{}", e.message);
        let bad_family = ipvsct_dump_filter {
            fields: IPVSCT_DUMP_FILTER_HAS_FAMILY,
            family: 3,
            ..Default::default()
        };
        assert!(bad_family.to_core().is_err());
    }
}

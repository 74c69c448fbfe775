//! General IPVS information (IPVS_CMD_GET_INFO): version and connection table size.

use std::fmt;

/// What IPVS_CMD_GET_INFO reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Info {
    /// Version code (`0x010201` is 1.2.1).
    pub version: u32,
    /// Number of buckets of the connection hash table.
    pub conn_tab_size: u32,
}

impl Info {
    /// The version as (major, minor, patch).
    pub fn version_triple(&self) -> (u8, u8, u8) {
        let [_, a, b, c] = self.version.to_be_bytes();
        (a, b, c)
    }
}

impl fmt::Display for Info {
    /// `IP Virtual Server version 1.2.1 (size=4096)`, as ipvsadm prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.version_triple();
        write!(
            f,
            "IP Virtual Server version {a}.{b}.{c} (size={})",
            self.conn_tab_size
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_text() {
        let i = Info {
            version: 0x010201,
            conn_tab_size: 4096,
        };
        assert_eq!(i.version_triple(), (1, 2, 1));
        assert_eq!(i.to_string(), "IP Virtual Server version 1.2.1 (size=4096)");
    }
}

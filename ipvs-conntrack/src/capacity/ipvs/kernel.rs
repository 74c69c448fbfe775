//! What the kernel tells about IPVS outside generic netlink: the capacity-related
//! settings of `/proc/sys/net/ipv4/vs/`, the size of one connection entry (slab), and
//! the machine's memory.

use crate::netns::Netns;

/// IPVS settings of a namespace (`/proc/sys/net/ipv4/vs/`) that bear on capacity: the
/// memory defense (what happens when free memory drops below `amemthresh` pages) and
/// whether the counters are updated at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct VsSettings {
    /// Free-memory threshold in pages (`amemthresh`).
    pub amemthresh: Option<u64>,
    /// Randomly drop connection entries under memory pressure (`drop_entry`, 0 = off).
    pub drop_entry: Option<u32>,
    /// Drop packets of new connections under memory pressure (`drop_packet`, 0 = off).
    pub drop_packet: Option<u32>,
    /// Shorter state timeouts under memory pressure (`secure_tcp`, 0 = off).
    pub secure_tcp: Option<u32>,
    /// The rate estimator, which also updates the reported counters (`run_estimation`, 0 = off).
    pub run_estimation: Option<u32>,
}

impl VsSettings {
    /// Reads the settings of `netns` (all None where unreadable).
    pub fn read(netns: &Netns) -> VsSettings {
        netns
            .run(|| {
                let get = |name: &str| {
                    std::fs::read_to_string(format!("/proc/sys/net/ipv4/vs/{name}"))
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                };
                let small = |name: &str| get(name).and_then(|v| u32::try_from(v).ok());
                Ok(VsSettings {
                    amemthresh: get("amemthresh"),
                    drop_entry: small("drop_entry"),
                    drop_packet: small("drop_packet"),
                    secure_tcp: small("secure_tcp"),
                    run_estimation: small("run_estimation"),
                })
            })
            .unwrap_or_default()
    }

    /// Names of the memory defense strategies that are switched on.
    pub fn defense_enabled(&self) -> Vec<&'static str> {
        [
            ("drop_entry", self.drop_entry),
            ("drop_packet", self.drop_packet),
            ("secure_tcp", self.secure_tcp),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some_and(|v| v > 0))
        .map(|(n, _)| n)
        .collect()
    }
}

/// Bytes one connection entry takes in the kernel: the `ip_vs_conn` slab's per-object
/// size from `/sys/kernel/slab` (SLUB), else `/proc/slabinfo`; None if neither says.
pub fn conn_entry_bytes() -> Option<u64> {
    let sysfs = |f: &str| {
        std::fs::read_to_string(format!("/sys/kernel/slab/ip_vs_conn/{f}"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|v| *v > 0)
    };
    sysfs("slab_size")
        .or_else(|| sysfs("object_size"))
        .or_else(|| {
            std::fs::read_to_string("/proc/slabinfo")
                .ok()
                .and_then(|t| slabinfo_objsize(&t, "ip_vs_conn"))
        })
}

/// The `objsize` column of cache `name` in `/proc/slabinfo` text.
pub fn slabinfo_objsize(text: &str, name: &str) -> Option<u64> {
    // name active_objs num_objs objsize objperslab pagesperslab : ...
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(3)?.parse().ok())
        .filter(|v| *v > 0)
}

/// The machine's memory from `/proc/meminfo` (`MemTotal`), bytes.
pub fn mem_total_bytes() -> Option<u64> {
    let t = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slabinfo_and_sizes() {
        let text = "slabinfo - version: 2.1\n\
# name <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables\n\
ip_vs_conn            50     50    320   25    2 : tunables    0    0    0\n";
        assert_eq!(slabinfo_objsize(text, "ip_vs_conn"), Some(320));
        assert_eq!(slabinfo_objsize(text, "nf_conntrack"), None);
        assert_eq!(slabinfo_objsize("ip_vs_conn 1 2", "ip_vs_conn"), None);
        let d = VsSettings {
            drop_entry: Some(1),
            secure_tcp: Some(3),
            ..VsSettings::default()
        };
        assert_eq!(d.defense_enabled(), ["drop_entry", "secure_tcp"]);
    }
}

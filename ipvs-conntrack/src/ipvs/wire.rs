//! IPVS generic netlink wire constants, named as in the kernel uapi header `linux/ip_vs.h`.

#![allow(missing_docs)]

/// Generic netlink family name.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// Generic netlink family version.
pub const IPVS_GENL_VERSION: u8 = 0x1;
/// IPVS version code reported by current kernels (1.2.1).
pub const IP_VS_VERSION_CODE: u32 = 0x010201;

pub const IP_VS_SCHEDNAME_MAXLEN: usize = 16;
pub const IP_VS_PENAME_MAXLEN: usize = 16;
pub const IP_VS_IFNAME_MAXLEN: usize = 16;
pub const IP_VS_PEDATA_MAXLEN: usize = 255;

// Virtual service flags.
pub const IP_VS_SVC_F_PERSISTENT: u32 = 0x0001;
pub const IP_VS_SVC_F_HASHED: u32 = 0x0002;
pub const IP_VS_SVC_F_ONEPACKET: u32 = 0x0004;
pub const IP_VS_SVC_F_SCHED1: u32 = 0x0008;
pub const IP_VS_SVC_F_SCHED2: u32 = 0x0010;
pub const IP_VS_SVC_F_SCHED3: u32 = 0x0020;
pub const IP_VS_SVC_F_SCHED_SH_FALLBACK: u32 = IP_VS_SVC_F_SCHED1;
pub const IP_VS_SVC_F_SCHED_SH_PORT: u32 = IP_VS_SVC_F_SCHED2;

// Sync daemon states.
pub const IP_VS_STATE_NONE: u32 = 0x0000;
pub const IP_VS_STATE_MASTER: u32 = 0x0001;
pub const IP_VS_STATE_BACKUP: u32 = 0x0002;

// Connection flags (forwarding methods and more).
pub const IP_VS_CONN_F_FWD_MASK: u32 = 0x0007;
pub const IP_VS_CONN_F_MASQ: u32 = 0x0000;
pub const IP_VS_CONN_F_LOCALNODE: u32 = 0x0001;
pub const IP_VS_CONN_F_TUNNEL: u32 = 0x0002;
pub const IP_VS_CONN_F_DROUTE: u32 = 0x0003;
pub const IP_VS_CONN_F_BYPASS: u32 = 0x0004;
pub const IP_VS_CONN_F_SYNC: u32 = 0x0020;
pub const IP_VS_CONN_F_HASHED: u32 = 0x0040;
pub const IP_VS_CONN_F_NOOUTPUT: u32 = 0x0080;
pub const IP_VS_CONN_F_INACTIVE: u32 = 0x0100;
pub const IP_VS_CONN_F_TEMPLATE: u32 = 0x1000;
pub const IP_VS_CONN_F_ONE_PACKET: u32 = 0x2000;

// Tunnel types.
pub const IP_VS_CONN_F_TUNNEL_TYPE_IPIP: u8 = 0;
pub const IP_VS_CONN_F_TUNNEL_TYPE_GUE: u8 = 1;
pub const IP_VS_CONN_F_TUNNEL_TYPE_GRE: u8 = 2;

// Tunnel encapsulation flags.
pub const IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM: u16 = 0;
pub const IP_VS_TUNNEL_ENCAP_FLAG_CSUM: u16 = 1 << 0;
pub const IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM: u16 = 1 << 1;

// Commands.
pub const IPVS_CMD_UNSPEC: u8 = 0;
pub const IPVS_CMD_NEW_SERVICE: u8 = 1;
pub const IPVS_CMD_SET_SERVICE: u8 = 2;
pub const IPVS_CMD_DEL_SERVICE: u8 = 3;
pub const IPVS_CMD_GET_SERVICE: u8 = 4;
pub const IPVS_CMD_NEW_DEST: u8 = 5;
pub const IPVS_CMD_SET_DEST: u8 = 6;
pub const IPVS_CMD_DEL_DEST: u8 = 7;
pub const IPVS_CMD_GET_DEST: u8 = 8;
pub const IPVS_CMD_NEW_DAEMON: u8 = 9;
pub const IPVS_CMD_DEL_DAEMON: u8 = 10;
pub const IPVS_CMD_GET_DAEMON: u8 = 11;
pub const IPVS_CMD_SET_CONFIG: u8 = 12;
pub const IPVS_CMD_GET_CONFIG: u8 = 13;
pub const IPVS_CMD_SET_INFO: u8 = 14;
pub const IPVS_CMD_GET_INFO: u8 = 15;
pub const IPVS_CMD_ZERO: u8 = 16;
pub const IPVS_CMD_FLUSH: u8 = 17;
/// Names of the commands, indexed by value.
pub const IPVS_CMD_NAMES: &[&str] = &[
    "IPVS_CMD_UNSPEC",
    "IPVS_CMD_NEW_SERVICE",
    "IPVS_CMD_SET_SERVICE",
    "IPVS_CMD_DEL_SERVICE",
    "IPVS_CMD_GET_SERVICE",
    "IPVS_CMD_NEW_DEST",
    "IPVS_CMD_SET_DEST",
    "IPVS_CMD_DEL_DEST",
    "IPVS_CMD_GET_DEST",
    "IPVS_CMD_NEW_DAEMON",
    "IPVS_CMD_DEL_DAEMON",
    "IPVS_CMD_GET_DAEMON",
    "IPVS_CMD_SET_CONFIG",
    "IPVS_CMD_GET_CONFIG",
    "IPVS_CMD_SET_INFO",
    "IPVS_CMD_GET_INFO",
    "IPVS_CMD_ZERO",
    "IPVS_CMD_FLUSH",
];

// First-level command attributes.
pub const IPVS_CMD_ATTR_UNSPEC: u16 = 0;
pub const IPVS_CMD_ATTR_SERVICE: u16 = 1;
pub const IPVS_CMD_ATTR_DEST: u16 = 2;
pub const IPVS_CMD_ATTR_DAEMON: u16 = 3;
pub const IPVS_CMD_ATTR_TIMEOUT_TCP: u16 = 4;
pub const IPVS_CMD_ATTR_TIMEOUT_TCP_FIN: u16 = 5;
pub const IPVS_CMD_ATTR_TIMEOUT_UDP: u16 = 6;
/// Names of the first-level attributes, indexed by value.
pub const IPVS_CMD_ATTR_NAMES: &[&str] = &[
    "IPVS_CMD_ATTR_UNSPEC",
    "IPVS_CMD_ATTR_SERVICE",
    "IPVS_CMD_ATTR_DEST",
    "IPVS_CMD_ATTR_DAEMON",
    "IPVS_CMD_ATTR_TIMEOUT_TCP",
    "IPVS_CMD_ATTR_TIMEOUT_TCP_FIN",
    "IPVS_CMD_ATTR_TIMEOUT_UDP",
];

// Service attributes (inside IPVS_CMD_ATTR_SERVICE).
pub const IPVS_SVC_ATTR_UNSPEC: u16 = 0;
pub const IPVS_SVC_ATTR_AF: u16 = 1;
pub const IPVS_SVC_ATTR_PROTOCOL: u16 = 2;
pub const IPVS_SVC_ATTR_ADDR: u16 = 3;
pub const IPVS_SVC_ATTR_PORT: u16 = 4;
pub const IPVS_SVC_ATTR_FWMARK: u16 = 5;
pub const IPVS_SVC_ATTR_SCHED_NAME: u16 = 6;
pub const IPVS_SVC_ATTR_FLAGS: u16 = 7;
pub const IPVS_SVC_ATTR_TIMEOUT: u16 = 8;
pub const IPVS_SVC_ATTR_NETMASK: u16 = 9;
pub const IPVS_SVC_ATTR_STATS: u16 = 10;
pub const IPVS_SVC_ATTR_PE_NAME: u16 = 11;
pub const IPVS_SVC_ATTR_STATS64: u16 = 12;
/// Names of the service attributes, indexed by value.
pub const IPVS_SVC_ATTR_NAMES: &[&str] = &[
    "IPVS_SVC_ATTR_UNSPEC",
    "IPVS_SVC_ATTR_AF",
    "IPVS_SVC_ATTR_PROTOCOL",
    "IPVS_SVC_ATTR_ADDR",
    "IPVS_SVC_ATTR_PORT",
    "IPVS_SVC_ATTR_FWMARK",
    "IPVS_SVC_ATTR_SCHED_NAME",
    "IPVS_SVC_ATTR_FLAGS",
    "IPVS_SVC_ATTR_TIMEOUT",
    "IPVS_SVC_ATTR_NETMASK",
    "IPVS_SVC_ATTR_STATS",
    "IPVS_SVC_ATTR_PE_NAME",
    "IPVS_SVC_ATTR_STATS64",
];

// Destination attributes (inside IPVS_CMD_ATTR_DEST).
pub const IPVS_DEST_ATTR_UNSPEC: u16 = 0;
pub const IPVS_DEST_ATTR_ADDR: u16 = 1;
pub const IPVS_DEST_ATTR_PORT: u16 = 2;
pub const IPVS_DEST_ATTR_FWD_METHOD: u16 = 3;
pub const IPVS_DEST_ATTR_WEIGHT: u16 = 4;
pub const IPVS_DEST_ATTR_U_THRESH: u16 = 5;
pub const IPVS_DEST_ATTR_L_THRESH: u16 = 6;
pub const IPVS_DEST_ATTR_ACTIVE_CONNS: u16 = 7;
pub const IPVS_DEST_ATTR_INACT_CONNS: u16 = 8;
pub const IPVS_DEST_ATTR_PERSIST_CONNS: u16 = 9;
pub const IPVS_DEST_ATTR_STATS: u16 = 10;
pub const IPVS_DEST_ATTR_ADDR_FAMILY: u16 = 11;
pub const IPVS_DEST_ATTR_STATS64: u16 = 12;
pub const IPVS_DEST_ATTR_TUN_TYPE: u16 = 13;
pub const IPVS_DEST_ATTR_TUN_PORT: u16 = 14;
pub const IPVS_DEST_ATTR_TUN_FLAGS: u16 = 15;
/// Names of the destination attributes, indexed by value.
pub const IPVS_DEST_ATTR_NAMES: &[&str] = &[
    "IPVS_DEST_ATTR_UNSPEC",
    "IPVS_DEST_ATTR_ADDR",
    "IPVS_DEST_ATTR_PORT",
    "IPVS_DEST_ATTR_FWD_METHOD",
    "IPVS_DEST_ATTR_WEIGHT",
    "IPVS_DEST_ATTR_U_THRESH",
    "IPVS_DEST_ATTR_L_THRESH",
    "IPVS_DEST_ATTR_ACTIVE_CONNS",
    "IPVS_DEST_ATTR_INACT_CONNS",
    "IPVS_DEST_ATTR_PERSIST_CONNS",
    "IPVS_DEST_ATTR_STATS",
    "IPVS_DEST_ATTR_ADDR_FAMILY",
    "IPVS_DEST_ATTR_STATS64",
    "IPVS_DEST_ATTR_TUN_TYPE",
    "IPVS_DEST_ATTR_TUN_PORT",
    "IPVS_DEST_ATTR_TUN_FLAGS",
];

// Sync daemon attributes (inside IPVS_CMD_ATTR_DAEMON).
pub const IPVS_DAEMON_ATTR_UNSPEC: u16 = 0;
pub const IPVS_DAEMON_ATTR_STATE: u16 = 1;
pub const IPVS_DAEMON_ATTR_MCAST_IFN: u16 = 2;
pub const IPVS_DAEMON_ATTR_SYNC_ID: u16 = 3;
pub const IPVS_DAEMON_ATTR_SYNC_MAXLEN: u16 = 4;
pub const IPVS_DAEMON_ATTR_MCAST_GROUP: u16 = 5;
pub const IPVS_DAEMON_ATTR_MCAST_GROUP6: u16 = 6;
pub const IPVS_DAEMON_ATTR_MCAST_PORT: u16 = 7;
pub const IPVS_DAEMON_ATTR_MCAST_TTL: u16 = 8;
/// Names of the sync daemon attributes, indexed by value.
pub const IPVS_DAEMON_ATTR_NAMES: &[&str] = &[
    "IPVS_DAEMON_ATTR_UNSPEC",
    "IPVS_DAEMON_ATTR_STATE",
    "IPVS_DAEMON_ATTR_MCAST_IFN",
    "IPVS_DAEMON_ATTR_SYNC_ID",
    "IPVS_DAEMON_ATTR_SYNC_MAXLEN",
    "IPVS_DAEMON_ATTR_MCAST_GROUP",
    "IPVS_DAEMON_ATTR_MCAST_GROUP6",
    "IPVS_DAEMON_ATTR_MCAST_PORT",
    "IPVS_DAEMON_ATTR_MCAST_TTL",
];

// Statistics attributes (inside the STATS and STATS64 nests).
pub const IPVS_STATS_ATTR_UNSPEC: u16 = 0;
pub const IPVS_STATS_ATTR_CONNS: u16 = 1;
pub const IPVS_STATS_ATTR_INPKTS: u16 = 2;
pub const IPVS_STATS_ATTR_OUTPKTS: u16 = 3;
pub const IPVS_STATS_ATTR_INBYTES: u16 = 4;
pub const IPVS_STATS_ATTR_OUTBYTES: u16 = 5;
pub const IPVS_STATS_ATTR_CPS: u16 = 6;
pub const IPVS_STATS_ATTR_INPPS: u16 = 7;
pub const IPVS_STATS_ATTR_OUTPPS: u16 = 8;
pub const IPVS_STATS_ATTR_INBPS: u16 = 9;
pub const IPVS_STATS_ATTR_OUTBPS: u16 = 10;
pub const IPVS_STATS_ATTR_PAD: u16 = 11;
/// Names of the statistics attributes, indexed by value.
pub const IPVS_STATS_ATTR_NAMES: &[&str] = &[
    "IPVS_STATS_ATTR_UNSPEC",
    "IPVS_STATS_ATTR_CONNS",
    "IPVS_STATS_ATTR_INPKTS",
    "IPVS_STATS_ATTR_OUTPKTS",
    "IPVS_STATS_ATTR_INBYTES",
    "IPVS_STATS_ATTR_OUTBYTES",
    "IPVS_STATS_ATTR_CPS",
    "IPVS_STATS_ATTR_INPPS",
    "IPVS_STATS_ATTR_OUTPPS",
    "IPVS_STATS_ATTR_INBPS",
    "IPVS_STATS_ATTR_OUTBPS",
    "IPVS_STATS_ATTR_PAD",
];

// Info attributes (top level of IPVS_CMD_SET_INFO replies).
pub const IPVS_INFO_ATTR_UNSPEC: u16 = 0;
pub const IPVS_INFO_ATTR_VERSION: u16 = 1;
pub const IPVS_INFO_ATTR_CONN_TAB_SIZE: u16 = 2;
/// Names of the info attributes, indexed by value.
pub const IPVS_INFO_ATTR_NAMES: &[&str] = &[
    "IPVS_INFO_ATTR_UNSPEC",
    "IPVS_INFO_ATTR_VERSION",
    "IPVS_INFO_ATTR_CONN_TAB_SIZE",
];

// Address families used by IPVS.
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

// IP protocol numbers used by IPVS.
pub const IPPROTO_IP: u16 = 0;
pub const IPPROTO_ICMP: u16 = 1;
pub const IPPROTO_TCP: u16 = 6;
pub const IPPROTO_UDP: u16 = 17;
pub const IPPROTO_ESP: u16 = 50;
pub const IPPROTO_AH: u16 = 51;
pub const IPPROTO_ICMPV6: u16 = 58;
pub const IPPROTO_SCTP: u16 = 132;

/// Names of the attributes nested in attribute `kind` of the nest named by `parent`
/// (for [`crate::error::DecodeError::resolve`]).
pub fn child_names(parent: crate::error::Names, kind: u16) -> Option<crate::error::Names> {
    Some(match (parent.first().copied()?, kind) {
        ("IPVS_CMD_ATTR_UNSPEC", IPVS_CMD_ATTR_SERVICE) => IPVS_SVC_ATTR_NAMES,
        ("IPVS_CMD_ATTR_UNSPEC", IPVS_CMD_ATTR_DEST) => IPVS_DEST_ATTR_NAMES,
        ("IPVS_CMD_ATTR_UNSPEC", IPVS_CMD_ATTR_DAEMON) => IPVS_DAEMON_ATTR_NAMES,
        ("IPVS_SVC_ATTR_UNSPEC", IPVS_SVC_ATTR_STATS | IPVS_SVC_ATTR_STATS64) => {
            IPVS_STATS_ATTR_NAMES
        }
        ("IPVS_DEST_ATTR_UNSPEC", IPVS_DEST_ATTR_STATS | IPVS_DEST_ATTR_STATS64) => {
            IPVS_STATS_ATTR_NAMES
        }
        _ => return None,
    })
}

//! ctnetlink and cttimeout wire constants, named as in the kernel uapi headers
//! (`linux/netfilter/nfnetlink_conntrack.h`, `nfnetlink_cttimeout.h`).

#![allow(missing_docs)]

// enum cntl_msg_types
pub const IPCTNL_MSG_CT_NEW: u8 = 0;
pub const IPCTNL_MSG_CT_GET: u8 = 1;
pub const IPCTNL_MSG_CT_DELETE: u8 = 2;
pub const IPCTNL_MSG_CT_GET_CTRZERO: u8 = 3;
pub const IPCTNL_MSG_CT_GET_STATS_CPU: u8 = 4;
pub const IPCTNL_MSG_CT_GET_STATS: u8 = 5;
pub const IPCTNL_MSG_CT_GET_DYING: u8 = 6;
pub const IPCTNL_MSG_CT_GET_UNCONFIRMED: u8 = 7;
pub const IPCTNL_MSG_MAX: u8 = 8;

// enum ctnl_exp_msg_types
pub const IPCTNL_MSG_EXP_NEW: u8 = 0;
pub const IPCTNL_MSG_EXP_GET: u8 = 1;
pub const IPCTNL_MSG_EXP_DELETE: u8 = 2;
pub const IPCTNL_MSG_EXP_GET_STATS_CPU: u8 = 3;
pub const IPCTNL_MSG_EXP_MAX: u8 = 4;

// enum ctattr_type
pub const CTA_UNSPEC: u16 = 0;
pub const CTA_TUPLE_ORIG: u16 = 1;
pub const CTA_TUPLE_REPLY: u16 = 2;
pub const CTA_STATUS: u16 = 3;
pub const CTA_PROTOINFO: u16 = 4;
pub const CTA_HELP: u16 = 5;
pub const CTA_NAT_SRC: u16 = 6;
pub const CTA_TIMEOUT: u16 = 7;
pub const CTA_MARK: u16 = 8;
pub const CTA_COUNTERS_ORIG: u16 = 9;
pub const CTA_COUNTERS_REPLY: u16 = 10;
pub const CTA_USE: u16 = 11;
pub const CTA_ID: u16 = 12;
pub const CTA_NAT_DST: u16 = 13;
pub const CTA_TUPLE_MASTER: u16 = 14;
pub const CTA_SEQ_ADJ_ORIG: u16 = 15;
pub const CTA_NAT_SEQ_ADJ_ORIG: u16 = 15;
pub const CTA_SEQ_ADJ_REPLY: u16 = 16;
pub const CTA_NAT_SEQ_ADJ_REPLY: u16 = 16;
pub const CTA_SECMARK: u16 = 17;
pub const CTA_ZONE: u16 = 18;
pub const CTA_SECCTX: u16 = 19;
pub const CTA_TIMESTAMP: u16 = 20;
pub const CTA_MARK_MASK: u16 = 21;
pub const CTA_LABELS: u16 = 22;
pub const CTA_LABELS_MASK: u16 = 23;
pub const CTA_SYNPROXY: u16 = 24;
pub const CTA_FILTER: u16 = 25;
pub const CTA_STATUS_MASK: u16 = 26;
/// CTA_TIMESTAMP_EVENT (kernel 6.0+, after the Debian 12 uapi header): when an event was generated, ns.
pub const CTA_TIMESTAMP_EVENT: u16 = 27;
/// Names of `enum ctattr_type`, indexed by value.
pub const CTA_NAMES: &[&str] = &[
    "CTA_UNSPEC",
    "CTA_TUPLE_ORIG",
    "CTA_TUPLE_REPLY",
    "CTA_STATUS",
    "CTA_PROTOINFO",
    "CTA_HELP",
    "CTA_NAT_SRC",
    "CTA_TIMEOUT",
    "CTA_MARK",
    "CTA_COUNTERS_ORIG",
    "CTA_COUNTERS_REPLY",
    "CTA_USE",
    "CTA_ID",
    "CTA_NAT_DST",
    "CTA_TUPLE_MASTER",
    "CTA_SEQ_ADJ_ORIG",
    "CTA_SEQ_ADJ_REPLY",
    "CTA_SECMARK",
    "CTA_ZONE",
    "CTA_SECCTX",
    "CTA_TIMESTAMP",
    "CTA_MARK_MASK",
    "CTA_LABELS",
    "CTA_LABELS_MASK",
    "CTA_SYNPROXY",
    "CTA_FILTER",
    "CTA_STATUS_MASK",
    "CTA_TIMESTAMP_EVENT",
];

// enum ctattr_tuple
pub const CTA_TUPLE_UNSPEC: u16 = 0;
pub const CTA_TUPLE_IP: u16 = 1;
pub const CTA_TUPLE_PROTO: u16 = 2;
pub const CTA_TUPLE_ZONE: u16 = 3;
/// Names of `enum ctattr_tuple`, indexed by value.
pub const CTA_TUPLE_NAMES: &[&str] = &[
    "CTA_TUPLE_UNSPEC",
    "CTA_TUPLE_IP",
    "CTA_TUPLE_PROTO",
    "CTA_TUPLE_ZONE",
];

// enum ctattr_ip
pub const CTA_IP_UNSPEC: u16 = 0;
pub const CTA_IP_V4_SRC: u16 = 1;
pub const CTA_IP_V4_DST: u16 = 2;
pub const CTA_IP_V6_SRC: u16 = 3;
pub const CTA_IP_V6_DST: u16 = 4;
/// Names of `enum ctattr_ip`, indexed by value.
pub const CTA_IP_NAMES: &[&str] = &[
    "CTA_IP_UNSPEC",
    "CTA_IP_V4_SRC",
    "CTA_IP_V4_DST",
    "CTA_IP_V6_SRC",
    "CTA_IP_V6_DST",
];

// enum ctattr_l4proto
pub const CTA_PROTO_UNSPEC: u16 = 0;
pub const CTA_PROTO_NUM: u16 = 1;
pub const CTA_PROTO_SRC_PORT: u16 = 2;
pub const CTA_PROTO_DST_PORT: u16 = 3;
pub const CTA_PROTO_ICMP_ID: u16 = 4;
pub const CTA_PROTO_ICMP_TYPE: u16 = 5;
pub const CTA_PROTO_ICMP_CODE: u16 = 6;
pub const CTA_PROTO_ICMPV6_ID: u16 = 7;
pub const CTA_PROTO_ICMPV6_TYPE: u16 = 8;
pub const CTA_PROTO_ICMPV6_CODE: u16 = 9;
/// Names of `enum ctattr_l4proto`, indexed by value.
pub const CTA_PROTO_NAMES: &[&str] = &[
    "CTA_PROTO_UNSPEC",
    "CTA_PROTO_NUM",
    "CTA_PROTO_SRC_PORT",
    "CTA_PROTO_DST_PORT",
    "CTA_PROTO_ICMP_ID",
    "CTA_PROTO_ICMP_TYPE",
    "CTA_PROTO_ICMP_CODE",
    "CTA_PROTO_ICMPV6_ID",
    "CTA_PROTO_ICMPV6_TYPE",
    "CTA_PROTO_ICMPV6_CODE",
];

// enum ctattr_protoinfo
pub const CTA_PROTOINFO_UNSPEC: u16 = 0;
pub const CTA_PROTOINFO_TCP: u16 = 1;
pub const CTA_PROTOINFO_DCCP: u16 = 2;
pub const CTA_PROTOINFO_SCTP: u16 = 3;
/// Names of `enum ctattr_protoinfo`, indexed by value.
pub const CTA_PROTOINFO_NAMES: &[&str] = &[
    "CTA_PROTOINFO_UNSPEC",
    "CTA_PROTOINFO_TCP",
    "CTA_PROTOINFO_DCCP",
    "CTA_PROTOINFO_SCTP",
];

// enum ctattr_protoinfo_tcp
pub const CTA_PROTOINFO_TCP_UNSPEC: u16 = 0;
pub const CTA_PROTOINFO_TCP_STATE: u16 = 1;
pub const CTA_PROTOINFO_TCP_WSCALE_ORIGINAL: u16 = 2;
pub const CTA_PROTOINFO_TCP_WSCALE_REPLY: u16 = 3;
pub const CTA_PROTOINFO_TCP_FLAGS_ORIGINAL: u16 = 4;
pub const CTA_PROTOINFO_TCP_FLAGS_REPLY: u16 = 5;
/// Names of `enum ctattr_protoinfo_tcp`, indexed by value.
pub const CTA_PROTOINFO_TCP_NAMES: &[&str] = &[
    "CTA_PROTOINFO_TCP_UNSPEC",
    "CTA_PROTOINFO_TCP_STATE",
    "CTA_PROTOINFO_TCP_WSCALE_ORIGINAL",
    "CTA_PROTOINFO_TCP_WSCALE_REPLY",
    "CTA_PROTOINFO_TCP_FLAGS_ORIGINAL",
    "CTA_PROTOINFO_TCP_FLAGS_REPLY",
];

// enum ctattr_protoinfo_dccp
pub const CTA_PROTOINFO_DCCP_UNSPEC: u16 = 0;
pub const CTA_PROTOINFO_DCCP_STATE: u16 = 1;
pub const CTA_PROTOINFO_DCCP_ROLE: u16 = 2;
pub const CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ: u16 = 3;
pub const CTA_PROTOINFO_DCCP_PAD: u16 = 4;
/// Names of `enum ctattr_protoinfo_dccp`, indexed by value.
pub const CTA_PROTOINFO_DCCP_NAMES: &[&str] = &[
    "CTA_PROTOINFO_DCCP_UNSPEC",
    "CTA_PROTOINFO_DCCP_STATE",
    "CTA_PROTOINFO_DCCP_ROLE",
    "CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ",
    "CTA_PROTOINFO_DCCP_PAD",
];

// enum ctattr_protoinfo_sctp
pub const CTA_PROTOINFO_SCTP_UNSPEC: u16 = 0;
pub const CTA_PROTOINFO_SCTP_STATE: u16 = 1;
pub const CTA_PROTOINFO_SCTP_VTAG_ORIGINAL: u16 = 2;
pub const CTA_PROTOINFO_SCTP_VTAG_REPLY: u16 = 3;
/// Names of `enum ctattr_protoinfo_sctp`, indexed by value.
pub const CTA_PROTOINFO_SCTP_NAMES: &[&str] = &[
    "CTA_PROTOINFO_SCTP_UNSPEC",
    "CTA_PROTOINFO_SCTP_STATE",
    "CTA_PROTOINFO_SCTP_VTAG_ORIGINAL",
    "CTA_PROTOINFO_SCTP_VTAG_REPLY",
];

// enum ctattr_counters
pub const CTA_COUNTERS_UNSPEC: u16 = 0;
pub const CTA_COUNTERS_PACKETS: u16 = 1;
pub const CTA_COUNTERS_BYTES: u16 = 2;
pub const CTA_COUNTERS32_PACKETS: u16 = 3;
pub const CTA_COUNTERS32_BYTES: u16 = 4;
pub const CTA_COUNTERS_PAD: u16 = 5;
/// Names of `enum ctattr_counters`, indexed by value.
pub const CTA_COUNTERS_NAMES: &[&str] = &[
    "CTA_COUNTERS_UNSPEC",
    "CTA_COUNTERS_PACKETS",
    "CTA_COUNTERS_BYTES",
    "CTA_COUNTERS32_PACKETS",
    "CTA_COUNTERS32_BYTES",
    "CTA_COUNTERS_PAD",
];

// enum ctattr_tstamp
pub const CTA_TIMESTAMP_UNSPEC: u16 = 0;
pub const CTA_TIMESTAMP_START: u16 = 1;
pub const CTA_TIMESTAMP_STOP: u16 = 2;
pub const CTA_TIMESTAMP_PAD: u16 = 3;
/// Names of `enum ctattr_tstamp`, indexed by value.
pub const CTA_TIMESTAMP_NAMES: &[&str] = &[
    "CTA_TIMESTAMP_UNSPEC",
    "CTA_TIMESTAMP_START",
    "CTA_TIMESTAMP_STOP",
    "CTA_TIMESTAMP_PAD",
];

// enum ctattr_nat
pub const CTA_NAT_UNSPEC: u16 = 0;
pub const CTA_NAT_V4_MINIP: u16 = 1;
pub const CTA_NAT_V4_MAXIP: u16 = 2;
pub const CTA_NAT_PROTO: u16 = 3;
pub const CTA_NAT_V6_MINIP: u16 = 4;
pub const CTA_NAT_V6_MAXIP: u16 = 5;
/// Names of `enum ctattr_nat`, indexed by value.
pub const CTA_NAT_NAMES: &[&str] = &[
    "CTA_NAT_UNSPEC",
    "CTA_NAT_V4_MINIP",
    "CTA_NAT_V4_MAXIP",
    "CTA_NAT_PROTO",
    "CTA_NAT_V6_MINIP",
    "CTA_NAT_V6_MAXIP",
];

// enum ctattr_protonat
pub const CTA_PROTONAT_UNSPEC: u16 = 0;
pub const CTA_PROTONAT_PORT_MIN: u16 = 1;
pub const CTA_PROTONAT_PORT_MAX: u16 = 2;
/// Names of `enum ctattr_protonat`, indexed by value.
pub const CTA_PROTONAT_NAMES: &[&str] = &[
    "CTA_PROTONAT_UNSPEC",
    "CTA_PROTONAT_PORT_MIN",
    "CTA_PROTONAT_PORT_MAX",
];

// enum ctattr_seqadj
pub const CTA_SEQADJ_UNSPEC: u16 = 0;
pub const CTA_SEQADJ_CORRECTION_POS: u16 = 1;
pub const CTA_SEQADJ_OFFSET_BEFORE: u16 = 2;
pub const CTA_SEQADJ_OFFSET_AFTER: u16 = 3;
/// Names of `enum ctattr_seqadj`, indexed by value.
pub const CTA_SEQADJ_NAMES: &[&str] = &[
    "CTA_SEQADJ_UNSPEC",
    "CTA_SEQADJ_CORRECTION_POS",
    "CTA_SEQADJ_OFFSET_BEFORE",
    "CTA_SEQADJ_OFFSET_AFTER",
];

// enum ctattr_natseq
pub const CTA_NAT_SEQ_UNSPEC: u16 = 0;
pub const CTA_NAT_SEQ_CORRECTION_POS: u16 = 1;
pub const CTA_NAT_SEQ_OFFSET_BEFORE: u16 = 2;
pub const CTA_NAT_SEQ_OFFSET_AFTER: u16 = 3;
/// Names of `enum ctattr_natseq`, indexed by value.
pub const CTA_NAT_SEQ_NAMES: &[&str] = &[
    "CTA_NAT_SEQ_UNSPEC",
    "CTA_NAT_SEQ_CORRECTION_POS",
    "CTA_NAT_SEQ_OFFSET_BEFORE",
    "CTA_NAT_SEQ_OFFSET_AFTER",
];

// enum ctattr_synproxy
pub const CTA_SYNPROXY_UNSPEC: u16 = 0;
pub const CTA_SYNPROXY_ISN: u16 = 1;
pub const CTA_SYNPROXY_ITS: u16 = 2;
pub const CTA_SYNPROXY_TSOFF: u16 = 3;
/// Names of `enum ctattr_synproxy`, indexed by value.
pub const CTA_SYNPROXY_NAMES: &[&str] = &[
    "CTA_SYNPROXY_UNSPEC",
    "CTA_SYNPROXY_ISN",
    "CTA_SYNPROXY_ITS",
    "CTA_SYNPROXY_TSOFF",
];

// enum ctattr_expect
pub const CTA_EXPECT_UNSPEC: u16 = 0;
pub const CTA_EXPECT_MASTER: u16 = 1;
pub const CTA_EXPECT_TUPLE: u16 = 2;
pub const CTA_EXPECT_MASK: u16 = 3;
pub const CTA_EXPECT_TIMEOUT: u16 = 4;
pub const CTA_EXPECT_ID: u16 = 5;
pub const CTA_EXPECT_HELP_NAME: u16 = 6;
pub const CTA_EXPECT_ZONE: u16 = 7;
pub const CTA_EXPECT_FLAGS: u16 = 8;
pub const CTA_EXPECT_CLASS: u16 = 9;
pub const CTA_EXPECT_NAT: u16 = 10;
pub const CTA_EXPECT_FN: u16 = 11;
/// Names of `enum ctattr_expect`, indexed by value.
pub const CTA_EXPECT_NAMES: &[&str] = &[
    "CTA_EXPECT_UNSPEC",
    "CTA_EXPECT_MASTER",
    "CTA_EXPECT_TUPLE",
    "CTA_EXPECT_MASK",
    "CTA_EXPECT_TIMEOUT",
    "CTA_EXPECT_ID",
    "CTA_EXPECT_HELP_NAME",
    "CTA_EXPECT_ZONE",
    "CTA_EXPECT_FLAGS",
    "CTA_EXPECT_CLASS",
    "CTA_EXPECT_NAT",
    "CTA_EXPECT_FN",
];

// enum ctattr_expect_nat
pub const CTA_EXPECT_NAT_UNSPEC: u16 = 0;
pub const CTA_EXPECT_NAT_DIR: u16 = 1;
pub const CTA_EXPECT_NAT_TUPLE: u16 = 2;
/// Names of `enum ctattr_expect_nat`, indexed by value.
pub const CTA_EXPECT_NAT_NAMES: &[&str] = &[
    "CTA_EXPECT_NAT_UNSPEC",
    "CTA_EXPECT_NAT_DIR",
    "CTA_EXPECT_NAT_TUPLE",
];

// enum ctattr_help
pub const CTA_HELP_UNSPEC: u16 = 0;
pub const CTA_HELP_NAME: u16 = 1;
pub const CTA_HELP_INFO: u16 = 2;
/// Names of `enum ctattr_help`, indexed by value.
pub const CTA_HELP_NAMES: &[&str] = &["CTA_HELP_UNSPEC", "CTA_HELP_NAME", "CTA_HELP_INFO"];

// enum ctattr_secctx
pub const CTA_SECCTX_UNSPEC: u16 = 0;
pub const CTA_SECCTX_NAME: u16 = 1;
/// Names of `enum ctattr_secctx`, indexed by value.
pub const CTA_SECCTX_NAMES: &[&str] = &["CTA_SECCTX_UNSPEC", "CTA_SECCTX_NAME"];

// enum ctattr_stats_cpu
pub const CTA_STATS_UNSPEC: u16 = 0;
pub const CTA_STATS_SEARCHED: u16 = 1;
pub const CTA_STATS_FOUND: u16 = 2;
pub const CTA_STATS_NEW: u16 = 3;
pub const CTA_STATS_INVALID: u16 = 4;
pub const CTA_STATS_IGNORE: u16 = 5;
pub const CTA_STATS_DELETE: u16 = 6;
pub const CTA_STATS_DELETE_LIST: u16 = 7;
pub const CTA_STATS_INSERT: u16 = 8;
pub const CTA_STATS_INSERT_FAILED: u16 = 9;
pub const CTA_STATS_DROP: u16 = 10;
pub const CTA_STATS_EARLY_DROP: u16 = 11;
pub const CTA_STATS_ERROR: u16 = 12;
pub const CTA_STATS_SEARCH_RESTART: u16 = 13;
pub const CTA_STATS_CLASH_RESOLVE: u16 = 14;
pub const CTA_STATS_CHAIN_TOOLONG: u16 = 15;
/// Names of `enum ctattr_stats_cpu`, indexed by value.
pub const CTA_STATS_NAMES: &[&str] = &[
    "CTA_STATS_UNSPEC",
    "CTA_STATS_SEARCHED",
    "CTA_STATS_FOUND",
    "CTA_STATS_NEW",
    "CTA_STATS_INVALID",
    "CTA_STATS_IGNORE",
    "CTA_STATS_DELETE",
    "CTA_STATS_DELETE_LIST",
    "CTA_STATS_INSERT",
    "CTA_STATS_INSERT_FAILED",
    "CTA_STATS_DROP",
    "CTA_STATS_EARLY_DROP",
    "CTA_STATS_ERROR",
    "CTA_STATS_SEARCH_RESTART",
    "CTA_STATS_CLASH_RESOLVE",
    "CTA_STATS_CHAIN_TOOLONG",
];

// enum ctattr_stats_global
pub const CTA_STATS_GLOBAL_UNSPEC: u16 = 0;
pub const CTA_STATS_GLOBAL_ENTRIES: u16 = 1;
pub const CTA_STATS_GLOBAL_MAX_ENTRIES: u16 = 2;
/// Names of `enum ctattr_stats_global`, indexed by value.
pub const CTA_STATS_GLOBAL_NAMES: &[&str] = &[
    "CTA_STATS_GLOBAL_UNSPEC",
    "CTA_STATS_GLOBAL_ENTRIES",
    "CTA_STATS_GLOBAL_MAX_ENTRIES",
];

// enum ctattr_expect_stats
pub const CTA_STATS_EXP_UNSPEC: u16 = 0;
pub const CTA_STATS_EXP_NEW: u16 = 1;
pub const CTA_STATS_EXP_CREATE: u16 = 2;
pub const CTA_STATS_EXP_DELETE: u16 = 3;
/// Names of `enum ctattr_expect_stats`, indexed by value.
pub const CTA_STATS_EXP_NAMES: &[&str] = &[
    "CTA_STATS_EXP_UNSPEC",
    "CTA_STATS_EXP_NEW",
    "CTA_STATS_EXP_CREATE",
    "CTA_STATS_EXP_DELETE",
];

// enum ctattr_filter
pub const CTA_FILTER_UNSPEC: u16 = 0;
pub const CTA_FILTER_ORIG_FLAGS: u16 = 1;
pub const CTA_FILTER_REPLY_FLAGS: u16 = 2;
/// Names of `enum ctattr_filter`, indexed by value.
pub const CTA_FILTER_NAMES: &[&str] = &[
    "CTA_FILTER_UNSPEC",
    "CTA_FILTER_ORIG_FLAGS",
    "CTA_FILTER_REPLY_FLAGS",
];

// enum ctnl_timeout_msg_types
pub const IPCTNL_MSG_TIMEOUT_NEW: u8 = 0;
pub const IPCTNL_MSG_TIMEOUT_GET: u8 = 1;
pub const IPCTNL_MSG_TIMEOUT_DELETE: u8 = 2;
pub const IPCTNL_MSG_TIMEOUT_DEFAULT_SET: u8 = 3;
pub const IPCTNL_MSG_TIMEOUT_DEFAULT_GET: u8 = 4;
pub const IPCTNL_MSG_TIMEOUT_MAX: u8 = 5;

// enum ctattr_timeout
pub const CTA_TIMEOUT_UNSPEC: u16 = 0;
pub const CTA_TIMEOUT_NAME: u16 = 1;
pub const CTA_TIMEOUT_L3PROTO: u16 = 2;
pub const CTA_TIMEOUT_L4PROTO: u16 = 3;
pub const CTA_TIMEOUT_DATA: u16 = 4;
pub const CTA_TIMEOUT_USE: u16 = 5;
/// Names of `enum ctattr_timeout`, indexed by value.
pub const CTA_TIMEOUT_NAMES: &[&str] = &[
    "CTA_TIMEOUT_UNSPEC",
    "CTA_TIMEOUT_NAME",
    "CTA_TIMEOUT_L3PROTO",
    "CTA_TIMEOUT_L4PROTO",
    "CTA_TIMEOUT_DATA",
    "CTA_TIMEOUT_USE",
];

// enum ctattr_timeout_generic
pub const CTA_TIMEOUT_GENERIC_UNSPEC: u16 = 0;
pub const CTA_TIMEOUT_GENERIC_TIMEOUT: u16 = 1;
/// Names of `enum ctattr_timeout_generic`, indexed by value.
pub const CTA_TIMEOUT_GENERIC_NAMES: &[&str] =
    &["CTA_TIMEOUT_GENERIC_UNSPEC", "CTA_TIMEOUT_GENERIC_TIMEOUT"];

// enum ctattr_timeout_tcp
pub const CTA_TIMEOUT_TCP_UNSPEC: u16 = 0;
pub const CTA_TIMEOUT_TCP_SYN_SENT: u16 = 1;
pub const CTA_TIMEOUT_TCP_SYN_RECV: u16 = 2;
pub const CTA_TIMEOUT_TCP_ESTABLISHED: u16 = 3;
pub const CTA_TIMEOUT_TCP_FIN_WAIT: u16 = 4;
pub const CTA_TIMEOUT_TCP_CLOSE_WAIT: u16 = 5;
pub const CTA_TIMEOUT_TCP_LAST_ACK: u16 = 6;
pub const CTA_TIMEOUT_TCP_TIME_WAIT: u16 = 7;
pub const CTA_TIMEOUT_TCP_CLOSE: u16 = 8;
pub const CTA_TIMEOUT_TCP_SYN_SENT2: u16 = 9;
pub const CTA_TIMEOUT_TCP_RETRANS: u16 = 10;
pub const CTA_TIMEOUT_TCP_UNACK: u16 = 11;
/// Names of `enum ctattr_timeout_tcp`, indexed by value.
pub const CTA_TIMEOUT_TCP_NAMES: &[&str] = &[
    "CTA_TIMEOUT_TCP_UNSPEC",
    "CTA_TIMEOUT_TCP_SYN_SENT",
    "CTA_TIMEOUT_TCP_SYN_RECV",
    "CTA_TIMEOUT_TCP_ESTABLISHED",
    "CTA_TIMEOUT_TCP_FIN_WAIT",
    "CTA_TIMEOUT_TCP_CLOSE_WAIT",
    "CTA_TIMEOUT_TCP_LAST_ACK",
    "CTA_TIMEOUT_TCP_TIME_WAIT",
    "CTA_TIMEOUT_TCP_CLOSE",
    "CTA_TIMEOUT_TCP_SYN_SENT2",
    "CTA_TIMEOUT_TCP_RETRANS",
    "CTA_TIMEOUT_TCP_UNACK",
];

// enum ctattr_timeout_udp
pub const CTA_TIMEOUT_UDP_UNSPEC: u16 = 0;
pub const CTA_TIMEOUT_UDP_UNREPLIED: u16 = 1;
pub const CTA_TIMEOUT_UDP_REPLIED: u16 = 2;
/// Names of `enum ctattr_timeout_udp`, indexed by value.
pub const CTA_TIMEOUT_UDP_NAMES: &[&str] = &[
    "CTA_TIMEOUT_UDP_UNSPEC",
    "CTA_TIMEOUT_UDP_UNREPLIED",
    "CTA_TIMEOUT_UDP_REPLIED",
];

// enum ctattr_timeout_udplite
pub const CTA_TIMEOUT_UDPLITE_UNSPEC: u16 = 0;
pub const CTA_TIMEOUT_UDPLITE_UNREPLIED: u16 = 1;
pub const CTA_TIMEOUT_UDPLITE_REPLIED: u16 = 2;
/// Names of `enum ctattr_timeout_udplite`, indexed by value.
pub const CTA_TIMEOUT_UDPLITE_NAMES: &[&str] = &[
    "CTA_TIMEOUT_UDPLITE_UNSPEC",
    "CTA_TIMEOUT_UDPLITE_UNREPLIED",
    "CTA_TIMEOUT_UDPLITE_REPLIED",
];

// enum ctattr_timeout_icmp
pub const CTA_TIMEOUT_ICMP_UNSPEC: u16 = 0;
pub const CTA_TIMEOUT_ICMP_TIMEOUT: u16 = 1;
/// Names of `enum ctattr_timeout_icmp`, indexed by value.
pub const CTA_TIMEOUT_ICMP_NAMES: &[&str] =
    &["CTA_TIMEOUT_ICMP_UNSPEC", "CTA_TIMEOUT_ICMP_TIMEOUT"];

// enum ctattr_timeout_dccp
pub const CTA_TIMEOUT_DCCP_UNSPEC: u16 = 0;
pub const CTA_TIMEOUT_DCCP_REQUEST: u16 = 1;
pub const CTA_TIMEOUT_DCCP_RESPOND: u16 = 2;
pub const CTA_TIMEOUT_DCCP_PARTOPEN: u16 = 3;
pub const CTA_TIMEOUT_DCCP_OPEN: u16 = 4;
pub const CTA_TIMEOUT_DCCP_CLOSEREQ: u16 = 5;
pub const CTA_TIMEOUT_DCCP_CLOSING: u16 = 6;
pub const CTA_TIMEOUT_DCCP_TIMEWAIT: u16 = 7;
/// Names of `enum ctattr_timeout_dccp`, indexed by value.
pub const CTA_TIMEOUT_DCCP_NAMES: &[&str] = &[
    "CTA_TIMEOUT_DCCP_UNSPEC",
    "CTA_TIMEOUT_DCCP_REQUEST",
    "CTA_TIMEOUT_DCCP_RESPOND",
    "CTA_TIMEOUT_DCCP_PARTOPEN",
    "CTA_TIMEOUT_DCCP_OPEN",
    "CTA_TIMEOUT_DCCP_CLOSEREQ",
    "CTA_TIMEOUT_DCCP_CLOSING",
    "CTA_TIMEOUT_DCCP_TIMEWAIT",
];

// enum ctattr_timeout_sctp
pub const CTA_TIMEOUT_SCTP_UNSPEC: u16 = 0;
pub const CTA_TIMEOUT_SCTP_CLOSED: u16 = 1;
pub const CTA_TIMEOUT_SCTP_COOKIE_WAIT: u16 = 2;
pub const CTA_TIMEOUT_SCTP_COOKIE_ECHOED: u16 = 3;
pub const CTA_TIMEOUT_SCTP_ESTABLISHED: u16 = 4;
pub const CTA_TIMEOUT_SCTP_SHUTDOWN_SENT: u16 = 5;
pub const CTA_TIMEOUT_SCTP_SHUTDOWN_RECD: u16 = 6;
pub const CTA_TIMEOUT_SCTP_SHUTDOWN_ACK_SENT: u16 = 7;
pub const CTA_TIMEOUT_SCTP_HEARTBEAT_SENT: u16 = 8;
pub const CTA_TIMEOUT_SCTP_HEARTBEAT_ACKED: u16 = 9;
/// Names of `enum ctattr_timeout_sctp`, indexed by value.
pub const CTA_TIMEOUT_SCTP_NAMES: &[&str] = &[
    "CTA_TIMEOUT_SCTP_UNSPEC",
    "CTA_TIMEOUT_SCTP_CLOSED",
    "CTA_TIMEOUT_SCTP_COOKIE_WAIT",
    "CTA_TIMEOUT_SCTP_COOKIE_ECHOED",
    "CTA_TIMEOUT_SCTP_ESTABLISHED",
    "CTA_TIMEOUT_SCTP_SHUTDOWN_SENT",
    "CTA_TIMEOUT_SCTP_SHUTDOWN_RECD",
    "CTA_TIMEOUT_SCTP_SHUTDOWN_ACK_SENT",
    "CTA_TIMEOUT_SCTP_HEARTBEAT_SENT",
    "CTA_TIMEOUT_SCTP_HEARTBEAT_ACKED",
];

// enum ctattr_timeout_icmpv6
pub const CTA_TIMEOUT_ICMPV6_UNSPEC: u16 = 0;
pub const CTA_TIMEOUT_ICMPV6_TIMEOUT: u16 = 1;
/// Names of `enum ctattr_timeout_icmpv6`, indexed by value.
pub const CTA_TIMEOUT_ICMPV6_NAMES: &[&str] =
    &["CTA_TIMEOUT_ICMPV6_UNSPEC", "CTA_TIMEOUT_ICMPV6_TIMEOUT"];

// enum ctattr_timeout_gre
pub const CTA_TIMEOUT_GRE_UNSPEC: u16 = 0;
pub const CTA_TIMEOUT_GRE_UNREPLIED: u16 = 1;
pub const CTA_TIMEOUT_GRE_REPLIED: u16 = 2;
/// Names of `enum ctattr_timeout_gre`, indexed by value.
pub const CTA_TIMEOUT_GRE_NAMES: &[&str] = &[
    "CTA_TIMEOUT_GRE_UNSPEC",
    "CTA_TIMEOUT_GRE_UNREPLIED",
    "CTA_TIMEOUT_GRE_REPLIED",
];

/// Longest timeout policy name, including the NUL.
pub const CTNL_TIMEOUT_NAME_MAX: usize = 32;

// CTA_FILTER_{ORIG,REPLY}_FLAGS bits (net/netfilter/nf_conntrack_netlink.c).
pub const CTA_FILTER_FLAG_CTA_IP_SRC: u32 = 1 << 0;
pub const CTA_FILTER_FLAG_CTA_IP_DST: u32 = 1 << 1;
pub const CTA_FILTER_FLAG_CTA_TUPLE_ZONE: u32 = 1 << 2;
pub const CTA_FILTER_FLAG_CTA_PROTO_NUM: u32 = 1 << 3;
pub const CTA_FILTER_FLAG_CTA_PROTO_SRC_PORT: u32 = 1 << 4;
pub const CTA_FILTER_FLAG_CTA_PROTO_DST_PORT: u32 = 1 << 5;
pub const CTA_FILTER_FLAG_CTA_PROTO_ICMP_TYPE: u32 = 1 << 6;
pub const CTA_FILTER_FLAG_CTA_PROTO_ICMP_CODE: u32 = 1 << 7;
pub const CTA_FILTER_FLAG_CTA_PROTO_ICMP_ID: u32 = 1 << 8;
pub const CTA_FILTER_FLAG_CTA_PROTO_ICMPV6_TYPE: u32 = 1 << 9;
pub const CTA_FILTER_FLAG_CTA_PROTO_ICMPV6_CODE: u32 = 1 << 10;
pub const CTA_FILTER_FLAG_CTA_PROTO_ICMPV6_ID: u32 = 1 << 11;

// Multicast groups (enum nfnetlink_groups).
pub const NFNLGRP_CONNTRACK_NEW: u32 = 1;
pub const NFNLGRP_CONNTRACK_UPDATE: u32 = 2;
pub const NFNLGRP_CONNTRACK_DESTROY: u32 = 3;
pub const NFNLGRP_CONNTRACK_EXP_NEW: u32 = 4;
pub const NFNLGRP_CONNTRACK_EXP_UPDATE: u32 = 5;
pub const NFNLGRP_CONNTRACK_EXP_DESTROY: u32 = 6;

/// Name table of the attributes nested in attribute `kind` of the nest named by `parent`
/// (the ctnetlink schema, used to name every level of an error's path).
pub fn child_names(parent: crate::error::Names, kind: u16) -> Option<crate::error::Names> {
    Some(match (parent.first().copied()?, kind) {
        ("CTA_UNSPEC", CTA_TUPLE_ORIG | CTA_TUPLE_REPLY | CTA_TUPLE_MASTER) => CTA_TUPLE_NAMES,
        ("CTA_UNSPEC", CTA_PROTOINFO) => CTA_PROTOINFO_NAMES,
        ("CTA_UNSPEC", CTA_HELP) => CTA_HELP_NAMES,
        ("CTA_UNSPEC", CTA_NAT_SRC | CTA_NAT_DST) => CTA_NAT_NAMES,
        ("CTA_UNSPEC", CTA_COUNTERS_ORIG | CTA_COUNTERS_REPLY) => CTA_COUNTERS_NAMES,
        ("CTA_UNSPEC", CTA_SEQ_ADJ_ORIG | CTA_SEQ_ADJ_REPLY) => CTA_SEQADJ_NAMES,
        ("CTA_UNSPEC", CTA_SECCTX) => CTA_SECCTX_NAMES,
        ("CTA_UNSPEC", CTA_TIMESTAMP) => CTA_TIMESTAMP_NAMES,
        ("CTA_UNSPEC", CTA_SYNPROXY) => CTA_SYNPROXY_NAMES,
        ("CTA_UNSPEC", CTA_FILTER) => CTA_FILTER_NAMES,
        ("CTA_TUPLE_UNSPEC", CTA_TUPLE_IP) => CTA_IP_NAMES,
        ("CTA_TUPLE_UNSPEC", CTA_TUPLE_PROTO) => CTA_PROTO_NAMES,
        ("CTA_PROTOINFO_UNSPEC", CTA_PROTOINFO_TCP) => CTA_PROTOINFO_TCP_NAMES,
        ("CTA_PROTOINFO_UNSPEC", CTA_PROTOINFO_DCCP) => CTA_PROTOINFO_DCCP_NAMES,
        ("CTA_PROTOINFO_UNSPEC", CTA_PROTOINFO_SCTP) => CTA_PROTOINFO_SCTP_NAMES,
        ("CTA_NAT_UNSPEC", CTA_NAT_PROTO) => CTA_PROTONAT_NAMES,
        ("CTA_EXPECT_UNSPEC", CTA_EXPECT_MASTER | CTA_EXPECT_TUPLE | CTA_EXPECT_MASK) => {
            CTA_TUPLE_NAMES
        }
        ("CTA_EXPECT_UNSPEC", CTA_EXPECT_NAT) => CTA_EXPECT_NAT_NAMES,
        ("CTA_EXPECT_NAT_UNSPEC", CTA_EXPECT_NAT_TUPLE) => CTA_TUPLE_NAMES,
        _ => return None,
    })
}

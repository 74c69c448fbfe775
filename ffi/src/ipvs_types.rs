//! IPVS objects in C form: service key, service, destination, statistics, configurable
//! timeouts, info, sync daemon and connection entry, both ways where they are written.

use std::ffi::c_char;
use std::net::{IpAddr, Ipv4Addr};

use ipvs_conntrack::ipvs::timeouts::StateTimeoutTable;
use ipvs_conntrack::ipvs::{
    Activity, AddressFamily, ConnState, Connection, DaemonSpec, DaemonState, DestSpec, Destination,
    ForwardMethod, Info, Netmask, Origin, Protocol, Service, ServiceFlags, ServiceKey, ServiceSpec,
    ServiceTarget, Stats, SyncDaemon, Timeouts, TunnelFlags, TunnelType,
};

use crate::addr::{ipvsct_addr, IPVSCT_AF_INET, IPVSCT_AF_INET6};
use crate::cstr;
use crate::error::FfiError;
use crate::timeouts::IPVSCT_TIMEOUT_UNSET;

/// Size of `ipvsct_ipvs_service.scheduler` (IP_VS_SCHEDNAME_MAXLEN).
pub const IPVSCT_IPVS_SCHED_NAME_LEN: usize = 16;
/// Size of `ipvsct_ipvs_service.pe_name` (IP_VS_PENAME_MAXLEN).
pub const IPVSCT_IPVS_PE_NAME_LEN: usize = 16;
/// Size of `ipvsct_ipvs_daemon.mcast_ifn` (IP_VS_IFNAME_MAXLEN).
pub const IPVSCT_IPVS_IFNAME_LEN: usize = 16;
/// Size of `ipvsct_ipvs_conn.state_name`.
pub const IPVSCT_IPVS_STATE_NAME_LEN: usize = 16;
/// Size of `ipvsct_ipvs_conn.pe_data`.
pub const IPVSCT_IPVS_PE_DATA_LEN: usize = 64;

/// `fields` of a service or destination: the kernel sent the 32-bit statistics nest.
pub const IPVSCT_IPVS_HAS_STATS32: u32 = 0x1;
/// `fields` of a service or destination: the kernel sent the 64-bit statistics nest (the
/// `stats` member holds it; without it, `stats` holds the 32-bit values).
pub const IPVSCT_IPVS_HAS_STATS64: u32 = 0x2;
/// `ipvsct_ipvs_service.fields`: `pe_name` is set (input: send it).
pub const IPVSCT_IPVS_SERVICE_HAS_PE_NAME: u32 = 0x4;
/// `ipvsct_ipvs_service.fields`: `netmask` is set (always on reads; input: send it, else a host mask).
pub const IPVSCT_IPVS_SERVICE_HAS_NETMASK: u32 = 0x8;
/// `ipvsct_ipvs_dest.fields`: `tun_type` is set.
pub const IPVSCT_IPVS_DEST_HAS_TUN_TYPE: u32 = 0x10;
/// `ipvsct_ipvs_dest.fields`: `tun_port` is set.
pub const IPVSCT_IPVS_DEST_HAS_TUN_PORT: u32 = 0x20;
/// `ipvsct_ipvs_dest.fields`: `tun_flags` is set.
pub const IPVSCT_IPVS_DEST_HAS_TUN_FLAGS: u32 = 0x40;
/// `fields` of IPVS structs: the message carried attributes this struct does not hold.
pub const IPVSCT_IPVS_HAS_MORE: u32 = 0x40000000;
/// `fields` of IPVS structs: a string did not fit its field and was cut.
pub const IPVSCT_IPVS_TRUNCATED: u32 = 0x80000000;

/// IPVS service flag IP_VS_SVC_F_PERSISTENT.
pub const IPVSCT_IPVS_SVC_PERSISTENT: u32 = 0x1;
/// IPVS service flag IP_VS_SVC_F_HASHED (set by the kernel; ignored on input).
pub const IPVSCT_IPVS_SVC_HASHED: u32 = 0x2;
/// IPVS service flag IP_VS_SVC_F_ONEPACKET (UDP one-packet scheduling).
pub const IPVSCT_IPVS_SVC_ONEPACKET: u32 = 0x4;
/// IPVS service flag IP_VS_SVC_F_SCHED1 (sh/mh: fallback).
pub const IPVSCT_IPVS_SVC_SCHED1: u32 = 0x8;
/// IPVS service flag IP_VS_SVC_F_SCHED2 (sh/mh: port).
pub const IPVSCT_IPVS_SVC_SCHED2: u32 = 0x10;
/// IPVS service flag IP_VS_SVC_F_SCHED3.
pub const IPVSCT_IPVS_SVC_SCHED3: u32 = 0x20;

/// `ipvsct_ipvs_dest.fwd_method`: masquerading (NAT; IP_VS_CONN_F_MASQ).
pub const IPVSCT_IPVS_FWD_MASQ: u32 = 0;
/// `ipvsct_ipvs_dest.fwd_method`: local node.
pub const IPVSCT_IPVS_FWD_LOCAL: u32 = 1;
/// `ipvsct_ipvs_dest.fwd_method`: tunnelling.
pub const IPVSCT_IPVS_FWD_TUNNEL: u32 = 2;
/// `ipvsct_ipvs_dest.fwd_method`: direct routing.
pub const IPVSCT_IPVS_FWD_ROUTE: u32 = 3;
/// `ipvsct_ipvs_dest.fwd_method`: cache bypass.
pub const IPVSCT_IPVS_FWD_BYPASS: u32 = 4;

/// `ipvsct_ipvs_daemon.fields`: `sync_maxlen` is set.
pub const IPVSCT_IPVS_DAEMON_HAS_SYNC_MAXLEN: u32 = 0x1;
/// `ipvsct_ipvs_daemon.fields`: `mcast_group` is set.
pub const IPVSCT_IPVS_DAEMON_HAS_MCAST_GROUP: u32 = 0x2;
/// `ipvsct_ipvs_daemon.fields`: `mcast_port` is set.
pub const IPVSCT_IPVS_DAEMON_HAS_MCAST_PORT: u32 = 0x4;
/// `ipvsct_ipvs_daemon.fields`: `mcast_ttl` is set.
pub const IPVSCT_IPVS_DAEMON_HAS_MCAST_TTL: u32 = 0x8;
/// `ipvsct_ipvs_daemon.state`: master (sends the connection table).
pub const IPVSCT_IPVS_DAEMON_MASTER: u32 = 1;
/// `ipvsct_ipvs_daemon.state`: backup (receives it).
pub const IPVSCT_IPVS_DAEMON_BACKUP: u32 = 2;

/// `ipvsct_ipvs_conn.state_kind`: a state name this library does not know.
pub const IPVSCT_IPVS_STATE_OTHER: u8 = 0;
/// `ipvsct_ipvs_conn.state_kind`: `state` is an IP_VS_TCP_S_* value.
pub const IPVSCT_IPVS_STATE_TCP: u8 = 1;
/// `ipvsct_ipvs_conn.state_kind`: UDP (one state; `state` is 0).
pub const IPVSCT_IPVS_STATE_UDP: u8 = 2;
/// `ipvsct_ipvs_conn.state_kind`: `state` is an IP_VS_SCTP_S_* value.
pub const IPVSCT_IPVS_STATE_SCTP: u8 = 3;
/// `ipvsct_ipvs_conn.state_kind`: a persistence template (`state` IP_VS_CTPL_S_*).
pub const IPVSCT_IPVS_STATE_TEMPLATE: u8 = 4;
/// `ipvsct_ipvs_conn.activity`: counted in its destination's ActiveConn.
pub const IPVSCT_IPVS_ACTIVE: u8 = 0;
/// `ipvsct_ipvs_conn.activity`: counted in InActConn until it expires.
pub const IPVSCT_IPVS_INACTIVE: u8 = 1;
/// `ipvsct_ipvs_conn.activity`: a persistence template (PersistConn).
pub const IPVSCT_IPVS_PERSISTENT: u8 = 2;
/// `ipvsct_ipvs_conn.origin`: unknown (read from /proc/net/ip_vs_conn).
pub const IPVSCT_IPVS_ORIGIN_UNKNOWN: u8 = 0;
/// `ipvsct_ipvs_conn.origin`: made by this director's traffic.
pub const IPVSCT_IPVS_ORIGIN_LOCAL: u8 = 1;
/// `ipvsct_ipvs_conn.origin`: received from a master sync daemon.
pub const IPVSCT_IPVS_ORIGIN_SYNC: u8 = 2;
/// `ipvsct_ipvs_conn.fields`: `state_timeout` is set.
pub const IPVSCT_IPVS_CONN_HAS_STATE_TIMEOUT: u32 = 0x1;
/// `ipvsct_ipvs_conn.fields`: `pe_name` and `pe_data` are set.
pub const IPVSCT_IPVS_CONN_HAS_PE: u32 = 0x2;

/// Counters and rates of a service or destination (IPVS_*_ATTR_STATS64, or the 32-bit
/// nest widened). Counters count since creation or the last zeroing; rates are per second.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ipvs_stats64 {
    /// Connections scheduled.
    pub conns: u64,
    /// Incoming packets.
    pub inpkts: u64,
    /// Outgoing packets.
    pub outpkts: u64,
    /// Incoming bytes.
    pub inbytes: u64,
    /// Outgoing bytes.
    pub outbytes: u64,
    /// Connection rate.
    pub cps: u64,
    /// Incoming packet rate.
    pub inpps: u64,
    /// Outgoing packet rate.
    pub outpps: u64,
    /// Incoming byte rate.
    pub inbps: u64,
    /// Outgoing byte rate.
    pub outbps: u64,
}

/// Identifies a virtual service: a firewall mark (`fwmark` non-zero; `protocol`, `addr`
/// and `port` are then ignored) or protocol (IPPROTO_TCP 6, UDP 17, SCTP 132), address
/// and port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ipvs_service_key {
    /// Virtual address (its family must be `af`).
    pub addr: ipvsct_addr,
    /// Firewall mark, or 0.
    pub fwmark: u32,
    /// Address family of the service (AF_INET 2, AF_INET6 10).
    pub af: u16,
    /// IP protocol (0 for firewall-mark services).
    pub protocol: u16,
    /// Virtual port, host byte order (0 = every port, persistent services only).
    pub port: u16,
    /// Zero.
    pub reserved: u16,
}

/// A virtual service. On reads every member is set (`pe_name` if its bit is). As the
/// input of `ipvsct_ipvs_service_add`/`_edit`: `key`, `scheduler`, `flags` (HASHED is
/// ignored), `flags_mask` (0 = all bits), `timeout`, `netmask` (with its bit, else a host
/// mask) and `pe_name` (with its bit) are sent; `stats` is ignored.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ipvs_service {
    /// Statistics (64-bit when the kernel sent them, see `fields`).
    pub stats: ipvsct_ipvs_stats64,
    /// The service.
    pub key: ipvsct_ipvs_service_key,
    /// `IPVSCT_IPVS_HAS_*`, `IPVSCT_IPVS_SERVICE_HAS_*` bits.
    pub fields: u32,
    /// `IPVSCT_IPVS_SVC_*` flags.
    pub flags: u32,
    /// Which flag bits are meant (the kernel sends all ones).
    pub flags_mask: u32,
    /// Persistence timeout in seconds.
    pub timeout: u32,
    /// Persistence granularity: for AF_INET services the mask in host byte order
    /// (0xffffff00 is 255.255.255.0), for AF_INET6 services the prefix length.
    pub netmask: u32,
    /// Zero.
    pub reserved: u32,
    /// Scheduler name ("rr", "wlc", …), NUL-terminated.
    pub scheduler: [c_char; IPVSCT_IPVS_SCHED_NAME_LEN],
    /// Persistence engine name ("sip"), NUL-terminated, "" if none.
    pub pe_name: [c_char; IPVSCT_IPVS_PE_NAME_LEN],
}

/// A real server (destination) of a service. As the input of `ipvsct_ipvs_dest_add`/
/// `_edit`: `addr`, `port`, `af` (0: the family of `addr`), `fwd_method`, `weight`, the
/// thresholds and the tunnel members with their bits are sent; the counters are ignored.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ipvs_dest {
    /// Statistics (64-bit when the kernel sent them, see `fields`).
    pub stats: ipvsct_ipvs_stats64,
    /// Real server address.
    pub addr: ipvsct_addr,
    /// `IPVSCT_IPVS_HAS_*`, `IPVSCT_IPVS_DEST_HAS_*` bits.
    pub fields: u32,
    /// Forwarding method (`IPVSCT_IPVS_FWD_*`).
    pub fwd_method: u32,
    /// Weight (0: quiesced, no new connections).
    pub weight: u32,
    /// Upper connection threshold (0: none).
    pub upper_threshold: u32,
    /// Lower connection threshold (0: none).
    pub lower_threshold: u32,
    /// ActiveConn: TCP/SCTP connections in ESTABLISHED.
    pub active_conns: u32,
    /// InActConn: every other connection entry until it expires.
    pub inactive_conns: u32,
    /// PersistConn: persistence templates pointing here.
    pub persist_conns: u32,
    /// Address family of the destination (may differ from the service's for tunnels).
    pub af: u16,
    /// Real server port, host byte order.
    pub port: u16,
    /// GUE tunnel port, host byte order.
    pub tun_port: u16,
    /// Tunnel flags (IP_VS_TUNNEL_ENCAP_FLAG_*: 1 CSUM, 2 REMCSUM).
    pub tun_flags: u16,
    /// Tunnel type (IP_VS_CONN_F_TUNNEL_TYPE_*: 0 IPIP, 1 GUE, 2 GRE).
    pub tun_type: u8,
    /// Zero.
    pub reserved: [u8; 11],
}

/// The three configurable IPVS timeouts in seconds (`ipvsadm --set`); IPVSCT_TIMEOUT_UNSET
/// when the kernel lacks the protocol, and, as input, for "leave unchanged".
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ipvs_config {
    /// TCP ESTABLISHED timeout.
    pub tcp: u32,
    /// TCP FIN_WAIT timeout.
    pub tcp_fin: u32,
    /// UDP timeout.
    pub udp: u32,
    /// Zero.
    pub reserved: u32,
}

/// IPVS version and connection table size (IPVS_CMD_GET_INFO).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ipvs_info {
    /// Version code (0x010201 is 1.2.1).
    pub version: u32,
    /// Buckets of the connection hash table.
    pub conn_tab_size: u32,
    /// Version major number.
    pub major: u8,
    /// Version minor number.
    pub minor: u8,
    /// Version patch number.
    pub patch: u8,
    /// Zero.
    pub reserved: u8,
}

/// A connection synchronisation daemon. As the input of `ipvsct_ipvs_daemon_start`:
/// `state`, `mcast_ifn`, `sync_id` and the members whose bit is set are sent.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ipvs_daemon {
    /// Multicast group (family 0 if none was configured: the kernel's 224.0.0.81).
    pub mcast_group: ipvsct_addr,
    /// `IPVSCT_IPVS_DAEMON_MASTER` or `_BACKUP`.
    pub state: u32,
    /// Sync id.
    pub sync_id: u32,
    /// `IPVSCT_IPVS_DAEMON_HAS_*`, `IPVSCT_IPVS_HAS_MORE`, `IPVSCT_IPVS_TRUNCATED` bits.
    pub fields: u32,
    /// Maximum sync message payload.
    pub sync_maxlen: u16,
    /// Multicast port.
    pub mcast_port: u16,
    /// Multicast TTL.
    pub mcast_ttl: u8,
    /// Zero.
    pub reserved: [u8; 3],
    /// Multicast interface, NUL-terminated.
    pub mcast_ifn: [c_char; IPVSCT_IPVS_IFNAME_LEN],
}

/// One IPVS connection entry (from /proc/net/ip_vs_conn) with its state timeout and how
/// its destination counts it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ipvs_conn {
    /// Client address.
    pub client: ipvsct_addr,
    /// Virtual address (a template of a firewall-mark service holds the mark as an
    /// IPv4 address).
    pub vaddr: ipvsct_addr,
    /// Real server address.
    pub dest: ipvsct_addr,
    /// `IPVSCT_IPVS_CONN_HAS_*`, `IPVSCT_IPVS_TRUNCATED` bits.
    pub fields: u32,
    /// Seconds until the entry expires (unless a packet refreshes it).
    pub expires: u32,
    /// Full timeout of its state under the configuration in force, in seconds
    /// (IPVSCT_TIMEOUT_UNSET for templates and unknown states).
    pub state_timeout: u32,
    /// IP protocol (0 "IP" for firewall-mark templates).
    pub protocol: u16,
    /// Client port.
    pub client_port: u16,
    /// Virtual port.
    pub vport: u16,
    /// Real server port.
    pub dest_port: u16,
    /// `IPVSCT_IPVS_STATE_*`.
    pub state_kind: u8,
    /// The state's kernel number within `state_kind`.
    pub state: u8,
    /// `IPVSCT_IPVS_ACTIVE`, `_INACTIVE` or `_PERSISTENT`.
    pub activity: u8,
    /// `IPVSCT_IPVS_ORIGIN_*`.
    pub origin: u8,
    /// The state as the kernel prints it ("TIME_WAIT", "UDP", …), NUL-terminated.
    pub state_name: [c_char; IPVSCT_IPVS_STATE_NAME_LEN],
    /// Persistence engine name, NUL-terminated, "" if none.
    pub pe_name: [c_char; IPVSCT_IPVS_PE_NAME_LEN],
    /// Persistence engine data (e.g. a SIP Call-ID), NUL-terminated, "" if none.
    pub pe_data: [c_char; IPVSCT_IPVS_PE_DATA_LEN],
}

impl From<&Stats> for ipvsct_ipvs_stats64 {
    fn from(s: &Stats) -> Self {
        ipvsct_ipvs_stats64 {
            conns: s.conns,
            inpkts: s.inpkts,
            outpkts: s.outpkts,
            inbytes: s.inbytes,
            outbytes: s.outbytes,
            cps: s.cps,
            inpps: s.inpps,
            outpps: s.outpps,
            inbps: s.inbps,
            outbps: s.outbps,
        }
    }
}

/// `fields` bits and the best statistics of a (stats, stats64) pair.
fn stats_of(s32: &Option<Stats>, s64: &Option<Stats>) -> (u32, ipvsct_ipvs_stats64) {
    let mut f = 0;
    if s32.is_some() {
        f |= IPVSCT_IPVS_HAS_STATS32;
    }
    if s64.is_some() {
        f |= IPVSCT_IPVS_HAS_STATS64;
    }
    let more = [s32, s64]
        .iter()
        .any(|s| s.as_ref().is_some_and(|s| !s.unknown.is_empty()));
    if more {
        f |= IPVSCT_IPVS_HAS_MORE;
    }
    let best = s64.as_ref().or(s32.as_ref());
    (f, best.map(ipvsct_ipvs_stats64::from).unwrap_or_default())
}

/// A NUL-terminated name from a fixed buffer (UTF-8, not empty if `required`).
pub(crate) fn name_of(buf: &[c_char], what: &str) -> Result<String, FfiError> {
    let bytes: Vec<u8> = buf
        .iter()
        .map(|c| *c as u8)
        .take_while(|b| *b != 0)
        .collect();
    if bytes.len() == buf.len() {
        return Err(FfiError::invalid(format!("{what}: not NUL-terminated")));
    }
    String::from_utf8(bytes).map_err(|_| FfiError::invalid(format!("{what}: not UTF-8")))
}

fn family(af: u16, what: &str) -> Result<AddressFamily, FfiError> {
    match af {
        IPVSCT_AF_INET => Ok(AddressFamily::Inet),
        IPVSCT_AF_INET6 => Ok(AddressFamily::Inet6),
        f => Err(FfiError::invalid(format!(
            "{what}: address family {f} is neither AF_INET (2) nor AF_INET6 (10)"
        ))),
    }
}

impl ipvsct_ipvs_service_key {
    /// The C form of a key.
    pub(crate) fn from_core(k: &ServiceKey) -> Self {
        let mut c = ipvsct_ipvs_service_key {
            af: k.af.value(),
            ..Default::default()
        };
        match k.target {
            ServiceTarget::Inet {
                protocol,
                addr,
                port,
            } => {
                c.addr = ipvsct_addr::from_ip(addr);
                c.protocol = protocol.value();
                c.port = port;
            }
            ServiceTarget::Fwmark(m) => c.fwmark = m,
        }
        c
    }

    /// The core key, checked.
    pub(crate) fn to_core(self, what: &str) -> Result<ServiceKey, FfiError> {
        let af = family(self.af, &format!("{what}.af"))?;
        let key = if self.fwmark != 0 {
            ServiceKey::fwmark(af, self.fwmark)
        } else {
            ServiceKey {
                af,
                target: ServiceTarget::Inet {
                    protocol: Protocol::from(self.protocol),
                    addr: self.addr.to_ip(&format!("{what}.addr"))?,
                    port: self.port,
                },
            }
        };
        key.validate()
            .map_err(|e| FfiError::invalid(format!("{what}: {e}")))?;
        Ok(key)
    }
}

impl ipvsct_ipvs_service {
    /// The C form of a service.
    pub(crate) fn from_core(s: &Service) -> Self {
        let (mut f, stats) = stats_of(&s.stats, &s.stats64);
        f |= IPVSCT_IPVS_SERVICE_HAS_NETMASK;
        if s.pe_name.is_some() {
            f |= IPVSCT_IPVS_SERVICE_HAS_PE_NAME;
        }
        if !s.unknown.is_empty() {
            f |= IPVSCT_IPVS_HAS_MORE;
        }
        let (scheduler, cut_s) = cstr::fixed(&s.scheduler);
        let (pe_name, cut_p) = cstr::fixed(s.pe_name.as_deref().unwrap_or(""));
        if cut_s || cut_p {
            f |= IPVSCT_IPVS_TRUNCATED;
        }
        ipvsct_ipvs_service {
            stats,
            key: ipvsct_ipvs_service_key::from_core(&s.key),
            fields: f,
            flags: s.flags.bits(),
            flags_mask: s.flags_mask,
            timeout: s.timeout,
            netmask: match s.netmask {
                Netmask::Mask(m) => u32::from(m),
                Netmask::PrefixLen(n) => n,
            },
            reserved: 0,
            scheduler,
            pe_name,
        }
    }

    /// The core spec to add or edit this service.
    pub(crate) fn to_spec(self) -> Result<ServiceSpec, FfiError> {
        let key = self.key.to_core("service.key")?;
        let scheduler = name_of(&self.scheduler, "service.scheduler")?;
        let netmask = (self.fields & IPVSCT_IPVS_SERVICE_HAS_NETMASK != 0).then(|| match key.af {
            AddressFamily::Inet6 => Netmask::PrefixLen(self.netmask),
            _ => Netmask::Mask(Ipv4Addr::from(self.netmask)),
        });
        let pe_name = if self.fields & IPVSCT_IPVS_SERVICE_HAS_PE_NAME != 0 {
            Some(name_of(&self.pe_name, "service.pe_name")?)
        } else {
            None
        };
        let spec = ServiceSpec {
            key,
            scheduler,
            flags: ServiceFlags::from_bits_retain(self.flags) - ServiceFlags::HASHED,
            flags_mask: if self.flags_mask == 0 {
                !0
            } else {
                self.flags_mask
            },
            timeout: self.timeout,
            netmask,
            pe_name,
        };
        spec.validate()
            .map_err(|e| FfiError::invalid(format!("service: {e}")))?;
        Ok(spec)
    }
}

impl ipvsct_ipvs_dest {
    /// The C form of a destination.
    pub(crate) fn from_core(d: &Destination) -> Self {
        let (mut f, stats) = stats_of(&d.stats, &d.stats64);
        if d.tun_type.is_some() {
            f |= IPVSCT_IPVS_DEST_HAS_TUN_TYPE;
        }
        if d.tun_port.is_some() {
            f |= IPVSCT_IPVS_DEST_HAS_TUN_PORT;
        }
        if d.tun_flags.is_some() {
            f |= IPVSCT_IPVS_DEST_HAS_TUN_FLAGS;
        }
        if !d.unknown.is_empty() {
            f |= IPVSCT_IPVS_HAS_MORE;
        }
        ipvsct_ipvs_dest {
            stats,
            addr: ipvsct_addr::from_ip(d.addr),
            fields: f,
            fwd_method: d.fwd_method.value(),
            weight: d.weight,
            upper_threshold: d.upper_threshold,
            lower_threshold: d.lower_threshold,
            active_conns: d.active_conns,
            inactive_conns: d.inactive_conns,
            persist_conns: d.persist_conns,
            af: d.af.value(),
            port: d.port,
            tun_port: d.tun_port.unwrap_or(0),
            tun_flags: d.tun_flags.map_or(0, |t| t.bits()),
            tun_type: d.tun_type.map_or(0, |t| t.value()),
            reserved: [0; 11],
        }
    }

    /// The core spec to add or edit this destination (tunnel members only where they
    /// apply, so a destination read back can be edited as it is).
    pub(crate) fn to_spec(self, service: &ServiceKey) -> Result<DestSpec, FfiError> {
        let addr = self.addr.to_ip("dest.addr")?;
        let af = match self.af {
            0 => None,
            a => Some(family(a, "dest.af")?),
        };
        let fwd_method = ForwardMethod::from(self.fwd_method);
        let has = |b: u32| self.fields & b != 0;
        let tun_type = (has(IPVSCT_IPVS_DEST_HAS_TUN_TYPE) && fwd_method == ForwardMethod::Tunnel)
            .then(|| TunnelType::from(self.tun_type));
        let tun_port = (has(IPVSCT_IPVS_DEST_HAS_TUN_PORT)
            && self.tun_port != 0
            && tun_type == Some(TunnelType::Gue))
        .then_some(self.tun_port);
        let tun_flags = (has(IPVSCT_IPVS_DEST_HAS_TUN_FLAGS) && self.tun_flags != 0)
            .then(|| TunnelFlags::from_bits_retain(self.tun_flags));
        let spec = DestSpec {
            addr,
            port: self.port,
            fwd_method,
            weight: self.weight,
            upper_threshold: self.upper_threshold,
            lower_threshold: self.lower_threshold,
            af,
            tun_type,
            tun_port,
            tun_flags,
        };
        spec.validate(service)
            .map_err(|e| FfiError::invalid(format!("dest: {e}")))?;
        Ok(spec)
    }
}

impl ipvsct_ipvs_config {
    /// The C form of the timeouts.
    pub(crate) fn from_core(t: &Timeouts) -> Self {
        let v = |x: Option<u32>| x.unwrap_or(IPVSCT_TIMEOUT_UNSET);
        ipvsct_ipvs_config {
            tcp: v(t.tcp),
            tcp_fin: v(t.tcp_fin),
            udp: v(t.udp),
            reserved: 0,
        }
    }

    /// The core timeouts (IPVSCT_TIMEOUT_UNSET = not set).
    pub(crate) fn to_core(self) -> Timeouts {
        let v = |x: u32| (x != IPVSCT_TIMEOUT_UNSET).then_some(x);
        Timeouts {
            tcp: v(self.tcp),
            tcp_fin: v(self.tcp_fin),
            udp: v(self.udp),
        }
    }
}

impl From<&Info> for ipvsct_ipvs_info {
    fn from(i: &Info) -> Self {
        let (major, minor, patch) = i.version_triple();
        ipvsct_ipvs_info {
            version: i.version,
            conn_tab_size: i.conn_tab_size,
            major,
            minor,
            patch,
            reserved: 0,
        }
    }
}

impl ipvsct_ipvs_daemon {
    /// The C form of a daemon.
    pub(crate) fn from_core(d: &SyncDaemon) -> Self {
        let mut f = 0;
        let mut bit = |b: u32, on: bool| {
            if on {
                f |= b;
            }
        };
        bit(IPVSCT_IPVS_DAEMON_HAS_SYNC_MAXLEN, d.sync_maxlen.is_some());
        bit(IPVSCT_IPVS_DAEMON_HAS_MCAST_GROUP, d.mcast_group.is_some());
        bit(IPVSCT_IPVS_DAEMON_HAS_MCAST_PORT, d.mcast_port.is_some());
        bit(IPVSCT_IPVS_DAEMON_HAS_MCAST_TTL, d.mcast_ttl.is_some());
        bit(IPVSCT_IPVS_HAS_MORE, !d.unknown.is_empty());
        let (mcast_ifn, cut) = cstr::fixed(&d.mcast_ifn);
        bit(IPVSCT_IPVS_TRUNCATED, cut);
        ipvsct_ipvs_daemon {
            mcast_group: d.mcast_group.map(ipvsct_addr::from_ip).unwrap_or_default(),
            state: d.state.value(),
            sync_id: d.sync_id,
            fields: f,
            sync_maxlen: d.sync_maxlen.unwrap_or(0),
            mcast_port: d.mcast_port.unwrap_or(0),
            mcast_ttl: d.mcast_ttl.unwrap_or(0),
            reserved: [0; 3],
            mcast_ifn,
        }
    }

    /// The core spec to start this daemon.
    pub(crate) fn to_spec(self) -> Result<DaemonSpec, FfiError> {
        let has = |b: u32| self.fields & b != 0;
        let group: Option<IpAddr> = if has(IPVSCT_IPVS_DAEMON_HAS_MCAST_GROUP) {
            Some(self.mcast_group.to_ip("daemon.mcast_group")?)
        } else {
            None
        };
        let spec = DaemonSpec {
            state: DaemonState::from(self.state),
            mcast_ifn: name_of(&self.mcast_ifn, "daemon.mcast_ifn")?,
            sync_id: self.sync_id,
            sync_maxlen: has(IPVSCT_IPVS_DAEMON_HAS_SYNC_MAXLEN).then_some(self.sync_maxlen),
            mcast_group: group,
            mcast_port: has(IPVSCT_IPVS_DAEMON_HAS_MCAST_PORT).then_some(self.mcast_port),
            mcast_ttl: has(IPVSCT_IPVS_DAEMON_HAS_MCAST_TTL).then_some(self.mcast_ttl),
        };
        spec.validate()
            .map_err(|e| FfiError::invalid(format!("daemon: {e}")))?;
        Ok(spec)
    }
}

impl ipvsct_ipvs_conn {
    /// The C form of a connection entry, with its state's timeout from `table`.
    pub(crate) fn from_core(c: &Connection, table: &StateTimeoutTable) -> Self {
        let mut f = 0;
        let (state_kind, state) = match &c.state {
            ConnState::Tcp(s) => (IPVSCT_IPVS_STATE_TCP, s.value()),
            ConnState::Udp => (IPVSCT_IPVS_STATE_UDP, 0),
            ConnState::Sctp(s) => (IPVSCT_IPVS_STATE_SCTP, s.value()),
            ConnState::Template(s) => (IPVSCT_IPVS_STATE_TEMPLATE, s.value()),
            ConnState::Other(_) => (IPVSCT_IPVS_STATE_OTHER, 0),
        };
        let state_timeout = if c.is_template() {
            None
        } else {
            table.for_state(&c.state)
        };
        if state_timeout.is_some() {
            f |= IPVSCT_IPVS_CONN_HAS_STATE_TIMEOUT;
        }
        if c.pe_name.is_some() {
            f |= IPVSCT_IPVS_CONN_HAS_PE;
        }
        let (state_name, a) = cstr::fixed(c.state.name());
        let (pe_name, b) = cstr::fixed(c.pe_name.as_deref().unwrap_or(""));
        let (pe_data, d) = cstr::fixed(c.pe_data.as_deref().unwrap_or(""));
        if a || b || d {
            f |= IPVSCT_IPVS_TRUNCATED;
        }
        ipvsct_ipvs_conn {
            client: ipvsct_addr::from_ip(c.client.ip()),
            vaddr: ipvsct_addr::from_ip(c.virtual_addr.ip()),
            dest: ipvsct_addr::from_ip(c.dest.ip()),
            fields: f,
            expires: c.expires,
            state_timeout: state_timeout.unwrap_or(IPVSCT_TIMEOUT_UNSET),
            protocol: c.protocol.value(),
            client_port: c.client.port(),
            vport: c.virtual_addr.port(),
            dest_port: c.dest.port(),
            state_kind,
            state,
            activity: match c.activity() {
                Activity::Active => IPVSCT_IPVS_ACTIVE,
                Activity::Inactive => IPVSCT_IPVS_INACTIVE,
                Activity::Persistent => IPVSCT_IPVS_PERSISTENT,
            },
            origin: match c.origin {
                None => IPVSCT_IPVS_ORIGIN_UNKNOWN,
                Some(Origin::Local) => IPVSCT_IPVS_ORIGIN_LOCAL,
                Some(Origin::Sync) => IPVSCT_IPVS_ORIGIN_SYNC,
            },
            state_name,
            pe_name,
            pe_data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipvs_conntrack::ipvs::StatsWidth;

    fn stats_for_test(width: StatsWidth, conns: u64) -> Stats {
        let mut s = Stats::zero(width);
        s.conns = conns;
        s
    }
    use crate::result::ipvsct_result::*;
    use ipvs_conntrack::ipvs::conn::{parse_table, ConnTable};
    use ipvs_conntrack::ipvs::TcpState;

    #[test]
    fn service_round_trips_and_prefers_64_bit_stats() {
        let mut s = Service {
            key: "tcp:10.0.0.1:80".parse().unwrap(),
            scheduler: "wlc".into(),
            pe_name: None,
            flags: ServiceFlags::PERSISTENT | ServiceFlags::HASHED,
            flags_mask: !0,
            timeout: 300,
            netmask: Netmask::Mask("255.255.255.0".parse().unwrap()),
            stats: Some(stats_for_test(StatsWidth::Bits32, 5)),
            stats64: Some(stats_for_test(StatsWidth::Bits64, 7)),
            unknown: vec![],
        };
        let c = ipvsct_ipvs_service::from_core(&s);
        assert_eq!(c.stats.conns, 7);
        assert_eq!(
            c.fields,
            IPVSCT_IPVS_HAS_STATS32 | IPVSCT_IPVS_HAS_STATS64 | IPVSCT_IPVS_SERVICE_HAS_NETMASK
        );
        assert_eq!((c.key.protocol, c.key.port, c.key.af), (6, 80, 2));
        assert_eq!(c.netmask, 0xffff_ff00);
        let spec = c.to_spec().unwrap();
        assert_eq!(spec, s.to_spec());
        s.stats64 = None;
        assert_eq!(ipvsct_ipvs_service::from_core(&s).stats.conns, 5);
        let mut bad = c;
        bad.scheduler = [b'x' as c_char; IPVSCT_IPVS_SCHED_NAME_LEN];
        assert_eq!(bad.to_spec().unwrap_err().code, IPVSCT_ERR_INVALID_ARGUMENT);
        let mut fw = ipvsct_ipvs_service_key {
            af: 10,
            fwmark: 9,
            ..Default::default()
        };
        assert_eq!(
            fw.to_core("k").unwrap(),
            ServiceKey::fwmark(AddressFamily::Inet6, 9)
        );
        fw.af = 7;
        assert!(fw.to_core("k").unwrap_err().message.contains("k.af"));
    }

    #[test]
    fn connections_carry_state_timeout_and_activity() {
        let text =
            "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n\
TCP 0A000102 E1A4 0A000001 0050 0A000302 0050 TIME_WAIT       117\n\
IP  0A000102 0000 00000007 0000 0A000202 0000 ASSURED         359\n";
        let conns = parse_table(text, ConnTable::Conn).unwrap();
        let table = StateTimeoutTable::default();
        let c = ipvsct_ipvs_conn::from_core(&conns[0], &table);
        assert_eq!(
            (c.state_kind, c.state, c.activity),
            (
                IPVSCT_IPVS_STATE_TCP,
                TcpState::TimeWait.value(),
                IPVSCT_IPVS_INACTIVE
            )
        );
        assert_eq!((c.expires, c.state_timeout), (117, 120));
        assert_eq!((c.client_port, c.vport, c.dest_port), (57764, 80, 80));
        assert_eq!(c.dest.addr[..4], [10, 0, 3, 2]);
        let t = ipvsct_ipvs_conn::from_core(&conns[1], &table);
        assert_eq!(t.activity, IPVSCT_IPVS_PERSISTENT);
        assert_eq!(t.state_timeout, IPVSCT_TIMEOUT_UNSET);
        assert_eq!(t.fields & IPVSCT_IPVS_CONN_HAS_STATE_TIMEOUT, 0);
    }
}

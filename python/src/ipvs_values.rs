//! IPVS values as frozen Python classes: `ServiceKey`, `Service`, `Destination`,
//! `IpvsStats`, `SyncDaemon`, `IpvsTimeouts`, `IpvsInfo`, `IpvsConnection` and the
//! `explain()` report (`Explanation`, `ServiceReport`, `DestReport`, `StateGroup`,
//! `ExplainedConn`). Kernel enums are their kernel names (`"TCP"`, `"masq"`, `"TIME_WAIT"`).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipvs_conntrack::ipvs::addr::{AddressFamily, Protocol};
use ipvs_conntrack::ipvs::{
    self as core, DestReport as CoreDestReport, ExplainedConn as CoreExplained, ServiceTarget,
};
use ipvs_conntrack::netlink::genl::FamilyInfo;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::errors::to_py;
use crate::filter::family_from_py;
use crate::records::{endpoint, record, Endpoint, FamilyValue, TimeValue};

fn af_value(af: AddressFamily) -> FamilyValue {
    FamilyValue(u8::try_from(af.value()).unwrap_or(0))
}

/// What identifies a virtual service: protocol, address and port, or a firewall mark.
#[pyclass(frozen, eq, hash, module = "ipvsct", name = "ServiceKey")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    pub(crate) inner: core::ServiceKey,
}

impl From<core::ServiceKey> for ServiceKey {
    fn from(inner: core::ServiceKey) -> Self {
        ServiceKey { inner }
    }
}

#[pymethods]
impl ServiceKey {
    /// A protocol/address/port service (`protocol`: "tcp", "udp", "sctp" or 6, 17, 132).
    #[new]
    fn new(protocol: &Bound<'_, PyAny>, addr: IpAddr, port: u16) -> PyResult<Self> {
        let p = if let Ok(s) = protocol.cast::<PyString>() {
            Protocol::from_name(&s.to_cow()?)
        } else {
            protocol.extract::<u16>().ok().map(Protocol::from)
        }
        .filter(Protocol::is_service_protocol)
        .ok_or_else(|| PyValueError::new_err("protocol must be tcp, udp or sctp"))?;
        Ok(ServiceKey {
            inner: core::ServiceKey::inet(p, SocketAddr::new(addr, port)),
        })
    }

    /// A firewall-mark service.
    #[staticmethod]
    #[pyo3(signature = (mark, family=None))]
    fn from_fwmark(mark: u32, family: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let af = match family
            .filter(|f| !f.is_none())
            .map(family_from_py)
            .transpose()?
        {
            Some(ipvs_conntrack::conntrack::Family::Ipv6) => AddressFamily::Inet6,
            _ => AddressFamily::Inet,
        };
        Ok(ServiceKey {
            inner: core::ServiceKey::fwmark(af, mark),
        })
    }

    /// Parses `tcp:10.0.0.1:80`, `udp:[2001:db8::1]:53`, `sctp:…`, `fwmark:7` or `fwmark6:7`.
    #[staticmethod]
    fn parse(py: Python<'_>, text: &str) -> PyResult<Self> {
        core::ServiceKey::from_str(text)
            .map(ServiceKey::from)
            .map_err(|e| to_py(py, e))
    }

    /// Address family.
    #[getter]
    fn family(&self) -> FamilyValue {
        af_value(self.inner.af)
    }
    /// Protocol name (`TCP`, `UDP`, `SCTP`); None for a firewall-mark service.
    #[getter]
    fn protocol(&self) -> Option<&'static str> {
        self.inner.protocol().map(|p| p.name())
    }
    /// Virtual address; None for a firewall-mark service.
    #[getter]
    fn addr(&self) -> Option<IpAddr> {
        self.inner.socket_addr().map(|s| s.ip())
    }
    /// Virtual port (0: every port); None for a firewall-mark service.
    #[getter]
    fn port(&self) -> Option<u16> {
        self.inner.socket_addr().map(|s| s.port())
    }
    /// Firewall mark; None for a protocol/address/port service.
    #[getter]
    fn fwmark(&self) -> Option<u32> {
        self.inner.fwmark_value()
    }

    /// The key as `ipvsct` parses it (`tcp:10.0.0.1:80`, `fwmark:7`).
    fn spec(&self) -> String {
        match self.inner.target {
            ServiceTarget::Inet {
                protocol,
                addr,
                port,
            } => format!(
                "{}:{}",
                protocol.name().to_ascii_lowercase(),
                SocketAddr::new(addr, port)
            ),
            ServiceTarget::Fwmark(m) => match self.inner.af {
                AddressFamily::Inet6 => format!("fwmark6:{m}"),
                _ => format!("fwmark:{m}"),
            },
        }
    }

    /// The attributes as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("family", self.family())?;
        d.set_item("protocol", self.protocol())?;
        d.set_item("addr", self.addr())?;
        d.set_item("port", self.port())?;
        d.set_item("fwmark", self.fwmark())?;
        Ok(d)
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("ServiceKey.parse({:?})", self.spec())
    }
}

/// A service argument: `ServiceKey`, `Service`, or a string `ServiceKey.parse` takes.
pub fn service_key(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<core::ServiceKey> {
    if let Ok(k) = v.cast::<ServiceKey>() {
        return Ok(k.get().inner);
    }
    if let Ok(s) = v.cast::<Service>() {
        return Ok(s.get().key.inner);
    }
    if let Ok(s) = v.cast::<PyString>() {
        return core::ServiceKey::from_str(&s.to_cow()?).map_err(|e| to_py(py, e));
    }
    Err(PyTypeError::new_err(
        "service must be an ipvsct.ServiceKey, an ipvsct.Service or a string like \"tcp:10.0.0.1:80\"",
    ))
}

record! {
    /// IPVS counters and rates of a service or destination.
    IpvsStats = "IpvsStats" {
        /// 32 or 64: which statistics nest the values came from.
        width: u8,
        /// Connections scheduled.
        conns: u64,
        /// Incoming packets.
        inpkts: u64,
        /// Outgoing packets.
        outpkts: u64,
        /// Incoming bytes.
        inbytes: u64,
        /// Outgoing bytes.
        outbytes: u64,
        /// Connection rate (per second).
        cps: u64,
        /// Incoming packet rate.
        inpps: u64,
        /// Outgoing packet rate.
        outpps: u64,
        /// Incoming byte rate.
        inbps: u64,
        /// Outgoing byte rate.
        outbps: u64,
    }
}

impl From<&core::Stats> for IpvsStats {
    fn from(s: &core::Stats) -> Self {
        IpvsStats {
            width: match s.width {
                core::StatsWidth::Bits32 => 32,
                core::StatsWidth::Bits64 => 64,
            },
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

record! {
    /// A virtual service as the kernel reports it.
    Service = "Service" {
        /// What identifies it.
        key: ServiceKey,
        /// Scheduler name.
        scheduler: String,
        /// Persistence engine (`sip`).
        pe_name: Option<String>,
        /// Flag names (`PERSISTENT`, `HASHED`, `ONEPACKET`, `SCHED1`…).
        flags: Vec<String>,
        /// Which flag bits the kernel reported.
        flags_mask: u32,
        /// Persistence timeout in seconds (0 when not persistent).
        timeout: u32,
        /// Persistence granularity: an IPv4 mask or an IPv6 prefix length, as text.
        netmask: String,
        /// 32-bit statistics.
        stats: Option<IpvsStats>,
        /// 64-bit statistics.
        stats64: Option<IpvsStats>,
    }
}

impl From<&core::Service> for Service {
    fn from(s: &core::Service) -> Self {
        Service {
            key: ServiceKey::from(s.key),
            scheduler: s.scheduler.clone(),
            pe_name: s.pe_name.clone(),
            flags: s.flags.names(),
            flags_mask: s.flags_mask,
            timeout: s.timeout,
            netmask: s.netmask.to_string(),
            stats: s.stats.as_ref().map(IpvsStats::from),
            stats64: s.stats64.as_ref().map(IpvsStats::from),
        }
    }
}

record! {
    /// A real server of a service.
    Destination = "Destination" {
        /// The service it belongs to (when the message named it).
        service: Option<ServiceKey>,
        /// Address family.
        family: FamilyValue,
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
        /// Forwarding method: `masq`, `local`, `tunnel`, `route` or `bypass`.
        fwd_method: String,
        /// Weight.
        weight: u32,
        /// Upper connection threshold (0: none).
        upper_threshold: u32,
        /// Lower connection threshold.
        lower_threshold: u32,
        /// ActiveConn.
        active_conns: u32,
        /// InActConn.
        inactive_conns: u32,
        /// PersistConn.
        persist_conns: u32,
        /// Tunnel type (`ipip`, `gue`, `gre`).
        tun_type: Option<String>,
        /// Tunnel port (GUE).
        tun_port: Option<u16>,
        /// Tunnel flag bits.
        tun_flags: Option<u16>,
        /// 32-bit statistics.
        stats: Option<IpvsStats>,
        /// 64-bit statistics.
        stats64: Option<IpvsStats>,
    }
}

impl Destination {
    /// Converts a destination (and the service key its message carried).
    pub fn new(key: Option<core::ServiceKey>, d: &core::Destination) -> Self {
        Destination {
            service: key.map(ServiceKey::from),
            family: af_value(d.af),
            addr: d.addr,
            port: d.port,
            fwd_method: d.fwd_method.name().to_owned(),
            weight: d.weight,
            upper_threshold: d.upper_threshold,
            lower_threshold: d.lower_threshold,
            active_conns: d.active_conns,
            inactive_conns: d.inactive_conns,
            persist_conns: d.persist_conns,
            tun_type: d.tun_type.map(|t| t.name().to_owned()),
            tun_port: d.tun_port,
            tun_flags: d.tun_flags.map(|f| f.bits()),
            stats: d.stats.as_ref().map(IpvsStats::from),
            stats64: d.stats64.as_ref().map(IpvsStats::from),
        }
    }
}

record! {
    /// A connection-synchronisation daemon.
    SyncDaemon = "SyncDaemon" {
        /// `master` or `backup`.
        state: String,
        /// Multicast interface.
        mcast_ifn: String,
        /// Sync id.
        sync_id: u32,
        /// Largest sync message.
        sync_maxlen: Option<u16>,
        /// Multicast group.
        mcast_group: Option<IpAddr>,
        /// Multicast port.
        mcast_port: Option<u16>,
        /// Multicast TTL.
        mcast_ttl: Option<u8>,
    }
}

impl From<&core::SyncDaemon> for SyncDaemon {
    fn from(d: &core::SyncDaemon) -> Self {
        SyncDaemon {
            state: d.state.name().to_owned(),
            mcast_ifn: d.mcast_ifn.clone(),
            sync_id: d.sync_id,
            sync_maxlen: d.sync_maxlen,
            mcast_group: d.mcast_group,
            mcast_port: d.mcast_port,
            mcast_ttl: d.mcast_ttl,
        }
    }
}

record! {
    /// The three configurable IPVS timeouts, in seconds.
    IpvsTimeouts = "IpvsTimeouts" {
        /// TCP ESTABLISHED (ipvsadm's `tcp`).
        tcp: Option<u32>,
        /// TCP FIN_WAIT (ipvsadm's `tcpfin`).
        tcp_fin: Option<u32>,
        /// UDP (ipvsadm's `udp`).
        udp: Option<u32>,
    }
}

impl From<&core::Timeouts> for IpvsTimeouts {
    fn from(t: &core::Timeouts) -> Self {
        IpvsTimeouts {
            tcp: t.tcp,
            tcp_fin: t.tcp_fin,
            udp: t.udp,
        }
    }
}

record! {
    /// IPVS version and connection table size.
    IpvsInfo = "IpvsInfo" {
        /// Version as text (`1.2.1`).
        version: String,
        /// Version code (`0x010201`).
        version_code: u32,
        /// Buckets of the connection hash table.
        conn_tab_size: u32,
    }
}

impl From<&core::Info> for IpvsInfo {
    fn from(i: &core::Info) -> Self {
        let (a, b, c) = i.version_triple();
        IpvsInfo {
            version: format!("{a}.{b}.{c}"),
            version_code: i.version,
            conn_tab_size: i.conn_tab_size,
        }
    }
}

record! {
    /// One IPVS connection entry (`/proc/net/ip_vs_conn`).
    IpvsConnection = "IpvsConnection" {
        /// Protocol (`TCP`, `UDP`, `SCTP`; `IP` for firewall-mark templates).
        protocol: String,
        /// Client (address, port).
        client: Endpoint,
        /// Virtual (address, port).
        virtual_addr: Endpoint,
        /// Real server (address, port).
        dest: Endpoint,
        /// State, as the kernel prints it.
        state: String,
        /// `active`, `inactive` or `persistent`: which counter the kernel has it in.
        activity: String,
        /// Seconds until it expires.
        expires: u32,
        /// Persistence engine name.
        pe_name: Option<String>,
        /// Persistence engine data.
        pe_data: Option<String>,
        /// `local` or `sync` (sync table only).
        origin: Option<String>,
    }
}

impl From<&core::Connection> for IpvsConnection {
    fn from(c: &core::Connection) -> Self {
        IpvsConnection {
            protocol: c.protocol.name().to_owned(),
            client: endpoint(&c.client),
            virtual_addr: endpoint(&c.virtual_addr),
            dest: endpoint(&c.dest),
            state: c.state.name().to_owned(),
            activity: c.activity().to_string(),
            expires: c.expires,
            pe_name: c.pe_name.clone(),
            pe_data: c.pe_data.clone(),
            origin: c.origin.map(|o| match o {
                core::Origin::Local => "local".to_owned(),
                core::Origin::Sync => "sync".to_owned(),
            }),
        }
    }
}

record! {
    /// One connection entry with what the timeout model says about it.
    ExplainedConn = "ExplainedConn" {
        /// The entry.
        conn: IpvsConnection,
        /// Which counter it is in.
        activity: String,
        /// Full timeout of its state in seconds.
        state_timeout: Option<u32>,
        /// Seconds since the last packet refreshed it.
        idle: Option<u32>,
    }
}

impl From<&CoreExplained> for ExplainedConn {
    fn from(e: &CoreExplained) -> Self {
        ExplainedConn {
            conn: IpvsConnection::from(&e.conn),
            activity: e.activity.to_string(),
            state_timeout: e.state_timeout,
            idle: e.idle,
        }
    }
}

record! {
    /// The entries of one destination in one state.
    StateGroup = "StateGroup" {
        /// State.
        state: String,
        /// Which counter these entries are in.
        activity: String,
        /// Number of entries.
        count: u32,
        /// Full timeout of the state in seconds.
        state_timeout: Option<u32>,
        /// Fewest seconds to expiry among them.
        min_expires: u32,
        /// Most seconds to expiry among them.
        max_expires: u32,
    }
}

record! {
    /// One destination: the kernel's counters and the entries behind them.
    DestReport = "DestReport" {
        /// Real server (address, port).
        dest: Endpoint,
        /// Forwarding method.
        fwd_method: String,
        /// Weight.
        weight: u32,
        /// The kernel's ActiveConn.
        active_conns: u32,
        /// The kernel's InActConn.
        inactive_conns: u32,
        /// The kernel's PersistConn.
        persist_conns: u32,
        /// Entries listed that count as active.
        listed_active: u32,
        /// Entries listed that count as inactive.
        listed_inactive: u32,
        /// Persistence templates listed.
        listed_persistent: u32,
        /// Entries by state.
        states: Vec<StateGroup>,
        /// Seconds until the last inactive entry expires.
        inactive_drain: Option<u32>,
        /// The entries, most recently refreshed first.
        connections: Vec<ExplainedConn>,
    }
}

impl From<&CoreDestReport> for DestReport {
    fn from(d: &CoreDestReport) -> Self {
        DestReport {
            dest: endpoint(&d.dest),
            fwd_method: d.fwd_method.name().to_owned(),
            weight: d.weight,
            active_conns: d.active_conns,
            inactive_conns: d.inactive_conns,
            persist_conns: d.persist_conns,
            listed_active: d.listed_active,
            listed_inactive: d.listed_inactive,
            listed_persistent: d.listed_persistent,
            states: d
                .states
                .iter()
                .map(|g| StateGroup {
                    state: g.state.name().to_owned(),
                    activity: g.activity.to_string(),
                    count: g.count,
                    state_timeout: g.state_timeout,
                    min_expires: g.min_expires,
                    max_expires: g.max_expires,
                })
                .collect(),
            inactive_drain: d.inactive_drain,
            connections: d.connections.iter().map(ExplainedConn::from).collect(),
        }
    }
}

record! {
    /// One service and its destinations.
    ServiceReport = "ServiceReport" {
        /// The service.
        service: ServiceKey,
        /// Its scheduler.
        scheduler: String,
        /// Persistence timeout (0 when not persistent).
        persistence_timeout: u32,
        /// Its destinations.
        dests: Vec<DestReport>,
    }
}

record! {
    /// Why `ipvsadm -Ln` shows its counters: every destination's entries by state and
    /// when the inactive ones drain.
    Explanation = "Explanation" {
        /// When the connection table was read.
        taken_at: TimeValue,
        /// The services.
        services: Vec<ServiceReport>,
        /// Entries that match no listed destination.
        unmatched: Vec<ExplainedConn>,
    }
}

impl From<&core::Explanation> for Explanation {
    fn from(x: &core::Explanation) -> Self {
        Explanation {
            taken_at: TimeValue(x.taken_at),
            services: x
                .services
                .iter()
                .map(|s| ServiceReport {
                    service: ServiceKey::from(s.service),
                    scheduler: s.scheduler.clone(),
                    persistence_timeout: s.persistence_timeout,
                    dests: s.dests.iter().map(DestReport::from).collect(),
                })
                .collect(),
            unmatched: x.unmatched.iter().map(ExplainedConn::from).collect(),
        }
    }
}

record! {
    /// A generic netlink family as nlctrl announced it.
    GenlFamily = "GenlFamily" {
        /// The family id (the message type of its messages).
        id: u16,
        /// The family name (`IPVS`).
        name: String,
        /// Protocol version.
        version: u32,
        /// Size of the family header.
        hdrsize: u32,
        /// Highest attribute type.
        maxattr: u32,
    }
}

impl From<&FamilyInfo> for GenlFamily {
    fn from(f: &FamilyInfo) -> Self {
        GenlFamily {
            id: f.id,
            name: f.name.clone(),
            version: f.version,
            hdrsize: f.hdrsize,
            maxattr: f.maxattr,
        }
    }
}

/// The Python object of a decoded IPVS message body (None for commands without one).
pub fn body_to_py(py: Python<'_>, b: &core::Body) -> PyResult<Option<Py<PyAny>>> {
    use pyo3::IntoPyObjectExt;
    Ok(Some(match b {
        core::Body::Service(s) => Service::from(s).into_py_any(py)?,
        core::Body::Dest(k, d) => Destination::new(*k, d).into_py_any(py)?,
        core::Body::Daemon(d) => SyncDaemon::from(d).into_py_any(py)?,
        core::Body::Config(t) => IpvsTimeouts::from(t).into_py_any(py)?,
        core::Body::Info(i) => IpvsInfo::from(i).into_py_any(py)?,
        core::Body::Other => return Ok(None),
    }))
}

//! `ipvsct.Ipvs`: the IPVS table of one namespace (services, destinations, daemons,
//! timeouts, connections, `explain()`) and its control calls. Every call releases the GIL.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ipvs_conntrack::ipvs::{
    self as core, DestSpec, ForwardMethod, Ipvs as CoreIpvs, Netmask, ServiceFlags, ServiceSpec,
    TunnelFlags, TunnelType,
};
use ipvs_conntrack::socket::{SocketOptions, DEFAULT_SO_RCVBUF};
use ipvs_conntrack::{Error, Netns};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::client::{closed, netns_from_py};
use crate::errors::to_py;
use crate::ipvs_values::{
    service_key, Destination, Explanation, IpvsConnection, IpvsInfo, IpvsTimeouts, Service,
    SyncDaemon,
};
use crate::values::py_repr;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The IPVS table of one network namespace.
#[pyclass(frozen, module = "ipvsct", name = "Ipvs")]
pub struct Ipvs {
    netns: Netns,
    timeout: Duration,
    client: Mutex<Option<CoreIpvs>>,
}

impl Ipvs {
    fn with<T, F>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(&mut CoreIpvs) -> Result<T, Error> + Send,
    {
        let r = py.detach(|| lock(&self.client).as_mut().map(f));
        match r {
            None => Err(closed(py, "Ipvs")),
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(to_py(py, e)),
        }
    }
}

/// The service settings `add_service()` and `edit_service()` take.
fn service_spec(
    key: core::ServiceKey,
    scheduler: String,
    persistent: Option<u32>,
    netmask: Option<&Bound<'_, PyAny>>,
    pe: Option<String>,
    flags: Option<Vec<String>>,
) -> PyResult<ServiceSpec> {
    let mut spec = ServiceSpec::new(key, scheduler);
    if let Some(t) = persistent {
        spec = spec.persistent(t);
    }
    if let Some(m) = netmask.filter(|m| !m.is_none()) {
        spec.netmask = Some(if let Ok(n) = m.extract::<u32>() {
            Netmask::PrefixLen(n)
        } else if let Ok(IpAddr::V4(a)) = m.extract::<IpAddr>() {
            Netmask::Mask(a)
        } else {
            return Err(PyTypeError::new_err(
                "netmask must be an IPv4 mask (\"255.255.255.0\") or an IPv6 prefix length",
            ));
        });
    }
    spec.pe_name = pe;
    for f in flags.unwrap_or_default() {
        let bit = ServiceFlags::from_flag_name(&f)
            .ok_or_else(|| PyValueError::new_err(format!("unknown service flag {f:?}")))?;
        spec.flags |= bit;
    }
    Ok(spec)
}

/// The destination settings `add_destination()` and `edit_destination()` take.
#[allow(clippy::too_many_arguments)]
fn dest_spec(
    addr: IpAddr,
    port: u16,
    method: &str,
    weight: u32,
    upper_threshold: u32,
    lower_threshold: u32,
    tun_type: Option<&str>,
    tun_port: Option<u16>,
    tun_flags: Option<u16>,
) -> PyResult<DestSpec> {
    let m = match method.to_ascii_lowercase().as_str() {
        "masq" | "masquerading" | "nat" => ForwardMethod::Masq,
        "route" | "droute" | "gatewaying" | "dr" => ForwardMethod::Route,
        "tunnel" | "ipip" | "tun" => ForwardMethod::Tunnel,
        "local" => ForwardMethod::Local,
        "bypass" => ForwardMethod::Bypass,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown forwarding method {other:?} (masq, route, tunnel, local)"
            )))
        }
    };
    let mut d = DestSpec::new(SocketAddr::new(addr, port), m)
        .weight(weight)
        .thresholds(upper_threshold, lower_threshold);
    if let Some(t) = tun_type {
        let kind = TunnelType::from_name(t)
            .ok_or_else(|| PyValueError::new_err(format!("unknown tunnel type {t:?}")))?;
        d = d.tunnel(
            kind,
            tun_port,
            TunnelFlags::from_bits_retain(tun_flags.unwrap_or(0)),
        );
    }
    Ok(d)
}

#[pymethods]
impl Ipvs {
    /// Opens a client for the IPVS table of `netns` (None: this namespace); raises
    /// `UnsupportedError` when the kernel has no IPVS (module `ip_vs` not loaded).
    #[new]
    #[pyo3(signature = (netns=None, *, timeout=30.0))]
    fn new(py: Python<'_>, netns: Option<&Bound<'_, PyAny>>, timeout: f64) -> PyResult<Self> {
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(PyValueError::new_err(
                "timeout must be a positive number of seconds",
            ));
        }
        let timeout = Duration::from_secs_f64(timeout);
        let netns = netns_from_py(netns)?;
        let opts = SocketOptions {
            so_rcvbuf: DEFAULT_SO_RCVBUF,
            recv_timeout: Some(timeout),
        };
        let c = py
            .detach(|| CoreIpvs::with_options(&netns, &opts))
            .map_err(|e| to_py(py, e))?;
        Ok(Ipvs {
            netns,
            timeout,
            client: Mutex::new(Some(c)),
        })
    }

    /// The namespace as given (None for this process's namespace).
    #[getter]
    fn netns(&self) -> Option<String> {
        match &self.netns {
            Netns::Current => None,
            other => Some(other.to_string()),
        }
    }

    /// Seconds a call waits for the kernel.
    #[getter]
    fn timeout(&self) -> f64 {
        self.timeout.as_secs_f64()
    }

    /// The generic netlink family id of IPVS in this kernel.
    #[getter]
    fn family_id(&self, py: Python<'_>) -> PyResult<u16> {
        self.with(py, |c| Ok(c.family().id))
    }

    /// Every virtual service.
    fn services(&self, py: Python<'_>) -> PyResult<Vec<Service>> {
        let v = self.with(py, |c| c.services())?;
        Ok(v.iter().map(Service::from).collect())
    }

    /// One virtual service, or None if there is none (a key, a Service or `"tcp:ADDR:PORT"`).
    fn service(&self, py: Python<'_>, service: &Bound<'_, PyAny>) -> PyResult<Option<Service>> {
        let key = service_key(py, service)?;
        let r = self.with(py, move |c| match c.service(&key) {
            Ok(s) => Ok(Some(s)),
            Err(Error::Kernel(k)) if k.errno == 3 || k.errno == 2 => Ok(None),
            Err(e) => Err(e),
        })?;
        Ok(r.as_ref().map(Service::from))
    }

    /// The destinations of a service.
    fn destinations(
        &self,
        py: Python<'_>,
        service: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Destination>> {
        let key = service_key(py, service)?;
        let v = self.with(py, move |c| c.destinations(&key))?;
        Ok(v.iter().map(|d| Destination::new(Some(key), d)).collect())
    }

    /// The three configurable timeouts (TCP, TCP FIN_WAIT, UDP).
    fn config(&self, py: Python<'_>) -> PyResult<IpvsTimeouts> {
        Ok(IpvsTimeouts::from(&self.with(py, |c| c.config())?))
    }

    /// IPVS version and connection table size.
    fn info(&self, py: Python<'_>) -> PyResult<IpvsInfo> {
        Ok(IpvsInfo::from(&self.with(py, |c| c.info())?))
    }

    /// The running sync daemons.
    fn daemons(&self, py: Python<'_>) -> PyResult<Vec<SyncDaemon>> {
        let v = self.with(py, |c| c.daemons())?;
        Ok(v.iter().map(SyncDaemon::from).collect())
    }

    /// The connection table (`/proc/net/ip_vs_conn` of the namespace); `sync=True` reads
    /// `ip_vs_conn_sync`, which says where each entry came from.
    #[pyo3(signature = (*, sync=false))]
    fn connections(&self, py: Python<'_>, sync: bool) -> PyResult<Vec<IpvsConnection>> {
        let v = self.with(py, move |c| {
            let r = if sync {
                c.sync_connections()?
            } else {
                c.connections()?
            };
            r.collect::<Result<Vec<_>, Error>>()
        })?;
        Ok(v.iter().map(IpvsConnection::from).collect())
    }

    /// Explains the counters: every destination's entries by state, and when the
    /// inactive ones drain.
    fn explain(&self, py: Python<'_>) -> PyResult<Explanation> {
        Ok(Explanation::from(&self.with(py, |c| c.explain())?))
    }

    /// Adds a virtual service (`persistent=SECONDS` makes it persistent).
    #[pyo3(signature = (service, scheduler="wlc", *, persistent=None, netmask=None, pe=None, flags=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_service(
        &self,
        py: Python<'_>,
        service: &Bound<'_, PyAny>,
        scheduler: &str,
        persistent: Option<u32>,
        netmask: Option<&Bound<'_, PyAny>>,
        pe: Option<String>,
        flags: Option<Vec<String>>,
    ) -> PyResult<()> {
        let key = service_key(py, service)?;
        let spec = service_spec(key, scheduler.to_owned(), persistent, netmask, pe, flags)?;
        self.with(py, move |c| c.add_service(&spec))
    }

    /// Changes a virtual service (scheduler, persistence, flags).
    #[pyo3(signature = (service, scheduler="wlc", *, persistent=None, netmask=None, pe=None, flags=None))]
    #[allow(clippy::too_many_arguments)]
    fn edit_service(
        &self,
        py: Python<'_>,
        service: &Bound<'_, PyAny>,
        scheduler: &str,
        persistent: Option<u32>,
        netmask: Option<&Bound<'_, PyAny>>,
        pe: Option<String>,
        flags: Option<Vec<String>>,
    ) -> PyResult<()> {
        let key = service_key(py, service)?;
        let spec = service_spec(key, scheduler.to_owned(), persistent, netmask, pe, flags)?;
        self.with(py, move |c| c.edit_service(&spec))
    }

    /// Deletes a virtual service and its destinations.
    fn delete_service(&self, py: Python<'_>, service: &Bound<'_, PyAny>) -> PyResult<()> {
        let key = service_key(py, service)?;
        self.with(py, move |c| c.del_service(&key))
    }

    /// Adds a real server to a service (`method`: masq, route, tunnel, local).
    #[pyo3(signature = (service, addr, port=0, *, method="masq", weight=1, upper_threshold=0, lower_threshold=0, tun_type=None, tun_port=None, tun_flags=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_destination(
        &self,
        py: Python<'_>,
        service: &Bound<'_, PyAny>,
        addr: IpAddr,
        port: u16,
        method: &str,
        weight: u32,
        upper_threshold: u32,
        lower_threshold: u32,
        tun_type: Option<&str>,
        tun_port: Option<u16>,
        tun_flags: Option<u16>,
    ) -> PyResult<()> {
        let key = service_key(py, service)?;
        let d = dest_spec(
            addr,
            port,
            method,
            weight,
            upper_threshold,
            lower_threshold,
            tun_type,
            tun_port,
            tun_flags,
        )?;
        self.with(py, move |c| c.add_dest(&key, &d))
    }

    /// Changes a real server of a service.
    #[pyo3(signature = (service, addr, port=0, *, method="masq", weight=1, upper_threshold=0, lower_threshold=0, tun_type=None, tun_port=None, tun_flags=None))]
    #[allow(clippy::too_many_arguments)]
    fn edit_destination(
        &self,
        py: Python<'_>,
        service: &Bound<'_, PyAny>,
        addr: IpAddr,
        port: u16,
        method: &str,
        weight: u32,
        upper_threshold: u32,
        lower_threshold: u32,
        tun_type: Option<&str>,
        tun_port: Option<u16>,
        tun_flags: Option<u16>,
    ) -> PyResult<()> {
        let key = service_key(py, service)?;
        let d = dest_spec(
            addr,
            port,
            method,
            weight,
            upper_threshold,
            lower_threshold,
            tun_type,
            tun_port,
            tun_flags,
        )?;
        self.with(py, move |c| c.edit_dest(&key, &d))
    }

    /// Removes a real server from a service.
    #[pyo3(signature = (service, addr, port=0))]
    fn delete_destination(
        &self,
        py: Python<'_>,
        service: &Bound<'_, PyAny>,
        addr: IpAddr,
        port: u16,
    ) -> PyResult<()> {
        let key = service_key(py, service)?;
        self.with(py, move |c| c.del_dest(&key, SocketAddr::new(addr, port)))
    }

    /// Deletes every service and destination.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |c| c.flush())
    }

    /// Zeroes the counters of one service, or of all.
    #[pyo3(signature = (service=None))]
    fn zero(&self, py: Python<'_>, service: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let key = service.map(|s| service_key(py, s)).transpose()?;
        self.with(py, move |c| c.zero(key.as_ref()))
    }

    /// Sets the configurable timeouts that are given (seconds).
    #[pyo3(signature = (*, tcp=None, tcp_fin=None, udp=None))]
    fn set_timeouts(
        &self,
        py: Python<'_>,
        tcp: Option<u32>,
        tcp_fin: Option<u32>,
        udp: Option<u32>,
    ) -> PyResult<()> {
        let t = core::Timeouts { tcp, tcp_fin, udp };
        self.with(py, move |c| c.set_timeouts(&t))
    }

    /// A pandas DataFrame of `"destinations"` (one row per destination, with its
    /// service), `"services"` or `"connections"`.
    #[pyo3(signature = (kind="destinations"))]
    fn dataframe<'py>(&self, py: Python<'py>, kind: &str) -> PyResult<Bound<'py, PyAny>> {
        let frame = py.import("ipvsct._frame")?;
        frame.call_method1("require_pandas", ("Ipvs.dataframe()",))?;
        let cols = match kind {
            "services" => {
                let v = self.with(py, |c| c.services())?;
                service_columns(py, &v)?
            }
            "destinations" => {
                let v = self.with(py, |c| c.snapshot())?;
                dest_columns(py, &v)?
            }
            "connections" => {
                let v = self.with(py, |c| c.connections()?.collect::<Result<Vec<_>, Error>>())?;
                conn_columns(py, &v)?
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown kind {other:?} (use \"destinations\", \"services\" or \"connections\")"
                )))
            }
        };
        frame.call_method1("from_columns", (cols,))
    }

    /// Closes the socket; later calls raise `ipvsct.Error`.
    fn close(&self, py: Python<'_>) {
        let old = py.detach(|| lock(&self.client).take());
        drop(old);
    }

    /// True once `close()` was called.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| lock(&self.client).is_none())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<ipvsct.Ipvs netns={} timeout={}>",
            py_repr(py, self.netns())?,
            py_repr(py, self.timeout())?
        ))
    }
}

/// Column name → list of values, built one column at a time.
struct Cols<'py> {
    d: Bound<'py, PyDict>,
}

impl<'py> Cols<'py> {
    fn new(py: Python<'py>) -> Self {
        Cols { d: PyDict::new(py) }
    }
    fn col<T: IntoPyObject<'py>>(
        &self,
        name: &str,
        values: impl IntoIterator<Item = T>,
    ) -> PyResult<()> {
        let l = PyList::new(self.d.py(), values)?;
        self.d.set_item(name, l)
    }
}

fn best(s: &Option<core::Stats>, s64: &Option<core::Stats>) -> Option<core::Stats> {
    s64.clone().or_else(|| s.clone())
}

fn service_columns<'py>(py: Python<'py>, v: &[core::Service]) -> PyResult<Bound<'py, PyDict>> {
    let c = Cols::new(py);
    c.col("service", v.iter().map(|s| s.key.to_string()))?;
    c.col("scheduler", v.iter().map(|s| s.scheduler.clone()))?;
    c.col("persistent", v.iter().map(|s| s.is_persistent()))?;
    c.col("timeout", v.iter().map(|s| s.timeout))?;
    c.col("netmask", v.iter().map(|s| s.netmask.to_string()))?;
    c.col("pe_name", v.iter().map(|s| s.pe_name.clone()))?;
    let stats: Vec<_> = v.iter().map(|s| best(&s.stats, &s.stats64)).collect();
    stat_columns(&c, &stats)?;
    Ok(c.d)
}

fn stat_columns(c: &Cols<'_>, stats: &[Option<core::Stats>]) -> PyResult<()> {
    type Get = fn(&core::Stats) -> u64;
    let fields: [(&str, Get); 10] = [
        ("conns", |s| s.conns),
        ("inpkts", |s| s.inpkts),
        ("outpkts", |s| s.outpkts),
        ("inbytes", |s| s.inbytes),
        ("outbytes", |s| s.outbytes),
        ("cps", |s| s.cps),
        ("inpps", |s| s.inpps),
        ("outpps", |s| s.outpps),
        ("inbps", |s| s.inbps),
        ("outbps", |s| s.outbps),
    ];
    for (name, get) in fields {
        c.col(name, stats.iter().map(|s| s.as_ref().map(get)))?;
    }
    Ok(())
}

fn dest_columns<'py>(
    py: Python<'py>,
    v: &[(core::Service, Vec<core::Destination>)],
) -> PyResult<Bound<'py, PyDict>> {
    let rows: Vec<(&core::Service, &core::Destination)> = v
        .iter()
        .flat_map(|(s, ds)| ds.iter().map(move |d| (s, d)))
        .collect();
    let c = Cols::new(py);
    c.col("service", rows.iter().map(|(s, _)| s.key.to_string()))?;
    c.col("scheduler", rows.iter().map(|(s, _)| s.scheduler.clone()))?;
    c.col("addr", rows.iter().map(|(_, d)| d.addr.to_string()))?;
    c.col("port", rows.iter().map(|(_, d)| d.port))?;
    c.col("fwd_method", rows.iter().map(|(_, d)| d.fwd_method.name()))?;
    c.col("weight", rows.iter().map(|(_, d)| d.weight))?;
    c.col("active_conns", rows.iter().map(|(_, d)| d.active_conns))?;
    c.col("inactive_conns", rows.iter().map(|(_, d)| d.inactive_conns))?;
    c.col("persist_conns", rows.iter().map(|(_, d)| d.persist_conns))?;
    let stats: Vec<_> = rows
        .iter()
        .map(|(_, d)| best(&d.stats, &d.stats64))
        .collect();
    stat_columns(&c, &stats)?;
    Ok(c.d)
}

fn conn_columns<'py>(py: Python<'py>, v: &[core::Connection]) -> PyResult<Bound<'py, PyDict>> {
    let c = Cols::new(py);
    c.col("protocol", v.iter().map(|x| x.protocol.name()))?;
    c.col("client_addr", v.iter().map(|x| x.client.ip().to_string()))?;
    c.col("client_port", v.iter().map(|x| x.client.port()))?;
    c.col(
        "virtual_addr",
        v.iter().map(|x| x.virtual_addr.ip().to_string()),
    )?;
    c.col("virtual_port", v.iter().map(|x| x.virtual_addr.port()))?;
    c.col("dest_addr", v.iter().map(|x| x.dest.ip().to_string()))?;
    c.col("dest_port", v.iter().map(|x| x.dest.port()))?;
    c.col("state", v.iter().map(|x| x.state.name().to_owned()))?;
    c.col("activity", v.iter().map(|x| x.activity().to_string()))?;
    c.col("expires", v.iter().map(|x| x.expires))?;
    Ok(c.d)
}

//! `ipvsct ipvs ...`: IPVS services, destinations, counters, timeouts, daemons and
//! connections of one namespace, changes to them, and `explain` for InActConn.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::UNIX_EPOCH;

use clap::{Args, Subcommand, ValueEnum};
use ipvs_conntrack::ipvs::{
    AddressFamily, ConnTable, Connection, DaemonSpec, DaemonState, DestSpec, Destination,
    Explanation, ForwardMethod, Ipvs, Netmask, Service, ServiceFlags, ServiceKey, ServiceSpec,
    StateTimeoutTable, Stats, Timeouts, TunnelFlags, TunnelType,
};
use ipvs_conntrack::Netns;
use serde::Serialize;

use crate::failure::Failure;
use crate::output::{endpoint, human_secs, write_json_line};

/// Options every IPVS subcommand takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Network namespace: an `ip netns` name or a path such as /proc/PID/ns/net (default: the current one).
    #[arg(long, value_name = "NAME|PATH", global = true)]
    pub netns: Option<String>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `ipvsct ipvs`: the common options and a subcommand.
#[derive(Debug, Args)]
pub struct IpvsArgs {
    /// Namespace and output options.
    #[command(flatten)]
    pub common: Common,
    /// What to do.
    #[command(subcommand)]
    pub command: IpvsCommand,
}

/// The IPVS subcommands.
#[derive(Debug, Subcommand)]
pub enum IpvsCommand {
    /// Virtual services and their destinations (like `ipvsadm -Ln`).
    Services(ServicesArgs),
    /// Destinations of one service.
    Dests(ServiceArg),
    /// Counters and rates of every service and destination (`ipvsadm -Ln --stats --rate`).
    Stats,
    /// The configurable timeouts and the full state timeout tables.
    Config,
    /// IPVS version and connection table size.
    Info,
    /// Running sync daemons.
    Daemon,
    /// The connection table (`/proc/net/ip_vs_conn`) with state timeouts and activity.
    Connections(ConnectionsArgs),
    /// Per real server: active and inactive connections by state, seconds left, and when InActConn drains.
    Explain(ExplainArgs),
    /// Add a virtual service.
    AddService(ServiceSpecArgs),
    /// Change a virtual service.
    EditService(ServiceSpecArgs),
    /// Delete a virtual service.
    DelService(ServiceArg),
    /// Add a destination to a service.
    AddDest(DestArgs),
    /// Change a destination.
    EditDest(DestArgs),
    /// Delete a destination.
    DelDest(DestKeyArgs),
    /// Delete every service.
    Flush,
    /// Zero the counters of one service, or of all.
    Zero(OptServiceArg),
    /// Set the TCP, TCP FIN_WAIT and UDP timeouts (seconds; unset ones stay).
    SetTimeouts(SetTimeoutsArgs),
    /// Start a sync daemon.
    StartDaemon(StartDaemonArgs),
    /// Stop a sync daemon.
    StopDaemon(StopDaemonArgs),
}

/// A service: `tcp:ADDR:PORT`, `udp:...`, `sctp:...`, `fwmark:MARK` or `fwmark6:MARK`.
#[derive(Debug, Args)]
pub struct ServiceArg {
    /// The service (`tcp:10.0.0.1:80`, `udp:[2001:db8::1]:53`, `fwmark:7`).
    #[arg(value_parser = parse_service)]
    pub service: ServiceKey,
}

/// An optional service.
#[derive(Debug, Args)]
pub struct OptServiceArg {
    /// The service (all when absent).
    #[arg(value_parser = parse_service)]
    pub service: Option<ServiceKey>,
}

/// Arguments of `services`.
#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// Only this service.
    #[arg(value_parser = parse_service)]
    pub service: Option<ServiceKey>,
}

/// Arguments of `connections`.
#[derive(Debug, Args)]
pub struct ConnectionsArgs {
    /// Read /proc/net/ip_vs_conn_sync (with the origin of each entry).
    #[arg(long)]
    pub sync: bool,
}

/// Arguments of `explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Only this service.
    #[arg(value_parser = parse_service)]
    pub service: Option<ServiceKey>,
    /// List every connection entry under its real server.
    #[arg(long)]
    pub connections: bool,
}

/// Arguments of `add-service` / `edit-service`.
#[derive(Debug, Args)]
pub struct ServiceSpecArgs {
    /// The service.
    #[arg(value_parser = parse_service)]
    pub service: ServiceKey,
    /// Scheduler (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos).
    #[arg(short, long, default_value = "wlc")]
    pub scheduler: String,
    /// Persistent, with this timeout in seconds.
    #[arg(short, long, value_name = "SECONDS")]
    pub persistent: Option<u32>,
    /// Persistence granularity: a mask for IPv4, a prefix length for IPv6.
    #[arg(short = 'M', long)]
    pub netmask: Option<String>,
    /// Persistence engine (sip).
    #[arg(long)]
    pub pe: Option<String>,
    /// One-packet scheduling (UDP).
    #[arg(long)]
    pub ops: bool,
    /// Scheduler flags: sched1|sched2|sched3 (sh/mh: sched1 = fallback, sched2 = port).
    #[arg(long = "sched-flag", value_name = "FLAG")]
    pub sched_flags: Vec<String>,
}

/// How packets reach a real server, on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FwdArg {
    /// Masquerading (NAT).
    #[value(alias = "nat", alias = "m")]
    Masq,
    /// Direct routing.
    #[value(alias = "dr", alias = "g", alias = "gatewaying")]
    Route,
    /// IP tunnelling.
    #[value(alias = "ipip", alias = "i")]
    Tunnel,
    /// Local node.
    Local,
    /// Cache bypass.
    Bypass,
}

impl From<FwdArg> for ForwardMethod {
    fn from(f: FwdArg) -> ForwardMethod {
        match f {
            FwdArg::Masq => ForwardMethod::Masq,
            FwdArg::Route => ForwardMethod::Route,
            FwdArg::Tunnel => ForwardMethod::Tunnel,
            FwdArg::Local => ForwardMethod::Local,
            FwdArg::Bypass => ForwardMethod::Bypass,
        }
    }
}

/// Tunnel encapsulation on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TunArg {
    /// IP in IP.
    Ipip,
    /// Generic UDP encapsulation.
    Gue,
    /// Generic routing encapsulation.
    Gre,
}

/// Arguments of `add-dest` / `edit-dest`.
#[derive(Debug, Args)]
pub struct DestArgs {
    /// The service.
    #[arg(value_parser = parse_service)]
    pub service: ServiceKey,
    /// The real server: ADDR:PORT, or ADDR (the service's port).
    pub real: String,
    /// Forwarding method.
    #[arg(short, long, value_enum, default_value = "masq")]
    pub fwd: FwdArg,
    /// Weight.
    #[arg(short, long, default_value_t = 1)]
    pub weight: u32,
    /// Upper connection threshold (0 = none).
    #[arg(short = 'x', long, default_value_t = 0)]
    pub u_threshold: u32,
    /// Lower connection threshold (0 = none).
    #[arg(short = 'y', long, default_value_t = 0)]
    pub l_threshold: u32,
    /// Tunnel type (with --fwd tunnel).
    #[arg(long, value_enum)]
    pub tun_type: Option<TunArg>,
    /// GUE port.
    #[arg(long)]
    pub tun_port: Option<u16>,
    /// Tunnel checksum: csum or remcsum.
    #[arg(long)]
    pub tun_csum: Option<String>,
}

/// Arguments of `del-dest`.
#[derive(Debug, Args)]
pub struct DestKeyArgs {
    /// The service.
    #[arg(value_parser = parse_service)]
    pub service: ServiceKey,
    /// The real server: ADDR:PORT, or ADDR (the service's port).
    pub real: String,
}

/// Arguments of `set-timeouts`.
#[derive(Debug, Args)]
pub struct SetTimeoutsArgs {
    /// TCP ESTABLISHED timeout in seconds.
    #[arg(long)]
    pub tcp: Option<u32>,
    /// TCP FIN_WAIT timeout in seconds.
    #[arg(long)]
    pub tcpfin: Option<u32>,
    /// UDP timeout in seconds.
    #[arg(long)]
    pub udp: Option<u32>,
}

/// A daemon role on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Sends the connection table.
    Master,
    /// Receives it.
    Backup,
}

impl From<RoleArg> for DaemonState {
    fn from(r: RoleArg) -> DaemonState {
        match r {
            RoleArg::Master => DaemonState::Master,
            RoleArg::Backup => DaemonState::Backup,
        }
    }
}

/// Arguments of `start-daemon`.
#[derive(Debug, Args)]
pub struct StartDaemonArgs {
    /// Master or backup.
    #[arg(value_enum)]
    pub role: RoleArg,
    /// Multicast interface.
    #[arg(long)]
    pub mcast_interface: String,
    /// Sync id.
    #[arg(long, default_value_t = 0)]
    pub syncid: u32,
    /// Maximum sync message payload.
    #[arg(long)]
    pub sync_maxlen: Option<u16>,
    /// Multicast group.
    #[arg(long)]
    pub mcast_group: Option<IpAddr>,
    /// Multicast port.
    #[arg(long)]
    pub mcast_port: Option<u16>,
    /// Multicast TTL.
    #[arg(long)]
    pub mcast_ttl: Option<u8>,
}

/// Arguments of `stop-daemon`.
#[derive(Debug, Args)]
pub struct StopDaemonArgs {
    /// Master or backup.
    #[arg(value_enum)]
    pub role: RoleArg,
}

fn parse_service(s: &str) -> Result<ServiceKey, String> {
    s.parse::<ServiceKey>().map_err(|e| e.to_string())
}

fn real_server(service: &ServiceKey, real: &str) -> Result<SocketAddr, Failure> {
    if let Ok(a) = real.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip: IpAddr = real
        .parse()
        .map_err(|_| Failure::usage(format!("bad real server {real:?}: expected ADDR[:PORT]")))?;
    let port = service.socket_addr().map_or(0, |a| a.port());
    Ok(SocketAddr::new(ip, port))
}

/// Runs one IPVS subcommand.
pub fn run(args: IpvsArgs) -> Result<(), Failure> {
    let netns = args
        .common
        .netns
        .as_deref()
        .map_or(Netns::Current, Netns::parse);
    let json = args.common.json;
    let out = io::stdout();
    let mut w = out.lock();
    let result = dispatch(args.command, &netns, json, &mut w);
    w.flush().map_err(Failure::from_output)?;
    result
}

fn dispatch(
    cmd: IpvsCommand,
    netns: &Netns,
    json: bool,
    w: &mut impl Write,
) -> Result<(), Failure> {
    let wr = |r: io::Result<()>| r.map_err(Failure::from_output);
    // Reading the connection table needs no netlink socket.
    if let IpvsCommand::Connections(a) = &cmd {
        let table = if a.sync {
            ConnTable::Sync
        } else {
            ConnTable::Conn
        };
        let timeouts = Ipvs::open(netns)
            .and_then(|mut i| i.state_timeouts())
            .unwrap_or_default();
        let reader = ipvs_conntrack::ipvs::conn::open_table(netns, table)?;
        return wr(write_connections(w, reader, &timeouts, json));
    }
    let mut ipvs = Ipvs::open(netns)?;
    match cmd {
        IpvsCommand::Services(a) => {
            let snap = match a.service {
                Some(k) => {
                    let s = ipvs.service(&k)?;
                    let d = ipvs.destinations(&k)?;
                    vec![(s, d)]
                }
                None => ipvs.snapshot()?,
            };
            let info = ipvs.info()?;
            wr(write_services(w, &info.to_string(), &snap, json))
        }
        IpvsCommand::Dests(a) => {
            let svc = ipvs.service(&a.service)?;
            let d = ipvs.destinations(&a.service)?;
            wr(write_services(w, "", &[(svc, d)], json))
        }
        IpvsCommand::Stats => {
            let snap = ipvs.snapshot()?;
            wr(write_stats(w, &snap, json))
        }
        IpvsCommand::Config => {
            let t = ipvs.config()?;
            wr(write_config(w, &t, json))
        }
        IpvsCommand::Info => {
            let i = ipvs.info()?;
            if json {
                wr(write_json_line(w, &i))
            } else {
                wr(writeln!(w, "{i}"))
            }
        }
        IpvsCommand::Daemon => {
            let d = ipvs.daemons()?;
            if json {
                return wr(write_json_line(w, &d));
            }
            for x in &d {
                let mut line = format!(
                    "{} sync daemon (mcast={}, syncid={}",
                    x.state, x.mcast_ifn, x.sync_id
                );
                if let Some(v) = x.sync_maxlen {
                    line.push_str(&format!(", maxlen={v}"));
                }
                if let Some(g) = x.mcast_group {
                    line.push_str(&format!(", group={g}"));
                }
                if let Some(p) = x.mcast_port {
                    line.push_str(&format!(", port={p}"));
                }
                if let Some(t) = x.mcast_ttl {
                    line.push_str(&format!(", ttl={t}"));
                }
                wr(writeln!(w, "{line})"))?;
            }
            Ok(())
        }
        IpvsCommand::Explain(a) => {
            let mut ex = ipvs.explain()?;
            if let Some(k) = a.service {
                ex.services.retain(|s| s.service == k);
                if ex.services.is_empty() {
                    return Err(Failure::new(format!("no service {k}")));
                }
            }
            wr(write_explain(w, &ex, a.connections, json))
        }
        IpvsCommand::AddService(a) => Ok(ipvs.add_service(&service_spec(&a)?)?),
        IpvsCommand::EditService(a) => Ok(ipvs.edit_service(&service_spec(&a)?)?),
        IpvsCommand::DelService(a) => Ok(ipvs.del_service(&a.service)?),
        IpvsCommand::AddDest(a) => Ok(ipvs.add_dest(&a.service, &dest_spec(&a)?)?),
        IpvsCommand::EditDest(a) => Ok(ipvs.edit_dest(&a.service, &dest_spec(&a)?)?),
        IpvsCommand::DelDest(a) => {
            let real = real_server(&a.service, &a.real)?;
            Ok(ipvs.del_dest(&a.service, real)?)
        }
        IpvsCommand::Flush => Ok(ipvs.flush()?),
        IpvsCommand::Zero(a) => Ok(ipvs.zero(a.service.as_ref())?),
        IpvsCommand::SetTimeouts(a) => Ok(ipvs.set_timeouts(&Timeouts {
            tcp: a.tcp,
            tcp_fin: a.tcpfin,
            udp: a.udp,
        })?),
        IpvsCommand::StartDaemon(a) => Ok(ipvs.start_daemon(&DaemonSpec {
            sync_maxlen: a.sync_maxlen,
            mcast_group: a.mcast_group,
            mcast_port: a.mcast_port,
            mcast_ttl: a.mcast_ttl,
            ..DaemonSpec::new(a.role.into(), a.mcast_interface, a.syncid)
        })?),
        IpvsCommand::StopDaemon(a) => Ok(ipvs.stop_daemon(a.role.into())?),
        IpvsCommand::Connections(_) => Ok(()),
    }
}

fn service_spec(a: &ServiceSpecArgs) -> Result<ServiceSpec, Failure> {
    let mut spec = ServiceSpec::new(a.service, a.scheduler.clone());
    if let Some(t) = a.persistent {
        spec = spec.persistent(t);
    }
    if let Some(m) = &a.netmask {
        let nm = match a.service.af {
            AddressFamily::Inet6 => m.parse().map(Netmask::PrefixLen).ok(),
            _ => m.parse().map(Netmask::Mask).ok(),
        };
        spec.netmask = Some(nm.ok_or_else(|| Failure::usage(format!("bad netmask {m:?}")))?);
    }
    if let Some(pe) = &a.pe {
        spec = spec.with_pe(pe.clone());
    }
    if a.ops {
        spec.flags |= ServiceFlags::ONEPACKET;
    }
    for f in &a.sched_flags {
        let flag = ServiceFlags::from_flag_name(f)
            .filter(|f| {
                (ServiceFlags::SCHED1 | ServiceFlags::SCHED2 | ServiceFlags::SCHED3).contains(*f)
            })
            .ok_or_else(|| Failure::usage(format!("unknown scheduler flag {f:?}")))?;
        spec.flags |= flag;
    }
    spec.validate().map_err(|e| Failure::usage(e.to_string()))?;
    Ok(spec)
}

fn dest_spec(a: &DestArgs) -> Result<DestSpec, Failure> {
    let real = real_server(&a.service, &a.real)?;
    let mut d = DestSpec::new(real, a.fwd.into())
        .weight(a.weight)
        .thresholds(a.u_threshold, a.l_threshold);
    let flags = match a.tun_csum.as_deref() {
        None | Some("nocsum") => TunnelFlags::empty(),
        Some("csum") => TunnelFlags::CSUM,
        Some("remcsum") => TunnelFlags::REMCSUM,
        Some(other) => return Err(Failure::usage(format!("unknown tunnel checksum {other:?}"))),
    };
    if let Some(t) = a.tun_type {
        let kind = match t {
            TunArg::Ipip => TunnelType::Ipip,
            TunArg::Gue => TunnelType::Gue,
            TunArg::Gre => TunnelType::Gre,
        };
        d = d.tunnel(kind, a.tun_port, flags);
    } else if a.tun_port.is_some() || !flags.is_empty() {
        return Err(Failure::usage("--tun-port and --tun-csum need --tun-type"));
    }
    d.validate(&a.service)
        .map_err(|e| Failure::usage(e.to_string()))?;
    Ok(d)
}

/// A service with its destinations, for JSON.
#[derive(Serialize)]
struct ServiceJson<'a> {
    service: &'a Service,
    dests: &'a [Destination],
}

fn flags_text(s: &Service) -> String {
    let mut parts = Vec::new();
    if s.is_persistent() {
        parts.push(format!("persistent {}", s.timeout));
        match s.netmask {
            Netmask::Mask(m) if m != std::net::Ipv4Addr::BROADCAST => {
                parts.push(format!("mask {m}"))
            }
            Netmask::PrefixLen(n) if n != 128 => parts.push(format!("mask {n}")),
            _ => {}
        }
    }
    if s.flags.contains(ServiceFlags::ONEPACKET) {
        parts.push("ops".into());
    }
    let sched = s.flags & (ServiceFlags::SCHED1 | ServiceFlags::SCHED2 | ServiceFlags::SCHED3);
    if !sched.is_empty() {
        parts.push(sched.names().join(",").to_lowercase());
    }
    if let Some(pe) = &s.pe_name {
        parts.push(format!("pe {pe}"));
    }
    parts.join(" ")
}

fn write_services(
    w: &mut impl Write,
    header: &str,
    snap: &[(Service, Vec<Destination>)],
    json: bool,
) -> io::Result<()> {
    if json {
        let v: Vec<ServiceJson<'_>> = snap
            .iter()
            .map(|(s, d)| ServiceJson {
                service: s,
                dests: d,
            })
            .collect();
        return write_json_line(w, &v);
    }
    if !header.is_empty() {
        writeln!(w, "{header}")?;
    }
    writeln!(w, "Prot LocalAddress:Port Scheduler Flags")?;
    writeln!(
        w,
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn PersistConn"
    )?;
    for (s, dests) in snap {
        writeln!(w, "{} {} {}", s.key, s.scheduler, flags_text(s))?;
        for d in dests {
            let mut fwd = d.fwd_method.ipvsadm_name().to_owned();
            if let Some(t) = d.tun_type.filter(|_| d.fwd_method == ForwardMethod::Tunnel) {
                fwd = format!("{fwd}({t})");
            }
            writeln!(
                w,
                "  -> {:<28} {:<7} {:<6} {:<10} {:<9} {}",
                endpoint(d.addr, Some(d.port)),
                fwd,
                d.weight,
                d.active_conns,
                d.inactive_conns,
                d.persist_conns
            )?;
        }
    }
    Ok(())
}

fn stats_row(w: &mut impl Write, label: &str, s: Option<&Stats>) -> io::Result<()> {
    match s {
        Some(s) => writeln!(
            w,
            "{label:<34} {:>8} {:>9} {:>9} {:>11} {:>11} {:>6} {:>6} {:>6} {:>9} {:>9}",
            s.conns,
            s.inpkts,
            s.outpkts,
            s.inbytes,
            s.outbytes,
            s.cps,
            s.inpps,
            s.outpps,
            s.inbps,
            s.outbps
        ),
        None => writeln!(w, "{label:<34} (no statistics)"),
    }
}

fn write_stats(
    w: &mut impl Write,
    snap: &[(Service, Vec<Destination>)],
    json: bool,
) -> io::Result<()> {
    if json {
        #[derive(Serialize)]
        struct Row<'a> {
            service: ServiceKey,
            dest: Option<SocketAddr>,
            stats: Option<&'a Stats>,
        }
        let mut rows = Vec::new();
        for (s, dests) in snap {
            rows.push(Row {
                service: s.key,
                dest: None,
                stats: s.best_stats(),
            });
            for d in dests {
                rows.push(Row {
                    service: s.key,
                    dest: Some(d.socket_addr()),
                    stats: d.best_stats(),
                });
            }
        }
        return write_json_line(w, &rows);
    }
    writeln!(
        w,
        "{:<34} {:>8} {:>9} {:>9} {:>11} {:>11} {:>6} {:>6} {:>6} {:>9} {:>9}",
        "Prot LocalAddress:Port",
        "Conns",
        "InPkts",
        "OutPkts",
        "InBytes",
        "OutBytes",
        "CPS",
        "InPPS",
        "OutPPS",
        "InBPS",
        "OutBPS"
    )?;
    for (s, dests) in snap {
        stats_row(w, &s.key.to_string(), s.best_stats())?;
        for d in dests {
            let label = format!("  -> {}", endpoint(d.addr, Some(d.port)));
            stats_row(w, &label, d.best_stats())?;
        }
    }
    Ok(())
}

fn write_config(w: &mut impl Write, t: &Timeouts, json: bool) -> io::Result<()> {
    let table = StateTimeoutTable::from_config(t);
    if json {
        #[derive(Serialize)]
        struct Entry {
            protocol: String,
            state: String,
            seconds: u32,
        }
        #[derive(Serialize)]
        struct ConfigJson<'a> {
            timeouts: &'a Timeouts,
            states: Vec<Entry>,
        }
        let states = table
            .entries()
            .into_iter()
            .map(|(p, s, v)| Entry {
                protocol: p.to_string(),
                state: s.to_string(),
                seconds: v,
            })
            .collect();
        return write_json_line(
            w,
            &ConfigJson {
                timeouts: t,
                states,
            },
        );
    }
    let f = |v: Option<u32>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    writeln!(
        w,
        "Timeout (tcp tcpfin udp): {} {} {}",
        f(t.tcp),
        f(t.tcp_fin),
        f(t.udp)
    )?;
    writeln!(w, "State timeouts in force:")?;
    for (p, s, v) in table.entries() {
        writeln!(
            w,
            "  {:<5} {:<12} {:>6}  {}",
            p.to_string(),
            s.to_string(),
            v,
            s.activity()
        )?;
    }
    Ok(())
}

/// One connection with its state timeout, for JSON and text.
#[derive(Serialize)]
struct ConnJson<'a> {
    #[serde(flatten)]
    conn: &'a Connection,
    activity: ipvs_conntrack::ipvs::Activity,
    state_timeout: Option<u32>,
}

fn write_connections<R: io::BufRead>(
    w: &mut impl Write,
    reader: ipvs_conntrack::ipvs::ConnReader<R>,
    table: &StateTimeoutTable,
    json: bool,
) -> io::Result<()> {
    if !json {
        writeln!(
            w,
            "{:<5} {:<24} {:<24} {:<24} {:<12} {:>9} {:<9}",
            "Pro", "Client", "Virtual", "Real", "State", "Left/Full", "Counts as"
        )?;
    }
    for c in reader {
        let c = c.map_err(io::Error::other)?;
        let full = table.for_state(&c.state);
        if json {
            write_json_line(
                w,
                &ConnJson {
                    conn: &c,
                    activity: c.activity(),
                    state_timeout: full,
                },
            )?;
            continue;
        }
        let mut line = format!(
            "{:<5} {:<24} {:<24} {:<24} {:<12} {:>9} {:<9}",
            c.protocol.to_string(),
            endpoint(c.client.ip(), Some(c.client.port())),
            endpoint(c.virtual_addr.ip(), Some(c.virtual_addr.port())),
            endpoint(c.dest.ip(), Some(c.dest.port())),
            c.state.to_string(),
            format!(
                "{}/{}",
                c.expires,
                full.map_or_else(|| "-".to_owned(), |v| v.to_string())
            ),
            c.activity().to_string()
        );
        if let Some(o) = c.origin {
            line.push_str(&format!(" {o:?}"));
        }
        if let (Some(n), Some(d)) = (&c.pe_name, &c.pe_data) {
            line.push_str(&format!(" {n} {d}"));
        }
        writeln!(w, "{}", line.trim_end())?;
    }
    Ok(())
}

fn write_explain(
    w: &mut impl Write,
    ex: &Explanation,
    with_conns: bool,
    json: bool,
) -> io::Result<()> {
    let taken = ex
        .taken_at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if json {
        #[derive(Serialize)]
        struct ExplainJson<'a> {
            taken_at_unix: u64,
            #[serde(flatten)]
            explanation: &'a Explanation,
            drain_at_unix: Vec<DrainJson>,
        }
        #[derive(Serialize)]
        struct DrainJson {
            service: ServiceKey,
            dest: SocketAddr,
            inactive_conns: u32,
            drain_at_unix: Option<u64>,
        }
        let drain = ex
            .services
            .iter()
            .flat_map(|s| {
                s.dests.iter().map(move |d| DrainJson {
                    service: s.service,
                    dest: d.dest,
                    inactive_conns: d.inactive_conns,
                    drain_at_unix: d.inactive_drain.map(|x| taken + u64::from(x)),
                })
            })
            .collect();
        return write_json_line(
            w,
            &ExplainJson {
                taken_at_unix: taken,
                explanation: ex,
                drain_at_unix: drain,
            },
        );
    }
    for s in &ex.services {
        write!(w, "{} ({})", s.service, s.scheduler)?;
        if s.persistence_timeout > 0 {
            write!(w, " persistent {} s", s.persistence_timeout)?;
        }
        writeln!(w)?;
        if s.dests.is_empty() {
            writeln!(w, "  (no real servers)")?;
        }
        for d in &s.dests {
            writeln!(
                w,
                "  -> {} {} weight {}: ActiveConn {}, InActConn {}, PersistConn {}",
                endpoint(d.dest.ip(), Some(d.dest.port())),
                d.fwd_method.ipvsadm_name(),
                d.weight,
                d.active_conns,
                d.inactive_conns,
                d.persist_conns
            )?;
            for g in &d.states {
                writeln!(
                    w,
                    "       {:<10} {:<12} {:>5} entr{}, {}..{} s left of {}",
                    g.activity.to_string(),
                    g.state.to_string(),
                    g.count,
                    if g.count == 1 { "y" } else { "ies" },
                    g.min_expires,
                    g.max_expires,
                    g.state_timeout
                        .map_or_else(|| "?".to_owned(), |t| format!("{t} s"))
                )?;
            }
            match d.inactive_drain {
                Some(x) => writeln!(
                    w,
                    "       InActConn drains in {} (at unix time {}) unless new connections arrive",
                    human_secs(x),
                    taken + u64::from(x)
                )?,
                None if d.inactive_conns > 0 => writeln!(
                    w,
                    "       InActConn {} but no inactive entry listed (they expired meanwhile)",
                    d.inactive_conns
                )?,
                None => {}
            }
            if with_conns {
                for c in &d.connections {
                    writeln!(
                        w,
                        "         {} {} -> {} {} {}/{} s",
                        c.conn.protocol,
                        endpoint(c.conn.client.ip(), Some(c.conn.client.port())),
                        endpoint(c.conn.virtual_addr.ip(), Some(c.conn.virtual_addr.port())),
                        c.conn.state,
                        c.conn.expires,
                        c.state_timeout
                            .map_or_else(|| "-".to_owned(), |t| t.to_string())
                    )?;
                }
            }
        }
    }
    if !ex.unmatched.is_empty() {
        writeln!(
            w,
            "{} connection entries match no listed real server",
            ex.unmatched.len()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        a: IpvsArgs,
    }

    #[test]
    fn parses_control_commands() {
        let t = T::try_parse_from([
            "x",
            "--netns",
            "lb",
            "add-dest",
            "tcp:10.0.0.1:80",
            "10.0.2.2",
            "--fwd",
            "tunnel",
            "--tun-type",
            "gue",
            "--tun-port",
            "6080",
            "-w",
            "3",
        ])
        .unwrap();
        assert_eq!(t.a.common.netns.as_deref(), Some("lb"));
        let IpvsCommand::AddDest(d) = t.a.command else {
            panic!("not add-dest")
        };
        let spec = dest_spec(&d).unwrap();
        assert_eq!(spec.port, 80, "the service's port when none is given");
        assert_eq!(spec.fwd_method, ForwardMethod::Tunnel);
        assert_eq!(spec.tun_type, Some(TunnelType::Gue));
        assert_eq!(spec.tun_port, Some(6080));
        assert_eq!(spec.weight, 3);

        let t = T::try_parse_from([
            "x",
            "add-service",
            "udp:[2001:db8::1]:53",
            "-s",
            "sh",
            "-p",
            "60",
            "-M",
            "64",
            "--sched-flag",
            "sched1",
        ])
        .unwrap();
        let IpvsCommand::AddService(s) = t.a.command else {
            panic!("not add-service")
        };
        let spec = service_spec(&s).unwrap();
        assert_eq!(spec.netmask, Some(Netmask::PrefixLen(64)));
        assert_eq!(spec.timeout, 60);
        assert_eq!(spec.flags, ServiceFlags::PERSISTENT | ServiceFlags::SCHED1);

        let t = T::try_parse_from(["x", "add-service", "tcp:10.0.0.1:80", "--ops"]).unwrap();
        let IpvsCommand::AddService(s) = t.a.command else {
            panic!("not add-service")
        };
        assert_eq!(service_spec(&s).unwrap_err().code, 2);
        assert!(T::try_parse_from(["x", "dests", "icmp:1.2.3.4:0"]).is_err());
    }
}

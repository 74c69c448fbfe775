//! The IPVS part of `ipvsct demo`: a NAT virtual service in three more throw-away
//! namespaces (a director with the VIP, two real servers running the tiny HTTP server),
//! the same quick HTTP requests to the VIP, and what IPVS keeps afterwards: InActConn per
//! real server, the entries behind it with their seconds left, when it drains, the
//! timeouts in force and the capacity arithmetic.
//!
//! Everything lives in the sandbox's namespaces: the client–director veth pair is born
//! in the client namespace with its peer moved straight into the director, the director
//! creates the real servers' pairs the same way, and the virtual service is added in the
//! director namespace only. The host's interfaces and IPVS table are never touched.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use ipvs_conntrack::capacity::ipvs::{observe_explained, ConnSample, IpvsReport, ESTIMATOR_PERIOD};
use ipvs_conntrack::ipvs::{
    ConnState, DestSpec, Explanation, ForwardMethod, Ipvs, ServiceKey, ServiceSpec, TcpState,
};
use ipvs_conntrack::{Error, Netns};

use crate::capacity_ipvs::{
    ipvs_loaded, write_advice, write_arithmetic, write_dest, write_service_line, write_timeouts,
    write_wrapped,
};
use crate::demo::HTTP_PORT;
use crate::failure::Failure;
use crate::http;
use crate::output::human_secs;
use crate::sandbox::{self, run_cmd, Registry, Sandbox, Tools, PREFIX_LEN};

/// The virtual IP address, on the director's client-side interface.
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 100);
/// The client's address on the client–director link.
pub const CLIENT_LINK_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 1);
/// The director's own address on the client–director link.
pub const DIRECTOR_LINK_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 2);
/// The client's end of the client–director veth pair.
pub const CLIENT_DIRECTOR_IF: &str = "veth-cd";
/// The director's end of the client–director veth pair.
pub const DIRECTOR_CLIENT_IF: &str = "veth-dc";
/// The real server's end of its veth pair.
pub const REAL_IF: &str = "eth0";
/// Number of real servers.
pub const REAL_SERVERS: usize = 2;
/// The scheduler of the demo's virtual service.
pub const SCHEDULER: &str = "rr";
/// Longest wait for the servers to finish and the entries to reach TIME_WAIT.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);
/// Prefix of the director namespace's name.
const DIRECTOR_PREFIX: &str = "ipvsct-demo-d-";

/// Writes a line to stdout; a closed stdout is not a reason to leave the sandbox behind.
macro_rules! say {
    ($($t:tt)*) => {{
        let mut o = io::stdout().lock();
        let _ = writeln!(o, $($t)*);
        let _ = o.flush();
    }};
}

/// Address of real server `i` (0-based): 10.213.2.2, 10.213.3.2, …
pub fn real_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 213, 2 + u8::try_from(i).unwrap_or(0), 2)
}

/// The director's address on the link to real server `i`: 10.213.2.1, 10.213.3.1, …
pub fn director_real_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 213, 2 + u8::try_from(i).unwrap_or(0), 1)
}

/// The director's end of the veth pair to real server `i`: `veth-r1`, `veth-r2`.
pub fn director_real_if(i: usize) -> String {
    format!("veth-r{}", i + 1)
}

/// The demo's virtual service: TCP VIP:80.
pub fn service_key() -> ServiceKey {
    ServiceKey::tcp(SocketAddr::new(IpAddr::V4(VIP), HTTP_PORT))
}

/// True if `name` is a demo director namespace (it holds an IPVS service).
pub fn is_director(name: &str) -> bool {
    name.starts_with(DIRECTOR_PREFIX)
}

/// Deletes every IPVS service of a director namespace (for Ctrl-C, before the namespace goes).
pub fn flush_director(name: &str) -> Result<(), Error> {
    Ipvs::open(&Netns::named(name))?.flush()
}

/// True if IPVS is loaded or `modprobe ip_vs` loads it.
pub fn ipvs_available() -> bool {
    if ipvs_loaded() {
        return true;
    }
    sandbox::find_program("modprobe").is_some_and(|m| run_cmd(&m, &["-q", "ip_vs"], None).is_ok())
        && ipvs_loaded()
}

/// What closing the IPVS part removed.
#[derive(Debug)]
pub struct Closed {
    /// The service deleted, if it had been added.
    pub service: Option<ServiceKey>,
    /// Services left in the director after the deletion (0 expected).
    pub services_left: usize,
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
}

/// The director and real server namespaces with their links and the virtual service;
/// removed on drop.
#[derive(Debug)]
pub struct IpvsSandbox {
    /// The director namespace (holds the VIP and the virtual service).
    pub director: String,
    /// The real server namespaces.
    pub reals: Vec<String>,
    ip: String,
    registry: Registry,
    service_added: bool,
}

impl IpvsSandbox {
    /// The namespace names used for process `pid`: the director and the real servers.
    pub fn names(pid: u32) -> (String, Vec<String>) {
        (
            format!("{DIRECTOR_PREFIX}{pid}"),
            (1..=REAL_SERVERS)
                .map(|i| format!("ipvsct-demo-r{i}-{pid}"))
                .collect(),
        )
    }

    /// Creates the namespaces, links, addresses, routes and the virtual service;
    /// `say` reports each step.
    pub fn create(
        pid: u32,
        client: &str,
        tools: &Tools,
        registry: Registry,
        say: &mut dyn FnMut(&str),
    ) -> Result<IpvsSandbox, Failure> {
        let (director, reals) = Self::names(pid);
        let ip = tools.ip.clone();
        let all: Vec<String> = std::iter::once(director.clone())
            .chain(reals.iter().cloned())
            .collect();
        // Left over by an earlier run that had the same pid and was killed hard.
        sandbox::delete_namespaces(&ip, &all);
        let mut sb = IpvsSandbox {
            director,
            reals,
            ip,
            registry,
            service_added: false,
        };
        for ns in &all {
            run_cmd(&sb.ip, &["netns", "add", ns], None)?;
            sb.registry
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(ns.clone());
            run_cmd(&sb.ip, &["-n", ns, "link", "set", "lo", "up"], None)?;
        }
        say(&format!(
            "created network namespaces {} (director), {} (real servers)",
            sb.director,
            sb.reals.join(" and ")
        ));
        sb.link_client(client)?;
        say(&format!(
            "joined the client to the director: {CLIENT_DIRECTOR_IF} {CLIENT_LINK_ADDR}/{PREFIX_LEN} \
             <-> {DIRECTOR_CLIENT_IF} {DIRECTOR_LINK_ADDR}/{PREFIX_LEN}, with the VIP {VIP} on \
             {DIRECTOR_CLIENT_IF}"
        ));
        let mut links = Vec::new();
        for i in 0..sb.reals.len() {
            sb.link_real(i)?;
            links.push(format!(
                "{} {}/{PREFIX_LEN} <-> {REAL_IF} {}/{PREFIX_LEN}",
                director_real_if(i),
                director_real_addr(i),
                real_addr(i)
            ));
        }
        sb.director_netns().run(|| {
            std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|source| Error::Io {
                op: "enable IPv4 forwarding in the director",
                source,
            })
        })?;
        say(&format!(
            "joined the real servers to the director: {}; their default route is the director \
             (which forwards), so replies go back through it",
            links.join(", ")
        ));
        sb.add_service()?;
        let key = service_key();
        let reals: Vec<String> = (0..REAL_SERVERS)
            .map(|i| format!("{}:{HTTP_PORT}", real_addr(i)))
            .collect();
        say(&format!(
            "added the virtual service {key} ({SCHEDULER}) with real servers {} (NAT), like \
             `ipvsadm -A -t {VIP}:{HTTP_PORT} -s {SCHEDULER}` and `ipvsadm -a -t {VIP}:{HTTP_PORT} \
             -r REAL -m`, in {} only",
            reals.join(" and "),
            sb.director
        ));
        Ok(sb)
    }

    /// The client–director veth pair, its addresses and the VIP.
    fn link_client(&self, client: &str) -> Result<(), Failure> {
        let ip = self.ip.as_str();
        let d = self.director.as_str();
        run_cmd(
            ip,
            &[
                "-n",
                client,
                "link",
                "add",
                CLIENT_DIRECTOR_IF,
                "type",
                "veth",
                "peer",
                "name",
                DIRECTOR_CLIENT_IF,
                "netns",
                d,
            ],
            None,
        )?;
        let c_addr = format!("{CLIENT_LINK_ADDR}/{PREFIX_LEN}");
        let d_addr = format!("{DIRECTOR_LINK_ADDR}/{PREFIX_LEN}");
        let vip = format!("{VIP}/32");
        run_cmd(
            ip,
            &[
                "-n",
                client,
                "addr",
                "add",
                &c_addr,
                "dev",
                CLIENT_DIRECTOR_IF,
            ],
            None,
        )?;
        run_cmd(
            ip,
            &["-n", client, "link", "set", CLIENT_DIRECTOR_IF, "up"],
            None,
        )?;
        for addr in [&d_addr, &vip] {
            run_cmd(
                ip,
                &["-n", d, "addr", "add", addr, "dev", DIRECTOR_CLIENT_IF],
                None,
            )?;
        }
        run_cmd(
            ip,
            &["-n", d, "link", "set", DIRECTOR_CLIENT_IF, "up"],
            None,
        )?;
        Ok(())
    }

    /// The director–real server `i` veth pair, addresses and the real server's default route.
    fn link_real(&self, i: usize) -> Result<(), Failure> {
        let ip = self.ip.as_str();
        let d = self.director.as_str();
        let r = self
            .reals
            .get(i)
            .ok_or_else(|| Failure::new(format!("no real server {i}")))?
            .as_str();
        let dif = director_real_if(i);
        run_cmd(
            ip,
            &[
                "-n", d, "link", "add", &dif, "type", "veth", "peer", "name", REAL_IF, "netns", r,
            ],
            None,
        )?;
        let d_addr = format!("{}/{PREFIX_LEN}", director_real_addr(i));
        let r_addr = format!("{}/{PREFIX_LEN}", real_addr(i));
        run_cmd(ip, &["-n", d, "addr", "add", &d_addr, "dev", &dif], None)?;
        run_cmd(ip, &["-n", d, "link", "set", &dif, "up"], None)?;
        run_cmd(ip, &["-n", r, "addr", "add", &r_addr, "dev", REAL_IF], None)?;
        run_cmd(ip, &["-n", r, "link", "set", REAL_IF, "up"], None)?;
        let gw = director_real_addr(i).to_string();
        run_cmd(ip, &["-n", r, "route", "add", "default", "via", &gw], None)?;
        Ok(())
    }

    /// Adds the NAT virtual service with one destination per real server.
    fn add_service(&mut self) -> Result<(), Failure> {
        let mut ipvs = Ipvs::open(&self.director_netns())?;
        let key = service_key();
        ipvs.add_service(&ServiceSpec::new(key, SCHEDULER))?;
        self.service_added = true;
        for i in 0..self.reals.len() {
            let addr = SocketAddr::new(IpAddr::V4(real_addr(i)), HTTP_PORT);
            ipvs.add_dest(&key, &DestSpec::new(addr, ForwardMethod::Masq))?;
        }
        Ok(())
    }

    /// The director namespace.
    pub fn director_netns(&self) -> Netns {
        Netns::named(self.director.as_str())
    }

    /// The namespace of real server `i`.
    pub fn real_netns(&self, i: usize) -> Netns {
        Netns::named(self.reals.get(i).map_or("", String::as_str))
    }

    /// Removes the service and the namespaces now; reports what was removed.
    pub fn close(mut self) -> Result<Closed, Failure> {
        self.remove()
    }

    fn remove(&mut self) -> Result<Closed, Failure> {
        let mut problems = Vec::new();
        let mut service = None;
        let mut services_left = 0;
        if self.service_added {
            let key = service_key();
            let deleted = Ipvs::open(&self.director_netns()).and_then(|mut ipvs| {
                ipvs.del_service(&key)?;
                ipvs.services().map(|s| s.len())
            });
            match deleted {
                Ok(left) => {
                    service = Some(key);
                    services_left = left;
                    self.service_added = false;
                }
                Err(e) => problems.push(format!("deleting the IPVS service {key}: {e}")),
            }
        }
        let names: Vec<String> = std::iter::once(self.director.clone())
            .chain(self.reals.iter().cloned())
            .collect();
        let mut reg = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let created: Vec<String> = names.iter().filter(|n| reg.contains(n)).cloned().collect();
        let failed = sandbox::delete_namespaces(&self.ip, &created);
        reg.retain(|n| !created.contains(n) || failed.contains(n));
        if !failed.is_empty() {
            problems.push(format!(
                "could not remove namespace(s) {}: remove them with `ip netns del NAME`",
                failed.join(", ")
            ));
        }
        if problems.is_empty() {
            Ok(Closed {
                service,
                services_left,
                namespaces: created,
            })
        } else {
            Err(Failure::new(problems.join("; ")))
        }
    }
}

impl Drop for IpvsSandbox {
    fn drop(&mut self) {
        if let Err(f) = self.remove() {
            eprintln!("ipvsct: {}", f.message);
        }
    }
}

/// The IPVS part of the demo, after the conntrack part: builds the NAT service, makes the
/// requests and explains them. Returns the live IPVS sandbox (for `--keep`; the caller
/// closes it), or None when IPVS is not available here.
pub fn run(
    sb: &Sandbox,
    tools: &Tools,
    registry: Registry,
    requests: usize,
) -> Result<Option<IpvsSandbox>, Failure> {
    say!();
    if !ipvs_available() {
        say!(
            "IPVS: not available on this kernel (no ip_vs module), so the IPVS part of the demo \
             is skipped."
        );
        return Ok(None);
    }
    say!(
        "IPVS: the same {requests} requests through a NAT virtual service (ip_vs is loaded on this \
         kernel)"
    );
    say!();
    say!("Sandbox, IPVS part (nothing on the host is changed):");
    let isb = IpvsSandbox::create(std::process::id(), &sb.client, tools, registry, &mut |s| {
        say!("  - {s}")
    })?;
    show(&isb, sb, requests)?;
    Ok(Some(isb))
}

/// Starts one HTTP server per real server.
fn start_servers(isb: &IpvsSandbox) -> Result<Vec<(SocketAddr, http::Server)>, Failure> {
    let mut servers = Vec::new();
    for i in 0..isb.reals.len() {
        let addr = SocketAddr::new(IpAddr::V4(real_addr(i)), HTTP_PORT);
        let s = http::Server::start(&isb.real_netns(i), addr, Duration::from_secs(120))?;
        servers.push((addr, s));
    }
    Ok(servers)
}

/// The requests, the IPVS table behind the counters and the capacity arithmetic.
fn show(isb: &IpvsSandbox, sb: &Sandbox, requests: usize) -> Result<(), Failure> {
    let vip = SocketAddr::new(IpAddr::V4(VIP), HTTP_PORT);
    let servers = start_servers(isb)?;
    let places: Vec<String> = servers
        .iter()
        .zip(&isb.reals)
        .map(|((a, _), ns)| format!("{a} in {ns}"))
        .collect();
    say!(
        "  - started the tiny HTTP server on {}",
        places.join(" and ")
    );
    say!();
    let mut ipvs = Ipvs::open(&isb.director_netns())?;
    let before = ConnSample::read(&mut ipvs)?;
    let started = Instant::now();
    let codes = http::head_requests(&sb.client_netns(), vip, requests)?;
    let ended = Instant::now();
    let took = ended - started;
    let ok = codes.iter().filter(|c| **c == 200).count();
    // Each server counts a connection once the client has closed it.
    let deadline = Instant::now() + SETTLE_LIMIT;
    while servers.iter().map(|(_, s)| s.served()).sum::<u64>() < requests as u64
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut served = Vec::new();
    for (addr, s) in servers {
        served.push((addr, s.stop()?));
    }
    say!(
        "Traffic: like `for i in {{1..{requests}}}; do curl -I -s http://{vip}/; done` from {}:",
        sb.client
    );
    let per_server: Vec<String> = served
        .iter()
        .map(|(a, n)| format!("{} served {n}", a.ip()))
        .collect();
    say!(
        "  {requests} HEAD requests to the VIP, each on a new TCP connection: {ok} answered 200 OK, \
         in {:.2} s; {}",
        took.as_secs_f64(),
        per_server.join(", ")
    );
    let total: u64 = served.iter().map(|(_, n)| n).sum();
    if ok != requests || total != requests as u64 {
        return Err(Failure::new(format!(
            "only {ok} of {requests} requests through IPVS got 200 OK ({total} completed on the \
             real servers)"
        )));
    }
    settle(&mut ipvs, requests)?;
    // The kernel copies its counters every 2 s: read them once they show every request,
    // dated to the end of the requests, so the rate is that of the requests.
    let after = counted(&mut ipvs, before.total_conns() + requests as u64)?.dated(ended);
    let (report, ex) = observe_explained(&mut ipvs, Some(&before), Some(after))?;
    say!();
    write_table(isb, &report, &ex);
    say!();
    let mut out = io::stdout().lock();
    let _ = write_timeouts(&mut out, &report, "");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Capacity arithmetic for IPVS (director {}):",
        isb.director
    );
    let _ = write_arithmetic(&mut out, &report, "  ");
    let _ = writeln!(out);
    let _ = write_wrapped(&mut out, "", "", &explanation(&report));
    let _ = writeln!(out);
    let _ = write_advice(&mut out, &report, "");
    let _ = out.flush();
    Ok(())
}

/// Reads the table (bounded) until `requests` entries are in TIME_WAIT.
fn settle(ipvs: &mut Ipvs, requests: usize) -> Result<(), Failure> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let ex = ipvs.explain()?;
        let tw: u32 = ex
            .services
            .iter()
            .flat_map(|s| &s.dests)
            .flat_map(|d| &d.states)
            .filter(|g| g.state == ConnState::Tcp(TcpState::TimeWait))
            .map(|g| g.count)
            .sum();
        if tw as usize >= requests || Instant::now() >= deadline {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads the counters (bounded: a little over one estimator period) until they reach `total`.
fn counted(ipvs: &mut Ipvs, total: u64) -> Result<ConnSample, Failure> {
    let deadline = Instant::now() + ESTIMATOR_PERIOD + Duration::from_secs(1);
    loop {
        let s = ConnSample::read(ipvs)?;
        if s.total_conns() >= total || Instant::now() >= deadline {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The services and real servers with the entries behind their counters.
fn write_table(isb: &IpvsSandbox, r: &IpvsReport, ex: &Explanation) {
    say!(
        "IPVS table of {} (like `ipvsadm -Ln`, with the entries of /proc/net/ip_vs_conn behind \
         each counter):",
        isb.director
    );
    let mut out = io::stdout().lock();
    for s in &r.services {
        let _ = write_service_line(&mut out, s, "  ");
        let explained = ex.services.iter().find(|e| e.service == s.service);
        for d in &s.dests {
            let _ = write_dest(&mut out, d, "    ");
            let left: Vec<String> = explained
                .and_then(|e| e.dests.iter().find(|x| x.dest == d.dest))
                .map(|x| {
                    x.connections
                        .iter()
                        .map(|c| c.conn.expires.to_string())
                        .collect()
                })
                .unwrap_or_default();
            if !left.is_empty() {
                let _ = write_wrapped(
                    &mut out,
                    "         seconds left of each entry: ",
                    "           ",
                    &left.join(" "),
                );
            }
        }
    }
    let by_state: Vec<String> = r
        .states
        .iter()
        .map(|s| format!("{} {} ({})", s.state, s.count, s.activity))
        .collect();
    let _ = writeln!(out, "By state: {}", by_state.join(", "));
    if let Some(d) = r.inactive_drain_seconds {
        let _ = writeln!(
            out,
            "InActConn {} in all; it drains within {d} s ({}) if no new connection comes.",
            r.inactive_conns,
            human_secs(d)
        );
    }
    let _ = out.flush();
}

/// Why InActConn stays up, in the numbers of this run.
fn explanation(r: &IpvsReport) -> String {
    let tw = r.time_wait_seconds;
    let bytes = r
        .entry_bytes
        .map_or_else(String::new, |b| format!(" ({b} bytes each here)"));
    format!(
        "Why InActConn stays up although every request is done: IPVS keeps its own connection \
         table, apart from conntrack. A connection counts in ActiveConn only while it is \
         ESTABLISHED; once it closes, its entry moves to TIME_WAIT and counts in InActConn until \
         its timer runs out: {tw} s in IPVS, a value `ipvsadm --set` cannot change. The entries \
         cost memory{bytes}, not a slot of a fixed table: the IPVS table has no maximum like \
         nf_conntrack_max, so there is no rate at which it overflows; at R new connections per \
         second it holds about R x {tw} entries (Little's law). The rr scheduler ignores \
         InActConn; lc and wlc count an inactive entry as 1/256 of an active one."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_addresses_and_service() {
        let (d, r) = IpvsSandbox::names(42);
        assert_eq!(d, "ipvsct-demo-d-42");
        assert_eq!(r, ["ipvsct-demo-r1-42", "ipvsct-demo-r2-42"]);
        assert!(is_director(&d));
        assert!(!is_director("ipvsct-demo-c-42"));
        assert_eq!(real_addr(0), Ipv4Addr::new(10, 213, 2, 2));
        assert_eq!(real_addr(1), Ipv4Addr::new(10, 213, 3, 2));
        assert_eq!(director_real_addr(1), Ipv4Addr::new(10, 213, 3, 1));
        assert_eq!(director_real_if(0), "veth-r1");
        assert_eq!(service_key().to_string(), "TCP 10.213.1.100:80");
    }
}

//! IPVS against a real kernel, compared field by field with ipvsadm.
//!
//! These tests need the ip_vs modules, root, iproute2 and ipvsadm, so they are
//! `#[ignore]`d: `tests/vm/ipvs/run.sh` builds this binary and runs it with
//! `--ignored` inside Debian's stock kernel booted under QEMU. Each test works in
//! network namespaces of its own (IPVS state is per namespace), so they run in
//! parallel. Run by hand as root on a kernel with IPVS:
//! `cargo test --features cli --test ipvs_vm -- --ignored`.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used)]

#[path = "ipvs_common.rs"]
mod ipvs_common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use ipvs_common::*;
use ipvs_conntrack::ipvs::{
    Activity, AddressFamily, ConnState, DaemonSpec, DaemonState, DestSpec, Destination,
    ForwardMethod, Ipvs, Netmask, Protocol, Service, ServiceFlags, ServiceKey, ServiceSpec,
    TcpState, Timeouts, TunnelFlags, TunnelType,
};
use ipvs_conntrack::netlink::genl;
use ipvs_conntrack::socket::{Direction, NlSocket, SocketOptions, NETLINK_GENERIC};
use ipvs_conntrack::{Error, Netns};

const IO_TIMEOUT: Duration = Duration::from_secs(5);

fn tool(env: &str, default: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| default.to_owned())
}

fn ip_bin() -> String {
    tool("IPVSCT_IP", "/usr/sbin/ip")
}

fn ipvsadm_bin() -> String {
    tool("IPVSCT_IPVSADM", "/usr/sbin/ipvsadm")
}

/// Runs a command; panics with its output if it fails.
fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ip ARGS`.
fn ip(args: &[&str]) {
    run(&ip_bin(), args);
}

/// Runs ipvsadm inside namespace `ns`.
fn adm(ns: &str, args: &[&str]) -> String {
    let ipvsadm = ipvsadm_bin();
    let mut a = vec!["netns", "exec", ns, ipvsadm.as_str()];
    a.extend_from_slice(args);
    run(&ip_bin(), &a)
}

/// True if the tests can run here; otherwise reports SKIPPED (or panics under CI=true).
fn ready(test: &str) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let problem = if !Path::new("/proc/net/ip_vs").exists()
        && !Command::new("modprobe")
            .arg("ip_vs")
            .status()
            .is_ok_and(|s| s.success())
    {
        Some("ip_vs is not loaded and cannot be loaded".to_owned())
    } else if !Path::new(&ipvsadm_bin()).exists() {
        Some(format!("{} is missing", ipvsadm_bin()))
    } else {
        // One probe name per test: the tests run in parallel.
        let probe = format!("ipvsct-probe-{test}");
        let made = Command::new(ip_bin())
            .args(["netns", "add", &probe])
            .status()
            .is_ok_and(|s| s.success());
        let _ = Command::new(ip_bin())
            .args(["netns", "del", &probe])
            .status();
        (!made).then(|| "cannot create network namespaces (not root?)".to_owned())
    };
    match problem {
        None => true,
        Some(p) if ci => panic!("{test}: cannot run under CI=true: {p}"),
        Some(p) => {
            let _ = writeln!(io::stderr(), "SKIPPED: {test}: {p}");
            false
        }
    }
}

/// A network namespace deleted on drop.
struct Ns(String);

impl Ns {
    fn new(name: &str) -> Ns {
        let _ = Command::new(ip_bin()).args(["netns", "del", name]).output();
        ip(&["netns", "add", name]);
        ip(&["-n", name, "link", "set", "lo", "up"]);
        Ns(name.to_owned())
    }

    fn netns(&self) -> Netns {
        Netns::named(self.0.as_str())
    }

    fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new(ip_bin())
            .args(["netns", "del", &self.0])
            .output();
    }
}

fn io_err(op: &'static str) -> impl Fn(io::Error) -> Error {
    move |source| Error::Io { op, source }
}

/// A server thread, stopped and joined on drop.
struct Server {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// An HTTP/1.0 server in `ns` on port 80 (IPv4 and IPv6) answering `body`, closing each
/// connection first.
fn http_server(ns: &Netns, body: String) -> Server {
    let listener = ns
        .run(|| TcpListener::bind("[::]:80").map_err(io_err("bind http")))
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let handle = std::thread::spawn(move || {
        while !s.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut c, _)) => {
                    let _ = c.set_nonblocking(false);
                    let _ = c.set_read_timeout(Some(IO_TIMEOUT));
                    let mut req = Vec::new();
                    let mut buf = [0u8; 512];
                    // Bounded: at most 8 reads or the timeout.
                    for _ in 0..8 {
                        match c.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                        if req.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let resp = format!(
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = c.write_all(resp.as_bytes());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    Server {
        stop,
        handle: Some(handle),
    }
}

/// A UDP echo server in `ns` on port 53 (IPv4 and IPv6).
fn udp_echo(ns: &Netns) -> Server {
    let sock = ns
        .run(|| UdpSocket::bind("[::]:53").map_err(io_err("bind udp")))
        .unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !s.load(Ordering::SeqCst) {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(&buf[..n], from);
            }
        }
    });
    Server {
        stop,
        handle: Some(handle),
    }
}

/// A director namespace with a VIP, a client namespace and real server namespaces
/// running HTTP (port 80) and UDP echo (port 53) servers, all joined by veth pairs.
struct Lab {
    // Servers stop before the namespaces go.
    _servers: Vec<Server>,
    lb: Ns,
    client: Ns,
    rs: Vec<Ns>,
}

const VIP: &str = "10.0.0.1";
const VIP6: &str = "fd00::1";

impl Lab {
    fn new(prefix: &str, n_rs: usize) -> Lab {
        let lb = Ns::new(&format!("{prefix}-lb"));
        let client = Ns::new(&format!("{prefix}-c"));
        let l = lb.name();
        ip(&["-n", l, "link", "add", "vip0", "type", "dummy"]);
        ip(&["-n", l, "addr", "add", &format!("{VIP}/32"), "dev", "vip0"]);
        ip(&[
            "-n",
            l,
            "addr",
            "add",
            &format!("{VIP6}/128"),
            "dev",
            "vip0",
            "nodad",
        ]);
        ip(&["-n", l, "link", "set", "vip0", "up"]);
        let join = |ifname: &str, peer: &Ns, net: usize| {
            ip(&[
                "-n",
                l,
                "link",
                "add",
                ifname,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                peer.name(),
            ]);
            ip(&[
                "-n",
                l,
                "addr",
                "add",
                &format!("10.0.{net}.1/24"),
                "dev",
                ifname,
            ]);
            ip(&[
                "-n",
                l,
                "addr",
                "add",
                &format!("fd00:{net}::1/64"),
                "dev",
                ifname,
                "nodad",
            ]);
            ip(&["-n", l, "link", "set", ifname, "up"]);
            let p = peer.name();
            ip(&[
                "-n",
                p,
                "addr",
                "add",
                &format!("10.0.{net}.2/24"),
                "dev",
                "eth0",
            ]);
            ip(&[
                "-n",
                p,
                "addr",
                "add",
                &format!("fd00:{net}::2/64"),
                "dev",
                "eth0",
                "nodad",
            ]);
            ip(&["-n", p, "link", "set", "eth0", "up"]);
            ip(&[
                "-n",
                p,
                "route",
                "add",
                "default",
                "via",
                &format!("10.0.{net}.1"),
            ]);
            ip(&[
                "-n",
                p,
                "-6",
                "route",
                "add",
                "default",
                "via",
                &format!("fd00:{net}::1"),
            ]);
        };
        join("vc", &client, 1);
        let mut rs = Vec::new();
        let mut servers = Vec::new();
        for i in 0..n_rs {
            let r = Ns::new(&format!("{prefix}-r{}", i + 1));
            join(&format!("vr{}", i + 1), &r, i + 2);
            servers.push(http_server(&r.netns(), format!("hello from rs{}\n", i + 1)));
            servers.push(udp_echo(&r.netns()));
            rs.push(r);
        }
        lb.netns()
            .run(|| {
                std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
                    .map_err(io_err("ip_forward"))?;
                std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", "1")
                    .map_err(io_err("ipv6 forwarding"))
            })
            .unwrap();
        Lab {
            _servers: servers,
            lb,
            client,
            rs,
        }
    }

    fn vip(&self, port: u16) -> SocketAddr {
        SocketAddr::new(VIP.parse().unwrap(), port)
    }

    fn rs_addr(&self, i: usize, port: u16) -> SocketAddr {
        SocketAddr::new(format!("10.0.{}.2", i + 2).parse().unwrap(), port)
    }

    fn vip6(&self, port: u16) -> SocketAddr {
        SocketAddr::new(VIP6.parse().unwrap(), port)
    }

    fn rs_addr6(&self, i: usize, port: u16) -> SocketAddr {
        SocketAddr::new(format!("fd00:{}::2", i + 2).parse().unwrap(), port)
    }

    /// Sets up NAT services: TCP VIP:80 and UDP VIP:53, rr, to every real server.
    fn nat_services(&self, ipvs: &mut Ipvs) {
        for (key, port) in [
            (ServiceKey::tcp(self.vip(80)), 80),
            (ServiceKey::udp(self.vip(53)), 53),
        ] {
            ipvs.add_service(&ServiceSpec::new(key, "rr")).unwrap();
            for i in 0..self.rs.len() {
                ipvs.add_dest(
                    &key,
                    &DestSpec::new(self.rs_addr(i, port), ForwardMethod::Masq),
                )
                .unwrap();
            }
        }
    }

    /// `n` HTTP requests to VIP:80 from the client, each on a new connection the
    /// client closes after the answer; returns the bodies.
    fn http_gets(&self, n: usize) -> Vec<String> {
        self.http_gets_to(self.vip(80), n)
    }

    /// `n` HTTP requests to `vip`.
    fn http_gets_to(&self, vip: SocketAddr, n: usize) -> Vec<String> {
        self.client
            .netns()
            .run(move || {
                let mut out = Vec::new();
                for _ in 0..n {
                    let mut s =
                        TcpStream::connect_timeout(&vip, IO_TIMEOUT).map_err(io_err("connect"))?;
                    s.set_read_timeout(Some(IO_TIMEOUT))
                        .map_err(io_err("timeout"))?;
                    s.write_all(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
                        .map_err(io_err("send"))?;
                    let mut resp = String::new();
                    s.read_to_string(&mut resp).map_err(io_err("receive"))?;
                    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
                    out.push(body);
                }
                Ok(out)
            })
            .unwrap()
    }

    /// `n` connections whose answer is read to the server's FIN but which the client
    /// keeps open: IPVS leaves them in FIN_WAIT.
    fn half_closed(&self, n: usize) -> Vec<TcpStream> {
        let vip = self.vip(80);
        self.client
            .netns()
            .run(move || {
                let mut out = Vec::new();
                for _ in 0..n {
                    let mut s =
                        TcpStream::connect_timeout(&vip, IO_TIMEOUT).map_err(io_err("connect"))?;
                    s.set_read_timeout(Some(IO_TIMEOUT))
                        .map_err(io_err("timeout"))?;
                    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
                        .map_err(io_err("send"))?;
                    let mut resp = Vec::new();
                    s.read_to_end(&mut resp).map_err(io_err("receive"))?;
                    out.push(s);
                }
                Ok(out)
            })
            .unwrap()
    }

    /// `n` UDP datagrams to VIP:53, each from a new socket; returns how many were echoed.
    fn udp_pings(&self, n: usize) -> usize {
        let vip = self.vip(53);
        self.client
            .netns()
            .run(move || {
                let mut ok = 0;
                for i in 0..n {
                    let s = UdpSocket::bind("0.0.0.0:0").map_err(io_err("bind"))?;
                    s.set_read_timeout(Some(IO_TIMEOUT))
                        .map_err(io_err("timeout"))?;
                    let msg = format!("ping {i}");
                    s.send_to(msg.as_bytes(), vip).map_err(io_err("send"))?;
                    let mut buf = [0u8; 64];
                    if let Ok((len, _)) = s.recv_from(&mut buf) {
                        if &buf[..len] == msg.as_bytes() {
                            ok += 1;
                        }
                    }
                }
                Ok(ok)
            })
            .unwrap()
    }
}

/// The scheduler modules the guest kernel ships (from the guest script), else those loaded.
fn schedulers() -> Vec<String> {
    if let Ok(v) = std::env::var("IPVSCT_VM_SCHEDULERS") {
        return v.split_whitespace().map(str::to_owned).collect();
    }
    let mut v: Vec<String> = std::fs::read_dir("/sys/module")
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_prefix("ip_vs_").map(str::to_owned)
                })
                .filter(|n| !["ftp", "pe_sip", "nfct"].contains(&n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The ipvsadm commands of the mixed configuration (every protocol, both families,
/// firewall marks, persistence, scheduler flags, every forwarding method and tunnel type).
const MIXED_SETUP: &[&str] = &[
    "-A -t 10.0.0.1:80 -s rr",
    "-a -t 10.0.0.1:80 -r 10.0.2.2:80 -m -w 3 -x 100 -y 10",
    "-a -t 10.0.0.1:80 -r 10.0.3.2:8080 -m -w 0",
    "-a -t 10.0.0.1:80 -r 10.7.7.7:80 -m -w 2",
    "-A -u 10.0.0.1:53 -s sh -b sh-fallback,sh-port -o",
    "-a -u 10.0.0.1:53 -r 10.0.2.2 -g",
    "-A --sctp-service 10.0.0.1:3000 -s mh -b mh-port -p 120 -M 255.255.255.0",
    "-a --sctp-service 10.0.0.1:3000 -r 10.0.2.8 -i",
    "-a --sctp-service 10.0.0.1:3000 -r 10.0.2.9 -i --tun-type gue --tun-port 6080 --tun-nocsum",
    "-a --sctp-service 10.0.0.1:3000 -r 10.0.2.10 -i --tun-type gre --tun-csum",
    "-a --sctp-service 10.0.0.1:3000 -r 10.0.2.11 -i --tun-type gue --tun-port 6081 --tun-remcsum",
    "-A -f 7 -s wlc -p",
    "-a -f 7 -r 10.0.4.4 -g -w 5",
    "-A -f 8 -6 -s lc",
    "-a -f 8 -6 -r 2001:db8::44 -g",
    "-A -t [2001:db8::1]:443 -s wrr -p 60 -M 64",
    "-a -t [2001:db8::1]:443 -r [2001:db8:2::2]:443 -m -w 2",
    "-a -t [2001:db8::1]:443 -r 10.0.9.9:443 -i",
    "-A -u 10.0.0.2:5060 -s rr -p 30 --pe sip",
    "-A -t 10.0.0.3:0 -s dh -p 10",
];

/// Applies [`MIXED_SETUP`] plus one TCP service per scheduler in namespace `ns`.
fn mixed_setup(ns: &Ns) -> Vec<String> {
    ip(&["-n", ns.name(), "addr", "add", "10.7.7.7/32", "dev", "lo"]);
    let mut cmds: Vec<String> = MIXED_SETUP.iter().map(|s| s.to_string()).collect();
    for (i, s) in schedulers().iter().enumerate() {
        cmds.push(format!("-A -t 10.1.0.{}:80 -s {s}", i + 1));
        cmds.push(format!(
            "-a -t 10.1.0.{}:80 -r 10.1.1.{}:80 -m -w {}",
            i + 1,
            i + 1,
            i + 1
        ));
    }
    for c in &cmds {
        let args: Vec<&str> = c.split_whitespace().collect();
        adm(ns.name(), &args);
    }
    cmds
}

/// Compares every service and destination the library reads with ipvsadm's listings.
fn assert_matches_ipvsadm(ns: &str, ipvs: &mut Ipvs) -> Vec<(Service, Vec<Destination>)> {
    let snap = ipvs.snapshot().unwrap();
    let ln = adm(ns, &["-Ln"]);
    let list = parse_listing(&ln);
    let thresholds = parse_listing(&adm(ns, &["-Ln", "--thresholds"]));
    let persist = parse_listing(&adm(ns, &["-Ln", "--persistent-conn"]));
    let tun = parse_listing(&adm(ns, &["-Ln", "--tun-info"]));
    let lib_keys: BTreeSet<String> = snap.iter().map(|(s, _)| s.key.to_string()).collect();
    let adm_keys: BTreeSet<String> = list.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(
        lib_keys, adm_keys,
        "services differ from ipvsadm -Ln:\n{ln}"
    );
    for (s, dests) in &snap {
        let a = find(&list, &s.key);
        assert_eq!(
            expected_service_cols(s),
            sorted(&a.cols),
            "scheduler/flags of {}",
            s.key
        );
        assert!(
            s.flags.contains(ServiceFlags::HASHED),
            "{} not hashed",
            s.key
        );
        assert!(
            s.stats.is_some() && s.stats64.is_some(),
            "{} lacks stats",
            s.key
        );
        let got = ipvs.service(&s.key).unwrap();
        assert_eq!(
            (
                &got.key,
                &got.scheduler,
                got.flags,
                got.timeout,
                got.netmask,
                &got.pe_name
            ),
            (
                &s.key,
                &s.scheduler,
                s.flags,
                s.timeout,
                s.netmask,
                &s.pe_name
            ),
            "get {} differs from the dump",
            s.key
        );
        let lib_d: BTreeSet<SocketAddr> = dests.iter().map(Destination::socket_addr).collect();
        let adm_d: BTreeSet<SocketAddr> = a.dests.iter().map(|d| d.addr).collect();
        assert_eq!(lib_d, adm_d, "destinations of {}", s.key);
        for d in dests {
            let sa = d.socket_addr();
            let s_ = |v: u32| v.to_string();
            assert_eq!(
                find_dest(a, sa).cols,
                [
                    d.fwd_method.ipvsadm_name().to_owned(),
                    s_(d.weight),
                    s_(d.active_conns),
                    s_(d.inactive_conns)
                ],
                "{} {sa} (-Ln)",
                s.key
            );
            assert_eq!(
                find_dest(find(&thresholds, &s.key), sa).cols,
                [
                    s_(d.upper_threshold),
                    s_(d.lower_threshold),
                    s_(d.active_conns),
                    s_(d.inactive_conns)
                ],
                "{} {sa} (--thresholds)",
                s.key
            );
            assert_eq!(
                find_dest(find(&persist, &s.key), sa).cols,
                [
                    s_(d.weight),
                    s_(d.persist_conns),
                    s_(d.active_conns),
                    s_(d.inactive_conns)
                ],
                "{} {sa} (--persistent-conn)",
                s.key
            );
            assert_eq!(
                find_dest(find(&tun, &s.key), sa).cols,
                [
                    d.fwd_method.ipvsadm_name().to_owned(),
                    expected_tun_info(d),
                    s_(d.weight),
                    s_(d.active_conns),
                    s_(d.inactive_conns)
                ],
                "{} {sa} (--tun-info)",
                s.key
            );
        }
    }
    snap
}

fn stats_cols(s: &ipvs_conntrack::ipvs::Stats) -> Vec<String> {
    [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
        .iter()
        .map(u64::to_string)
        .collect()
}

fn rate_cols(s: &ipvs_conntrack::ipvs::Stats) -> Vec<String> {
    [s.cps, s.inpps, s.outpps, s.inbps, s.outbps]
        .iter()
        .map(u64::to_string)
        .collect()
}

type StatsSnap = BTreeMap<String, ipvs_conntrack::ipvs::Stats>;

fn stats_snapshot(ipvs: &mut Ipvs) -> StatsSnap {
    let mut m = BTreeMap::new();
    for (s, dests) in ipvs.snapshot().unwrap() {
        m.insert(s.key.to_string(), s.best_stats().unwrap().clone());
        for d in dests {
            m.insert(
                format!("{} -> {}", s.key, d.socket_addr()),
                d.best_stats().unwrap().clone(),
            );
        }
    }
    m
}

/// Compares counters and rates with `ipvsadm --stats/--rate --exact`. The kernel's
/// estimator copies the counters and updates the rates every 2 s, and an ipvsadm run can
/// take longer than that under emulation: each ipvsadm read is bracketed by two library
/// reads, and every service's and destination's line must equal the library's values in
/// one of them (so at most one estimator update inside the bracket). Retried (bounded)
/// when a line equals neither, i.e. the estimator ran twice during one ipvsadm run.
fn assert_stats_match_ipvsadm(ns: &str, ipvs: &mut Ipvs) -> StatsSnap {
    let mut last = String::new();
    for attempt in 0..15 {
        let before = stats_snapshot(ipvs);
        let st = parse_listing(&adm(ns, &["-Ln", "--stats", "--exact"]));
        let mid = stats_snapshot(ipvs);
        let rt = parse_listing(&adm(ns, &["-Ln", "--rate", "--exact"]));
        let after = stats_snapshot(ipvs);
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            "services or destinations changed"
        );
        let mut bad = Vec::new();
        let mut check = |what: &str,
                         key: &str,
                         got: &[String],
                         cols: fn(&ipvs_conntrack::ipvs::Stats) -> Vec<String>,
                         a: &StatsSnap,
                         b: &StatsSnap| {
            let (x, y) = (cols(&a[key]), cols(&b[key]));
            if got != x.as_slice() && got != y.as_slice() {
                bad.push(format!(
                    "{what} of {key}: ipvsadm {got:?}, library {x:?} then {y:?}"
                ));
            }
        };
        for svc in &st {
            let k = svc.key.to_string();
            check("stats", &k, &svc.cols, stats_cols, &before, &mid);
            check(
                "rates",
                &k,
                &find(&rt, &svc.key).cols,
                rate_cols,
                &mid,
                &after,
            );
            for d in &svc.dests {
                let kd = format!("{} -> {}", svc.key, d.addr);
                check("stats", &kd, &d.cols, stats_cols, &before, &mid);
                let r = find_dest(find(&rt, &svc.key), d.addr);
                check("rates", &kd, &r.cols, rate_cols, &mid, &after);
            }
        }
        assert_eq!(
            st.len(),
            after.keys().filter(|k| !k.contains(" -> ")).count(),
            "services listed by ipvsadm --stats"
        );
        if bad.is_empty() {
            return after;
        }
        last = bad.join("\n");
        eprintln!("retrying: stats/rates moved twice during one ipvsadm read (attempt {attempt})");
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("statistics never matched ipvsadm within one estimator update:\n{last}");
}

/// The path of the ipvsct binary (the guest sets IPVSCT_BIN).
fn ipvsct_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("IPVSCT_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("ipvsct");
    p.exists().then_some(p)
}

fn ipvsct(args: &[&str]) -> String {
    let bin = ipvsct_bin().expect("ipvsct binary not found (set IPVSCT_BIN)");
    run(bin.to_str().unwrap(), args)
}

#[test]
#[ignore = "needs IPVS: run inside the QEMU guest via tests/vm/ipvs/run.sh"]
fn reads_match_ipvsadm() {
    if !ready("reads_match_ipvsadm") {
        return;
    }
    let ns = Ns::new("ipvs-rd");
    let cmds = mixed_setup(&ns);
    let mut ipvs = Ipvs::open(&ns.netns()).unwrap();
    assert_eq!(ipvs.family().name, "IPVS");
    assert!(ipvs.family().version >= 1);

    let snap = assert_matches_ipvsadm(ns.name(), &mut ipvs);
    let scheds = schedulers();
    assert!(scheds.len() >= 13, "too few schedulers: {scheds:?}");
    assert_eq!(snap.len(), 8 + scheds.len(), "{cmds:#?}");
    for s in &scheds {
        assert!(
            snap.iter().any(|(svc, _)| &svc.scheduler == s),
            "scheduler {s} not reported"
        );
    }

    // Values the setup asked for, decoded.
    let get = |k: &str| -> &(Service, Vec<Destination>) {
        let key: ServiceKey = k.parse().unwrap();
        snap.iter().find(|(s, _)| s.key == key).unwrap()
    };
    let (http, d) = get("tcp:10.0.0.1:80");
    assert_eq!(http.scheduler, "rr");
    let rs1 = d
        .iter()
        .find(|d| d.port == 80 && d.addr.to_string() == "10.0.2.2")
        .unwrap();
    assert_eq!(
        (rs1.weight, rs1.upper_threshold, rs1.lower_threshold),
        (3, 100, 10)
    );
    assert_eq!(rs1.fwd_method, ForwardMethod::Masq);
    let local = d.iter().find(|d| d.addr.to_string() == "10.7.7.7").unwrap();
    assert_eq!(
        local.fwd_method,
        ForwardMethod::Masq,
        "the kernel keeps the requested method for a local address"
    );
    let (dns, d) = get("udp:10.0.0.1:53");
    assert_eq!(
        dns.flags - ServiceFlags::HASHED,
        ServiceFlags::SCHED1 | ServiceFlags::SCHED2 | ServiceFlags::ONEPACKET
    );
    assert_eq!(d[0].fwd_method, ForwardMethod::Route);
    assert_eq!(d[0].port, 53, "ipvsadm fills in the service port");
    let (sctp, d) = get("sctp:10.0.0.1:3000");
    assert_eq!(sctp.key.protocol(), Some(Protocol::Sctp));
    assert_eq!(
        sctp.netmask,
        Netmask::Mask("255.255.255.0".parse().unwrap())
    );
    assert_eq!(sctp.timeout, 120);
    let by = |a: &str| d.iter().find(|x| x.addr.to_string() == a).unwrap();
    assert_eq!(by("10.0.2.8").tun_type, Some(TunnelType::Ipip));
    assert_eq!(by("10.0.2.9").tun_type, Some(TunnelType::Gue));
    assert_eq!(by("10.0.2.9").tun_port, Some(6080));
    assert_eq!(by("10.0.2.10").tun_type, Some(TunnelType::Gre));
    assert_eq!(by("10.0.2.10").tun_flags, Some(TunnelFlags::CSUM));
    assert_eq!(by("10.0.2.11").tun_flags, Some(TunnelFlags::REMCSUM));
    let (v6, d) = get("tcp:[2001:db8::1]:443");
    assert_eq!(v6.netmask, Netmask::PrefixLen(64));
    let mixed = d.iter().find(|x| x.addr.is_ipv4()).unwrap();
    assert_eq!(
        mixed.af,
        AddressFamily::Inet,
        "an IPv4 tunnel destination of an IPv6 service"
    );
    assert_eq!(mixed.fwd_method, ForwardMethod::Tunnel);
    let (fw6, d) = get("fwmark6:8");
    assert_eq!(fw6.key.af, AddressFamily::Inet6);
    assert_eq!(d[0].addr, "2001:db8::44".parse::<IpAddr>().unwrap());
    let (fw, _) = get("fwmark:7");
    assert_eq!(fw.timeout, 360, "ipvsadm's default persistence");
    let (sip, _) = get("udp:10.0.0.2:5060");
    assert_eq!(sip.pe_name.as_deref(), Some("sip"));

    // Info and config.
    let info = ipvs.info().unwrap();
    assert_eq!(ln_header(&adm(ns.name(), &["-Ln"])), info.to_string());
    assert!(info.conn_tab_size >= 4096, "{info:?}");
    let t = ipvs.config().unwrap();
    let (tcp, fin, udp) = parse_timeouts(&adm(ns.name(), &["-L", "--timeout"]));
    assert_eq!(
        t,
        Timeouts {
            tcp: Some(tcp),
            tcp_fin: Some(fin),
            udp: Some(udp)
        }
    );
    assert_eq!(
        (tcp, fin, udp),
        (900, 120, 300),
        "kernel defaults in a new namespace"
    );
    assert_stats_match_ipvsadm(ns.name(), &mut ipvs);

    // The CLI's JSON says the same.
    if ipvsct_bin().is_some() {
        let json = ipvsct(&["ipvs", "--netns", ns.name(), "services", "--json"]);
        let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), snap.len());
        let sctp_json = arr
            .iter()
            .find(|e| e["service"]["key"]["target"]["inet"]["protocol"] == "SCTP")
            .unwrap();
        assert_eq!(sctp_json["service"]["timeout"], 120);
        assert_eq!(sctp_json["dests"].as_array().unwrap().len(), 4);
        let text = ipvsct(&["ipvs", "--netns", ns.name(), "config"]);
        assert!(
            text.contains("Timeout (tcp tcpfin udp): 900 120 300"),
            "{text}"
        );
        assert!(text.contains("TIME_WAIT"), "{text}");
        let text = ipvsct(&["ipvs", "--netns", ns.name(), "info"]);
        assert_eq!(text.trim(), info.to_string());
    }
}

fn ln_header(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

#[test]
#[ignore = "needs IPVS: run inside the QEMU guest via tests/vm/ipvs/run.sh"]
fn control_round_trips_through_ipvsadm() {
    if !ready("control_round_trips_through_ipvsadm") {
        return;
    }
    // The mixed configuration made with ipvsadm in one namespace...
    let by_adm = Ns::new("ipvs-ca");
    ip(&[
        "-n",
        by_adm.name(),
        "addr",
        "add",
        "10.7.7.7/32",
        "dev",
        "lo",
    ]);
    for c in MIXED_SETUP {
        adm(by_adm.name(), &c.split_whitespace().collect::<Vec<_>>());
    }
    // ...and made with the library in another must save identically.
    let ns = Ns::new("ipvs-ctl");
    ip(&["-n", ns.name(), "addr", "add", "10.7.7.7/32", "dev", "lo"]);
    let mut ipvs = Ipvs::open(&ns.netns()).unwrap();
    let tcp80 = ServiceKey::tcp("10.0.0.1:80".parse().unwrap());
    let udp53 = ServiceKey::udp("10.0.0.1:53".parse().unwrap());
    let sctp = ServiceKey::sctp("10.0.0.1:3000".parse().unwrap());
    let fw7 = ServiceKey::fwmark(AddressFamily::Inet, 7);
    let fw8 = ServiceKey::fwmark(AddressFamily::Inet6, 8);
    let v6 = ServiceKey::tcp("[2001:db8::1]:443".parse().unwrap());
    let sip = ServiceKey::udp("10.0.0.2:5060".parse().unwrap());
    let port0 = ServiceKey::tcp("10.0.0.3:0".parse().unwrap());
    let sa = |s: &str| -> SocketAddr { s.parse().unwrap() };
    let specs = [
        ServiceSpec::new(tcp80, "rr"),
        ServiceSpec::new(udp53, "sh")
            .with_flags(ServiceFlags::SCHED1 | ServiceFlags::SCHED2 | ServiceFlags::ONEPACKET),
        ServiceSpec::new(sctp, "mh")
            .with_flags(ServiceFlags::SCHED2)
            .persistent(120)
            .with_netmask(Netmask::Mask("255.255.255.0".parse().unwrap())),
        ServiceSpec::new(fw7, "wlc").persistent(360),
        ServiceSpec::new(fw8, "lc"),
        ServiceSpec::new(v6, "wrr")
            .persistent(60)
            .with_netmask(Netmask::PrefixLen(64)),
        ServiceSpec::new(sip, "rr").persistent(30).with_pe("sip"),
        ServiceSpec::new(port0, "dh").persistent(10),
    ];
    for s in &specs {
        ipvs.add_service(s).unwrap();
    }
    let dests: Vec<(ServiceKey, DestSpec)> = vec![
        (
            tcp80,
            DestSpec::new(sa("10.0.2.2:80"), ForwardMethod::Masq)
                .weight(3)
                .thresholds(100, 10),
        ),
        (
            tcp80,
            DestSpec::new(sa("10.0.3.2:8080"), ForwardMethod::Masq).weight(0),
        ),
        (
            tcp80,
            DestSpec::new(sa("10.7.7.7:80"), ForwardMethod::Masq).weight(2),
        ),
        (
            udp53,
            DestSpec::new(sa("10.0.2.2:53"), ForwardMethod::Route),
        ),
        (
            sctp,
            DestSpec::new(sa("10.0.2.8:3000"), ForwardMethod::Tunnel),
        ),
        (
            sctp,
            DestSpec::new(sa("10.0.2.9:3000"), ForwardMethod::Tunnel).tunnel(
                TunnelType::Gue,
                Some(6080),
                TunnelFlags::empty(),
            ),
        ),
        (
            sctp,
            DestSpec::new(sa("10.0.2.10:3000"), ForwardMethod::Tunnel).tunnel(
                TunnelType::Gre,
                None,
                TunnelFlags::CSUM,
            ),
        ),
        (
            sctp,
            DestSpec::new(sa("10.0.2.11:3000"), ForwardMethod::Tunnel).tunnel(
                TunnelType::Gue,
                Some(6081),
                TunnelFlags::REMCSUM,
            ),
        ),
        (
            fw7,
            DestSpec::new(sa("10.0.4.4:0"), ForwardMethod::Route).weight(5),
        ),
        (
            fw8,
            DestSpec::new(sa("[2001:db8::44]:0"), ForwardMethod::Route),
        ),
        (
            v6,
            DestSpec::new(sa("[2001:db8:2::2]:443"), ForwardMethod::Masq).weight(2),
        ),
        (v6, DestSpec::new(sa("10.0.9.9:443"), ForwardMethod::Tunnel)),
    ];
    for (k, d) in &dests {
        ipvs.add_dest(k, d).unwrap();
    }
    let save = |ns: &str| -> BTreeSet<String> {
        adm(ns, &["-S", "-n"]).lines().map(str::to_owned).collect()
    };
    assert_eq!(
        save(ns.name()),
        save(by_adm.name()),
        "library and ipvsadm configurations differ"
    );
    // Methods ipvsadm cannot ask for: local node (shown as Local) and bypass.
    let sctp_local = DestSpec::new(sa("10.7.7.7:3000"), ForwardMethod::Local);
    ipvs.add_dest(&sctp, &sctp_local).unwrap();
    assert_matches_ipvsadm(ns.name(), &mut ipvs);
    let listed = parse_listing(&adm(ns.name(), &["-Ln"]));
    assert_eq!(
        find_dest(find(&listed, &sctp), sa("10.7.7.7:3000")).cols[0],
        "Local"
    );
    ipvs.add_dest(
        &port0,
        &DestSpec::new(sa("10.0.8.8:0"), ForwardMethod::Bypass),
    )
    .unwrap();
    let d = ipvs.destinations(&port0).unwrap();
    assert_eq!((d.len(), d[0].fwd_method), (1, ForwardMethod::Bypass));
    ipvs.del_dest(&port0, sa("10.0.8.8:0")).unwrap();
    assert!(ipvs.destinations(&port0).unwrap().is_empty());

    // Typed kernel errors, and requests refused before sending.
    let dup = ipvs.add_service(&specs[0]).unwrap_err();
    assert_eq!(dup.errno(), Some(17), "EEXIST: {dup}");
    let missing = ServiceKey::tcp("10.0.0.99:80".parse().unwrap());
    let gone = ipvs.del_service(&missing).unwrap_err();
    assert_eq!(gone.errno(), Some(3), "ESRCH: {gone}");
    let gone = ipvs.service(&missing).unwrap_err();
    assert_eq!(gone.errno(), Some(3), "ESRCH: {gone}");
    assert!(ipvs.destinations(&missing).unwrap().is_empty());
    let bad = ipvs
        .add_dest(&tcp80, &DestSpec::new(sa("[::9]:80"), ForwardMethod::Masq))
        .unwrap_err();
    assert!(matches!(bad, Error::InvalidRequest(_)), "{bad}");

    // Edits.
    ipvs.edit_service(&ServiceSpec::new(tcp80, "wlc").persistent(33))
        .unwrap();
    ipvs.edit_dest(
        &tcp80,
        &DestSpec::new(sa("10.0.2.2:80"), ForwardMethod::Route)
            .weight(9)
            .thresholds(0, 0),
    )
    .unwrap();
    let s = ipvs.service(&tcp80).unwrap();
    assert_eq!(
        (s.scheduler.as_str(), s.timeout, s.is_persistent()),
        ("wlc", 33, true)
    );
    let d = ipvs.destinations(&tcp80).unwrap();
    let e = d
        .iter()
        .find(|d| d.socket_addr() == sa("10.0.2.2:80"))
        .unwrap();
    assert_eq!(
        (e.fwd_method, e.weight, e.upper_threshold),
        (ForwardMethod::Route, 9, 0)
    );
    assert_matches_ipvsadm(ns.name(), &mut ipvs);
    ipvs.del_dest(&tcp80, sa("10.0.3.2:8080")).unwrap();
    ipvs.del_service(&sip).unwrap();
    let listed = parse_listing(&adm(ns.name(), &["-Ln"]));
    assert!(listed.iter().all(|s| s.key != sip));
    assert!(find(&listed, &tcp80)
        .dests
        .iter()
        .all(|d| d.addr != sa("10.0.3.2:8080")));
    assert_matches_ipvsadm(ns.name(), &mut ipvs);

    // Timeouts both ways.
    ipvs.set_timeouts(&Timeouts {
        tcp: Some(100),
        tcp_fin: Some(20),
        udp: Some(50),
    })
    .unwrap();
    assert_eq!(
        parse_timeouts(&adm(ns.name(), &["-L", "--timeout"])),
        (100, 20, 50)
    );
    ipvs.set_timeouts(&Timeouts {
        tcp_fin: Some(7),
        ..Timeouts::default()
    })
    .unwrap();
    assert_eq!(
        parse_timeouts(&adm(ns.name(), &["-L", "--timeout"])),
        (100, 7, 50)
    );
    adm(ns.name(), &["--set", "901", "121", "301"]);
    assert_eq!(
        ipvs.config().unwrap(),
        Timeouts {
            tcp: Some(901),
            tcp_fin: Some(121),
            udp: Some(301)
        }
    );
    let table = ipvs.state_timeouts().unwrap();
    assert_eq!(
        table.for_state(&ConnState::Tcp(TcpState::FinWait)),
        Some(121)
    );
    assert_eq!(
        table.for_state(&ConnState::Tcp(TcpState::TimeWait)),
        Some(120)
    );

    // The CLI's control commands.
    if ipvsct_bin().is_some() {
        let n = ns.name();
        ipvsct(&[
            "ipvs",
            "--netns",
            n,
            "add-service",
            "tcp:10.5.5.5:8000",
            "-s",
            "sed",
        ]);
        ipvsct(&[
            "ipvs",
            "--netns",
            n,
            "add-dest",
            "tcp:10.5.5.5:8000",
            "10.5.6.6",
            "--fwd",
            "route",
            "-w",
            "4",
        ]);
        ipvsct(&[
            "ipvs",
            "--netns",
            n,
            "edit-dest",
            "tcp:10.5.5.5:8000",
            "10.5.6.6",
            "--fwd",
            "route",
            "-w",
            "6",
        ]);
        ipvsct(&["ipvs", "--netns", n, "set-timeouts", "--tcpfin", "44"]);
        let k: ServiceKey = "tcp:10.5.5.5:8000".parse().unwrap();
        let l = parse_listing(&adm(n, &["-Ln"]));
        let e = find(&l, &k);
        assert_eq!(e.cols, ["sed"]);
        assert_eq!(e.dests[0].addr, sa("10.5.6.6:8000"));
        assert_eq!(e.dests[0].cols, ["Route", "6", "0", "0"]);
        assert_eq!(
            parse_timeouts(&adm(n, &["-L", "--timeout"])),
            (901, 44, 301)
        );
        ipvsct(&[
            "ipvs",
            "--netns",
            n,
            "del-dest",
            "tcp:10.5.5.5:8000",
            "10.5.6.6",
        ]);
        ipvsct(&["ipvs", "--netns", n, "del-service", "tcp:10.5.5.5:8000"]);
        assert!(parse_listing(&adm(n, &["-Ln"])).iter().all(|s| s.key != k));
        let bad = Command::new(ipvsct_bin().unwrap())
            .args([
                "ipvs",
                "--netns",
                n,
                "add-service",
                "tcp:10.5.5.5:0",
                "-s",
                "rr",
            ])
            .output()
            .unwrap();
        assert_eq!(
            bad.status.code(),
            Some(2),
            "port 0 without persistence is a usage error"
        );
        ipvsct(&["ipvs", "--netns", n, "flush"]);
    } else {
        ipvs.flush().unwrap();
    }
    assert!(ipvs.services().unwrap().is_empty());
    assert!(parse_listing(&adm(ns.name(), &["-Ln"])).is_empty());
}

#[test]
#[ignore = "needs IPVS: run inside the QEMU guest via tests/vm/ipvs/run.sh"]
fn sync_daemons_match_ipvsadm() {
    if !ready("sync_daemons_match_ipvsadm") {
        return;
    }
    let ns = Ns::new("ipvs-sy");
    let n = ns.name();
    ip(&["-n", n, "link", "add", "d0", "type", "dummy"]);
    ip(&["-n", n, "link", "set", "d0", "up"]);
    ip(&["-n", n, "addr", "add", "192.168.50.1/24", "dev", "d0"]);
    let mut ipvs = Ipvs::open(&ns.netns()).unwrap();
    assert!(ipvs.daemons().unwrap().is_empty());
    ipvs.start_daemon(&DaemonSpec::new(DaemonState::Master, "d0", 5))
        .unwrap();
    adm(
        n,
        &[
            "--start-daemon",
            "backup",
            "--mcast-interface",
            "d0",
            "--syncid",
            "6",
            "--sync-maxlen",
            "1400",
            "--mcast-group",
            "239.1.1.1",
            "--mcast-port",
            "9000",
            "--mcast-ttl",
            "2",
        ],
    );
    let lib = ipvs.daemons().unwrap();
    let text = adm(n, &["-L", "--daemon"]);
    let a = parse_daemons(&text);
    assert_eq!(lib.len(), 2, "{text}");
    assert_eq!(a.len(), 2, "{text}");
    for (d, x) in lib.iter().zip(&a) {
        assert_eq!(
            (
                d.state.name().to_owned(),
                d.mcast_ifn.clone(),
                d.sync_id,
                d.sync_maxlen.unwrap(),
                d.mcast_group.unwrap().to_string(),
                d.mcast_port.unwrap(),
                d.mcast_ttl.unwrap()
            ),
            x.clone(),
            "{text}"
        );
    }
    assert_eq!(lib[0].state, DaemonState::Master);
    assert_eq!(lib[0].mcast_group, Some("224.0.0.81".parse().unwrap()));
    assert_eq!(lib[1].sync_maxlen, Some(1400));
    let bad = ipvs
        .start_daemon(&DaemonSpec {
            mcast_group: Some("10.1.1.1".parse().unwrap()),
            ..DaemonSpec::new(DaemonState::Master, "d0", 1)
        })
        .unwrap_err();
    assert!(matches!(bad, Error::InvalidRequest(_)), "{bad}");
    if ipvsct_bin().is_some() {
        let t = ipvsct(&["ipvs", "--netns", n, "daemon"]);
        assert!(t.contains("master sync daemon (mcast=d0, syncid=5"), "{t}");
        assert!(t.contains("group=239.1.1.1, port=9000, ttl=2)"), "{t}");
        ipvsct(&["ipvs", "--netns", n, "stop-daemon", "backup"]);
    } else {
        ipvs.stop_daemon(DaemonState::Backup).unwrap();
    }
    ipvs.stop_daemon(DaemonState::Master).unwrap();
    assert!(ipvs.daemons().unwrap().is_empty());
    assert!(parse_daemons(&adm(n, &["-L", "--daemon"])).is_empty());
}

/// How many times two reads that must agree are retried, and the pause between tries.
const AGREE_TRIES: usize = 20;
const AGREE_PAUSE: Duration = Duration::from_millis(150);

type Conn = ipvs_conntrack::ipvs::Connection;

/// Notes a retry of two reads that did not agree (shown with `--show-output`), then waits.
fn retry_pause(what: &str) {
    eprintln!("retrying: {what}");
    std::thread::sleep(AGREE_PAUSE);
}

/// A connection entry without its expiry (which ticks between two reads).
fn conn_key(c: &Conn) -> String {
    format!(
        "{} {} {} {} {}",
        c.protocol.name(),
        c.client,
        c.virtual_addr,
        c.dest,
        c.state.name()
    )
}

/// The entries' keys, sorted, duplicates kept.
fn conn_keys(conns: &[Conn]) -> Vec<String> {
    let mut k: Vec<String> = conns.iter().map(conn_key).collect();
    k.sort_unstable();
    k
}

/// True if a sorted list holds an entry twice.
fn has_duplicates(sorted: &[String]) -> bool {
    sorted.windows(2).any(|w| w[0] == w[1])
}

fn read_table(ipvs: &Ipvs, sync: bool) -> Vec<Conn> {
    let it = if sync {
        ipvs.sync_connections()
    } else {
        ipvs.connections()
    };
    it.unwrap().collect::<Result<_, _>>().unwrap()
}

/// The connection table once a read is consistent: no entry listed twice and the same
/// entries as a second read right after it.
///
/// `/proc/net/ip_vs_conn` is not a snapshot: the kernel's table is shared by every
/// namespace, and each `read()` restarts the walk at an entry index counted over all
/// namespaces. When another namespace (a test running in parallel) adds or removes
/// entries between two `read()`s of one pass, the pass repeats or skips entries of this
/// namespace (seen: 38 entries listed for 34, one UDP entry twice). Bounded retries.
fn stable_connections(ipvs: &Ipvs) -> Vec<Conn> {
    let mut a = read_table(ipvs, false);
    for _ in 0..AGREE_TRIES {
        let b = read_table(ipvs, false);
        let (ka, kb) = (conn_keys(&a), conn_keys(&b));
        if ka == kb && !has_duplicates(&kb) {
            return b;
        }
        retry_pause("stable_connections: two reads differ or one lists an entry twice");
        a = read_table(ipvs, false);
    }
    let b = read_table(ipvs, false);
    panic!(
        "the connection table never read the same twice in a row (or listed an entry \
         twice):\nfirst {:#?}\nsecond {:#?}",
        conn_keys(&a),
        conn_keys(&b)
    );
}

/// Compares the library's connection table with `ipvsadm -Lnc` read right after it: the
/// same entries (each once) in the same states, the expiries within the read's lag.
/// Retried (bounded) while the two reads differ, since either can be disturbed (see
/// [`stable_connections`]) or an entry can change state between them.
fn assert_connections_match_ipvsadm(lab: &Lab, ipvs: &Ipvs) -> Vec<Conn> {
    let mut last = String::new();
    for _ in 0..AGREE_TRIES {
        let t0 = Instant::now();
        let lib = read_table(ipvs, false);
        let text = adm(lab.lb.name(), &["-Lnc"]);
        let a = parse_conns(&text);
        // ipvsadm reads later (a process start can take seconds under emulation).
        let lag = u32::try_from(t0.elapsed().as_secs()).unwrap() + 1;
        let key = |p: &str, c: SocketAddr, v: SocketAddr, d: SocketAddr, s: &str| {
            format!("{p} {c} {v} {d} {s}")
        };
        let lib_keys = conn_keys(&lib);
        let mut adm_keys: Vec<String> = a
            .iter()
            .map(|(p, c, v, d, s, _)| key(p, *c, *v, *d, s))
            .collect();
        adm_keys.sort_unstable();
        if lib_keys != adm_keys || has_duplicates(&lib_keys) {
            // An entry changed state or expired between the two reads, or a read was
            // disturbed by another namespace's entries.
            last = format!("library {lib_keys:#?}\nipvsadm -Lnc:\n{text}");
            retry_pause("assert_connections_match_ipvsadm: library and ipvsadm -Lnc differ");
            continue;
        }
        let lib_set: BTreeMap<String, u32> = lib.iter().map(|c| (conn_key(c), c.expires)).collect();
        let adm_set: BTreeMap<String, u32> = a
            .iter()
            .map(|(p, c, v, d, s, e)| (key(p, *c, *v, *d, s), *e))
            .collect();
        for (k, e) in &lib_set {
            let ae = adm_set[k];
            assert!(
                ae <= e + 1 && e - ae.min(*e) <= lag,
                "{k}: expires {e} vs ipvsadm {ae} read within {lag} s"
            );
        }
        return lib;
    }
    panic!("the library's connection table and ipvsadm -Lnc never agreed; last try:\n{last}");
}

/// (active, inactive) entries listed for `dest` of the service at `vip`.
fn listed_counts(conns: &[Conn], vip: SocketAddr, dest: SocketAddr) -> (u32, u32) {
    conns
        .iter()
        .filter(|c| c.virtual_addr == vip && c.dest == dest)
        .fold((0, 0), |(a, i), c| match c.activity() {
            Activity::Active => (a + 1, i),
            Activity::Inactive => (a, i + 1),
            Activity::Persistent => (a, i),
        })
}

/// The destinations of `keys` (with their ActiveConn/InActConn counters, read over
/// netlink) and the connection table, read back to back until every destination's
/// counters equal the entries listed for it (bounded). Two sources read at different
/// times differ while an entry changes state or expires.
fn counters_and_listing(
    ipvs: &mut Ipvs,
    keys: &[ServiceKey],
) -> (Vec<(ServiceKey, Destination)>, Vec<Conn>) {
    let vip = |k: &ServiceKey| k.socket_addr().expect("an address service");
    let mut report = String::new();
    for _ in 0..AGREE_TRIES {
        let mut dests = Vec::new();
        let mut pairs = Vec::new();
        for k in keys {
            for d in ipvs.destinations(k).unwrap() {
                pairs.push((vip(k), d.socket_addr(), (d.active_conns, d.inactive_conns)));
                dests.push((*k, d));
            }
        }
        let conns = stable_connections(ipvs);
        let bad: Vec<_> = pairs
            .iter()
            .filter(|(v, d, counters)| listed_counts(&conns, *v, *d) != *counters)
            .map(|(v, d, counters)| {
                format!(
                    "{v} -> {d}: counters {counters:?}, listed {:?}",
                    listed_counts(&conns, *v, *d)
                )
            })
            .collect();
        if bad.is_empty() {
            return (dests, conns);
        }
        report = format!(
            "{bad:#?}\ncounters {dests:#?}\nlisting {:#?}",
            conn_keys(&conns)
        );
        retry_pause("counters_and_listing: counters and listing differ");
    }
    panic!("ActiveConn/InActConn never matched the connection table:\n{report}");
}

#[test]
#[ignore = "needs IPVS: run inside the QEMU guest via tests/vm/ipvs/run.sh"]
fn traffic_stats_rates_and_connections() {
    if !ready("traffic_stats_rates_and_connections") {
        return;
    }
    let lab = Lab::new("ipvs-tr", 2);
    let mut ipvs = Ipvs::open(&lab.lb.netns()).unwrap();
    lab.nat_services(&mut ipvs);
    let tcp6 = ServiceKey::tcp(lab.vip6(80));
    ipvs.add_service(&ServiceSpec::new(tcp6, "rr")).unwrap();
    for i in 0..2 {
        ipvs.add_dest(
            &tcp6,
            &DestSpec::new(lab.rs_addr6(i, 80), ForwardMethod::Masq),
        )
        .unwrap();
    }
    let bodies6 = lab.http_gets_to(lab.vip6(80), 4);
    assert_eq!(
        bodies6.iter().filter(|b| b.contains("rs2")).count(),
        2,
        "{bodies6:?}"
    );
    let bodies = lab.http_gets(20);
    assert_eq!(
        bodies.iter().filter(|b| b.contains("rs1")).count(),
        10,
        "{bodies:?}"
    );
    assert_eq!(
        bodies.iter().filter(|b| b.contains("rs2")).count(),
        10,
        "{bodies:?}"
    );
    assert_eq!(lab.udp_pings(10), 10);

    // The estimator copies counters every 2 s: wait until they are complete.
    let tcp = ServiceKey::tcp(lab.vip(80));
    let udp = ServiceKey::udp(lab.vip(53));
    let t0 = Instant::now();
    loop {
        let t = ipvs.service(&tcp).unwrap().best_stats().unwrap().conns;
        let u = ipvs.service(&udp).unwrap().best_stats().unwrap().clone();
        if t == 20 && (u.conns, u.inpkts, u.outpkts) == (10, 10, 10) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "counters stuck at {t} / {u:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let snap = assert_stats_match_ipvsadm(lab.lb.name(), &mut ipvs);
    let st = &snap[&tcp.to_string()];
    assert_eq!(st.conns, 20);
    assert!(st.inpkts >= 20 * 4 && st.outpkts >= 20 * 3, "{st:?}");
    assert!(st.inbytes > 0 && st.outbytes > st.inbytes, "{st:?}");
    let su = ipvs.service(&udp).unwrap();
    let su = su.best_stats().unwrap();
    assert_eq!((su.conns, su.inpkts, su.outpkts), (10, 10, 10));
    assert_eq!(
        su.inbytes,
        10 * (28 + 6),
        "IP+UDP headers and 6-byte payloads"
    );
    let s32 = ipvs.service(&tcp).unwrap().stats.unwrap();
    assert_eq!(s32.conns, 20, "32-bit nest agrees");

    // Connections: 20 TCP in TIME_WAIT, 10 UDP, split evenly, and 4 over IPv6. Counts of
    // entries are lower bounds (at least the scenario's connections) and upper bounds
    // (no more than the services counted): an entry exists only for a connection the
    // kernel scheduled. Every listing is a consistent read compared with the other
    // source read right after it (see `stable_connections`).
    let c6 = ipvs.service(&tcp6).unwrap().best_stats().unwrap().conns;
    assert!(c6 >= 4, "IPv6 conns counter {c6}");
    let scheduled = st.conns + su.conns + c6;
    let all = assert_connections_match_ipvsadm(&lab, &ipvs);
    assert!(
        all.len() >= 34 && all.len() as u64 <= scheduled,
        "{} entries for {scheduled} connections: {all:#?}",
        all.len()
    );
    let (v6, conns): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| c.client.is_ipv6());
    assert!(v6.len() >= 4 && v6.len() as u64 <= c6, "{c6}: {v6:#?}");
    for c in &v6 {
        assert_eq!(c.client.ip(), "fd00:1::2".parse::<IpAddr>().unwrap());
        assert_eq!(c.virtual_addr, lab.vip6(80));
        assert!(
            c.dest == lab.rs_addr6(0, 80) || c.dest == lab.rs_addr6(1, 80),
            "{c:?}"
        );
        assert_eq!(c.activity(), Activity::Inactive);
    }
    assert!(
        conns.len() >= 30 && conns.len() as u64 <= st.conns + su.conns,
        "{conns:#?}"
    );
    let tw = conns
        .iter()
        .filter(|c| c.state == ConnState::Tcp(TcpState::TimeWait))
        .count();
    // Now and then one closes through a reset instead (CLOSE, 10 s).
    assert!(tw >= 18, "{conns:#?}");
    let closed = [
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
    ];
    assert!(conns
        .iter()
        .filter(|c| c.protocol == Protocol::Tcp)
        .all(|c| closed.iter().any(|s| c.state == ConnState::Tcp(*s))
            && c.activity() == Activity::Inactive));
    assert!(conns
        .iter()
        .filter(|c| c.protocol == Protocol::Udp)
        .all(|c| c.state == ConnState::Udp && c.activity() == Activity::Inactive));
    assert!(conns
        .iter()
        .all(|c| c.client.ip().to_string() == "10.0.1.2"));
    // Per real server: the counters equal the entries listed for it (read back to back),
    // at least its round-robin share and at most the connections it was given.
    let (dests, _) = counters_and_listing(&mut ipvs, &[tcp, udp, tcp6]);
    assert_eq!(dests.len(), 6);
    for (key, d) in &dests {
        let per_rs = if *key == udp {
            5
        } else if *key == tcp6 {
            2
        } else {
            10
        };
        let given = d.best_stats().unwrap().conns;
        assert_eq!(d.af, key.af, "{key} {}", d.addr);
        assert_eq!(d.active_conns, 0, "{key} {}", d.addr);
        assert!(
            d.inactive_conns >= per_rs && u64::from(d.inactive_conns) <= given,
            "{key} {}: {} inactive, {given} connections",
            d.addr,
            d.inactive_conns
        );
    }
    // The sync table lists the same entries as the connection table read right after it.
    let mut last = String::new();
    let mut agreed = None;
    for _ in 0..AGREE_TRIES {
        let sync = read_table(&ipvs, true);
        let now = read_table(&ipvs, false);
        let (ks, kn) = (conn_keys(&sync), conn_keys(&now));
        if ks == kn && !has_duplicates(&ks) {
            agreed = Some(sync);
            break;
        }
        last = format!("sync table {ks:#?}\nconnection table {kn:#?}");
        retry_pause("traffic: sync and connection tables differ");
    }
    let sync =
        agreed.unwrap_or_else(|| panic!("the sync and connection tables never agreed:\n{last}"));
    assert!(
        sync.len() >= 34 && sync.len() as u64 <= scheduled,
        "sync table {sync:#?}"
    );
    assert!(sync
        .iter()
        .all(|c| c.origin == Some(ipvs_conntrack::ipvs::Origin::Local)));

    if ipvsct_bin().is_some() {
        // The CLI lists as many entries as the library reads right after it.
        let mut last = String::new();
        let mut agreed = None;
        for _ in 0..10 {
            let out = ipvsct(&["ipvs", "--netns", lab.lb.name(), "connections", "--json"]);
            let now = stable_connections(&ipvs);
            if out.lines().count() == now.len() {
                agreed = Some(out);
                break;
            }
            last = format!("ipvsct:\n{out}\nlibrary {:#?}", conn_keys(&now));
            retry_pause("traffic: ipvsct connections and the library differ");
        }
        let out = agreed.unwrap_or_else(|| panic!("ipvsct and the library never agreed:\n{last}"));
        assert!(out.lines().count() >= 34, "{out}");
        let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert!(
            first["state_timeout"] == 120 || first["state_timeout"] == 300,
            "{first}"
        );
        let out = ipvsct(&["ipvs", "--netns", lab.lb.name(), "stats", "--json"]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 3 + 6);
    }

    // Zero one service, then everything.
    ipvs.zero(Some(&tcp)).unwrap();
    let z = ipvs.service(&tcp).unwrap();
    assert_eq!(z.best_stats().unwrap().conns, 0);
    assert_eq!(z.best_stats().unwrap().inbytes, 0);
    for d in ipvs.destinations(&tcp).unwrap() {
        assert_eq!(d.best_stats().unwrap().conns, 0);
    }
    assert_eq!(ipvs.service(&udp).unwrap().best_stats().unwrap().conns, 10);
    ipvs.zero(None).unwrap();
    assert_eq!(ipvs.service(&udp).unwrap().best_stats().unwrap().conns, 0);
    assert_stats_match_ipvsadm(lab.lb.name(), &mut ipvs);
}

/// Total (active, inactive) over the destinations of `key`.
fn totals(ipvs: &mut Ipvs, key: &ServiceKey) -> (u32, u32) {
    ipvs.destinations(key)
        .unwrap()
        .iter()
        .fold((0, 0), |(a, i), d| {
            (a + d.active_conns, i + d.inactive_conns)
        })
}

#[test]
#[ignore = "needs IPVS: run inside the QEMU guest via tests/vm/ipvs/run.sh"]
fn classic_inactconn_after_50_requests_drains() {
    if !ready("classic_inactconn_after_50_requests_drains") {
        return;
    }
    let lab = Lab::new("ipvs-cl", 2);
    let mut ipvs = Ipvs::open(&lab.lb.netns()).unwrap();
    let tcp = ServiceKey::tcp(lab.vip(80));
    ipvs.add_service(&ServiceSpec::new(tcp, "rr")).unwrap();
    for i in 0..2 {
        ipvs.add_dest(
            &tcp,
            &DestSpec::new(lab.rs_addr(i, 80), ForwardMethod::Masq),
        )
        .unwrap();
    }
    let start = Instant::now();
    let bodies = lab.http_gets(50);
    assert_eq!(bodies.len(), 50);
    let took = start.elapsed().as_secs() as u32;

    // The question: ipvsadm -Ln keeps showing InActConn although every request is done.
    // Round robin gives each real server 25. The library's counters are compared with
    // ipvsadm -Ln read right after them, and with the entries the library lists; all
    // three are retried together (bounded) until they agree, since an entry can change
    // state between two reads and a listing can be disturbed (see `stable_connections`).
    let mut agreed = None;
    let mut last = String::new();
    for _ in 0..AGREE_TRIES {
        let ex = ipvs.explain().unwrap();
        let text = adm(lab.lb.name(), &["-Ln"]);
        let ln = parse_listing(&text);
        let adm_cols: Vec<(u32, u32)> = find(&ln, &tcp)
            .dests
            .iter()
            .map(|d| (d.cols[2].parse().unwrap(), d.cols[3].parse().unwrap()))
            .collect();
        let lib_cols: Vec<(u32, u32)> = ex.services[0]
            .dests
            .iter()
            .map(|d| (d.active_conns, d.inactive_conns))
            .collect();
        let mut a = adm_cols.clone();
        let mut l = lib_cols.clone();
        a.sort_unstable();
        l.sort_unstable();
        let listed_ok = ex.services[0]
            .dests
            .iter()
            .all(|d| (d.listed_active, d.listed_inactive) == (d.active_conns, d.inactive_conns));
        if a == l && listed_ok {
            agreed = Some((ex, adm_cols));
            break;
        }
        last = format!("ipvsadm -Ln:\n{text}\nexplain: {:#?}", ex.services[0]);
        retry_pause("classic: counters, listing and ipvsadm -Ln differ");
    }
    // Seconds from the first request to the explain (which may have been retried).
    let explained = start.elapsed().as_secs() as u32;
    let (ex, adm_cols) = agreed.unwrap_or_else(|| {
        panic!("library, its listing and ipvsadm -Ln never agreed on ActiveConn/InActConn:\n{last}")
    });
    assert!(adm_cols.iter().all(|c| c.0 == 0), "ActiveConn {adm_cols:?}");
    let inactive_total: u32 = adm_cols.iter().map(|c| c.1).sum();
    assert!(
        (50..=54).contains(&inactive_total),
        "InActConn {adm_cols:?} after 50 requests"
    );
    assert!(adm_cols.iter().all(|c| c.1 >= 25), "rr split {adm_cols:?}");
    let taken = ex.taken_at;
    let report = &ex.services[0];
    assert_eq!(report.service, tcp);
    let table = ipvs.state_timeouts().unwrap();
    let mut predicted = 0;
    let mut time_wait = 0;
    for d in &report.dests {
        assert_eq!(d.active_conns, 0, "{}", d.dest);
        assert!(d.inactive_conns >= 25, "{}: {}", d.dest, d.inactive_conns);
        assert_eq!(
            (d.listed_active, d.listed_inactive),
            (d.active_conns, d.inactive_conns),
            "{}: /proc/net/ip_vs_conn agrees with the counters",
            d.dest
        );
        for g in &d.states {
            // Closed connections: TIME_WAIT, or (a packet race) CLOSE / CLOSE_WAIT / LAST_ACK.
            assert_eq!(g.activity, Activity::Inactive, "{g:?}");
            assert_eq!(g.state_timeout, table.for_state(&g.state), "{g:?}");
            assert!(g.max_expires <= g.state_timeout.unwrap(), "{g:?}");
        }
        let g = d
            .states
            .iter()
            .find(|g| g.state == ConnState::Tcp(TcpState::TimeWait))
            .unwrap_or_else(|| panic!("no TIME_WAIT on {}: {:?}", d.dest, d.states));
        assert_eq!(g.state_timeout, Some(120), "IPVS TIME_WAIT lasts 2 minutes");
        assert!(
            g.min_expires + explained + 3 >= 120,
            "{g:?} {explained} s after the first of {took} s of requests"
        );
        time_wait += g.count;
        for c in &d.connections {
            assert_eq!(c.idle, Some(c.state_timeout.unwrap() - c.conn.expires));
        }
        assert_eq!(
            d.inactive_drain,
            Some(d.states.iter().map(|g| g.max_expires).max().unwrap())
        );
        predicted = predicted.max(d.inactive_drain.unwrap());
    }
    assert!(
        time_wait >= 45,
        "{time_wait} of 50 in TIME_WAIT: {report:#?}"
    );
    // The table ipvsadm -Lnc lists, and the counters read again with it back to back.
    let conns = assert_connections_match_ipvsadm(&lab, &ipvs);
    // (A CLOSE entry, 10 s, may have expired since; the TIME_WAIT ones, 120 s, not.)
    assert!(
        conns.len() as u32 >= time_wait && conns.len() as u32 <= inactive_total,
        "{} entries, {time_wait} in TIME_WAIT, InActConn {inactive_total}",
        conns.len()
    );
    let (dests, listing) = counters_and_listing(&mut ipvs, &[tcp]);
    let inactive_now: u32 = dests.iter().map(|(_, d)| d.inactive_conns).sum();
    assert!(
        inactive_now >= time_wait && inactive_now <= inactive_total,
        "InActConn {inactive_now} now, {inactive_total} before, {time_wait} in TIME_WAIT"
    );
    assert_eq!(listing.len() as u32, inactive_now);
    if ipvsct_bin().is_some() {
        let t = ipvsct(&["ipvs", "--netns", lab.lb.name(), "explain"]);
        assert!(t.contains("InActConn 2"), "{t}");
        assert!(t.contains("TIME_WAIT"), "{t}");
        assert!(t.contains("InActConn drains in"), "{t}");
        let j = ipvsct(&["ipvs", "--netns", lab.lb.name(), "explain", "--json"]);
        let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
        assert_eq!(v["drain_at_unix"].as_array().unwrap().len(), 2);
        assert_eq!(
            v["services"][0]["dests"][0]["states"][0]["state"],
            "TIME_WAIT"
        );
    }

    // FIN_WAIT entries follow the configurable tcpfin timeout: shorten it to 4 s.
    ipvs.set_timeouts(&Timeouts {
        tcp_fin: Some(4),
        ..Timeouts::default()
    })
    .unwrap();
    let held = lab.half_closed(10);
    // The listing and the counters are two reads: retry (bounded) until they agree, as a
    // connection can still be changing state and a listing can be disturbed.
    let mut ex = ipvs.explain().unwrap();
    for _ in 0..AGREE_TRIES {
        if ex.services[0]
            .dests
            .iter()
            .all(|d| (d.listed_active, d.listed_inactive) == (d.active_conns, d.inactive_conns))
        {
            break;
        }
        retry_pause("classic: FIN_WAIT listing and counters differ");
        ex = ipvs.explain().unwrap();
    }
    let mut fin_wait = 0;
    for d in &ex.services[0].dests {
        assert_eq!(
            (d.listed_active, d.listed_inactive),
            (d.active_conns, d.inactive_conns),
            "{}: listing and counters never agreed: {d:#?}",
            d.dest
        );
        for g in d
            .states
            .iter()
            .filter(|g| g.state == ConnState::Tcp(TcpState::FinWait))
        {
            assert_eq!(g.state_timeout, Some(4));
            assert!(g.max_expires <= 4, "{g:?}");
            assert_eq!(g.activity, Activity::Inactive);
            assert_eq!(g.count, 5, "rr spreads them 5/5: {:?}", d.states);
            fin_wait += g.count;
        }
    }
    assert_eq!(fin_wait, 10);
    let fin_waits = |ipvs: &mut Ipvs| {
        let ex = ipvs.explain().unwrap();
        ex.services[0]
            .dests
            .iter()
            .flat_map(|d| d.states.iter())
            .filter(|g| g.state == ConnState::Tcp(TcpState::FinWait))
            .map(|g| g.count)
            .sum::<u32>()
    };
    let t1 = Instant::now();
    while fin_waits(&mut ipvs) > 0 {
        assert!(
            t1.elapsed() < Duration::from_secs(12),
            "FIN_WAIT entries did not expire"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let fin_wait_gone = t1.elapsed();
    assert!(
        fin_wait_gone <= Duration::from_secs(7),
        "took {fin_wait_gone:?}"
    );
    let (_, inactive) = totals(&mut ipvs, &tcp);
    assert!(
        inactive <= 50,
        "InActConn {inactive} after the FIN_WAIT entries expired"
    );
    drop(held);
    ipvs.set_timeouts(&Timeouts {
        tcp_fin: Some(120),
        ..Timeouts::default()
    })
    .unwrap();

    // And InActConn drains when the last TIME_WAIT entry expires, as predicted.
    let deadline = Duration::from_secs(u64::from(predicted) + 20);
    let drained = loop {
        let (a, i) = totals(&mut ipvs, &tcp);
        if a == 0 && i == 0 {
            break SystemTime::now();
        }
        let since = SystemTime::now().duration_since(taken).unwrap_or_default();
        assert!(
            since < deadline,
            "InActConn {i} still after {since:?} (predicted {predicted} s)"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let actual = drained.duration_since(taken).unwrap().as_secs_f64();
    eprintln!("InActConn drained after {actual:.1} s, predicted {predicted} s");
    // Seconds left are rounded down, and the counters are polled every 0.5 s.
    let late = actual - f64::from(predicted);
    assert!(
        (-1.0..=4.0).contains(&late),
        "drained after {actual:.1} s, predicted {predicted} s"
    );
    let left: Vec<_> = ipvs
        .connections()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    if let Ok(dir) = std::env::var("IPVSCT_VM_RESULTS") {
        let summary = format!(
            "classic scenario: 50 HTTP requests through a NAT service (rr, 2 real servers) in {took} s\n\
             InActConn 25 + 25 right after, {time_wait} of the 50 entries in TIME_WAIT (120 s)\n\
             10 half-closed connections in FIN_WAIT with tcpfin set to 4 s: gone after {:.1} s\n\
             last inactive entry predicted to expire {predicted} s after the explain; InActConn reached 0 after {actual:.1} s\n",
            fin_wait_gone.as_secs_f64()
        );
        std::fs::write(Path::new(&dir).join("classic-scenario.txt"), summary).unwrap();
    }
}

/// A recorder target: every datagram received, in order.
type Tape = Arc<Mutex<Vec<Vec<u8>>>>;

fn tape_recorder(tape: &Tape) -> ipvs_conntrack::socket::Recorder {
    let t = tape.clone();
    Box::new(move |dir, bytes| {
        if dir == Direction::Received {
            t.lock().unwrap().push(bytes.to_vec());
        }
    })
}

fn take(tape: &Tape) -> Vec<u8> {
    tape.lock().unwrap().drain(..).flatten().collect()
}

/// The command-line spelling of a service key (`tcp:ADDR:PORT`, `fwmark6:MARK`).
fn key_arg(k: &ServiceKey) -> String {
    match (k.protocol(), k.socket_addr(), k.fwmark_value()) {
        (Some(p), Some(a), _) => format!("{}:{a}", p.name().to_lowercase()),
        (_, _, Some(m)) if k.af == AddressFamily::Inet6 => format!("fwmark6:{m}"),
        (_, _, Some(m)) => format!("fwmark:{m}"),
        _ => unreachable!(),
    }
}

/// Records real IPVS messages and the matching ipvsadm output as fixtures for the
/// unit tests in `ipvs_fixtures.rs` (only when IPVSCT_FIXTURE_DIR is set).
#[test]
#[ignore = "needs IPVS: run inside the QEMU guest via tests/vm/ipvs/run.sh"]
fn record_fixtures() {
    let Ok(dir) = std::env::var("IPVSCT_FIXTURE_DIR") else {
        let _ = writeln!(
            io::stderr(),
            "SKIPPED: record_fixtures: IPVSCT_FIXTURE_DIR not set"
        );
        return;
    };
    if !ready("record_fixtures") {
        return;
    }
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();

    let lab = Lab::new("ipvs-fx", 2);
    let lb = lab.lb.name();
    let mut setup: Vec<String> = vec![
        "-A -t 10.0.0.1:80 -s rr".into(),
        "-a -t 10.0.0.1:80 -r 10.0.2.2:80 -m -w 1 -x 50 -y 5".into(),
        "-a -t 10.0.0.1:80 -r 10.0.3.2:80 -m -w 1".into(),
        "-A -u 10.0.0.1:53 -s rr".into(),
        "-a -u 10.0.0.1:53 -r 10.0.2.2:53 -m".into(),
        "-a -u 10.0.0.1:53 -r 10.0.3.2:53 -m".into(),
        "--set 900 60 300".into(),
        "--start-daemon master --mcast-interface vc --syncid 3".into(),
        "--start-daemon backup --mcast-interface vc --syncid 4 --sync-maxlen 1200 --mcast-group 239.2.3.4 --mcast-port 8900 --mcast-ttl 3".into(),
    ];
    // The extra services of the mixed configuration (no traffic).
    setup.extend(
        MIXED_SETUP
            .iter()
            // Mixed-family destinations and sync daemons exclude each other (EINVAL).
            .filter(|c| {
                !c.contains("10.0.0.1:80") && !c.contains("10.0.0.1:53") && !c.contains("10.0.9.9")
            })
            .map(|c| c.to_string()),
    );
    ip(&["-n", lb, "addr", "add", "10.7.7.7/32", "dev", "lo"]);
    for c in &setup {
        adm(lb, &c.split_whitespace().collect::<Vec<_>>());
    }
    let bodies = lab.http_gets(6);
    assert_eq!(bodies.len(), 6);
    assert_eq!(lab.udp_pings(4), 4);
    // Let the estimator copy every counter (it runs every 2 s).
    std::thread::sleep(Duration::from_millis(4500));

    // nlctrl's answer for IPVS.
    let tape: Tape = Arc::default();
    let mut sock =
        NlSocket::open(NETLINK_GENERIC, &lab.lb.netns(), &SocketOptions::default()).unwrap();
    sock.set_recorder(Some(tape_recorder(&tape)));
    let fam = genl::resolve_family(&mut sock, "IPVS", "IPVS").unwrap();
    write("family.bin", &take(&tape));

    let mut ipvs = Ipvs::open(&lab.lb.netns()).unwrap();
    assert_eq!(ipvs.family().id, fam.id);
    ipvs.socket_mut().set_recorder(Some(tape_recorder(&tape)));
    ipvs.info().unwrap();
    write("info.bin", &take(&tape));
    ipvs.config().unwrap();
    write("config.bin", &take(&tape));
    ipvs.daemons().unwrap();
    write("daemons.bin", &take(&tape));
    let tcp = ServiceKey::tcp(lab.vip(80));
    ipvs.service(&tcp).unwrap();
    write("service-get.bin", &take(&tape));

    // Services, destinations and ipvsadm's counters and rates from one estimator period.
    let mut ok = false;
    for _ in 0..15 {
        take(&tape);
        let services = ipvs.services().unwrap();
        let services_bin = take(&tape);
        let mut manifest = String::new();
        let mut dest_bins = Vec::new();
        for (i, s) in services.iter().enumerate() {
            ipvs.destinations(&s.key).unwrap();
            let name = format!("dests-{i}.bin");
            manifest.push_str(&format!("{name} {}\n", key_arg(&s.key)));
            dest_bins.push((name, take(&tape)));
        }
        // Both ipvsadm runs at once: the estimator must not run between the library's two
        // reads, and one ipvsadm run can take a second under emulation.
        let (stats, rate) = std::thread::scope(|sc| {
            let st = sc.spawn(|| adm(lb, &["-Ln", "--stats", "--exact"]));
            let rt = sc.spawn(|| adm(lb, &["-Ln", "--rate", "--exact"]));
            (st.join().unwrap(), rt.join().unwrap())
        });
        ipvs.socket_mut().set_recorder(None);
        let again = stats_snapshot(&mut ipvs);
        ipvs.socket_mut().set_recorder(Some(tape_recorder(&tape)));
        let mut first = BTreeMap::new();
        for (s, (_, bin)) in services.iter().zip(&dest_bins) {
            first.insert(s.key.to_string(), s.best_stats().unwrap().clone());
            let f = ipvs_conntrack::netlink::frame::Frames::new(bin);
            for fr in f {
                let fr = fr.unwrap();
                if fr.header.message_type != ipvs.family().id {
                    continue;
                }
                let m = ipvs_conntrack::ipvs::Message::from_frame(&fr, s.key.af).unwrap();
                if let ipvs_conntrack::ipvs::Body::Dest(_, d) = m.body {
                    first.insert(
                        format!("{} -> {}", s.key, d.socket_addr()),
                        d.best_stats().unwrap().clone(),
                    );
                }
            }
        }
        if first != again {
            eprintln!("retrying: record_fixtures: the estimator ran during the ipvsadm reads");
            std::thread::sleep(Duration::from_millis(300));
            continue;
        }
        write("services.bin", &services_bin);
        for (name, bin) in &dest_bins {
            write(name, bin);
        }
        write("dests.manifest", manifest.as_bytes());
        write("ipvsadm-stats.txt", stats.as_bytes());
        write("ipvsadm-rate.txt", rate.as_bytes());
        ok = true;
        break;
    }
    assert!(ok, "statistics never held still");
    for (name, args) in [
        ("ipvsadm-Ln.txt", &["-Ln"][..]),
        ("ipvsadm-thresholds.txt", &["-Ln", "--thresholds"]),
        ("ipvsadm-persistent-conn.txt", &["-Ln", "--persistent-conn"]),
        ("ipvsadm-tun-info.txt", &["-Ln", "--tun-info"]),
        ("ipvsadm-timeout.txt", &["-L", "--timeout"]),
        ("ipvsadm-daemon.txt", &["-L", "--daemon"]),
        ("ipvsadm-Lnc.txt", &["-Lnc"]),
    ] {
        write(name, adm(lb, args).as_bytes());
    }
    let cat = |f: &str| run(&ip_bin(), &["netns", "exec", lb, "cat", f]);
    write("ip_vs_conn.txt", cat("/proc/net/ip_vs_conn").as_bytes());
    write(
        "ip_vs_conn_sync.txt",
        cat("/proc/net/ip_vs_conn_sync").as_bytes(),
    );
    let kernel = std::fs::read_to_string("/proc/version").unwrap_or_default();
    let version = run(&ipvsadm_bin(), &["--version"]);
    let mut prov = format!(
        "Recorded by ipvs-conntrack/tests/ipvs_vm.rs::record_fixtures inside the QEMU guest\n\
         (tests/vm/ipvs/run.sh --record-fixtures).\n\nKernel: {}\nipvsadm: {}\n\
         Topology: namespace {lb} is the director (VIP {VIP} on dummy vip0), {} the client\n\
         (10.0.1.2), two real servers 10.0.2.2 and 10.0.3.2 answering HTTP on 80 and UDP echo on 53.\n\
         Traffic: 6 HTTP/1.0 GETs to 10.0.0.1:80 and 4 UDP datagrams to 10.0.0.1:53, then 4.5 s wait.\n\n\
         ipvsadm commands run in {lb}, in order:\n",
        kernel.trim(),
        version.trim(),
        lab.client.name()
    );
    for c in &setup {
        prov.push_str(&format!("  ipvsadm {c}\n"));
    }
    prov.push_str(
        "\nFiles: *.bin are the datagrams the kernel sent for one request, concatenated\n\
         (family: nlctrl GETFAMILY IPVS; info, config, daemons: GET_INFO, GET_CONFIG,\n\
         GET_DAEMON dump; service-get: GET_SERVICE tcp:10.0.0.1:80; services: GET_SERVICE\n\
         dump; dests-N: GET_DEST dump of the service named in dests.manifest). The *.txt\n\
         files are ipvsadm's and /proc's view taken in the same estimator period.\n",
    );
    write("PROVENANCE.txt", prov.as_bytes());
}

// ---- `ipvsct demo` and `ipvsct capacity` with IPVS -------------------------------------

/// Output and exit status of an ipvsct run that must finish within `limit`.
struct CliRun {
    pid: u32,
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs ipvsct with `args`, killing it after `limit`.
fn ipvsct_bounded(args: &[&str], limit: Duration) -> CliRun {
    let bin = ipvsct_bin().expect("ipvsct binary not found (set IPVSCT_BIN)");
    let mut child = Command::new(bin)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ipvsct {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    CliRun {
        pid,
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}

/// Serializes the demo tests: two first `nft` runs at once can race the nf_tables module load.
static DEMO_LOCK: Mutex<()> = Mutex::new(());

/// The demo namespaces of process `pid` that still exist.
fn demo_namespaces(pid: u32) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ipvsct-demo-") && n.ends_with(&format!("-{pid}")))
                .collect()
        })
        .unwrap_or_default()
}

/// Saves a text into the results directory (when the guest provides one).
fn save_result(name: &str, text: &str) {
    if let Ok(dir) = std::env::var("IPVSCT_VM_RESULTS") {
        let _ = std::fs::write(Path::new(&dir).join(name), text);
    }
}

/// The numbers of a line, in order (`a..b` and `0 -> 50` give both; `120 s` gives 120).
fn numbers(line: &str) -> Vec<f64> {
    line.replace("..", " ")
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|t| t.trim_matches('.'))
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.parse().ok())
        .collect()
}

#[test]
#[ignore = "needs IPVS: run inside the QEMU guest via tests/vm/ipvs/run.sh"]
fn demo_explains_inactconn_per_real_server_and_cleans_up() {
    const TEST: &str = "demo_explains_inactconn_per_real_server_and_cleans_up";
    if !ready(TEST) {
        return;
    }
    let _serial = DEMO_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let demo = ipvsct_bounded(&["demo"], Duration::from_secs(120));
    save_result("demo.txt", &demo.stdout);
    let pid = demo.pid;
    let left = demo_namespaces(pid);
    for n in &left {
        let _ = Command::new(ip_bin()).args(["netns", "del", n]).output();
    }
    assert!(left.is_empty(), "the demo left namespaces behind: {left:?}");
    assert!(
        demo.status.success(),
        "ipvsct demo failed ({}): {}\n{}",
        demo.status,
        demo.stderr,
        demo.stdout
    );
    let out = &demo.stdout;
    // Both parts: conntrack (client -> server) and IPVS (client -> VIP -> real servers).
    assert_eq!(
        out.matches(": 50 answered 200 OK").count(),
        2,
        "50 requests answered in both parts: {out}"
    );
    assert!(
        out.contains("10.213.2.2 served 25, 10.213.3.2 served 25"),
        "rr spreads the 50 requests 25/25: {out}"
    );
    let ipvs = out
        .split_once("IPVS table of ")
        .unwrap_or_else(|| panic!("no IPVS section: {out}"))
        .1;
    assert!(
        ipvs.contains("  TCP 10.213.1.100:80 rr: conns 0 -> 50,"),
        "{ipvs}"
    );

    // Per real server: ActiveConn 0, InActConn 25, the 25 entries in TIME_WAIT (120 s)
    // with their seconds left, and when InActConn drains.
    let lines: Vec<&str> = ipvs.lines().collect();
    let mut inact = Vec::new();
    let mut tw_entries = 0.0;
    let mut drains = 0;
    let mut left_values = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        if let Some(rest) = t.strip_prefix("-> ") {
            assert!(rest.contains(" Masq weight 1: ActiveConn 0, "), "{l}");
            let n = rest
                .split("InActConn ")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .and_then(|s| s.trim().parse::<u32>().ok())
                .unwrap_or_else(|| panic!("no InActConn in {l}"));
            inact.push(n);
        }
        if t.starts_with("inactive ") && t.contains(" TIME_WAIT ") {
            // inactive   TIME_WAIT       25 entries, 117..119 s left of 120 s
            let v = numbers(t);
            assert_eq!(v.len(), 4, "{t}");
            assert!(
                v[1] <= v[2] && v[2] <= 120.0,
                "seconds left within 120: {t}"
            );
            assert!(v[1] >= 100.0, "entries just closed: {t}");
            assert_eq!(v[3], 120.0, "IPVS TIME_WAIT lasts 120 s: {t}");
            tw_entries += v[0];
        }
        if t.starts_with("InActConn drains in ") {
            assert!(t.ends_with("UTC) if no new connection comes"), "{t}");
            drains += 1;
        }
        if let Some(rest) = t.strip_prefix("seconds left of each entry: ") {
            // The list may continue on indented lines.
            let mut vals = numbers(rest);
            for more in lines.iter().skip(i + 1) {
                let m = more.trim_start();
                if !m.starts_with(|c: char| c.is_ascii_digit()) {
                    break;
                }
                vals.extend(numbers(m));
            }
            assert_eq!(vals.len(), 25, "one value per entry: {rest}");
            assert!(vals.iter().all(|v| (100.0..=120.0).contains(v)), "{vals:?}");
            left_values.extend(vals);
        }
    }
    assert_eq!(inact, [25, 25], "InActConn per real server: {ipvs}");
    assert_eq!(tw_entries, 50.0, "TIME_WAIT entries: {ipvs}");
    assert_eq!(drains, 2, "one drain time per real server: {ipvs}");
    assert_eq!(left_values.len(), 50);
    assert!(ipvs.contains("By state: TIME_WAIT 50 (inactive)"), "{ipvs}");
    let all = ipvs
        .lines()
        .find(|l| l.starts_with("InActConn 50 in all; it drains within "))
        .unwrap_or_else(|| panic!("no total drain line: {ipvs}"));
    let drain = numbers(all)[1];
    assert!((100.0..=120.0).contains(&drain), "{all}");
    assert_eq!(
        drain,
        left_values.iter().copied().fold(0.0, f64::max),
        "the table drains when its longest-lived entry expires"
    );

    // The timeouts in force and the arithmetic.
    assert!(
        ipvs.contains("IPVS timeouts in force (`ipvsadm --set TCP TCPFIN UDP` = 900 120 300):"),
        "{ipvs}"
    );
    let fixed = ipvs
        .lines()
        .find(|l| l.trim_start().starts_with("(fixed)"))
        .unwrap_or_else(|| panic!("no TIME_WAIT row: {ipvs}"));
    assert!(fixed.contains("TIME_WAIT"), "{fixed}");
    assert!(fixed.contains("not settable with ipvsadm --set"), "{fixed}");
    assert_eq!(numbers(fixed)[..3], [120.0, 2.0, 50.0], "{fixed}");
    let table = ipvs
        .lines()
        .find(|l| l.trim_start().starts_with("connection table: "))
        .unwrap_or_else(|| panic!("no table line: {ipvs}"));
    let size: u32 = std::fs::read_to_string("/proc/net/ip_vs")
        .unwrap()
        .split("size=")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(
        table.contains(&format!("{size} hash buckets")) && table.contains("no maximum"),
        "{table}"
    );
    assert!(table.contains("50 entries now"), "{table}");
    let measured = ipvs
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("measured: conns counter 0 -> 50 in ")
        })
        .unwrap_or_else(|| panic!("no measured line: {ipvs}"));
    let m = numbers(measured);
    let (secs, rate) = (m[2], m[3]);
    assert!(
        (rate - 50.0 / secs).abs() <= 0.06 * rate.max(1.0),
        "rate = 50 / interval: {measured}"
    );
    let little = ipvs
        .lines()
        .find(|l| l.trim_start().starts_with("Little's law: InActConn = "))
        .unwrap_or_else(|| panic!("no Little's law line: {ipvs}"));
    let v = numbers(little);
    assert_eq!(v[1], 120.0, "{little}");
    assert!(
        (v[2] - v[0] * 120.0).abs() <= 0.05 * 120.0 + 1.0,
        "expected InActConn = rate x 120: {little}"
    );
    assert!(
        ipvs.contains("TIME_WAIT lasts 120 s in IPVS and cannot be changed"),
        "{ipvs}"
    );
    // The only suggestion that can apply to 50 TIME_WAIT entries is a larger hash table,
    // and only if the measured rate (it varies with the guest's speed) would make the
    // chains average more than 8 entries on the table's buckets.
    let chains = v[2] / f64::from(size);
    if chains > 8.0 {
        assert!(
            ipvs.contains("Suggestion: echo 'options ip_vs conn_tab_bits="),
            "chains of {chains:.1} need the conn_tab_bits suggestion: {ipvs}"
        );
    } else {
        assert!(
            ipvs.contains("Suggestions: none with an effect here"),
            "{ipvs}"
        );
    }

    // Cleanup: the service first, then the namespaces; the host's IPVS table untouched.
    let cleaned = format!(
        "Cleaned up IPVS: deleted the IPVS service TCP 10.213.1.100:80 (IPVS services left in \
         the director: 0) and namespaces ipvsct-demo-d-{pid}, ipvsct-demo-r1-{pid}, \
         ipvsct-demo-r2-{pid}."
    );
    assert!(out.contains(&cleaned), "{out}");
    assert!(out.contains("Cleaned up: deleted namespaces"), "{out}");
    let host = run(&ipvsadm_bin(), &["-Ln"]);
    assert!(!host.contains("10.213."), "host IPVS table touched: {host}");
    assert!(
        !std::fs::read_to_string("/proc/net/ip_vs_conn")
            .unwrap()
            .contains("0AD5"),
        "host connections"
    );
}

#[test]
#[ignore = "needs IPVS: run inside the QEMU guest via tests/vm/ipvs/run.sh"]
fn demo_interrupted_removes_ipvs_service_and_namespaces() {
    const TEST: &str = "demo_interrupted_removes_ipvs_service_and_namespaces";
    if !ready(TEST) {
        return;
    }
    let _serial = DEMO_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let bin = ipvsct_bin().expect("ipvsct binary not found (set IPVSCT_BIN)");
    let mut child = Command::new(bin)
        .args(["demo", "--requests", "4", "--keep", "60"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let director = format!("ipvsct-demo-d-{pid}");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = String::new();
    let kept = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) if l.starts_with("Keeping the sandbox for 60 s") => break true,
            Ok(l) => {
                seen.push_str(&l);
                seen.push('\n');
            }
            Err(_) => break false,
        }
    };
    if !kept {
        let _ = child.kill();
        let _ = child.wait();
        for n in demo_namespaces(pid) {
            let _ = Command::new(ip_bin()).args(["netns", "del", &n]).output();
        }
        let mut stderr = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
        panic!("the demo never reached its keep phase:\n{seen}\nstderr: {stderr}");
    }
    // While kept: the service and its 4 inactive entries are in the director only.
    let ln = parse_listing(&adm(&director, &["-Ln"]));
    let svc = find(&ln, &ServiceKey::tcp("10.213.1.100:80".parse().unwrap()));
    let inact: Vec<&str> = svc.dests.iter().map(|d| d.cols[3].as_str()).collect();
    assert_eq!(inact, ["2", "2"], "{ln:?}");
    assert_eq!(
        demo_namespaces(pid).len(),
        5,
        "client, server, director, 2 real servers"
    );
    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the demo did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = reader.join();
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    let left = demo_namespaces(pid);
    for n in &left {
        let _ = Command::new(ip_bin()).args(["netns", "del", n]).output();
    }
    assert!(left.is_empty(), "SIGINT left namespaces behind: {left:?}");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted, removing the sandbox"),
        "{stderr}"
    );
    assert!(!stderr.contains("deleting the IPVS service"), "{stderr}");
}

/// Makes HTTP requests to `vip` from `client`, one every 100 ms, until `stop`; returns how many.
fn paced_gets(client: Netns, vip: SocketAddr, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        client
            .run(move || {
                let mut n = 0;
                // Bounded by the caller's stop flag and by 600 requests.
                while !stop.load(Ordering::SeqCst) && n < 600 {
                    let mut s =
                        TcpStream::connect_timeout(&vip, IO_TIMEOUT).map_err(io_err("connect"))?;
                    s.set_read_timeout(Some(IO_TIMEOUT))
                        .map_err(io_err("timeout"))?;
                    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
                        .map_err(io_err("send"))?;
                    let mut resp = Vec::new();
                    s.read_to_end(&mut resp).map_err(io_err("receive"))?;
                    n += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(n)
            })
            .unwrap()
    })
}

/// Reads the service's `conns` counter once the estimator has copied every connection so
/// far (two copies, 2 s apart, show the same value; bounded).
fn settled_conns(ipvs: &mut Ipvs, key: &ServiceKey) -> u64 {
    let read = |ipvs: &mut Ipvs| ipvs.service(key).unwrap().best_stats().unwrap().conns;
    let mut last = read(ipvs);
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(2100));
        let now = read(ipvs);
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the conns counter of {key} never settled");
}

#[test]
#[ignore = "needs IPVS: run inside the QEMU guest via tests/vm/ipvs/run.sh"]
fn capacity_json_ipvs_section_matches_ipvsadm() {
    const TEST: &str = "capacity_json_ipvs_section_matches_ipvsadm";
    if !ready(TEST) {
        return;
    }
    let lab = Lab::new("ipvs-cap", 2);
    let lb = lab.lb.name().to_owned();
    let mut ipvs = Ipvs::open(&lab.lb.netns()).unwrap();
    let tcp = ServiceKey::tcp(lab.vip(80));
    ipvs.add_service(&ServiceSpec::new(tcp, "rr")).unwrap();
    for i in 0..2 {
        ipvs.add_dest(
            &tcp,
            &DestSpec::new(lab.rs_addr(i, 80), ForwardMethod::Masq),
        )
        .unwrap();
    }
    assert_eq!(lab.http_gets(20).len(), 20);
    assert_eq!(settled_conns(&mut ipvs, &tcp), 20);

    // Paced requests while `ipvsct capacity` measures for 4 s.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = paced_gets(lab.client.netns(), lab.vip(80), Arc::clone(&stop));
    let measured = ipvsct_bounded(
        &["capacity", "--netns", &lb, "--interval", "4s", "--json"],
        Duration::from_secs(90),
    );
    stop.store(true, Ordering::SeqCst);
    let sent = traffic.join().unwrap();
    assert!(measured.status.success(), "{}", measured.stderr);
    save_result("capacity-measured.json", &measured.stdout);
    let v: serde_json::Value = serde_json::from_str(measured.stdout.trim()).unwrap();
    let r = &v["ipvs"];
    assert!(r.is_object(), "no ipvs section: {}", measured.stdout);
    // The conntrack report is still there, at the top level.
    assert!(v["max_short_connections_per_second"].is_number(), "{v}");
    let total = settled_conns(&mut ipvs, &tcp);
    assert_eq!(total, 20 + sent as u64);

    // The rate: the counter's difference over the interval, which is a whole number of
    // the estimator's 2 s periods (at least the 4 s asked for).
    let svc = &r["services"][0];
    let (b, a) = (
        svc["conns_before"].as_u64().unwrap(),
        svc["conns"].as_u64().unwrap(),
    );
    assert!(20 <= b && b < a && a <= total, "{b} -> {a} of {total}");
    let secs = r["interval_seconds"].as_f64().unwrap();
    // (Within the guest's scheduling delays: a quarter period.)
    let periods = secs / 2.0;
    assert!(secs >= 4.0, "{secs}");
    assert!((periods - periods.round()).abs() < 0.25, "{secs} s");
    let rate = r["new_per_second"].as_f64().unwrap();
    assert!((rate - (a - b) as f64 / secs).abs() < 1e-9, "{rate}");
    // One request per ~100 ms plus its own time: between 1 and 10 per second.
    assert!((1.0..=10.0).contains(&rate), "{rate}");
    assert!((r["expected_inactive"].as_f64().unwrap() - rate * 120.0).abs() < 1e-6);
    let mut dest_delta = 0;
    for d in svc["dests"].as_array().unwrap() {
        let (db, da) = (
            d["conns_before"].as_u64().unwrap(),
            d["conns"].as_u64().unwrap(),
        );
        assert!(db >= 10 && da > db, "{d}");
        dest_delta += da - db;
        let dr = d["new_per_second"].as_f64().unwrap();
        assert!((dr - (da - db) as f64 / secs).abs() < 1e-9, "{d}");
    }
    assert_eq!(
        dest_delta,
        a - b,
        "the real servers' counters add up to the service's"
    );

    // A static read now equals ipvsadm (read right after it) field by field. The report
    // and ipvsadm are two reads, and the report's entries by state come from a listing
    // that another namespace's churn can disturb (see `stable_connections`): both are
    // read again (bounded) until the counters, the listing and ipvsadm agree, then
    // everything below is asserted on that read.
    let mut tries = 0;
    let (still, v, head, ln, stats) = loop {
        let still = ipvsct_bounded(
            &["capacity", "--netns", &lb, "--interval", "0", "--json"],
            Duration::from_secs(60),
        );
        assert!(still.status.success(), "{}", still.stderr);
        let v: serde_json::Value = serde_json::from_str(still.stdout.trim()).unwrap();
        let head = adm(&lb, &["-Ln"]);
        let ln = parse_listing(&head);
        let stats = parse_listing(&adm(&lb, &["-Ln", "--stats", "--exact"]));
        let agree = v["ipvs"]["services"][0]["dests"]
            .as_array()
            .is_some_and(|ds| {
                ds.iter().all(|d| {
                    let listed: u64 = d["states"]
                        .as_array()
                        .map(|gs| {
                            gs.iter()
                                .filter(|g| g["activity"] == "inactive")
                                .filter_map(|g| g["count"].as_u64())
                                .sum()
                        })
                        .unwrap_or(u64::MAX);
                    let cols = d["dest"]
                        .as_str()
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                        .and_then(|a| {
                            ln.iter()
                                .find(|s| s.key == tcp)?
                                .dests
                                .iter()
                                .find(|x| x.addr == a)
                        })
                        .map(|x| x.cols.clone());
                    Some(listed) == d["inactive_conns"].as_u64()
                        && cols.is_some_and(|c| {
                            c[2].parse::<u64>().ok() == d["active_conns"].as_u64()
                                && c[3].parse::<u64>().ok() == d["inactive_conns"].as_u64()
                        })
                })
            });
        tries += 1;
        if agree || tries == 10 {
            break (still, v, head, ln, stats);
        }
        retry_pause("capacity: report and ipvsadm differ");
    };
    save_result("capacity.json", &still.stdout);
    let r = &v["ipvs"];
    let timeouts = adm(&lb, &["-L", "--timeout"]);
    let size: u64 = head
        .split("size=")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert_eq!(r["conn_tab_size"], size);
    assert_eq!(r["conn_tab_bits"], size.trailing_zeros());
    assert_eq!(r["version"], "1.2.1");
    assert!(r["new_per_second"].is_null(), "no rate without an interval");
    let want_t: Vec<u64> = timeouts
        .split(':')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let got_t = [
        &r["timeouts"]["tcp"],
        &r["timeouts"]["tcp_fin"],
        &r["timeouts"]["udp"],
    ]
    .map(|x| x.as_u64().unwrap());
    assert_eq!(got_t.to_vec(), want_t, "{timeouts}");
    assert_eq!(r["time_wait_seconds"], 120);
    let svc = &r["services"][0];
    assert_eq!(r["services"].as_array().unwrap().len(), 1);
    let adm_svc = find(&stats, &tcp);
    assert_eq!(svc["conns"], total);
    assert_eq!(svc["conns"].as_u64().unwrap().to_string(), adm_svc.cols[0]);
    assert_eq!(svc["dwell_seconds"], 120);
    let listing = find(&ln, &tcp);
    let (mut inactive, mut listed_total) = (0, 0);
    let dests = svc["dests"].as_array().unwrap();
    assert_eq!(dests.len(), 2);
    for d in dests {
        let addr: SocketAddr = d["dest"].as_str().unwrap().parse().unwrap();
        assert!(
            addr == lab.rs_addr(0, 80) || addr == lab.rs_addr(1, 80),
            "{addr}"
        );
        let row = find_dest(listing, addr);
        // Forward Weight ActiveConn InActConn
        assert_eq!(d["active_conns"].as_u64().unwrap().to_string(), row.cols[2]);
        assert_eq!(
            d["inactive_conns"].as_u64().unwrap().to_string(),
            row.cols[3]
        );
        assert_eq!(
            d["conns"].as_u64().unwrap().to_string(),
            find_dest(adm_svc, addr).cols[0]
        );
        // Entries by state add up to InActConn; none outlives its state timeout.
        let listed: u64 = d["states"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["activity"] == "inactive")
            .map(|g| {
                assert!(
                    g["max_expires"].as_u64() <= g["state_timeout"].as_u64(),
                    "{g}"
                );
                g["count"].as_u64().unwrap()
            })
            .sum();
        assert_eq!(listed, d["inactive_conns"].as_u64().unwrap(), "{d}");
        let drain = d["inactive_drain_seconds"].as_u64().unwrap();
        assert!((100..=120).contains(&drain), "{d}");
        assert_eq!(
            d["drain_at_unix"],
            r["taken_at_unix"].as_u64().unwrap() + drain
        );
        inactive += d["inactive_conns"].as_u64().unwrap();
        listed_total += listed;
    }
    // Every connection of this test is closed and younger than 120 s, so each has an
    // inactive entry, except when a client port came back while its entry was in
    // TIME_WAIT (conn_reuse_mode: the old entry goes, the counter still counts both).
    assert!(
        inactive <= total && inactive + 5 >= total,
        "{inactive} of {total}: {r}"
    );
    assert_eq!(r["inactive_conns"], inactive);
    assert_eq!(r["entries"], listed_total);
    let slab = std::fs::read_to_string("/sys/kernel/slab/ip_vs_conn/slab_size")
        .map(|s| s.trim().parse::<u64>().unwrap())
        .unwrap();
    assert_eq!(r["entry_bytes"], slab);
    assert_eq!(r["memory_bytes"], slab * listed_total);
    let tw = r["timeout_use"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "time_wait")
        .unwrap();
    assert_eq!(
        (&tw["settable"], &tw["seconds"]),
        (&false.into(), &120.into())
    );

    // The text form shows the same real servers.
    let t = ipvsct(&["capacity", "--netns", &lb, "--interval", "0"]);
    save_result("capacity.txt", &t);
    assert!(t.contains("IPVS 1.2.1:"), "{t}");
    for d in svc["dests"].as_array().unwrap() {
        let line = format!(
            "-> {} Masq weight 1: ActiveConn 0, InActConn {}, PersistConn 0",
            d["dest"].as_str().unwrap(),
            d["inactive_conns"]
        );
        assert!(t.contains(&line), "{line} in {t}");
    }
    assert!(t.contains("rate: not measured (interval 0)"), "{t}");
    assert!(
        t.contains("TIME_WAIT lasts 120 s in IPVS and cannot be changed"),
        "{t}"
    );
}

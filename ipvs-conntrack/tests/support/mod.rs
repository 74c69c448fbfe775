//! Shared helpers for the kernel integration tests: root/CI skip logic, throw-away
//! network namespaces (deleted by a Drop guard), nftables tracking rules, traffic
//! generators that run inside namespaces, and parsers for the output of the
//! `conntrack` and `nfct` tools (`-o xml`, `-o extended`, `-S`, `timeout default-get`).
//!
//! Use it from a test file with `mod support;`. Every helper panics with a message
//! naming the command and its stderr when something that must work fails.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipvs_conntrack::Netns;

/// How long any external command may run before it is killed.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(20);

/// How long socket operations of the traffic helpers may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// True when the environment variable `CI` is `true` (skips become failures).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Reports that `test` cannot run: a loud `SKIPPED` line on stderr, or a panic under CI.
pub fn skip(test: &str, reason: &str) {
    if in_ci() {
        panic!("{test}: cannot run under CI=true: {reason}");
    }
    // Straight to the stderr handle: the test harness captures `eprintln!` output.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
}

/// True when the process runs with effective uid 0.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The full path of an executable found in `PATH` (or in the sbin directories).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// Checks that the test can run: root and every tool in `tools` present. Otherwise
/// calls [`skip`] and returns false.
pub fn preflight(test: &str, tools: &[&str]) -> bool {
    if !is_root() {
        skip(
            test,
            "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for network namespaces)",
        );
        return false;
    }
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| find_tool(t).is_none())
        .collect();
    if !missing.is_empty() {
        skip(
            test,
            &format!(
                "missing tools {missing:?} (apt-get install -y iproute2 nftables conntrack nfct)"
            ),
        );
        return false;
    }
    true
}

/// The result of a finished command.
#[derive(Debug)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub cmdline: String,
    /// Exit code (`None` if killed by a signal or the timeout).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CmdOutput {
    /// True for exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the command line and its output unless it succeeded; returns stdout.
    pub fn ok(self) -> String {
        assert!(
            self.success(),
            "command failed ({:?}): {}\nstdout: {}\nstderr: {}",
            self.code,
            self.cmdline,
            self.stdout,
            self.stderr
        );
        self.stdout
    }
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            s = String::from_utf8_lossy(&buf).into_owned();
        }
        s
    })
}

/// Runs `program args…` with stdin closed, killing it after [`CMD_TIMEOUT`].
pub fn run_cmd(program: &str, args: &[&str]) -> CmdOutput {
    let cmdline = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return CmdOutput {
                cmdline,
                code: None,
                stdout: String::new(),
                stderr: format!("spawn failed: {e}"),
            }
        }
    };
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + CMD_TIMEOUT;
    let mut code = None;
    let mut timed_out = false;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                code = status.code();
                break;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                timed_out = true;
                break;
            }
        }
    }
    let stdout = out.join().unwrap_or_default();
    let mut stderr = err.join().unwrap_or_default();
    if timed_out {
        stderr.push_str(&format!("\n[killed after {CMD_TIMEOUT:?}]"));
    }
    CmdOutput {
        cmdline,
        code,
        stdout,
        stderr,
    }
}

/// Serializes `ip netns add/del` (concurrent first use of /run/netns can race).
static NETNS_LOCK: Mutex<()> = Mutex::new(());
static NETNS_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace created for one test and deleted when dropped (also on panic).
#[derive(Debug)]
pub struct TestNs {
    name: String,
}

impl TestNs {
    /// Creates a namespace `ipvsct-t-<pid>-<n>` with `lo` up.
    pub fn create() -> Result<TestNs, String> {
        let n = NETNS_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("ipvsct-t-{}-{n}", std::process::id());
        {
            let _g = NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            let out = run_cmd("ip", &["netns", "add", &name]);
            if !out.success() {
                return Err(format!("ip netns add {name} failed: {}", out.stderr.trim()));
            }
        }
        let ns = TestNs { name };
        let up = ns.exec(&["ip", "link", "set", "lo", "up"]);
        if !up.success() {
            return Err(format!("lo up failed: {}", up.stderr.trim()));
        }
        Ok(ns)
    }

    /// The `ip netns` name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace as the library names it.
    pub fn netns(&self) -> Netns {
        Netns::named(&self.name)
    }

    /// Runs a command inside the namespace (`ip netns exec NAME …`).
    pub fn exec(&self, cmd: &[&str]) -> CmdOutput {
        let mut args = vec!["netns", "exec", self.name.as_str()];
        args.extend_from_slice(cmd);
        run_cmd("ip", &args)
    }

    /// Runs a command inside the namespace and returns its stdout; panics on failure.
    pub fn exec_ok(&self, cmd: &[&str]) -> String {
        self.exec(cmd).ok()
    }

    /// Runs `f` on a helper thread inside the namespace (sockets it creates stay there).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> std::io::Result<T> + Send) -> T {
        let r = self
            .netns()
            .run(|| Ok(f()))
            .unwrap_or_else(|e| panic!("entering {}: {e}", self.name));
        r.unwrap_or_else(|e| panic!("inside {}: {e}", self.name))
    }

    /// Writes a sysctl of this namespace (`key` in dotted form, e.g. `net.netfilter.nf_conntrack_acct`).
    pub fn set_sysctl(&self, key: &str, value: &str) {
        let path = sysctl_path(key);
        let v = value.to_owned();
        self.run(move || std::fs::write(&path, v));
    }

    /// Reads a sysctl of this namespace, trimmed.
    pub fn sysctl(&self, key: &str) -> String {
        let path = sysctl_path(key);
        self.run(move || std::fs::read_to_string(&path))
            .trim()
            .to_owned()
    }

    /// Loads an nft script (`nft -f -` semantics, passed as one argument).
    pub fn nft(&self, script: &str) {
        self.exec_ok(&["nft", script]);
    }

    /// Installs `inet` chains on output and prerouting that make conntrack track every
    /// packet of the namespace (`ct state new counter`).
    pub fn track_all(&self) {
        self.nft(
            "add table inet ipvsct_t; \
             add chain inet ipvsct_t out { type filter hook output priority 0; }; \
             add rule inet ipvsct_t out ct state new counter; \
             add chain inet ipvsct_t pre { type filter hook prerouting priority 0; }; \
             add rule inet ipvsct_t pre ct state new counter",
        );
    }

    /// Makes the kernel attach a label area to new entries of this namespace (it does so
    /// only once some rule uses labels): adds a never-matching `ct label set` rule.
    pub fn enable_labels(&self) {
        self.nft(
            "add table inet ipvsct_labels; \
             add chain inet ipvsct_labels out { type filter hook output priority 0; }; \
             add rule inet ipvsct_labels out meta mark 0x7ffffffe ct label set 127",
        );
    }

    /// Lets ICMP echo ("ping") sockets be opened by any group in this namespace.
    pub fn allow_ping_sockets(&self) {
        self.set_sysctl("net.ipv4.ping_group_range", "0 2147483647");
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _g = NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let out = run_cmd("ip", &["netns", "del", &self.name]);
        if !out.success() {
            eprintln!(
                "warning: ip netns del {} failed: {}",
                self.name,
                out.stderr.trim()
            );
        }
    }
}

fn sysctl_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key.replace('.', "/"))
}

/// Preflight plus a fresh namespace with `lo` up, every packet tracked
/// ([`TestNs::track_all`]) and ping sockets allowed. `None` when the test was skipped.
pub fn setup(test: &str, tools: &[&str]) -> Option<TestNs> {
    let mut all = vec!["ip", "nft"];
    all.extend_from_slice(tools);
    if !preflight(test, &all) {
        return None;
    }
    match TestNs::create() {
        Ok(ns) => {
            ns.track_all();
            ns.allow_ping_sockets();
            Some(ns)
        }
        Err(e) => {
            skip(test, &format!("cannot create a network namespace: {e}"));
            None
        }
    }
}

/// Addresses of the two ends of a veth pair made by [`veth_pair`].
#[derive(Clone, Copy, Debug)]
pub struct VethAddrs {
    /// IPv4 address of the first namespace's end (10.99.`subnet`.1).
    pub a4: Ipv4Addr,
    /// IPv4 address of the second namespace's end (10.99.`subnet`.2).
    pub b4: Ipv4Addr,
    /// IPv6 address of the first end (fd00:99:`subnet`::1).
    pub a6: Ipv6Addr,
    /// IPv6 address of the second end (fd00:99:`subnet`::2).
    pub b6: Ipv6Addr,
}

/// Connects two namespaces with a veth pair (`va` in `a`, `vb` in `b`), addressed
/// 10.99.`subnet`.1-2/24 and fd00:99:`subnet`::1-2/64 (no DAD, usable at once).
/// The pair disappears with the namespaces.
pub fn veth_pair(a: &TestNs, b: &TestNs, subnet: u8) -> VethAddrs {
    a.exec_ok(&[
        "ip",
        "link",
        "add",
        "va",
        "type",
        "veth",
        "peer",
        "name",
        "vb",
        "netns",
        b.name(),
    ]);
    let addrs = VethAddrs {
        a4: Ipv4Addr::new(10, 99, subnet, 1),
        b4: Ipv4Addr::new(10, 99, subnet, 2),
        a6: Ipv6Addr::new(0xfd00, 0x99, u16::from(subnet), 0, 0, 0, 0, 1),
        b6: Ipv6Addr::new(0xfd00, 0x99, u16::from(subnet), 0, 0, 0, 0, 2),
    };
    for (ns, dev, v4, v6) in [(a, "va", addrs.a4, addrs.a6), (b, "vb", addrs.b4, addrs.b6)] {
        ns.exec_ok(&["ip", "addr", "add", &format!("{v4}/24"), "dev", dev]);
        ns.exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("{v6}/64"),
            "dev",
            dev,
            "nodad",
        ]);
        ns.exec_ok(&["ip", "link", "set", dev, "up"]);
    }
    addrs
}

/// Runs `check` every 20 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The two ends of a finished TCP or UDP exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// The client's address and port (the original direction's source).
    pub client: SocketAddr,
    /// The server's address and port (the original direction's destination).
    pub server: SocketAddr,
}

/// Opens a TCP connection from `client_ns` to a fresh listener on `server_ip` in
/// `server_ns`, exchanges a request and a response, then closes the client first and
/// the server after it sees EOF, so the connection ends in TIME_WAIT.
pub fn tcp_exchange(client_ns: &TestNs, server_ns: &TestNs, server_ip: IpAddr) -> Flow {
    let listener = server_ns.run(move || TcpListener::bind(SocketAddr::new(server_ip, 0)));
    let server = listener.local_addr().expect("listener address");
    let client = client_ns.run(move || TcpStream::connect_timeout(&server, IO_TIMEOUT));
    let flow = Flow {
        client: client.local_addr().expect("client address"),
        server,
    };
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let mut conn = wait_for(IO_TIMEOUT, || listener.accept().ok().map(|(s, _)| s))
        .expect("the listener accepted no connection");
    conn.set_nonblocking(false).expect("blocking stream");
    for s in [&client, &conn] {
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    }
    let mut c = client;
    let mut buf = [0u8; 16];
    c.write_all(b"ping").expect("client write");
    conn.read_exact(&mut buf[..4]).expect("server read");
    conn.write_all(b"pong").expect("server write");
    c.read_exact(&mut buf[..4]).expect("client read");
    assert_eq!(&buf[..4], b"pong");
    drop(c);
    let n = conn.read(&mut buf).expect("server read of EOF");
    assert_eq!(n, 0, "the server expected EOF after the client closed");
    drop(conn);
    flow
}

/// Sends one UDP datagram from `client_ns` to a socket bound on `server_ip` in
/// `server_ns`; if `reply`, the server answers and the client waits for the answer.
pub fn udp_exchange(
    client_ns: &TestNs,
    server_ns: &TestNs,
    server_ip: IpAddr,
    reply: bool,
) -> Flow {
    let server_sock = server_ns.run(move || UdpSocket::bind(SocketAddr::new(server_ip, 0)));
    let server = server_sock.local_addr().expect("server address");
    let unspec: IpAddr = if server_ip.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let client = client_ns.run(move || {
        let s = UdpSocket::bind(SocketAddr::new(unspec, 0))?;
        s.connect(server)?;
        Ok(s)
    });
    for s in [&client, &server_sock] {
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    }
    client.send(b"hello").expect("udp send");
    let mut buf = [0u8; 64];
    let (n, from) = server_sock.recv_from(&mut buf).expect("udp server receive");
    assert_eq!(&buf[..n], b"hello");
    if reply {
        server_sock.send_to(b"world", from).expect("udp reply");
        let n = client.recv(&mut buf).expect("udp client receive");
        assert_eq!(&buf[..n], b"world");
    }
    Flow {
        client: client.local_addr().expect("client address"),
        server,
    }
}

/// Sends one ICMP (or ICMPv6) echo request from `ns` to `dst` over an unprivileged ping
/// socket (see [`TestNs::allow_ping_sockets`]) and waits for the reply. Returns the echo
/// identifier the kernel used.
pub fn ping(ns: &TestNs, dst: IpAddr) -> u16 {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
    let (af, proto, echo_type) = if dst.is_ipv4() {
        (AddressFamily::Inet, SockProtocol::Icmp, 8u8)
    } else {
        (AddressFamily::Inet6, SockProtocol::IcmpV6, 128u8)
    };
    let sock = ns.run(move || {
        let fd = socket(af, SockType::Datagram, SockFlag::SOCK_CLOEXEC, proto)
            .map_err(std::io::Error::from)?;
        Ok(UdpSocket::from(fd))
    });
    sock.set_read_timeout(Some(IO_TIMEOUT))
        .expect("read timeout");
    // type, code, checksum (kernel), id (kernel), sequence 1, payload.
    let req = [echo_type, 0, 0, 0, 0, 0, 0, 1, b'i', b'p', b'v', b's'];
    sock.send_to(&req, SocketAddr::new(dst, 0))
        .expect("echo request");
    let mut buf = [0u8; 128];
    let (n, _) = sock.recv_from(&mut buf).expect("echo reply");
    assert!(n >= 8, "short echo reply ({n} bytes)");
    let reply_type = if dst.is_ipv4() { 0 } else { 129 };
    assert_eq!(buf[0], reply_type, "not an echo reply");
    u16::from_be_bytes([buf[4], buf[5]])
}

/// The direction-specific part of a `conntrack -L -o xml` flow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XmlTuple {
    /// `layer3 protonum` (2 or 10).
    pub l3proto: u8,
    /// `<src>`.
    pub src: Option<IpAddr>,
    /// `<dst>`.
    pub dst: Option<IpAddr>,
    /// `layer4 protonum`.
    pub l4proto: u8,
    /// `<sport>`.
    pub sport: Option<u16>,
    /// `<dport>`.
    pub dport: Option<u16>,
    /// Tuple zone (`<zone>` inside the direction).
    pub zone: Option<u16>,
    /// `<counters><packets>`.
    pub packets: Option<u64>,
    /// `<counters><bytes>`.
    pub bytes: Option<u64>,
}

/// One `<flow>` of `conntrack -L -o xml`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XmlFlow {
    /// `<meta direction="original">`.
    pub orig: XmlTuple,
    /// `<meta direction="reply">`.
    pub reply: XmlTuple,
    /// `<state>` (TCP, SCTP, DCCP).
    pub state: Option<String>,
    /// `<timeout>` in seconds.
    pub timeout: Option<u32>,
    /// `<mark>`.
    pub mark: Option<u32>,
    /// `<secmark>`.
    pub secmark: Option<u32>,
    /// `<zone>` of the entry (CTA_ZONE).
    pub zone: Option<u16>,
    /// `<use>`.
    pub use_count: Option<u32>,
    /// `<id>`.
    pub id: Option<u32>,
    /// `<assured/>` present.
    pub assured: bool,
    /// `<unreplied/>` present.
    pub unreplied: bool,
    /// `<labels><label>` names, in order.
    pub labels: Vec<String>,
    /// `<timestamp><start>` in nanoseconds (needs `-o xml,ktimestamp`).
    pub start: Option<u64>,
    /// `<timestamp><stop>` in nanoseconds.
    pub stop: Option<u64>,
    /// `<deltatime>` in seconds.
    pub deltatime: Option<u64>,
    /// `<helper>` name.
    pub helper: Option<String>,
}

fn num<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("bad number in <{what}>: {s:?}"))
}

/// Parses the output of `conntrack -L -o xml[,…]` into flows, in output order.
pub fn parse_conntrack_xml(xml: &str) -> Result<Vec<XmlFlow>, String> {
    use quick_xml::events::Event;
    use quick_xml::Reader;

    #[derive(Clone, Copy, PartialEq)]
    enum Dir {
        Orig,
        Reply,
        Independent,
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut flows = Vec::new();
    let mut flow: Option<XmlFlow> = None;
    let mut dir = Dir::Independent;
    let mut stack: Vec<String> = Vec::new();
    // Bounded by the input length: every event consumes input.
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| format!("XML error at byte {}: {e}", reader.buffer_position()))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let attr = |key: &str| -> Result<Option<String>, String> {
                    e.try_get_attribute(key)
                        .map_err(|e| e.to_string())?
                        .map(|a| a.unescape_value().map(|v| v.into_owned()))
                        .transpose()
                        .map_err(|e| e.to_string())
                };
                match name.as_str() {
                    "flow" => flow = Some(XmlFlow::default()),
                    "meta" => {
                        dir = match attr("direction")?.as_deref() {
                            Some("original") => Dir::Orig,
                            Some("reply") => Dir::Reply,
                            _ => Dir::Independent,
                        }
                    }
                    "layer3" | "layer4" => {
                        let p: u8 = num(&name, &attr("protonum")?.unwrap_or_default())?;
                        let f = flow.as_mut().ok_or("<layer> outside <flow>")?;
                        let t = match dir {
                            Dir::Orig => &mut f.orig,
                            Dir::Reply => &mut f.reply,
                            Dir::Independent => return Err("<layer> in independent meta".into()),
                        };
                        if name == "layer3" {
                            t.l3proto = p;
                        } else {
                            t.l4proto = p;
                        }
                    }
                    "assured" | "unreplied" => {
                        let f = flow.as_mut().ok_or("flag outside <flow>")?;
                        if name == "assured" {
                            f.assured = true;
                        } else {
                            f.unreplied = true;
                        }
                    }
                    _ => {}
                }
                if matches!(ev, Event::Start(_)) {
                    stack.push(name);
                }
            }
            Event::End(ref e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                stack.pop();
                if name == "flow" {
                    flows.push(flow.take().ok_or("</flow> without <flow>")?);
                } else if name == "meta" {
                    dir = Dir::Independent;
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| e.to_string())?.into_owned();
                let Some(f) = flow.as_mut() else { continue };
                let el = stack.last().map(String::as_str).unwrap_or("");
                let parent = stack
                    .len()
                    .checked_sub(2)
                    .and_then(|i| stack.get(i))
                    .map(String::as_str)
                    .unwrap_or("");
                let tuple = match dir {
                    Dir::Orig => Some(&mut f.orig),
                    Dir::Reply => Some(&mut f.reply),
                    Dir::Independent => None,
                };
                let ip = |s: &str| -> Result<IpAddr, String> {
                    s.parse().map_err(|_| format!("bad address {s:?}"))
                };
                match (tuple, parent, el) {
                    (Some(t), "layer3", "src") => t.src = Some(ip(&text)?),
                    (Some(t), "layer3", "dst") => t.dst = Some(ip(&text)?),
                    (Some(t), "layer4", "sport") => t.sport = Some(num(el, &text)?),
                    (Some(t), "layer4", "dport") => t.dport = Some(num(el, &text)?),
                    (Some(t), "counters", "packets") => t.packets = Some(num(el, &text)?),
                    (Some(t), "counters", "bytes") => t.bytes = Some(num(el, &text)?),
                    (Some(t), "meta", "zone") => t.zone = Some(num(el, &text)?),
                    (None, "meta", "state") => f.state = Some(text),
                    (None, "meta", "timeout") => f.timeout = Some(num(el, &text)?),
                    (None, "meta", "mark") => f.mark = Some(num(el, &text)?),
                    (None, "meta", "secmark") => f.secmark = Some(num(el, &text)?),
                    (None, "meta", "zone") => f.zone = Some(num(el, &text)?),
                    (None, "meta", "use") => f.use_count = Some(num(el, &text)?),
                    (None, "meta", "id") => f.id = Some(num(el, &text)?),
                    (None, "meta", "deltatime") => f.deltatime = Some(num(el, &text)?),
                    (None, "meta", "helper") => f.helper = Some(text),
                    (None, "timestamp", "start") => f.start = Some(num(el, &text)?),
                    (None, "timestamp", "stop") => f.stop = Some(num(el, &text)?),
                    (None, "labels", "label") => f.labels.push(text),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(flows)
}

/// One line of `conntrack -L -o extended,id`: the `key=value` pairs in order (keys repeat:
/// the first `src`/`sport`/`type`… belong to the original direction, the second to the
/// reply) and the leading words (`ipv4 2 tcp 6 119 TIME_WAIT`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedLine {
    /// Words before the first `key=value` pair.
    pub head: Vec<String>,
    /// `key=value` pairs and `[FLAG]` words (as `(FLAG, "")`), in order.
    pub pairs: Vec<(String, String)>,
}

impl ExtendedLine {
    /// The values of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The entry id: the `id=` after `use=` (earlier `id=` are ICMP identifiers).
    pub fn entry_id(&self) -> Option<u32> {
        let use_pos = self.pairs.iter().position(|(k, _)| k == "use")?;
        self.pairs
            .iter()
            .skip(use_pos)
            .find(|(k, _)| k == "id")
            .and_then(|(_, v)| v.parse().ok())
    }

    /// ICMP `(type, code, id)` of the original (0) or reply (1) direction.
    pub fn icmp(&self, dir: usize) -> Option<(u8, u8, u16)> {
        let use_pos = self
            .pairs
            .iter()
            .position(|(k, _)| k == "use")
            .unwrap_or(self.pairs.len());
        let before = &self.pairs[..use_pos];
        let get = |key: &str| {
            before
                .iter()
                .filter(|(k, _)| k == key)
                .nth(dir)
                .map(|(_, v)| v.as_str())
        };
        Some((
            get("type")?.parse().ok()?,
            get("code")?.parse().ok()?,
            get("id")?.parse().ok()?,
        ))
    }
}

/// Parses `conntrack -L -o extended,id` output (the trailing summary goes to stderr).
pub fn parse_extended(text: &str) -> Vec<ExtendedLine> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut line = ExtendedLine::default();
            for w in l.split_whitespace() {
                if let Some((k, v)) = w.split_once('=') {
                    line.pairs.push((k.to_owned(), v.to_owned()));
                } else if line.pairs.is_empty() {
                    line.head.push(w.to_owned());
                } else {
                    line.pairs
                        .push((w.trim_matches(['[', ']']).to_owned(), String::new()));
                }
            }
            line
        })
        .collect()
}

/// Parses `conntrack -S`: one map of counter name to value per `cpu=N` line, keyed by CPU.
pub fn parse_conntrack_stats(text: &str) -> Result<BTreeMap<u16, BTreeMap<String, u64>>, String> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with("cpu=")) {
        let mut cpu = None;
        let mut fields = BTreeMap::new();
        for w in line.split_whitespace() {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("bad word {w:?} in {line:?}"))?;
            let v: u64 = v.parse().map_err(|_| format!("bad value in {w:?}"))?;
            if k == "cpu" {
                cpu = Some(u16::try_from(v).map_err(|_| format!("bad cpu {v}"))?);
            } else {
                fields.insert(k.to_owned(), v);
            }
        }
        out.insert(cpu.ok_or("line without cpu=")?, fields);
    }
    Ok(out)
}

/// A policy printed by `nfct timeout default-get`: `l3proto`, `l4proto` and the
/// `.STATE = seconds` lines in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NfctPolicy {
    /// `.l3proto`.
    pub l3proto: u16,
    /// `.l4proto`.
    pub l4proto: u8,
    /// `(STATE, seconds)` from the `.policy` block, in order.
    pub policy: Vec<(String, u32)>,
}

/// Parses the output of `nfct timeout default-get FAMILY PROTO`.
pub fn parse_nfct_policy(text: &str) -> Result<NfctPolicy, String> {
    let mut p = NfctPolicy::default();
    let mut in_policy = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with(".policy") {
            in_policy = true;
            continue;
        }
        if line.starts_with('}') {
            in_policy = false;
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let key = k.trim().trim_start_matches('.');
        let v = v.trim().trim_end_matches([',', ';']).trim();
        let bad = || format!("bad value in {line:?}");
        match (in_policy, key) {
            (false, "l3proto") => p.l3proto = v.parse().map_err(|_| bad())?,
            (false, "l4proto") => p.l4proto = v.parse().map_err(|_| bad())?,
            (true, state) => p
                .policy
                .push((state.to_owned(), v.parse().map_err(|_| bad())?)),
            _ => {}
        }
    }
    if p.l4proto == 0 && p.policy.is_empty() {
        return Err(format!("no policy in nfct output: {text:?}"));
    }
    Ok(p)
}

/// A private `/etc/xtables/connlabel.conf` naming every label bit `l<N>` (N = 0..127),
/// visible only to commands run through [`LabelMap::conntrack`]: they run in a private
/// mount namespace where an overlay over `/etc` holds the file, so the host is untouched.
#[derive(Debug)]
pub struct LabelMap {
    dir: PathBuf,
}

static LABELMAP_COUNTER: AtomicU32 = AtomicU32::new(0);

impl LabelMap {
    /// Prepares the overlay directories and checks that the overlay mount works here.
    pub fn new() -> Result<LabelMap, String> {
        if find_tool("unshare").is_none() {
            return Err("unshare (util-linux) not found".into());
        }
        let n = LABELMAP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ipvsct-labels-{}-{n}", std::process::id()));
        for sub in ["up", "work"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        let map = LabelMap { dir };
        let probe = map.run_in_overlay(&["cat", "/etc/xtables/connlabel.conf"]);
        if !probe.success() || !probe.stdout.contains("127 l127") {
            return Err(format!(
                "overlay over /etc unavailable: {}",
                probe.stderr.trim()
            ));
        }
        Ok(map)
    }

    fn run_in_overlay(&self, cmd: &[&str]) -> CmdOutput {
        let up = self.dir.join("up");
        let work = self.dir.join("work");
        let script = format!(
            "set -e; mount --make-rprivate /; \
             mount -t overlay ipvsct-labels -o lowerdir=/etc,upperdir={},workdir={} /etc; \
             mkdir -p /etc/xtables; \
             i=0; while [ $i -lt 128 ]; do echo \"$i l$i\"; i=$((i+1)); done > /etc/xtables/connlabel.conf; \
             exec \"$@\"",
            up.display(),
            work.display()
        );
        let mut args = vec!["--mount", "sh", "-c", script.as_str(), "sh"];
        args.extend_from_slice(cmd);
        run_cmd("unshare", &args)
    }

    /// Runs `conntrack ARGS…` inside `ns` with the label map in place.
    pub fn conntrack(&self, ns: &TestNs, args: &[&str]) -> CmdOutput {
        let mut cmd = vec!["ip", "netns", "exec", ns.name(), "conntrack"];
        cmd.extend_from_slice(args);
        self.run_in_overlay(&cmd)
    }

    /// The bit number of a label name from this map (`l5` → 5).
    pub fn bit(name: &str) -> Option<u16> {
        name.strip_prefix('l')?.parse().ok()
    }
}

impl Drop for LabelMap {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The inode of the calling thread's network namespace.
pub fn thread_netns_inode() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net")
        .expect("stat /proc/thread-self/ns/net")
        .ino()
}

/// Compares one library entry with the `conntrack -L -o xml` flow of the same id, field
/// by field, and (for ICMP) with the `-o extended,id` line. `labels`: compare label bits
/// through the `l<N>` names of [`LabelMap`]. Returns the number of fields compared, or
/// every mismatch found.
pub fn compare_entry_with_xml(
    e: &ipvs_conntrack::conntrack::Entry,
    x: &XmlFlow,
    ext: Option<&ExtendedLine>,
    labels: bool,
) -> Result<usize, String> {
    use ipvs_conntrack::conntrack::tuple::{
        IPPROTO_DCCP, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP,
    };
    use ipvs_conntrack::conntrack::{Status, Tuple};

    let mut tally = Tally::default();
    let fam = e.family.value();
    for (dir, t, xt, counters) in [
        ("orig", &e.orig, &x.orig, e.counters_orig),
        ("reply", &e.reply, &x.reply, e.counters_reply),
    ] {
        let t: &Tuple = t;
        tally.cmp(
            &format!("{dir}.l3proto"),
            fam.to_string(),
            xt.l3proto.to_string(),
        );
        tally.cmp(
            &format!("{dir}.src"),
            format!("{:?}", Some(t.src)),
            format!("{:?}", xt.src),
        );
        tally.cmp(
            &format!("{dir}.dst"),
            format!("{:?}", Some(t.dst)),
            format!("{:?}", xt.dst),
        );
        tally.cmp(
            &format!("{dir}.proto"),
            t.proto.to_string(),
            xt.l4proto.to_string(),
        );
        if !matches!(t.proto, IPPROTO_ICMP | IPPROTO_ICMPV6) {
            tally.cmp(
                &format!("{dir}.sport"),
                format!("{:?}", t.src_port),
                format!("{:?}", xt.sport),
            );
            tally.cmp(
                &format!("{dir}.dport"),
                format!("{:?}", t.dst_port),
                format!("{:?}", xt.dport),
            );
        }
        tally.cmp(
            &format!("{dir}.zone"),
            format!("{:?}", t.zone),
            format!("{:?}", xt.zone),
        );
        if xt.packets.is_some() || counters.is_some() {
            tally.cmp(
                &format!("{dir}.packets"),
                format!("{:?}", counters.map(|c| c.packets)),
                format!("{:?}", xt.packets),
            );
            tally.cmp(
                &format!("{dir}.bytes"),
                format!("{:?}", counters.map(|c| c.bytes)),
                format!("{:?}", xt.bytes),
            );
        }
    }
    if matches!(e.orig.proto, IPPROTO_ICMP | IPPROTO_ICMPV6) {
        match ext {
            Some(line) => {
                for (dir, t) in [(0, &e.orig), (1, &e.reply)] {
                    tally.cmp(
                        &format!("icmp[{dir}]"),
                        format!("{:?}", Some((t.icmp_type, t.icmp_code, t.icmp_id))),
                        format!(
                            "{:?}",
                            line.icmp(dir).map(|(a, b, c)| (Some(a), Some(b), Some(c)))
                        ),
                    );
                }
            }
            None => tally.fail("icmp: no `-o extended,id` line with this id".into()),
        }
    }
    if matches!(e.orig.proto, IPPROTO_TCP | IPPROTO_SCTP | IPPROTO_DCCP) {
        tally.cmp(
            "state",
            format!("{:?}", e.state.name()),
            format!("{:?}", x.state.as_deref()),
        );
    }
    match (e.timeout, x.timeout) {
        // The library read first: the tool's value may be up to 2 s lower.
        (Some(l), Some(t)) if l >= t && l - t <= 2 => tally.n += 1,
        (l, t) => tally.fail(format!(
            "timeout: library {l:?} vs conntrack {t:?} (2 s slack)"
        )),
    }
    tally.cmp(
        "assured",
        e.status.contains(Status::ASSURED).to_string(),
        x.assured.to_string(),
    );
    tally.cmp(
        "unreplied",
        (!e.status.contains(Status::SEEN_REPLY)).to_string(),
        x.unreplied.to_string(),
    );
    tally.cmp(
        "mark",
        format!("{:?}", Some(e.mark.unwrap_or(0))),
        format!("{:?}", x.mark),
    );
    tally.cmp(
        "secmark",
        format!("{:?}", e.secmark.filter(|m| *m != 0)),
        format!("{:?}", x.secmark),
    );
    tally.cmp(
        "zone",
        format!("{:?}", e.zone.filter(|z| *z != 0)),
        format!("{:?}", x.zone),
    );
    tally.cmp(
        "use",
        format!("{:?}", e.use_count),
        format!("{:?}", x.use_count),
    );
    tally.cmp("id", format!("{:?}", e.id), format!("{:?}", x.id));
    if x.start.is_some() || e.timestamp.is_some() {
        tally.cmp(
            "timestamp.start",
            format!("{:?}", e.timestamp.and_then(|t| t.start)),
            format!("{:?}", x.start),
        );
        tally.cmp(
            "timestamp.stop",
            format!("{:?}", e.timestamp.and_then(|t| t.stop)),
            format!("{:?}", x.stop),
        );
    }
    tally.cmp(
        "helper",
        format!("{:?}", e.helper.as_ref().map(|h| h.name.as_str())),
        format!("{:?}", x.helper.as_deref()),
    );
    if labels {
        let lib: Vec<u16> = e.labels.as_ref().map(|l| l.0.clone()).unwrap_or_default();
        let mut xml: Vec<u16> = x.labels.iter().filter_map(|s| LabelMap::bit(s)).collect();
        xml.sort_unstable();
        tally.cmp("labels", format!("{lib:?}"), format!("{xml:?}"));
    }
    if tally.bad.is_empty() {
        Ok(tally.n)
    } else {
        Err(format!("entry id {:?}: {}", e.id, tally.bad.join("; ")))
    }
}

/// Counts compared fields and collects mismatches.
#[derive(Default)]
struct Tally {
    n: usize,
    bad: Vec<String>,
}

impl Tally {
    /// Compares two renderings of one field.
    fn cmp(&mut self, what: &str, lib: String, xml: String) {
        self.n += 1;
        if lib != xml {
            self.bad
                .push(format!("{what}: library {lib} != conntrack {xml}"));
        }
    }

    /// Records a field that could not be matched.
    fn fail(&mut self, msg: String) {
        self.n += 1;
        self.bad.push(msg);
    }
}

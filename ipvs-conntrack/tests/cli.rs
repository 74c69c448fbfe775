//! End-to-end tests of the `ipvsct` binary: `demo`, `conntrack list --json`, `get` and
//! `count` against namespaces these tests create, checked against the library's own dump
//! and against `conntrack -C`.
//!
//! Tests that need root and network namespaces print `SKIPPED: <reason>` and return when
//! they cannot run, unless CI=true, where they fail instead.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ipvs_conntrack::conntrack::{Conntrack, DumpFilter, Entry};
use ipvs_conntrack::{Error, Netns};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ipvsct");
/// Longest time one command may run.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);
/// TCP connections the traffic helper makes.
const TCP_CONNECTIONS: usize = 5;

/// Skips (or, under CI=true, fails) a test that cannot run here.
fn skip(test: &str, reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: cannot run under CI=true: {reason}");
    }
    eprintln!("SKIPPED: {test}: {reason}");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The full path of a tool in PATH or the sbin directories (where `ip`, `nft` and `conntrack` live).
fn tool(name: &str) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file());
    found.map(|p| p.to_string_lossy().into_owned())
}

/// `ip` (iproute2): every namespace test needs it.
fn ip() -> Command {
    Command::new(tool("ip").unwrap_or_else(|| "ip".to_owned()))
}

/// Runs a command with a time limit and returns its output.
fn run_bounded(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {COMMAND_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

fn ipvsct(args: &[&str]) -> Output {
    run_bounded(Command::new(BIN).args(args))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A namespace created for one test, deleted on drop (also when the test fails).
struct NsGuard {
    name: String,
}

impl NsGuard {
    /// Creates `ipvsct-clitest-<pid>-<tag>` with loopback up and conntrack switched on by
    /// an nft rule; `None` (after `skip`) if this machine cannot.
    fn create(test: &str, tag: &str) -> Option<NsGuard> {
        if !is_root() {
            skip(test, "not root: network namespaces need CAP_SYS_ADMIN");
            return None;
        }
        if tool("ip").is_none() {
            skip(
                test,
                "the ip command is missing (apt-get install -y iproute2)",
            );
            return None;
        }
        let name = format!("ipvsct-clitest-{}-{tag}", std::process::id());
        let add = run_bounded(ip().args(["netns", "add", &name]));
        if !add.status.success() {
            skip(
                test,
                &format!("`ip netns add` failed: {}", text(&add.stderr).trim()),
            );
            return None;
        }
        let g = NsGuard { name };
        let up = run_bounded(ip().args(["-n", &g.name, "link", "set", "lo", "up"]));
        assert!(up.status.success(), "{}", text(&up.stderr));
        let Some(nft) = tool("nft") else {
            skip(
                test,
                "the nft command is missing (apt-get install -y nftables)",
            );
            return None;
        };
        g.nft(
            &nft,
            "table inet clitest {\n chain out {\n  type filter hook output priority 0; policy accept;\n  ct state new counter\n }\n}\n",
        );
        Some(g)
    }

    /// Loads an nft rule set into the namespace.
    fn nft(&self, nft: &str, ruleset: &str) {
        let mut child = ip()
            .args(["netns", "exec", &self.name, nft, "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ruleset.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "nft: {}", text(&out.stderr));
    }

    fn netns(&self) -> Netns {
        Netns::named(self.name.as_str())
    }
}

impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = ip()
            .args(["netns", "del", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn io_err(op: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |source| Error::Io { op, source }
}

/// Makes TCP connections (which end in TIME_WAIT) and one UDP flow on loopback inside the namespace.
fn make_traffic(ns: &NsGuard) -> u16 {
    let port = ns
        .netns()
        .run(|| {
            let l = TcpListener::bind("127.0.0.1:0").map_err(io_err("bind"))?;
            let addr = l.local_addr().map_err(io_err("local_addr"))?;
            for _ in 0..TCP_CONNECTIONS {
                let c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                    .map_err(io_err("connect"))?;
                let (mut s, _) = l.accept().map_err(io_err("accept"))?;
                // The client closes first; the server reads the end and closes too.
                drop(c);
                s.set_read_timeout(Some(Duration::from_secs(2)))
                    .map_err(io_err("timeout"))?;
                let mut buf = [0u8; 16];
                while s.read(&mut buf).map_err(io_err("read"))? > 0 {}
            }
            let u = UdpSocket::bind("127.0.0.1:0").map_err(io_err("udp bind"))?;
            u.send_to(b"x", "127.0.0.1:9").map_err(io_err("udp send"))?;
            Ok(addr.port())
        })
        .unwrap();
    // Wait (bounded) until the kernel has seen every final ACK.
    let mut ct = Conntrack::open(&ns.netns()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let tw = ct
            .list(&DumpFilter::all())
            .unwrap()
            .iter()
            .filter(|e| e.state.name() == Some("TIME_WAIT"))
            .count();
        if tw >= TCP_CONNECTIONS {
            break;
        }
        assert!(Instant::now() < deadline, "only {tw} TIME_WAIT entries");
        thread::sleep(Duration::from_millis(20));
    }
    port
}

/// Checks that a JSON line describes `e` (the library's view of the same entry).
fn assert_matches(j: &Value, e: &Entry) {
    assert_eq!(j["family"], e.family.to_string());
    let proto = ipvs_conntrack::conntrack::tuple::proto_name(e.orig.proto).unwrap();
    assert_eq!(j["proto"], proto);
    for (key, t) in [("orig", &e.orig), ("reply", &e.reply)] {
        assert_eq!(j[key]["src"], t.src.to_string(), "{key} of {j}");
        assert_eq!(j[key]["dst"], t.dst.to_string(), "{key} of {j}");
        assert_eq!(j[key]["sport"].as_u64(), t.src_port.map(u64::from), "{j}");
        assert_eq!(j[key]["dport"].as_u64(), t.dst_port.map(u64::from), "{j}");
    }
    assert_eq!(j["state"].as_str(), e.state.name(), "{j}");
    assert_eq!(
        j["state_timeout"].as_u64(),
        e.state_timeout.map(u64::from),
        "{j}"
    );
    // The two dumps are a moment apart: the seconds left may have ticked once.
    let (a, b) = (
        j["timeout"].as_u64().unwrap(),
        u64::from(e.timeout.unwrap()),
    );
    assert!(a.abs_diff(b) <= 2, "timeout {a} vs {b}");
    let status: Vec<String> = e.status.names().map(|s| s.into_owned()).collect();
    assert_eq!(j["status"], serde_json::json!(status));
    assert_eq!(j["mark"].as_u64(), e.mark.map(u64::from));
    assert_eq!(j["zone"].as_u64(), Some(u64::from(e.zone.unwrap_or(0))));
    // A get holds one more reference while the kernel answers, so only check it is there.
    assert!(j["use"].as_u64().is_some_and(|u| u >= 1), "{j}");
    assert!(j["labels"].is_array(), "{j}");
    assert!(
        j["counters"].is_null() || j["counters"]["orig"]["packets"].is_u64(),
        "{j}"
    );
    assert!(
        j["timestamp"].is_null() || j["timestamp"]["start"].is_u64(),
        "{j}"
    );
}

fn json_lines(out: &Output) -> Vec<Value> {
    assert!(out.status.success(), "ipvsct failed: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn list_json_matches_the_library_dump() {
    let Some(ns) = NsGuard::create("list_json_matches_the_library_dump", "list") else {
        return;
    };
    make_traffic(&ns);
    let out = ipvsct(&["conntrack", "list", "--json", "--netns", &ns.name]);
    let lines = json_lines(&out);
    let lib: HashMap<u32, Entry> = Conntrack::open(&ns.netns())
        .unwrap()
        .list(&DumpFilter::all())
        .unwrap()
        .into_iter()
        .map(|e| (e.id.unwrap(), e))
        .collect();
    // 5 TCP + 1 UDP (+ ICMP port unreachable needs no entry of its own).
    assert!(
        lib.len() > TCP_CONNECTIONS,
        "library saw {} entries",
        lib.len()
    );
    let mut cli_ids: Vec<u32> = lines
        .iter()
        .map(|j| u32::try_from(j["id"].as_u64().unwrap()).unwrap())
        .collect();
    cli_ids.sort_unstable();
    let mut lib_ids: Vec<u32> = lib.keys().copied().collect();
    lib_ids.sort_unstable();
    assert_eq!(cli_ids, lib_ids);
    for j in &lines {
        let id = u32::try_from(j["id"].as_u64().unwrap()).unwrap();
        assert_matches(j, &lib[&id]);
        assert_eq!(j["use"].as_u64(), lib[&id].use_count.map(u64::from), "{j}");
    }

    // Filters: kernel-side (proto, dport) and user-space (state).
    let tw = json_lines(&ipvsct(&[
        "conntrack",
        "list",
        "--json",
        "--netns",
        &ns.name,
        "--proto",
        "tcp",
        "--state",
        "time_wait",
    ]));
    assert_eq!(tw.len(), TCP_CONNECTIONS);
    assert!(tw
        .iter()
        .all(|j| j["state"] == "TIME_WAIT" && j["proto"] == "tcp"));
    assert!(tw.iter().all(|j| j["status"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "ASSURED")));
    let udp = json_lines(&ipvsct(&[
        "conntrack",
        "list",
        "--json",
        "--netns",
        &ns.name,
        "--proto",
        "udp",
        "--dport",
        "9",
    ]));
    assert_eq!(udp.len(), 1, "{udp:?}");
    assert_eq!(udp[0]["state"], "UNREPLIED");
    assert_eq!(udp[0]["orig"]["dport"], 9);

    // The human table: a header, one row per entry, and the count.
    let human = ipvsct(&["conntrack", "list", "--netns", &ns.name, "--proto", "tcp"]);
    assert!(human.status.success(), "{}", text(&human.stderr));
    let h = text(&human.stdout);
    let rows: Vec<&str> = h.lines().collect();
    assert!(rows[0].starts_with("PROTO   STATE"), "{h}");
    assert_eq!(rows.len(), TCP_CONNECTIONS + 2, "{h}");
    assert_eq!(
        rows[TCP_CONNECTIONS + 1],
        format!("{TCP_CONNECTIONS} entries")
    );
    assert!(rows[1..=TCP_CONNECTIONS]
        .iter()
        .all(|r| r.starts_with("tcp     TIME_WAIT") && r.contains("/120 127.0.0.1:")));
}

#[test]
fn get_finds_one_entry_or_says_not_found() {
    let Some(ns) = NsGuard::create("get_finds_one_entry_or_says_not_found", "get") else {
        return;
    };
    let port = make_traffic(&ns).to_string();
    let lib = Conntrack::open(&ns.netns())
        .unwrap()
        .list(&DumpFilter::all())
        .unwrap();
    let e = lib
        .iter()
        .find(|e| e.state.name() == Some("TIME_WAIT"))
        .unwrap();
    let sport = e.orig.src_port.unwrap().to_string();
    let out = ipvsct(&[
        "conntrack",
        "get",
        "--json",
        "--netns",
        &ns.name,
        "--proto",
        "tcp",
        "--src",
        "127.0.0.1",
        "--dst",
        "127.0.0.1",
        "--sport",
        &sport,
        "--dport",
        &port,
    ]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"].as_u64(), e.id.map(u64::from));
    assert_matches(&lines[0], e);

    let missing = ipvsct(&[
        "conntrack",
        "get",
        "--netns",
        &ns.name,
        "--proto",
        "tcp",
        "--src",
        "127.0.0.1",
        "--dst",
        "127.0.0.1",
        "--sport",
        "1",
        "--dport",
        &port,
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(missing.stdout.is_empty());
    assert_eq!(
        text(&missing.stderr).trim(),
        format!("ipvsct: not found: tcp 127.0.0.1:1 -> 127.0.0.1:{port}")
    );
}

#[test]
fn zone_filter_and_get_by_zone() {
    let Some(ns) = NsGuard::create("zone_filter_and_get_by_zone", "zone") else {
        return;
    };
    // UDP to port 5353 is tracked in zone 7, everything else in the default zone.
    ns.nft(
        &tool("nft").unwrap(),
        "table inet clitest_zone {\n chain out {\n  type filter hook output priority -300; policy accept;\n  udp dport 5353 ct zone set 7\n }\n}\n",
    );
    let sport = ns
        .netns()
        .run(|| {
            let u = UdpSocket::bind("127.0.0.1:0").map_err(io_err("udp bind"))?;
            u.send_to(b"x", "127.0.0.1:5353")
                .map_err(io_err("udp send"))?;
            u.send_to(b"x", "127.0.0.1:9").map_err(io_err("udp send"))?;
            Ok(u.local_addr().map_err(io_err("local_addr"))?.port())
        })
        .unwrap()
        .to_string();
    let zoned = json_lines(&ipvsct(&[
        "conntrack",
        "list",
        "--json",
        "--netns",
        &ns.name,
        "--zone",
        "7",
    ]));
    assert_eq!(zoned.len(), 1, "{zoned:?}");
    assert_eq!(zoned[0]["zone"], 7);
    assert_eq!(zoned[0]["orig"]["dport"], 5353);
    let all = json_lines(&ipvsct(&[
        "conntrack",
        "list",
        "--json",
        "--netns",
        &ns.name,
    ]));
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all
        .iter()
        .any(|j| j["zone"] == 0 && j["orig"]["dport"] == 9));

    let get = |zone: Option<&str>| {
        let mut args = vec![
            "conntrack",
            "get",
            "--json",
            "--netns",
            &ns.name,
            "--proto",
            "udp",
            "--src",
            "127.0.0.1",
            "--dst",
            "127.0.0.1",
            "--sport",
            &sport,
            "--dport",
            "5353",
        ];
        if let Some(z) = zone {
            args.extend(["--zone", z]);
        }
        ipvsct(&args)
    };
    let found = json_lines(&get(Some("7")));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], zoned[0]["id"]);
    // Without the zone the same tuple is looked up in zone 0, where it does not exist.
    let missing = get(None);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing.stderr));
    assert!(text(&missing.stderr).starts_with("ipvsct: not found: udp 127.0.0.1:"));
}

#[test]
fn count_json_matches_conntrack_tool() {
    let Some(ns) = NsGuard::create("count_json_matches_conntrack_tool", "count") else {
        return;
    };
    make_traffic(&ns);
    let out = ipvsct(&["conntrack", "count", "--json", "--netns", &ns.name]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    let c = &lines[0];
    let entries = c["entries"].as_u64().unwrap();
    assert!(entries > TCP_CONNECTIONS as u64, "{c}");
    let max = c["max"].as_u64().unwrap();
    let pct = c["percent_full"].as_f64().unwrap();
    assert!(
        (pct - entries as f64 * 100.0 / max as f64).abs() < 1e-9,
        "{c}"
    );
    // The kernel's own view through /proc inside the namespace.
    let proc_count: u64 = ns
        .netns()
        .run(|| {
            let s = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count")
                .map_err(io_err("read nf_conntrack_count"))?;
            Ok(s.trim().parse().unwrap())
        })
        .unwrap();
    assert_eq!(entries, proc_count);
    let Some(conntrack) = tool("conntrack") else {
        skip(
            "count_json_matches_conntrack_tool",
            "the conntrack command is missing (apt-get install -y conntrack)",
        );
        return;
    };
    let out = run_bounded(ip().args(["netns", "exec", &ns.name, &conntrack, "-C"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tool_count: u64 = text(&out.stdout).trim().parse().unwrap();
    assert_eq!(entries, tool_count);
}

#[test]
fn demo_shows_50_time_wait_entries_and_cleans_up() {
    const TEST: &str = "demo_shows_50_time_wait_entries_and_cleans_up";
    if !is_root() {
        skip(TEST, "not root: `ipvsct demo` needs root");
        return;
    }
    // Probe that namespaces (and nft) work here at all.
    let Some(probe) = NsGuard::create(TEST, "probe") else {
        return;
    };
    drop(probe);
    let mut child = Command::new(BIN)
        .arg("demo")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ipvsct demo did not finish within {COMMAND_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let stdout = reader.join().unwrap();
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    // Whatever happened, no namespace of that run may remain.
    let leftover: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ipvsct-demo-") && n.ends_with(&format!("-{pid}")))
                .collect()
        })
        .unwrap_or_default();
    for n in &leftover {
        let _ = ip().args(["netns", "del", n]).status();
    }
    assert!(
        leftover.is_empty(),
        "demo left namespaces behind: {leftover:?}"
    );
    assert!(status.success(), "demo failed: {stderr}\n{stdout}");

    let rows = stdout
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with(|c: char| c.is_ascii_digit())
                && t.contains("10.213.0.1:")
                && t.contains("10.213.0.2:80")
                && t.contains("TIME_WAIT")
        })
        .count();
    assert_eq!(rows, 50, "{stdout}");
    assert!(stdout.contains("50 answered 200 OK"), "{stdout}");
    assert!(stdout.contains("By state: TIME_WAIT 50\n"), "{stdout}");
    assert!(
        stdout.contains("The nft rule counted 50 new connections."),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("ipvsct-demo-c-{pid} (client)")),
        "{stdout}"
    );
    // capacity: M entries / T s in TIME_WAIT = R new connections/s at most
    let cap = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("capacity: "))
        .unwrap_or_else(|| panic!("no capacity line: {stdout}"));
    let nums: Vec<u64> = cap
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 3, "{cap}");
    assert_eq!(nums[1], 120, "TIME_WAIT timeout: {cap}");
    assert_eq!(nums[2], nums[0] / nums[1], "{cap}");
    assert!(
        cap.ends_with("new connections/s at most (Little's law)"),
        "{cap}"
    );
    assert!(stdout.contains("IPVS: "), "{stdout}");
    assert!(
        stdout.contains("Cleaned up: deleted namespaces"),
        "{stdout}"
    );
}

#[test]
fn demo_interrupted_by_ctrl_c_cleans_up() {
    const TEST: &str = "demo_interrupted_by_ctrl_c_cleans_up";
    if !is_root() {
        skip(TEST, "not root: `ipvsct demo` needs root");
        return;
    }
    let Some(probe) = NsGuard::create(TEST, "probe2") else {
        return;
    };
    drop(probe);
    let mut child = Command::new(BIN)
        .args(["demo", "--requests", "3", "--keep", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let names = [
        format!("ipvsct-demo-c-{pid}"),
        format!("ipvsct-demo-s-{pid}"),
    ];
    let exists = |n: &String| std::path::Path::new("/run/netns").join(n).exists();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait (bounded) for the demo to hold its sandbox.
    let deadline = Instant::now() + COMMAND_LIMIT;
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with("Keeping the sandbox for 60 s") => break,
            Ok(l) => {
                seen.push_str(&l);
                seen.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the demo never reached its keep phase:\n{seen}");
            }
        }
    }
    assert!(
        names.iter().all(exists),
        "sandbox missing while kept: {names:?}"
    );
    let kill = run_bounded(Command::new("sh").args(["-c", &format!("kill -INT {pid}")]));
    assert!(kill.status.success(), "{}", text(&kill.stderr));
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the demo did not stop on SIGINT");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let _ = reader.join();
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    let left: Vec<&String> = names.iter().filter(|n| exists(n)).collect();
    for n in &left {
        let _ = ip().args(["netns", "del", n.as_str()]).status();
    }
    assert!(left.is_empty(), "SIGINT left namespaces behind: {left:?}");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted, removing the sandbox"),
        "{stderr}"
    );
}

/// Runs `ipvsct` as an unprivileged user (directly when not root, through setpriv as root).
fn as_nobody(args: &[&str]) -> Option<Output> {
    if !is_root() {
        return Some(ipvsct(args));
    }
    let Some(setpriv) = tool("setpriv") else {
        skip(
            "unprivileged_runs_get_one_line_errors",
            "setpriv (util-linux) is missing: cannot drop root",
        );
        return None;
    };
    let mut cmd = Command::new(setpriv);
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        BIN,
    ])
    .args(args);
    Some(run_bounded(&mut cmd))
}

#[test]
fn unprivileged_runs_get_one_line_errors() {
    let Some(demo) = as_nobody(&["demo"]) else {
        return;
    };
    assert_eq!(demo.status.code(), Some(1));
    let msg = text(&demo.stderr);
    assert!(msg.starts_with("ipvsct: ipvsct demo needs root"), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(demo.stdout.is_empty());

    let Some(count) = as_nobody(&["conntrack", "count"]) else {
        return;
    };
    assert_eq!(count.status.code(), Some(1));
    let msg = text(&count.stderr);
    assert!(
        msg.contains("CAP_NET_ADMIN") && msg.contains("run as root"),
        "{msg}"
    );
    assert_eq!(msg.lines().count(), 1, "{msg}");
}

#[test]
fn bad_arguments_exit_with_2() {
    let out = ipvsct(&["conntrack", "list", "--dport", "80"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim(),
        "ipvsct: --sport/--dport need --proto (e.g. --proto tcp)"
    );
    let out = ipvsct(&["conntrack", "list", "--state", "TIME-WAITING"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown state 'TIME-WAITING'"));
    let out = ipvsct(&[
        "conntrack",
        "get",
        "--proto",
        "tcp",
        "--src",
        "10.0.0.1",
        "--dst",
        "::1",
        "--sport",
        "1",
        "--dport",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("does not belong to family"),
        "{}",
        text(&out.stderr)
    );
}

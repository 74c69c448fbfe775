//! End-to-end tests of `ipvsct conntrack create|update|delete|flush|events|expect` and
//! `ipvsct conntrack timeouts policy …`, each in a network namespace the test creates,
//! checked against `ipvsct conntrack list --json`, `conntrack -L` and `nfct timeout`.
//!
//! Needs root, `ip`, `nft`, `conntrack` and `nfct`; without them each test prints
//! `SKIPPED` (or fails when CI=true). `invalid_combinations_exit_2_before_anything_is_sent`
//! runs anywhere.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipvs_conntrack::conntrack::tuple::{Tuple, IPPROTO_UDP};
use ipvs_conntrack::conntrack::{Batch, Conntrack, CreateRequest};
use serde_json::Value;
use support::{run_cmd, setup, wait_for, CmdOutput, TestNs};

const BIN: &str = env!("CARGO_BIN_EXE_ipvsct");

/// Longest wait for an event process to print or to end.
const EVENT_LIMIT: Duration = Duration::from_secs(30);

fn ipvsct(args: &[&str]) -> CmdOutput {
    run_cmd(BIN, args)
}

/// Runs `ipvsct ARGS… --netns NS` and returns stdout; panics unless it exits 0.
fn ok(ns: &TestNs, args: &[&str]) -> String {
    let mut a = args.to_vec();
    a.extend(["--netns", ns.name()]);
    ipvsct(&a).ok()
}

/// Runs `ipvsct ARGS… --netns NS`, expecting exit code `code`; returns stderr.
fn fails(ns: &TestNs, args: &[&str], code: i32) -> String {
    let mut a = args.to_vec();
    a.extend(["--netns", ns.name()]);
    let out = ipvsct(&a);
    assert_eq!(
        out.code,
        Some(code),
        "{}\nstdout: {}\nstderr: {}",
        out.cmdline,
        out.stdout,
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    out.stderr
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// `conntrack list --json` of the namespace.
fn list(ns: &TestNs) -> Vec<Value> {
    json_lines(&ok(ns, &["conntrack", "list", "--json"]))
}

fn sport(j: &Value) -> u64 {
    j["orig"]["sport"].as_u64().unwrap_or(0)
}

fn ids(entries: &[Value]) -> BTreeSet<u64> {
    entries.iter().map(|j| j["id"].as_u64().unwrap()).collect()
}

/// `conntrack -L -o xml` flows of the namespace, by id.
fn tool_flows(ns: &TestNs) -> BTreeMap<u32, support::XmlFlow> {
    let xml = ns.exec_ok(&["conntrack", "-L", "-o", "xml"]);
    support::parse_conntrack_xml(&xml)
        .expect("conntrack xml")
        .into_iter()
        .map(|f| (f.id.expect("flow id"), f))
        .collect()
}

/// The tuple flags of a UDP entry 10.31.0.1:`sport` -> 10.31.0.2:53.
fn udp_flags(sport: &str) -> Vec<&str> {
    vec![
        "--proto",
        "udp",
        "--src",
        "10.31.0.1",
        "--sport",
        sport,
        "--dst",
        "10.31.0.2",
        "--dport",
        "53",
    ]
}

#[test]
fn invalid_combinations_exit_2_before_anything_is_sent() {
    // A namespace that does not exist: opening it would fail with exit code 1, so exit
    // code 2 proves the request was refused before anything was opened or sent.
    let nowhere = "/nonexistent/netns";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "conntrack",
                "create",
                "--proto",
                "tcp",
                "--src",
                "10.0.0.1",
                "--dst",
                "10.0.0.2",
                "--timeout",
                "5",
            ],
            "protocol tcp needs both ports",
        ),
        (
            vec![
                "conntrack",
                "create",
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
                "--timeout",
                "5",
            ],
            "different families",
        ),
        (
            vec![
                "conntrack",
                "create",
                "--proto",
                "udp",
                "--src",
                "10.0.0.1",
                "--dst",
                "10.0.0.2",
                "--sport",
                "1",
                "--dport",
                "2",
                "--timeout",
                "5",
                "--mark",
                "1/0xff",
            ],
            "mark mask only applies to updates",
        ),
        (
            vec![
                "conntrack",
                "create",
                "--proto",
                "udp",
                "--src",
                "10.0.0.1",
                "--dst",
                "10.0.0.2",
                "--sport",
                "1",
                "--dport",
                "2",
                "--timeout",
                "5",
                "--label",
                "200",
            ],
            "label bit 200",
        ),
        (
            vec![
                "conntrack",
                "create",
                "--proto",
                "udp",
                "--src",
                "10.0.0.1",
                "--dst",
                "10.0.0.2",
                "--sport",
                "1",
                "--dport",
                "2",
                "--timeout",
                "5",
                "--status",
                "SRC_NAT",
            ],
            "SRC_NAT",
        ),
        (
            vec![
                "conntrack",
                "create",
                "--proto",
                "udp",
                "--src",
                "10.0.0.1",
                "--dst",
                "10.0.0.2",
                "--sport",
                "1",
                "--dport",
                "2",
                "--timeout",
                "5",
                "--state",
                "ESTABLISHED",
            ],
            "--state applies to tcp, sctp and dccp",
        ),
        (
            vec![
                "conntrack",
                "update",
                "--proto",
                "udp",
                "--src",
                "10.0.0.1",
                "--dst",
                "10.0.0.2",
                "--sport",
                "1",
                "--dport",
                "2",
            ],
            "nothing to change",
        ),
        (vec!["conntrack", "delete"], "needs a tuple"),
        (
            vec!["conntrack", "flush", "--proto", "udp", "--dport", "53"],
            "needs --family",
        ),
        (
            vec![
                "conntrack",
                "expect",
                "create",
                "--proto",
                "tcp",
                "--src",
                "10.8.0.2",
                "--dst",
                "10.8.0.1",
                "--dport",
                "50000",
                "--master-src",
                "10.8.0.1",
                "--master-dst",
                "10.8.0.2",
                "--master-sport",
                "1",
                "--master-dport",
                "21",
                "--timeout",
                "5",
                "--class",
                "1",
            ],
            "class",
        ),
        (
            vec![
                "conntrack",
                "timeouts",
                "policy",
                "add",
                "p",
                "--proto",
                "tcp",
                "--set",
                "FOO=1",
            ],
            "has no state 'FOO'",
        ),
        (
            vec![
                "conntrack",
                "timeouts",
                "policy",
                "add",
                "p",
                "--proto",
                "udp",
                "--set",
                "UNREPLIED=4294967295",
            ],
            "overflows",
        ),
        (vec!["conntrack", "events", "--resync", "--new"], "--resync"),
    ];
    for (args, want) in cases {
        let mut a = args.clone();
        a.extend(["--netns", nowhere]);
        let out = ipvsct(&a);
        assert_eq!(out.code, Some(2), "{}: {}", out.cmdline, out.stderr);
        assert!(out.stdout.is_empty(), "{}", out.cmdline);
        let msg = out.stderr.trim();
        assert!(
            msg.starts_with("ipvsct: ") && msg.contains(want),
            "{}: {msg:?} lacks {want:?}",
            out.cmdline
        );
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }
}

/// create → list --json and conntrack -L show it; update changes mark and timeout;
/// delete removes exactly that entry (by tuple, by id); flush by mark removes exactly
/// the marked ones.
#[test]
fn create_update_delete_flush_round_trip() {
    const T: &str = "create_update_delete_flush_round_trip";
    let Some(ns) = setup(T, &["conntrack"]) else {
        return;
    };
    ns.enable_labels();
    let tcp = [
        "--proto",
        "tcp",
        "--src",
        "10.31.0.1",
        "--sport",
        "1000",
        "--dst",
        "10.31.0.2",
        "--dport",
        "80",
    ];
    let mut create = vec!["conntrack", "create"];
    create.extend(tcp);
    create.extend([
        "--timeout",
        "300",
        "--state",
        "established",
        "--status",
        "SEEN_REPLY,ASSURED",
        "--mark",
        "0x42",
        "--zone",
        "7",
        "--label",
        "1,70",
    ]);
    ok(&ns, &create);
    let all = list(&ns);
    assert_eq!(all.len(), 1, "{all:?}");
    let e = &all[0];
    assert_eq!(e["proto"], "tcp");
    assert_eq!(e["family"], "ipv4");
    assert_eq!(
        e["orig"],
        serde_json::json!({"src": "10.31.0.1", "dst": "10.31.0.2", "sport": 1000, "dport": 80})
    );
    assert_eq!(
        e["reply"],
        serde_json::json!({"src": "10.31.0.2", "dst": "10.31.0.1", "sport": 80, "dport": 1000})
    );
    assert_eq!(e["state"], "ESTABLISHED");
    assert_eq!(e["mark"], 0x42);
    assert_eq!(e["zone"], 7);
    assert_eq!(e["labels"], serde_json::json!([1, 70]));
    assert_eq!(
        e["status"],
        serde_json::json!(["SEEN_REPLY", "ASSURED", "CONFIRMED"])
    );
    let left = e["timeout"].as_u64().unwrap();
    assert!((297..=300).contains(&left), "{e}");
    // The tool agrees.
    let id = u32::try_from(e["id"].as_u64().unwrap()).unwrap();
    let flows = tool_flows(&ns);
    assert_eq!(flows.len(), 1);
    let x = &flows[&id];
    assert_eq!(
        (x.orig.sport, x.orig.dport, x.reply.sport, x.reply.dport),
        (Some(1000), Some(80), Some(80), Some(1000))
    );
    assert_eq!((x.mark, x.zone), (Some(0x42), Some(7)));
    assert_eq!(x.state.as_deref(), Some("ESTABLISHED"));
    assert!(x.assured && !x.unreplied);
    assert!(left.abs_diff(u64::from(x.timeout.unwrap())) <= 2);
    // The same tuple again: EEXIST as a one-line message, exit code 1.
    let msg = fails(&ns, &create, 1);
    assert_eq!(
        msg.trim(),
        "ipvsct: already exists: tcp 10.31.0.1:1000 -> 10.31.0.2:80 zone 7"
    );

    // Update: only the low byte of the mark, and the timeout.
    let mut update = vec!["conntrack", "update"];
    update.extend(tcp);
    update.extend(["--zone", "7", "--mark", "0x11/0xff", "--timeout", "5000"]);
    ok(&ns, &update);
    let e = &list(&ns)[0];
    assert_eq!(e["mark"], 0x11, "(0x42 & !0xff) ^ 0x11: {e}");
    let left = e["timeout"].as_u64().unwrap();
    assert!((4997..=5000).contains(&left), "{e}");
    assert_eq!(e["id"], id);
    let x = &tool_flows(&ns)[&id];
    assert_eq!(x.mark, Some(0x11));
    assert!(left.abs_diff(u64::from(x.timeout.unwrap())) <= 2);
    let mut missing = vec!["conntrack", "update"];
    missing.extend(udp_flags("9"));
    missing.extend(["--timeout", "5"]);
    let msg = fails(&ns, &missing, 1);
    assert!(msg.starts_with("ipvsct: not found: udp 10.31.0.1:9 -> 10.31.0.2:53"));

    // Destination NAT rewrites the reply source.
    let mut dnat = vec!["conntrack", "create"];
    dnat.extend(udp_flags("2000"));
    dnat.extend(["--timeout", "100", "--dst-nat", "10.3.3.3:8080"]);
    ok(&ns, &dnat);
    let e = list(&ns)
        .into_iter()
        .find(|j| sport(j) == 2000)
        .expect("NAT entry");
    assert_eq!(
        e["reply"],
        serde_json::json!({"src": "10.3.3.3", "dst": "10.31.0.1", "sport": 8080, "dport": 2000})
    );
    assert!(e["status"].as_array().unwrap().contains(&"DST_NAT".into()));

    // Entries for the flushes: marks 2 (IPv4 and IPv6) and 3.
    let marks = [("3001", "2"), ("3002", "2"), ("3003", "3"), ("3004", "3")];
    for (port, mark) in marks {
        let mut c = vec!["conntrack", "create"];
        c.extend(udp_flags(port));
        c.extend(["--timeout", "100", "--mark", mark]);
        ok(&ns, &c);
    }
    ok(
        &ns,
        &[
            "conntrack",
            "create",
            "--proto",
            "udp",
            "--src",
            "fd00::1",
            "--sport",
            "3005",
            "--dst",
            "fd00::2",
            "--dport",
            "53",
            "--timeout",
            "100",
            "--mark",
            "2",
        ],
    );
    let before = list(&ns);
    assert_eq!(before.len(), 7);

    // Delete by tuple (with its zone): exactly that one goes.
    let mut del = vec!["conntrack", "delete"];
    del.extend(tcp);
    del.extend(["--zone", "7"]);
    ok(&ns, &del);
    let after = list(&ns);
    let mut want = ids(&before);
    want.remove(&u64::from(id));
    assert_eq!(ids(&after), want);
    let msg = fails(&ns, &del, 1);
    assert!(
        msg.contains("not found: tcp 10.31.0.1:1000 -> 10.31.0.2:80 zone 7"),
        "{msg}"
    );

    // Delete by id: exactly that one goes.
    let victim = after.iter().find(|j| sport(j) == 3003).unwrap()["id"]
        .as_u64()
        .unwrap();
    ok(&ns, &["conntrack", "delete", "--id", &victim.to_string()]);
    let after = list(&ns);
    want.remove(&victim);
    assert_eq!(ids(&after), want);
    let msg = fails(
        &ns,
        &["conntrack", "delete", "--id", &victim.to_string()],
        1,
    );
    assert!(msg.contains("not found"), "{msg}");

    // Flush by mark 2: exactly the three marked entries, both families.
    ok(&ns, &["conntrack", "flush", "--mark", "2"]);
    let after = list(&ns);
    let ports: BTreeSet<u64> = after.iter().map(sport).collect();
    assert_eq!(ports, BTreeSet::from([2000, 3004]), "{after:?}");
    assert!(after.iter().all(|j| j["mark"] != 2));
    assert_eq!(tool_flows(&ns).len(), 2);
    // Flush by family and tuple; then everything.
    ok(
        &ns,
        &[
            "conntrack",
            "flush",
            "--proto",
            "udp",
            "--dport",
            "53",
            "--src",
            "10.31.0.1",
            "--sport",
            "3004",
        ],
    );
    let ports: BTreeSet<u64> = list(&ns).iter().map(sport).collect();
    assert_eq!(ports, BTreeSet::from([2000]));
    ok(&ns, &["conntrack", "flush"]);
    assert!(list(&ns).is_empty());
    assert!(tool_flows(&ns).is_empty());
}

/// An `ipvsct conntrack events` process whose stdout and stderr lines are collected;
/// killed when dropped.
struct EventsProc {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn collect_lines<R: std::io::Read + Send + 'static>(
    r: R,
    into: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        // Ends at EOF, when the process exits or is killed.
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            into.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    })
}

impl EventsProc {
    /// Starts `ipvsct conntrack events ARGS… --netns NS` and waits until it has subscribed.
    fn start(ns: &TestNs, args: &[&str]) -> EventsProc {
        let mut child = Command::new(BIN)
            .args(["conntrack", "events", "--netns", ns.name()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ipvsct conntrack events");
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect_lines(child.stdout.take().expect("stdout"), Arc::clone(&out)),
            collect_lines(child.stderr.take().expect("stderr"), Arc::clone(&err)),
        ];
        let p = EventsProc {
            child,
            out,
            err,
            readers,
        };
        let ready = wait_for(EVENT_LIMIT, || {
            p.stderr()
                .iter()
                .any(|l| l.starts_with("ipvsct: listening for "))
                .then_some(())
        });
        assert!(ready.is_some(), "events never subscribed: {:?}", p.stderr());
        p
    }

    fn stdout(&self) -> Vec<String> {
        self.out.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn stderr(&self) -> Vec<String> {
        self.err.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits (bounded) until stdout satisfies `done`.
    fn wait_stdout(&self, what: &str, mut done: impl FnMut(&[String]) -> bool) {
        let ok = wait_for(EVENT_LIMIT, || done(&self.stdout()).then_some(()));
        let out = self.stdout();
        let tail = &out[out.len().saturating_sub(10)..];
        assert!(
            ok.is_some(),
            "{what}: not within {EVENT_LIMIT:?}; {} lines, the last: {tail:#?}; stderr {:?}",
            out.len(),
            self.stderr()
        );
    }

    /// Sends SIGINT (Ctrl-C).
    fn interrupt(&self) {
        run_cmd("kill", &["-INT", &self.child.id().to_string()]).ok();
    }

    /// Waits (bounded) for the process to exit; returns its exit code, stdout and stderr.
    fn finish(mut self) -> (Option<i32>, Vec<String>, Vec<String>) {
        let deadline = Instant::now() + EVENT_LIMIT;
        let code = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st.code(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("ipvsct conntrack events did not end: {:?}", self.stderr());
                }
            }
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        (code, self.stdout(), self.stderr())
    }
}

impl Drop for EventsProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// NEW/UPDATE/DESTROY lines from `events --json --count 6` while the test creates,
/// updates and deletes an entry with the CLI and makes a real TCP connection; a human
/// `--proto tcp` stream stopped by Ctrl-C sees the same handshake.
#[test]
fn events_stream_new_update_destroy() {
    const T: &str = "events_stream_new_update_destroy";
    let Some(ns) = setup(T, &[]) else {
        return;
    };
    let json = EventsProc::start(&ns, &["--json", "--count", "6", "--timeout", "30"]);
    let human = EventsProc::start(&ns, &["--proto", "tcp"]);

    let mut c = vec!["conntrack", "create"];
    c.extend(udp_flags("4000"));
    c.extend(["--timeout", "100", "--mark", "1"]);
    ok(&ns, &c);
    let mut u = vec!["conntrack", "update"];
    u.extend(udp_flags("4000"));
    u.extend(["--mark", "7"]);
    ok(&ns, &u);
    let mut d = vec!["conntrack", "delete"];
    d.extend(udp_flags("4000"));
    ok(&ns, &d);
    let server: IpAddr = "127.0.0.1".parse().unwrap();
    let flow = support::tcp_exchange(&ns, &ns, server);

    let (code, out, err) = json.finish();
    assert_eq!(code, Some(0), "{err:?}");
    assert_eq!(
        err.last().map(String::as_str),
        Some("ipvsct: 6 event(s) shown, 0 overrun(s)")
    );
    let lines = json_lines(&out.join("\n"));
    assert_eq!(lines.len(), 6, "{out:#?}");
    let kinds: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|j| {
            (
                j["kind"].as_str().unwrap(),
                j["proto"].as_str().unwrap(),
                j["state"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("new", "udp", "UNREPLIED"),
            ("update", "udp", "UNREPLIED"),
            ("destroy", "udp", "UNREPLIED"),
            ("new", "tcp", "SYN_SENT"),
            ("update", "tcp", "SYN_RECV"),
            ("update", "tcp", "ESTABLISHED"),
        ],
        "{out:#?}"
    );
    assert!(lines.iter().all(|j| j["type"] == "conntrack"));
    // The UDP entry: one id throughout, the mark as created, then as updated.
    assert_eq!(lines[0]["mark"], 1);
    assert_eq!(lines[1]["mark"], 7);
    assert_eq!(lines[0]["id"], lines[2]["id"]);
    assert_eq!(sport(&lines[0]), 4000);
    assert_eq!(lines[0]["state_timeout"], 30, "UDP unreplied default");
    for j in &lines[3..] {
        assert_eq!(sport(j), u64::from(flow.client.port()), "{j}");
        assert_eq!(j["orig"]["dport"], flow.server.port());
    }
    assert_eq!(
        lines[5]["status"],
        serde_json::json!(["SEEN_REPLY", "ASSURED", "CONFIRMED"])
    );

    // The human stream saw only TCP; Ctrl-C ends it with exit code 0.
    human.wait_stdout("three TCP events", |l| l.len() >= 3);
    human.interrupt();
    let (code, out, err) = human.finish();
    assert_eq!(code, Some(0), "{err:?}");
    let ends = format!(
        " src=127.0.0.1 dst=127.0.0.1 sport={} dport={} src=127.0.0.1 dst=127.0.0.1 sport={} dport={}",
        flow.client.port(),
        flow.server.port(),
        flow.server.port(),
        flow.client.port()
    );
    for (line, head) in out.iter().zip([
        "[NEW] tcp SYN_SENT ",
        "[UPDATE] tcp SYN_RECV ",
        "[UPDATE] tcp ESTABLISHED ",
    ]) {
        assert!(line.starts_with(head), "{line:?} vs {head:?}");
        assert!(line.contains(&ends), "{line:?} lacks {ends:?}");
    }
    assert!(out.iter().all(|l| l.contains(" tcp ")), "{out:#?}");
    let summary = err.last().cloned().unwrap_or_default();
    assert_eq!(
        summary,
        format!("ipvsct: {} event(s) shown, 0 overrun(s)", out.len())
    );
}

fn udp_tuple(sport: u16) -> Tuple {
    Tuple::with_ports(
        IPPROTO_UDP,
        "10.32.0.1".parse().unwrap(),
        sport,
        "10.32.0.2".parse().unwrap(),
        53,
    )
}

/// With a tiny receive buffer a burst of 3000 NEW events overruns it: the overrun is
/// its own JSON line, the stream goes on, and `--resync` reports every entry it missed.
#[test]
fn events_overrun_is_reported_and_resync_catches_up() {
    const T: &str = "events_overrun_is_reported_and_resync_catches_up";
    const N: u16 = 3000;
    let Some(ns) = setup(T, &[]) else {
        return;
    };
    let p = EventsProc::start(
        &ns,
        &[
            "--json",
            "--resync",
            "--rcvbuf",
            "4096",
            "--proto",
            "udp",
            "--timeout",
            "60",
        ],
    );
    let mut ct = Conntrack::open(&ns.netns()).expect("client");
    let mut batch = Batch::new();
    for i in 1..=N {
        batch
            .push(&CreateRequest::new(udp_tuple(i), 300))
            .expect("push");
    }
    let report = ct.execute_batch(&batch).expect("batch");
    assert!(report.all_succeeded(), "{report:?}");

    // Every entry shows up as a NEW event or as an entry the resync found.
    let seen = |lines: &[String]| -> BTreeSet<u64> {
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|j| j["type"] == "conntrack" && j["kind"] == "new")
            .map(|j| sport(&j))
            .collect()
    };
    let all: BTreeSet<u64> = (1..=u64::from(N)).collect();
    p.wait_stdout("every entry reported", |l| seen(l).is_superset(&all));
    // After the burst the stream carries on with ordinary events.
    ct.create(&CreateRequest::new(udp_tuple(65000), 300))
        .expect("sentinel");
    p.wait_stdout("the event after the burst", |l| {
        l.iter()
            .any(|l| l.contains("\"sport\":65000") && !l.contains("\"resync\":true"))
    });
    p.interrupt();
    let (code, out, err) = p.finish();
    assert_eq!(code, Some(0), "{err:?}");
    let lines = json_lines(&out.join("\n"));
    let overruns: Vec<&Value> = lines.iter().filter(|j| j["type"] == "overrun").collect();
    assert!(!overruns.is_empty(), "no overrun with a 4 KiB buffer");
    for o in &overruns {
        assert!(o["failed_receives"].as_u64().unwrap() >= 1, "{o}");
        assert!(o["at_ms"].as_u64().unwrap() >= o["since_ms"].as_u64().unwrap());
    }
    let totals: Vec<u64> = overruns
        .iter()
        .map(|o| o["total"].as_u64().unwrap())
        .collect();
    assert!(totals.windows(2).all(|w| w[0] < w[1]), "{totals:?}");
    let resyncs: Vec<&Value> = lines.iter().filter(|j| j["type"] == "resync").collect();
    // Overruns while the queue is read empty share one resync; the last overrun has one.
    assert!(!resyncs.is_empty() && resyncs.len() <= overruns.len());
    let last_overrun = lines.iter().rposition(|j| j["type"] == "overrun").unwrap();
    assert!(
        lines[last_overrun..].iter().any(|j| j["type"] == "resync"),
        "no resync after the last overrun"
    );
    let added: u64 = resyncs.iter().map(|r| r["added"].as_u64().unwrap()).sum();
    assert!(added >= 1, "{resyncs:?}");
    let flagged = lines
        .iter()
        .filter(|j| j["type"] == "conntrack" && j["resync"] == true)
        .count() as u64;
    let counted: u64 = resyncs
        .iter()
        .map(|r| {
            r["added"].as_u64().unwrap()
                + r["updated"].as_u64().unwrap()
                + r["removed"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(flagged, counted);
    // Ordinary events follow the first overrun.
    let first = lines.iter().position(|j| j["type"] == "overrun").unwrap();
    assert!(lines[first..]
        .iter()
        .any(|j| j["type"] == "conntrack" && j.get("resync").is_none()));
    let summary = err.last().cloned().unwrap_or_default();
    assert!(
        summary.ends_with(&format!(", {} overrun(s)", totals.last().unwrap())),
        "{summary}"
    );
}

/// Skips (or fails under CI=true) when the kernel lacks the FTP helper.
fn have_ftp_helper(test: &str) -> bool {
    if std::path::Path::new("/sys/module/nf_conntrack_ftp").exists() {
        return true;
    }
    support::skip(
        test,
        "the kernel has no FTP conntrack helper (nf_conntrack_ftp)",
    );
    false
}

/// The `conntrack -L expect` lines of the namespace.
fn tool_expectations(ns: &TestNs) -> Vec<support::ExtendedLine> {
    support::parse_extended(&ns.exec_ok(&["conntrack", "-L", "expect"]))
}

/// Expectations created, listed (and compared with `conntrack -L expect`), seen as
/// events, deleted by tuple and by id, and flushed, all through the CLI.
#[test]
fn expectations_create_list_delete_flush() {
    const T: &str = "expectations_create_list_delete_flush";
    let Some(ns) = setup(T, &["conntrack"]) else {
        return;
    };
    if !have_ftp_helper(T) {
        return;
    }
    let events = EventsProc::start(
        &ns,
        &["--expect", "--json", "--count", "3", "--timeout", "30"],
    );
    for sport in ["40000", "40001"] {
        ok(
            &ns,
            &[
                "conntrack",
                "create",
                "--proto",
                "tcp",
                "--src",
                "10.8.0.1",
                "--sport",
                sport,
                "--dst",
                "10.8.0.2",
                "--dport",
                "21",
                "--timeout",
                "600",
                "--state",
                "ESTABLISHED",
                "--helper",
                "ftp",
            ],
        );
    }
    let expect = |master_sport: &'static str, dport: &'static str| {
        vec![
            "conntrack",
            "expect",
            "create",
            "--proto",
            "tcp",
            "--src",
            "10.8.0.2",
            "--dst",
            "10.8.0.1",
            "--dport",
            dport,
            "--master-src",
            "10.8.0.1",
            "--master-dst",
            "10.8.0.2",
            "--master-sport",
            master_sport,
            "--master-dport",
            "21",
            "--timeout",
            "60",
            "--helper",
            "ftp",
        ]
    };
    ok(&ns, &expect("40000", "50000"));
    let mut permanent = expect("40001", "50001");
    permanent.extend(["--flags", "PERMANENT"]);
    ok(&ns, &permanent);
    let msg = fails(&ns, &expect("40000", "50000"), 1);
    assert!(
        msg.contains("already exists: expectation tcp 10.8.0.2:0 -> 10.8.0.1:50000"),
        "{msg}"
    );
    let msg = fails(&ns, &expect("40009", "50009"), 1);
    assert!(
        msg.contains("no master connection tcp 10.8.0.1:40009"),
        "{msg}"
    );

    let all = json_lines(&ok(&ns, &["conntrack", "expect", "list", "--json"]));
    assert_eq!(all.len(), 2, "{all:?}");
    let by_port = |p: u64| {
        all.iter()
            .find(|j| j["tuple"]["dport"] == p)
            .unwrap_or_else(|| panic!("no expectation for {p}: {all:?}"))
    };
    let (e0, e1) = (by_port(50000), by_port(50001));
    for (e, msport) in [(e0, 40000), (e1, 40001)] {
        assert_eq!(e["family"], "ipv4");
        assert_eq!(e["proto"], "tcp");
        assert_eq!(
            e["master"],
            serde_json::json!({"src": "10.8.0.1", "dst": "10.8.0.2", "sport": msport, "dport": 21})
        );
        assert_eq!(e["tuple"]["src"], "10.8.0.2");
        assert_eq!(e["tuple"]["sport"], 0);
        assert_eq!(
            e["mask"],
            serde_json::json!({"src": "255.255.255.255", "dst": "255.255.255.255", "sport": 0, "dport": 65535})
        );
        assert_eq!(e["helper"], "ftp");
        assert_eq!(e["class"], 0);
        // The FTP helper's policy sets the timeout of new expectations: 300 s.
        let t = e["timeout"].as_u64().unwrap();
        assert!((295..=300).contains(&t), "{e}");
    }
    assert_eq!(e0["flags"], serde_json::json!([]));
    assert_eq!(e1["flags"], serde_json::json!(["PERMANENT"]));
    // conntrack -L expect shows the same two.
    let tool = tool_expectations(&ns);
    assert_eq!(tool.len(), 2);
    for line in &tool {
        let dport: u64 = line.all("dport")[0].parse().unwrap();
        let e = by_port(dport);
        assert_eq!(line.all("src")[0], "10.8.0.2");
        assert_eq!(line.all("master-src"), ["10.8.0.1"]);
        assert_eq!(
            line.all("sport"),
            ["0", "0", &e["master"]["sport"].to_string()],
            "expected, mask, master"
        );
        assert_eq!(line.all("helper"), ["ftp"]);
        let t: u64 = line.head[0].parse().unwrap();
        assert!(t.abs_diff(e["timeout"].as_u64().unwrap()) <= 2);
    }

    // Delete by tuple, then by id.
    ok(
        &ns,
        &[
            "conntrack",
            "expect",
            "delete",
            "--proto",
            "tcp",
            "--src",
            "10.8.0.2",
            "--dst",
            "10.8.0.1",
            "--dport",
            "50000",
        ],
    );
    let left = json_lines(&ok(&ns, &["conntrack", "expect", "list", "--json"]));
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], e1["id"]);
    assert_eq!(tool_expectations(&ns).len(), 1);
    let id = e1["id"].to_string();
    ok(&ns, &["conntrack", "expect", "delete", "--id", &id]);
    assert_eq!(
        ok(&ns, &["conntrack", "expect", "list"]).trim(),
        "0 expectations"
    );
    let msg = fails(&ns, &["conntrack", "expect", "delete", "--id", &id], 1);
    assert!(msg.contains("not found"), "{msg}");

    // The event stream saw the two creations and the first deletion.
    let (code, out, err) = events.finish();
    assert_eq!(code, Some(0), "{err:?}");
    let evs = json_lines(&out.join("\n"));
    let kinds: Vec<(&str, &str, u64)> = evs
        .iter()
        .map(|j| {
            (
                j["type"].as_str().unwrap(),
                j["kind"].as_str().unwrap(),
                j["tuple"]["dport"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("expect", "new", 50000),
            ("expect", "new", 50001),
            ("expect", "destroy", 50000)
        ]
    );
    assert_eq!(evs[0]["master"], e0["master"]);

    // Flush by another helper keeps them; by ftp or all removes them.
    ok(&ns, &expect("40000", "50000"));
    ok(&ns, &expect("40001", "50001"));
    ok(&ns, &["conntrack", "expect", "flush", "--helper", "sip"]);
    assert_eq!(tool_expectations(&ns).len(), 2);
    ok(&ns, &["conntrack", "expect", "flush", "--helper", "ftp"]);
    assert!(tool_expectations(&ns).is_empty());
    ok(&ns, &expect("40000", "50000"));
    ok(&ns, &["conntrack", "expect", "flush"]);
    assert!(json_lines(&ok(&ns, &["conntrack", "expect", "list", "--json"])).is_empty());
}

/// `nfct timeout list` as (name, l3proto, l4proto, state → seconds).
fn nfct_policies(ns: &TestNs) -> BTreeMap<String, (u16, u8, BTreeMap<String, u32>)> {
    let text = ns.exec_ok(&["nfct", "timeout", "list"]);
    let mut out = BTreeMap::new();
    let mut block = String::new();
    let mut flush = |block: &str| {
        if block.trim().is_empty() {
            return;
        }
        let name = block
            .trim_start()
            .trim_start_matches('.')
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let p = support::parse_nfct_policy(block).unwrap_or_else(|e| panic!("{e}"));
        let values = p
            .policy
            .into_iter()
            .map(|(k, v)| {
                // nfct spells UNACK out.
                let k = if k == "UNACKNOWLEDGED" {
                    "UNACK".to_owned()
                } else {
                    k
                };
                (k, v)
            })
            .collect();
        out.insert(name, (p.l3proto, p.l4proto, values));
    };
    for line in text.lines() {
        if line.starts_with('.') && line.trim_end().ends_with("= {") {
            flush(&block);
            block.clear();
        }
        block.push_str(line);
        block.push('\n');
    }
    flush(&block);
    out
}

fn policy_map(j: &Value) -> BTreeMap<String, u32> {
    j["timeouts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), u32::try_from(v.as_u64().unwrap()).unwrap()))
        .collect()
}

/// Named policies added, replaced, listed (and compared with `nfct timeout list`) and
/// deleted; a default policy set and read back with `nfct timeout default-get`.
#[test]
fn timeout_policies_add_list_delete_match_nfct() {
    const T: &str = "timeout_policies_add_list_delete_match_nfct";
    let Some(ns) = setup(T, &["nfct"]) else {
        return;
    };
    fn pol<'a>(args: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["conntrack", "timeouts", "policy"];
        a.extend_from_slice(args);
        a
    }
    ok(
        &ns,
        &pol(&[
            "add",
            "web",
            "--proto",
            "tcp",
            "--set",
            "ESTABLISHED=100",
            "--set",
            "time_wait=30",
        ]),
    );
    ok(
        &ns,
        &pol(&[
            "add",
            "dns",
            "--proto",
            "udp",
            "--family",
            "ipv6",
            "--set",
            "UNREPLIED=7",
            "--set",
            "REPLIED=20",
        ]),
    );
    let msg = fails(
        &ns,
        &pol(&["add", "web", "--proto", "tcp", "--set", "CLOSE=1"]),
        1,
    );
    assert_eq!(msg.trim(), "ipvsct: already exists: timeout policy web");

    let listed = json_lines(&ok(&ns, &pol(&["list", "--json"])));
    assert_eq!(listed.len(), 2);
    let nfct = nfct_policies(&ns);
    assert_eq!(nfct.len(), 2, "{nfct:?}");
    for j in &listed {
        let name = j["name"].as_str().unwrap();
        let (l3, l4, values) = &nfct[name];
        assert_eq!(&policy_map(j), values, "{name}");
        let fam = if *l3 == 2 { "ipv4" } else { "ipv6" };
        assert_eq!(j["family"], fam);
        assert_eq!(j["proto"], if *l4 == 6 { "tcp" } else { "udp" });
    }
    let web = listed.iter().find(|j| j["name"] == "web").unwrap();
    assert_eq!(web["timeouts"]["ESTABLISHED"], 100);
    assert_eq!(web["timeouts"]["TIME_WAIT"], 30);
    let dns = listed.iter().find(|j| j["name"] == "dns").unwrap();
    assert_eq!(
        policy_map(dns),
        BTreeMap::from([("UNREPLIED".to_owned(), 7), ("REPLIED".to_owned(), 20)])
    );
    assert_eq!(dns["family"], "ipv6");

    // Replace: the values given, the namespace defaults for the rest.
    ok(
        &ns,
        &pol(&[
            "add",
            "web",
            "--replace",
            "--proto",
            "tcp",
            "--set",
            "ESTABLISHED=200",
        ]),
    );
    let one = json_lines(&ok(&ns, &pol(&["list", "--json", "--name", "web"])));
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["timeouts"]["ESTABLISHED"], 200);
    assert_eq!(one[0]["timeouts"]["TIME_WAIT"], 120);
    assert_eq!(&policy_map(&one[0]), &nfct_policies(&ns)["web"].2);
    let human = ok(&ns, &pol(&["list"]));
    assert!(human.ends_with("2 policies\n"), "{human}");
    assert!(human
        .lines()
        .any(|l| l.starts_with("web ") && l.contains(" ESTABLISHED=200 ")));

    // Delete one; then the unused rest.
    ok(&ns, &pol(&["delete", "web"]));
    assert_eq!(nfct_policies(&ns).keys().collect::<Vec<_>>(), ["dns"]);
    let msg = fails(&ns, &pol(&["delete", "web"]), 1);
    assert_eq!(msg.trim(), "ipvsct: not found: timeout policy web");
    let msg = fails(&ns, &pol(&["list", "--name", "web"]), 1);
    assert_eq!(msg.trim(), "ipvsct: not found: timeout policy web");
    ok(&ns, &pol(&["delete", "--unused"]));
    assert!(nfct_policies(&ns).is_empty());
    assert!(json_lines(&ok(&ns, &pol(&["list", "--json"]))).is_empty());

    // A default policy of this namespace only.
    ok(
        &ns,
        &pol(&["default-set", "--proto", "udp", "--set", "UNREPLIED=12"]),
    );
    let d =
        support::parse_nfct_policy(&ns.exec_ok(&["nfct", "timeout", "default-get", "inet", "udp"]))
            .expect("nfct default-get");
    assert_eq!(
        d.policy,
        [("UNREPLIED".to_owned(), 12), ("REPLIED".to_owned(), 120)]
    );
    let t = json_lines(&ok(&ns, &["conntrack", "timeouts", "--json"]));
    assert_eq!(t[0]["udp"]["unreplied"], 12, "{}", t[0]);
    assert_eq!(ns.sysctl("net.netfilter.nf_conntrack_udp_timeout"), "12");
}

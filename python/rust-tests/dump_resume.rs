//! Checks what the Python bindings build on: an answer survives a receive timeout
//! (`Error::Timeout` does not end an `Exchange`), and a dump suspended and resumed
//! after every entry returns exactly what an uninterrupted dump returns.
//!
//! Needs root and `ip netns`/`conntrack`: otherwise prints `SKIPPED` (fails under CI=true).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use ipvs_conntrack::conntrack::stats::GlobalStats;
use ipvs_conntrack::conntrack::wire::IPCTNL_MSG_CT_GET_STATS;
use ipvs_conntrack::conntrack::{Conntrack, DumpFilter};
use ipvs_conntrack::netlink::emit::{set_sequence, MessageBuilder};
use ipvs_conntrack::netlink::frame::flags::{NLM_F_ACK, NLM_F_REQUEST};
use ipvs_conntrack::netlink::nfnetlink::{
    message_type, NfGenMsg, NFNETLINK_V0, NFNL_SUBSYS_CTNETLINK,
};
use ipvs_conntrack::socket::{NlSocket, SocketOptions, DEFAULT_SO_RCVBUF, NETLINK_NETFILTER};
use ipvs_conntrack::{Error, Netns};

/// Entries inserted: several dump datagrams' worth.
const ENTRIES: u16 = 300;

fn skip(test: &str, reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
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

/// A throw-away network namespace, deleted on drop (also when a test panics).
struct TestNs(String);

impl TestNs {
    fn create(tag: &str) -> Result<TestNs, String> {
        let name = format!("ipvsct-pyrs-{tag}-{}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map_err(|e| format!("ip netns add: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ip netns add {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(TestNs(name))
    }

    /// Inserts `n` TCP entries with one `conntrack -I` each (bounded: n ≤ ENTRIES).
    fn insert(&self, n: u16) {
        let mut script = String::new();
        for i in 0..n {
            script.push_str(&format!(
                "conntrack -I -p tcp -s 10.9.{}.{} -d 10.9.0.1 --sport {} --dport 80 \
                 --state ESTABLISHED -t 600 -u SEEN_REPLY,ASSURED 2>/dev/null || exit 1\n",
                i / 200,
                i % 200 + 1,
                1000 + i
            ));
        }
        let st = Command::new("timeout")
            .args(["60", "ip", "netns", "exec", &self.0, "sh", "-c", &script])
            .status()
            .expect("run conntrack -I");
        assert!(st.success(), "conntrack -I failed in {}", self.0);
    }

    fn netns(&self) -> Netns {
        Netns::named(self.0.clone())
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn setup(test: &str, tag: &str) -> Option<TestNs> {
    if !is_root() {
        skip(test, "needs root (CAP_NET_ADMIN, ip netns)");
        return None;
    }
    if Command::new("conntrack").arg("--version").output().is_err() {
        skip(
            test,
            "conntrack-tools missing (apt-get install -y conntrack)",
        );
        return None;
    }
    match TestNs::create(tag) {
        Ok(ns) => Some(ns),
        Err(e) => {
            skip(test, &e);
            None
        }
    }
}

#[test]
fn exchange_survives_a_receive_timeout() {
    let Some(ns) = setup("exchange_survives_a_receive_timeout", "timeout") else {
        return;
    };
    ns.insert(3);
    let opts = SocketOptions {
        so_rcvbuf: DEFAULT_SO_RCVBUF,
        recv_timeout: Some(Duration::from_millis(20)),
    };
    let mut sock = NlSocket::open(NETLINK_NETFILTER, &ns.netns(), &opts).expect("open socket");
    let seq = sock.next_sequence();
    // Nothing was sent yet: the first wait times out, and the exchange stays open.
    let mut ex = sock.exchange(seq, "conntrack count");
    let err = ex.next_meta().expect_err("no answer yet");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(!ex.is_finished());
    let state = ex.suspend();
    assert_eq!(state, sock.exchange(seq, "conntrack count").suspend());
    // Now send the request under that sequence number and continue the same exchange.
    let mut b = MessageBuilder::new(
        message_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS),
        NLM_F_REQUEST | NLM_F_ACK,
    );
    b.put_raw(
        &NfGenMsg {
            family: 0,
            version: NFNETLINK_V0,
            res_id: 0,
        }
        .to_bytes(),
    );
    let mut bytes = b.finish();
    set_sequence(&mut bytes, seq);
    sock.send_raw(&bytes, "conntrack count").expect("send");
    let mut ex = sock.resume(state);
    let meta = ex.next_meta().expect("answer").expect("a stats message");
    let stats = GlobalStats::from_frame(&ex.frame(&meta)).expect("decode stats");
    assert_eq!(stats.entries, 3);
    assert!(ex.next_meta().expect("ack").is_none());
    assert!(ex.is_finished());
}

#[test]
fn dump_suspended_after_every_entry_matches_one_pass() {
    let Some(ns) = setup(
        "dump_suspended_after_every_entry_matches_one_pass",
        "resume",
    ) else {
        return;
    };
    ns.insert(ENTRIES);
    let mut ct = Conntrack::open(&ns.netns()).expect("open");
    let one_pass: BTreeSet<(u32, u16)> = ct
        .list(&DumpFilter::all())
        .expect("dump")
        .iter()
        .map(|e| (e.id.expect("id"), e.orig.src_port.expect("port")))
        .collect();
    assert_eq!(one_pass.len(), usize::from(ENTRIES));

    let established = ct.default_timeouts().expect("timeouts").tcp.established;
    assert!(established.is_some());

    let mut stepwise = BTreeSet::new();
    let mut state = Some(ct.dump(&DumpFilter::all()).expect("dump").suspend());
    // Bounded: one turn per entry plus the end.
    for _ in 0..=ENTRIES {
        let Some(st) = state.take() else { break };
        let mut d = ct.resume(st);
        match d.next() {
            Some(e) => {
                let e = e.expect("entry");
                assert_eq!(e.state_timeout, established, "timeouts still joined");
                stepwise.insert((e.id.expect("id"), e.orig.src_port.expect("port")));
                state = Some(d.suspend());
            }
            None => break,
        }
    }
    assert!(state.is_none(), "the dump did not end");
    assert_eq!(stepwise, one_pass);
}

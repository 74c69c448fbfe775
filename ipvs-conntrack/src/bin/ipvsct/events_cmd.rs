//! `ipvsct conntrack events`: streams conntrack (and expectation) events, one line each,
//! until Ctrl-C, N events or a time limit. Lost events (receive buffer overruns) are
//! printed as their own line and the stream goes on; with `--resync` the table is read
//! again after each overrun and the differences are printed as events.
//!
//! # JSON lines
//!
//! | `type`      | other keys |
//! |-------------|------------|
//! | `conntrack` | `kind` (`new`, `update`, `destroy`), `event_time` (ns or null), `resync` (only on lines found by a resync, `true`), then every key of the `list --json` entry schema |
//! | `expect`    | `kind` (`new`, `destroy`), then every key of the `expect list --json` schema |
//! | `overrun`   | `failed_receives` (in a row), `total` (overruns so far), `since_ms`, `at_ms` (ms since the epoch) |
//! | `resync`    | `added`, `updated`, `removed` (differences printed), `entries` (connections in the table) |

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use ipvs_conntrack::conntrack::events::DEFAULT_EVENT_RCVBUF;
use ipvs_conntrack::conntrack::{
    Change, Conntrack, DumpFilter, Entry, Event, EventFilter, EventGroups, EventKind, EventOptions,
    EventStream, Overrun, TableView,
};
use ipvs_conntrack::{Error, Netns};
use serde::Serialize;

use super::expect_cmd::{expect_text, ExpectJson};
use super::{parse_proto, Common, FamilyArg};
use crate::failure::Failure;
use crate::output::{self, EntryJson};

/// How long one receive waits before the loop checks Ctrl-C and the time limit.
const POLL: Duration = Duration::from_millis(200);

/// Arguments of `conntrack events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Namespace and output format (`--json`: one object per line).
    #[command(flatten)]
    pub common: Common,
    /// NEW events (with --update/--destroy: only the kinds given; none given: all three).
    #[arg(long)]
    pub new: bool,
    /// UPDATE events.
    #[arg(long)]
    pub update: bool,
    /// DESTROY events.
    #[arg(long)]
    pub destroy: bool,
    /// Expectation events too (alone: only expectation events).
    #[arg(long)]
    pub expect: bool,
    /// Only this address family.
    #[arg(long, value_enum)]
    pub family: Option<FamilyArg>,
    /// Only these L4 protocols (repeat for more).
    #[arg(long)]
    pub proto: Vec<String>,
    /// Stop after N events (overrun and resync lines do not count).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Stop after SECS seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Ask the kernel not to drop events (NETLINK_BROADCAST_ERROR + NO_ENOBUFS); a slow
    /// reader then holds kernel memory and delays deletions instead of losing events.
    #[arg(long)]
    pub reliable: bool,
    /// Kernel receive buffer in bytes (default 8 MiB).
    #[arg(long, value_name = "BYTES")]
    pub rcvbuf: Option<usize>,
    /// After an overrun, read the table again and print what changed meanwhile.
    #[arg(long)]
    pub resync: bool,
}

impl EventsArgs {
    /// The event groups to subscribe to.
    pub fn groups(&self) -> EventGroups {
        let mut g = EventGroups::empty();
        for (on, bit) in [
            (self.new, EventGroups::NEW),
            (self.update, EventGroups::UPDATE),
            (self.destroy, EventGroups::DESTROY),
        ] {
            if on {
                g |= bit;
            }
        }
        if g.is_empty() && !self.expect {
            g = EventGroups::CONNTRACK;
        }
        if self.expect {
            g |= EventGroups::EXPECT;
        }
        g
    }

    /// The raw-message filter.
    pub fn filter(&self) -> Result<EventFilter, Failure> {
        let mut f = EventFilter::all();
        if let Some(fam) = self.family {
            f = f.family(fam.into());
        }
        for p in &self.proto {
            f = f.protocol(parse_proto(p)?);
        }
        Ok(f)
    }

    /// The stream options; checks the argument combinations.
    pub fn options(&self) -> Result<EventOptions, Failure> {
        let groups = self.groups();
        if self.resync && !groups.contains(EventGroups::CONNTRACK) {
            return Err(Failure::usage(
                "--resync keeps a copy of the table, which needs NEW, UPDATE and DESTROY \
                 events: drop --new/--update/--destroy",
            ));
        }
        if let Some(t) = self.timeout {
            if !(t.is_finite() && t > 0.0) {
                return Err(Failure::usage(
                    "--timeout must be a positive number of seconds",
                ));
            }
        }
        Ok(EventOptions {
            groups,
            rcvbuf: self.rcvbuf.unwrap_or(DEFAULT_EVENT_RCVBUF),
            reliable: self.reliable,
            recv_timeout: Some(POLL),
            filter: self.filter()?,
            join_timeouts: true,
        })
    }
}

/// Names of the subscribed groups, for the start message.
fn group_names(g: EventGroups) -> String {
    let mut n = Vec::new();
    for (bit, name) in [
        (EventGroups::NEW, "NEW"),
        (EventGroups::UPDATE, "UPDATE"),
        (EventGroups::DESTROY, "DESTROY"),
        (EventGroups::EXPECT, "EXPECT"),
    ] {
        if g.intersects(bit) {
            n.push(name);
        }
    }
    n.join(",")
}

/// A conntrack event line in JSON.
#[derive(Debug, Serialize)]
pub struct ConntrackEventJson {
    /// Always `conntrack`.
    #[serde(rename = "type")]
    pub kind_of_line: &'static str,
    /// `new`, `update` or `destroy`.
    pub kind: &'static str,
    /// When the kernel generated the event (ns since boot), if it said.
    pub event_time: Option<u64>,
    /// True on lines found by a resynchronisation.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resync: bool,
    /// The entry.
    #[serde(flatten)]
    pub entry: EntryJson,
}

/// An expectation event line in JSON.
#[derive(Debug, Serialize)]
pub struct ExpectEventJson {
    /// Always `expect`.
    #[serde(rename = "type")]
    pub kind_of_line: &'static str,
    /// `new` or `destroy`.
    pub kind: &'static str,
    /// The expectation.
    #[serde(flatten)]
    pub expectation: ExpectJson,
}

/// An overrun line in JSON.
#[derive(Debug, Serialize)]
pub struct OverrunJson {
    /// Always `overrun`.
    #[serde(rename = "type")]
    pub kind_of_line: &'static str,
    /// Receives that failed in a row.
    pub failed_receives: u64,
    /// Overruns since the stream started.
    pub total: u64,
    /// First failure of this run, ms since the epoch.
    pub since_ms: u64,
    /// This failure, ms since the epoch.
    pub at_ms: u64,
}

/// The summary line of a resynchronisation in JSON.
#[derive(Debug, Serialize)]
pub struct ResyncJson {
    /// Always `resync`.
    #[serde(rename = "type")]
    pub kind_of_line: &'static str,
    /// Connections found that the stream had missed.
    pub added: u64,
    /// Connections whose state, status, mark, labels or helper changed unseen.
    pub updated: u64,
    /// Connections gone unseen.
    pub removed: u64,
    /// Connections in the table now.
    pub entries: usize,
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `[NEW]`, `[UPDATE]`, `[DESTROY]`.
fn tag(kind: EventKind) -> &'static str {
    match kind {
        EventKind::New => "[NEW]",
        EventKind::Update => "[UPDATE]",
        EventKind::Destroy => "[DESTROY]",
    }
}

/// `src=… dst=… sport=… dport=…` (ICMP: `type=… code=… id=…`).
fn tuple_words(s: &mut String, t: &ipvs_conntrack::conntrack::Tuple) {
    s.push_str(&format!(" src={} dst={}", t.src, t.dst));
    for (k, v) in [("sport", t.src_port), ("dport", t.dst_port)] {
        if let Some(v) = v {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    for (k, v) in [("type", t.icmp_type), ("code", t.icmp_code)] {
        if let Some(v) = v {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    if let Some(v) = t.icmp_id {
        s.push_str(&format!(" id={v}"));
    }
}

/// One conntrack event for humans: `[NEW] tcp SYN_SENT 120/120 src=… dst=… sport=… dport=…
/// src=… dst=… sport=… dport=… status=CONFIRMED mark=0 zone=0 id=…` (original tuple, then reply).
pub fn event_text(kind: EventKind, e: &Entry) -> String {
    let mut s = format!(
        "{} {} {} {}",
        tag(kind),
        output::proto_label(e.orig.proto),
        e.state,
        output::timeout_text(e.timeout, e.state_timeout)
    );
    tuple_words(&mut s, &e.orig);
    tuple_words(&mut s, &e.reply);
    let status: Vec<_> = e.status.names().collect();
    s.push_str(&format!(
        " status={}",
        if status.is_empty() {
            "-".to_owned()
        } else {
            status.join(",")
        }
    ));
    if let Some(m) = e.mark {
        s.push_str(&format!(" mark={m}"));
    }
    s.push_str(&format!(" zone={}", e.zone.unwrap_or(0)));
    if let Some(l) = e.labels.as_ref().filter(|l| !l.0.is_empty()) {
        let bits: Vec<String> = l.0.iter().map(u16::to_string).collect();
        s.push_str(&format!(" labels={}", bits.join(",")));
    }
    if let Some(h) = &e.helper {
        s.push_str(&format!(" helper={}", h.name));
    }
    for (dir, c) in [("orig", e.counters_orig), ("reply", e.counters_reply)] {
        if let Some(c) = c {
            s.push_str(&format!(
                " {dir}-packets={} {dir}-bytes={}",
                c.packets, c.bytes
            ));
        }
    }
    if let Some(id) = e.id {
        s.push_str(&format!(" id={id}"));
    }
    s
}

/// Writes event lines in the chosen format, flushing each so pipes see them at once.
struct Printer<W: Write> {
    out: W,
    json: bool,
}

impl<W: Write> Printer<W> {
    fn line(&mut self, text: &str) -> io::Result<()> {
        writeln!(self.out, "{text}")?;
        self.out.flush()
    }

    fn json<T: Serialize>(&mut self, v: &T) -> io::Result<()> {
        output::write_json_line(&mut self.out, v)?;
        self.out.flush()
    }

    fn conntrack(
        &mut self,
        kind: EventKind,
        e: &Entry,
        event_time: Option<u64>,
        resync: bool,
    ) -> io::Result<()> {
        if self.json {
            self.json(&ConntrackEventJson {
                kind_of_line: "conntrack",
                kind: kind.name(),
                event_time,
                resync,
                entry: EntryJson::from(e),
            })
        } else if resync {
            self.line(&format!("[RESYNC] {}", event_text(kind, e)))
        } else {
            self.line(&event_text(kind, e))
        }
    }

    fn event(&mut self, ev: &Event) -> io::Result<()> {
        match ev {
            Event::Conntrack(c) => self.conntrack(c.kind, &c.entry, c.event_time, false),
            Event::Expect(x) => {
                if self.json {
                    self.json(&ExpectEventJson {
                        kind_of_line: "expect",
                        kind: x.kind.name(),
                        expectation: ExpectJson::from(&x.expectation),
                    })
                } else {
                    self.line(&format!(
                        "{} expect {}",
                        tag(x.kind),
                        expect_text(&x.expectation)
                    ))
                }
            }
            Event::Overrun(o) => self.overrun(o),
        }
    }

    fn overrun(&mut self, o: &Overrun) -> io::Result<()> {
        if self.json {
            self.json(&OverrunJson {
                kind_of_line: "overrun",
                failed_receives: o.failed_receives,
                total: o.total,
                since_ms: epoch_ms(o.since),
                at_ms: epoch_ms(o.at),
            })
        } else {
            self.line(&format!(
                "[OVERRUN] events lost (receive buffer full): {} failed receive(s) in a row, \
                 {} overrun(s) in total; the stream goes on",
                o.failed_receives, o.total
            ))
        }
    }

    fn resync_summary(&mut self, s: &ResyncJson) -> io::Result<()> {
        if self.json {
            self.json(s)
        } else {
            self.line(&format!(
                "[RESYNC] table read again after the overrun: {} added, {} updated, {} removed; \
                 {} entries",
                s.added, s.updated, s.removed, s.entries
            ))
        }
    }
}

/// True if a change found by a resync concerns an entry the filter lets through.
fn passes(filter: &EventFilter, e: &Entry) -> bool {
    (filter.families.is_empty() || filter.families.contains(&e.family))
        && (filter.protocols.is_empty() || filter.protocols.contains(&e.orig.proto))
}

/// Prints the differences a resync found and its summary line.
fn print_changes<W: Write>(
    p: &mut Printer<W>,
    filter: &EventFilter,
    changes: &[Change],
    entries: usize,
) -> io::Result<()> {
    let mut s = ResyncJson {
        kind_of_line: "resync",
        added: 0,
        updated: 0,
        removed: 0,
        entries,
    };
    for c in changes {
        let ev = c.to_event();
        if !passes(filter, &ev.entry) {
            continue;
        }
        match c {
            Change::Added(_) => s.added += 1,
            Change::Updated { .. } => s.updated += 1,
            Change::Removed(_) => s.removed += 1,
        }
        p.conntrack(ev.kind, &ev.entry, None, true)?;
    }
    p.resync_summary(&s)
}

/// Where the stream runs, for the start message.
fn place(n: &Netns) -> String {
    match n {
        Netns::Current => "the current network namespace".to_owned(),
        other => format!("network namespace {other}"),
    }
}

/// How long a receive waits while the queue is read empty before a resync.
const DRAIN_WAIT: Duration = Duration::from_millis(2);

/// Longest time spent reading the queue empty before a resync.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// A running `conntrack events`: the stream, the output and the table copy of `--resync`.
struct Session<W: Write> {
    stream: EventStream,
    printer: Printer<W>,
    filter: EventFilter,
    view: Option<TableView>,
    /// An overrun was seen and the table copy is stale.
    stale: bool,
    shown: u64,
    count: Option<u64>,
    stop: Arc<AtomicBool>,
    /// The receive timeout currently set on the socket.
    wait: Duration,
}

impl<W: Write> Session<W> {
    /// True when Ctrl-C was pressed or --count events were shown.
    fn done(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.count.is_some_and(|n| self.shown >= n)
    }

    fn set_wait(&mut self, d: Duration) -> Result<(), Failure> {
        if d != self.wait {
            self.stream.set_recv_timeout(Some(d))?;
            self.wait = d;
        }
        Ok(())
    }

    /// Receives and prints one item; false if the wait expired with nothing to read.
    fn step(&mut self) -> Result<bool, Failure> {
        let ev = match self.stream.next_event() {
            Ok(Some(ev)) => ev,
            Ok(None) => return Ok(false),
            Err(Error::Decode(e)) => {
                // One undecodable message; the stream goes on.
                eprintln!("ipvsct: skipped an event that did not decode: {e}");
                return Ok(true);
            }
            Err(e) => return Err(e.into()),
        };
        match &ev {
            Event::Overrun(o) => {
                self.printer.overrun(o).map_err(Failure::from_output)?;
                self.stale = self.view.is_some();
            }
            other => {
                if let Some(v) = self.view.as_mut() {
                    v.apply(other);
                }
                self.printer.event(other).map_err(Failure::from_output)?;
                self.shown += 1;
            }
        }
        Ok(true)
    }

    /// Brings the table copy up to date after an overrun and prints the differences.
    ///
    /// After an overrun the kernel drops every further event, without reporting a new
    /// overrun, until the receive queue has been read empty. So the queue is read empty
    /// first (printing what it holds); only then is the table read: every change from
    /// that moment on arrives as an event or causes a new overrun.
    fn resync(&mut self) -> Result<(), Failure> {
        let saved = self.wait;
        self.set_wait(DRAIN_WAIT)?;
        let start = Instant::now();
        let mut drained = false;
        // Bounded by DRAIN_LIMIT, Ctrl-C and --count.
        while !self.done() && start.elapsed() < DRAIN_LIMIT {
            if !self.step()? {
                drained = true;
                break;
            }
        }
        self.set_wait(saved)?;
        if self.done() {
            return Ok(());
        }
        if !drained {
            eprintln!(
                "ipvsct: events kept arriving for {} s; reading the table anyway \
                 (changes may go unseen until the next overrun)",
                DRAIN_LIMIT.as_secs()
            );
        }
        self.stale = false;
        let Some(view) = self.view.as_mut() else {
            return Ok(());
        };
        match self.stream.resync(view) {
            Ok(changes) => print_changes(&mut self.printer, &self.filter, &changes, view.len())
                .map_err(Failure::from_output),
            Err(e) => {
                eprintln!("ipvsct: reading the table after the overrun failed ({e}); the next overrun retries");
                Ok(())
            }
        }
    }
}

/// Runs `conntrack events`.
pub fn run(a: &EventsArgs) -> Result<(), Failure> {
    let opts = a.options()?;
    let netns = a.common.netns();
    let stream = EventStream::with_options(&netns, &opts)?;
    // Subscribed first, then the table read: nothing falls between the two.
    let view = if a.resync {
        let mut ct = Conntrack::open(&netns)?;
        ct.set_join_timeouts(false);
        Some(TableView::from_table(&mut ct, &DumpFilter::all())?)
    } else {
        None
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| Failure::new(format!("cannot catch Ctrl-C: {e}")))?;
    eprintln!(
        "ipvsct: listening for {} events in {} (Ctrl-C to stop)",
        group_names(opts.groups),
        place(&netns)
    );
    let deadline = a
        .timeout
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let stdout = io::stdout();
    let mut s = Session {
        stream,
        printer: Printer {
            out: stdout.lock(),
            json: a.common.json,
        },
        filter: opts.filter.clone(),
        view,
        stale: false,
        shown: 0,
        count: a.count,
        stop,
        wait: POLL,
    };
    // Bounded by Ctrl-C, --count and --timeout; each turn waits at most POLL.
    while !s.done() {
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s.set_wait(left.clamp(Duration::from_millis(1), POLL))?;
        }
        s.step()?;
        if s.stale {
            s.resync()?;
        }
    }
    eprintln!(
        "ipvsct: {} event(s) shown, {} overrun(s)",
        s.shown,
        s.stream.stats().overruns
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use ipvs_conntrack::conntrack::tuple::{IPPROTO_TCP, IPPROTO_UDP};
    use ipvs_conntrack::conntrack::{Family, Tuple, WriteRequest};

    fn args(argv: &[&str]) -> EventsArgs {
        #[derive(Parser)]
        struct W {
            #[command(flatten)]
            a: EventsArgs,
        }
        let mut v = vec!["x"];
        v.extend_from_slice(argv);
        W::try_parse_from(v).unwrap().a
    }

    #[test]
    fn groups_and_filters_from_flags() {
        assert_eq!(args(&[]).groups(), EventGroups::CONNTRACK);
        assert_eq!(
            args(&["--new", "--destroy"]).groups(),
            EventGroups::NEW | EventGroups::DESTROY
        );
        assert_eq!(args(&["--expect"]).groups(), EventGroups::EXPECT);
        assert_eq!(
            args(&["--update", "--expect"]).groups(),
            EventGroups::UPDATE | EventGroups::EXPECT
        );
        let o = args(&[
            "--family", "ipv6", "--proto", "tcp", "--proto", "17", "--rcvbuf", "4096",
        ])
        .options()
        .unwrap();
        assert_eq!(o.filter.families, vec![Family::Ipv6]);
        assert_eq!(o.filter.protocols, vec![IPPROTO_TCP, IPPROTO_UDP]);
        assert_eq!(o.rcvbuf, 4096);
        assert_eq!(o.recv_timeout, Some(POLL));
        let e = args(&["--resync", "--new"]).options().unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.message.contains("--resync"), "{}", e.message);
        assert!(args(&["--timeout", "0"]).options().is_err());
        assert!(args(&["--proto", "nope"]).options().is_err());
        assert_eq!(
            group_names(EventGroups::CONNTRACK | EventGroups::EXP_NEW),
            "NEW,UPDATE,DESTROY,EXPECT"
        );
    }

    fn udp_entry() -> Entry {
        let orig = Tuple::with_ports(
            IPPROTO_UDP,
            "10.0.0.1".parse().unwrap(),
            1111,
            "10.0.0.2".parse().unwrap(),
            53,
        );
        let bytes = ipvs_conntrack::conntrack::CreateRequest::new(orig, 30)
            .mark(7)
            .encode()
            .unwrap();
        let f = ipvs_conntrack::netlink::frame::Frames::new(&bytes)
            .next()
            .unwrap()
            .unwrap();
        let mut e = Entry::from_frame(&f).unwrap();
        e.id = Some(99);
        e.state_timeout = Some(30);
        e.status = ipvs_conntrack::conntrack::Status::CONFIRMED;
        e
    }

    #[test]
    fn human_and_json_lines() {
        let e = udp_entry();
        assert_eq!(
            event_text(EventKind::New, &e),
            "[NEW] udp UNREPLIED 30/30 src=10.0.0.1 dst=10.0.0.2 sport=1111 dport=53 \
             src=10.0.0.2 dst=10.0.0.1 sport=53 dport=1111 status=CONFIRMED mark=7 zone=0 id=99"
        );
        let mut p = Printer {
            out: Vec::new(),
            json: true,
        };
        p.conntrack(EventKind::Destroy, &e, Some(5), false).unwrap();
        p.conntrack(EventKind::New, &e, None, true).unwrap();
        let text = String::from_utf8(p.out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["type"], "conntrack");
        assert_eq!(lines[0]["kind"], "destroy");
        assert_eq!(lines[0]["event_time"], 5);
        assert_eq!(lines[0].get("resync"), None);
        assert_eq!(lines[0]["orig"]["sport"], 1111);
        assert_eq!(lines[0]["mark"], 7);
        assert_eq!(lines[0]["state"], "UNREPLIED");
        assert_eq!(lines[1]["resync"], true);
        // Every key of the list schema is there.
        let list = serde_json::to_value(EntryJson::from(&e)).unwrap();
        for k in list.as_object().unwrap().keys() {
            assert!(lines[0].get(k).is_some(), "missing {k}");
        }
    }

    #[test]
    fn resync_changes_are_filtered_and_counted() {
        let e = udp_entry();
        let mut tcp = udp_entry();
        tcp.orig.proto = IPPROTO_TCP;
        let changes = vec![
            Change::Added(e.clone()),
            Change::Removed(tcp),
            Change::Updated {
                old: e.clone(),
                new: e.clone(),
            },
        ];
        let mut p = Printer {
            out: Vec::new(),
            json: false,
        };
        let f = EventFilter::all().protocol(IPPROTO_UDP);
        print_changes(&mut p, &f, &changes, 12).unwrap();
        let text = String::from_utf8(p.out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("[RESYNC] [NEW] udp"), "{text}");
        assert!(lines[1].starts_with("[RESYNC] [UPDATE] udp"), "{text}");
        assert_eq!(
            lines[2],
            "[RESYNC] table read again after the overrun: 1 added, 1 updated, 0 removed; 12 entries"
        );
    }
}

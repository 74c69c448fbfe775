//! Rendering: the stable JSON schema of `conntrack list --json`, and the human tables.
//!
//! # JSON schema of one entry (one object per line)
//!
//! | key             | type                          | meaning |
//! |-----------------|-------------------------------|---------|
//! | `family`        | `"ipv4"` \| `"ipv6"`          | address family |
//! | `proto`         | string                        | L4 protocol name (`tcp`, `udp`, `icmp`, `icmpv6`, `sctp`, `dccp`, `gre`, `udplite`) or its number as a string |
//! | `orig`, `reply` | object                        | tuples: `src`, `dst` (addresses); `sport`, `dport` for protocols with ports; `type`, `code`, `id` for ICMP/ICMPv6; `zone` only if the tuple has one |
//! | `state`         | string \| null                | TCP/SCTP/DCCP state (`TIME_WAIT`, …), UDP/GRE pseudo-state (`UNREPLIED`, `REPLIED`, `STREAM`); null for ICMP and other stateless protocols |
//! | `timeout`       | integer \| null               | seconds left before the entry expires |
//! | `state_timeout` | integer \| null               | full timeout of the current state under the policy in force, seconds |
//! | `status`        | array of strings              | set IPS_* bits without the prefix (`SEEN_REPLY`, `ASSURED`, `CONFIRMED`, …; unknown bits as `BIT<n>`) |
//! | `mark`          | integer \| null               | connection mark (null if the kernel sent none) |
//! | `zone`          | integer                       | conntrack zone (0 = the default zone, which the kernel does not send) |
//! | `id`            | integer \| null               | entry id (CTA_ID) |
//! | `use`           | integer \| null               | reference count (CTA_USE) |
//! | `counters`      | object \| null                | `{"orig": {"packets", "bytes"}, "reply": {...}}`; null unless `nf_conntrack_acct` is on |
//! | `timestamp`     | object \| null                | `{"start": ns, "stop": ns or null}` since the epoch; null unless `nf_conntrack_timestamp` is on |
//! | `labels`        | array of integers             | indices of the set connlabel bits |

use std::borrow::Cow;
use std::io::{self, Write};
use std::net::IpAddr;

use ipvs_conntrack::conntrack::timeout::ProtoTimeouts;
use ipvs_conntrack::conntrack::tuple::proto_name;
use ipvs_conntrack::conntrack::{
    Counters, CpuStats, Entry, GlobalStats, StateTimeouts, Timestamp, Tuple,
};
use serde::Serialize;

/// One tuple in the JSON schema.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TupleJson {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (protocols with ports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    /// Destination port (protocols with ports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    /// ICMP type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// ICMP code.
    #[serde(rename = "code", skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    /// ICMP identifier.
    #[serde(rename = "id", skip_serializing_if = "Option::is_none")]
    pub icmp_id: Option<u16>,
    /// Tuple zone, if the tuple carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<u16>,
}

impl From<&Tuple> for TupleJson {
    fn from(t: &Tuple) -> Self {
        TupleJson {
            src: t.src,
            dst: t.dst,
            sport: t.src_port,
            dport: t.dst_port,
            icmp_type: t.icmp_type,
            icmp_code: t.icmp_code,
            icmp_id: t.icmp_id,
            zone: t.zone,
        }
    }
}

/// Both directions' packet and byte counters in the JSON schema.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct CountersJson {
    /// Original direction.
    pub orig: Counters,
    /// Reply direction.
    pub reply: Counters,
}

/// One conntrack entry as `ipvsct conntrack list --json` prints it (see the module docs).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct EntryJson {
    /// Address family name.
    pub family: String,
    /// L4 protocol name (or number).
    pub proto: Cow<'static, str>,
    /// Original direction tuple.
    pub orig: TupleJson,
    /// Reply direction tuple.
    pub reply: TupleJson,
    /// State name, or null for stateless protocols.
    pub state: Option<&'static str>,
    /// Seconds left.
    pub timeout: Option<u32>,
    /// Full timeout of the current state, seconds.
    pub state_timeout: Option<u32>,
    /// Set status bits, kernel names without `IPS_`.
    pub status: Vec<String>,
    /// Connection mark.
    pub mark: Option<u32>,
    /// Conntrack zone (0 when the kernel sends none).
    pub zone: u16,
    /// Entry id.
    pub id: Option<u32>,
    /// Reference count.
    #[serde(rename = "use")]
    pub use_count: Option<u32>,
    /// Packet/byte counters, if accounting is on.
    pub counters: Option<CountersJson>,
    /// Start/stop timestamps, if timestamping is on.
    pub timestamp: Option<Timestamp>,
    /// Set label bits.
    pub labels: Vec<u16>,
}

/// Name of an L4 protocol number, or the number itself.
pub fn proto_label(p: u8) -> Cow<'static, str> {
    proto_name(p).map_or_else(|| Cow::Owned(p.to_string()), Cow::Borrowed)
}

impl From<&Entry> for EntryJson {
    fn from(e: &Entry) -> Self {
        let counters = match (e.counters_orig, e.counters_reply) {
            (None, None) => None,
            (o, r) => Some(CountersJson {
                orig: o.unwrap_or_default(),
                reply: r.unwrap_or_default(),
            }),
        };
        EntryJson {
            family: e.family.to_string(),
            proto: proto_label(e.orig.proto),
            orig: TupleJson::from(&e.orig),
            reply: TupleJson::from(&e.reply),
            state: e.state.name(),
            timeout: e.timeout,
            state_timeout: e.state_timeout,
            status: e.status.names().map(Cow::into_owned).collect(),
            mark: e.mark,
            zone: e.zone.unwrap_or(0),
            id: e.id,
            use_count: e.use_count,
            counters,
            timestamp: e.timestamp,
            labels: e.labels.as_ref().map(|l| l.0.clone()).unwrap_or_default(),
        }
    }
}

/// Writes `value` as one line of JSON.
pub fn write_json_line<T: Serialize>(w: &mut impl Write, value: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *w, value).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

/// An address with an optional port (`[v6]:port` for IPv6).
pub fn endpoint(addr: IpAddr, port: Option<u16>) -> String {
    match (addr, port) {
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

/// A tuple as `SRC:SPORT -> DST:DPORT` (ICMP: `SRC -> DST type T code C id I`).
pub fn tuple_text(t: &Tuple) -> String {
    let mut s = format!(
        "{} -> {}",
        endpoint(t.src, t.src_port),
        endpoint(t.dst, t.dst_port)
    );
    if let Some(ty) = t.icmp_type {
        s.push_str(&format!(" type {ty}"));
    }
    if let Some(c) = t.icmp_code {
        s.push_str(&format!(" code {c}"));
    }
    if let Some(i) = t.icmp_id {
        s.push_str(&format!(" id {i}"));
    }
    s
}

/// `LEFT/FULL` seconds, `-` for unknown parts.
pub fn timeout_text(left: Option<u32>, full: Option<u32>) -> String {
    let f = |v: Option<u32>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    format!("{}/{}", f(left), f(full))
}

/// A duration in seconds in the largest fitting units (`5d`, `2m`, `1h30m`, `45s`).
pub fn human_secs(s: u32) -> String {
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    if s == 0 {
        return "0s".to_owned();
    }
    let mut left = s;
    let mut out = String::new();
    for (size, name) in units {
        if left >= size {
            out.push_str(&format!("{}{name}", left / size));
            left %= size;
            if out.len() >= 4 {
                break;
            }
        }
    }
    out
}

/// The human table of `conntrack list` / `get`: fixed column widths, so rows stream.
#[derive(Debug, Default)]
pub struct EntryTable {
    header_done: bool,
}

/// Column widths of [`EntryTable`]; IPv6 rows may overflow and shift the rest of their line.
const W_PROTO: usize = 7;
const W_STATE: usize = 11;
const W_TIMEOUT: usize = 13;
const W_TUPLE: usize = 43;
const W_MARK: usize = 10;
const W_ZONE: usize = 4;

impl EntryTable {
    /// Writes the header line once.
    fn header(&mut self, w: &mut impl Write) -> io::Result<()> {
        if self.header_done {
            return Ok(());
        }
        self.header_done = true;
        writeln!(
            w,
            "{:<W_PROTO$} {:<W_STATE$} {:>W_TIMEOUT$} {:<W_TUPLE$} {:<W_TUPLE$} {:>W_MARK$} {:>W_ZONE$} FLAGS",
            "PROTO", "STATE", "LEFT/TIMEOUT", "ORIG SRC:SPORT -> DST:DPORT", "REPLY", "MARK", "ZONE"
        )
    }

    /// Writes one entry (and the header before the first).
    pub fn row(&mut self, w: &mut impl Write, e: &Entry) -> io::Result<()> {
        self.header(w)?;
        let flags: Vec<_> = e.status.names().collect();
        writeln!(
            w,
            "{:<W_PROTO$} {:<W_STATE$} {:>W_TIMEOUT$} {:<W_TUPLE$} {:<W_TUPLE$} {:>W_MARK$} {:>W_ZONE$} {}",
            proto_label(e.orig.proto),
            e.state.to_string(),
            timeout_text(e.timeout, e.state_timeout),
            tuple_text(&e.orig),
            tuple_text(&e.reply),
            e.mark.map_or_else(|| "-".to_owned(), |m| m.to_string()),
            e.zone.unwrap_or(0),
            if flags.is_empty() { "-".to_owned() } else { flags.join(",") },
        )
    }

    /// Writes the trailer (`N entries`), and the header if there were none.
    pub fn finish(&mut self, w: &mut impl Write, n: u64) -> io::Result<()> {
        self.header(w)?;
        writeln!(w, "{n} {}", if n == 1 { "entry" } else { "entries" })
    }
}

/// The JSON of `conntrack count`.
#[derive(Debug, Serialize, PartialEq)]
pub struct CountJson {
    /// Entries in the table.
    pub entries: u32,
    /// `nf_conntrack_max`.
    pub max: Option<u32>,
    /// `entries / max` in percent.
    pub percent_full: Option<f64>,
}

impl From<&GlobalStats> for CountJson {
    fn from(g: &GlobalStats) -> Self {
        CountJson {
            entries: g.entries,
            max: g.max_entries,
            percent_full: g
                .max_entries
                .filter(|m| *m > 0)
                .map(|m| f64::from(g.entries) * 100.0 / f64::from(m)),
        }
    }
}

/// Writes `conntrack count` for humans.
pub fn write_count(w: &mut impl Write, c: &CountJson) -> io::Result<()> {
    match (c.max, c.percent_full) {
        (Some(m), Some(p)) => writeln!(
            w,
            "entries {}  max {m} (nf_conntrack_max)  {p:.2}% full",
            c.entries
        ),
        _ => writeln!(w, "entries {}  max unknown", c.entries),
    }
}

/// Names and values of the per-CPU counters that current kernels send.
fn cpu_columns(s: &CpuStats) -> [(&'static str, Option<u32>); 10] {
    [
        ("FOUND", s.found),
        ("INVALID", s.invalid),
        ("INSERT", s.insert),
        ("INSERT_FAILED", s.insert_failed),
        ("DROP", s.drop),
        ("EARLY_DROP", s.early_drop),
        ("ERROR", s.error),
        ("SEARCH_RESTART", s.search_restart),
        ("CLASH_RESOLVE", s.clash_resolve),
        ("CHAINTOOLONG", s.chaintoolong),
    ]
}

/// Writes `conntrack stats` for humans: one line per CPU, then the total.
pub fn write_stats(w: &mut impl Write, cpus: &[CpuStats], total: &CpuStats) -> io::Result<()> {
    write!(w, "{:<6}", "CPU")?;
    for (name, _) in cpu_columns(total) {
        write!(w, " {name:>w$}", w = name.len().max(8))?;
    }
    writeln!(w)?;
    let line = |w: &mut dyn Write, label: &str, s: &CpuStats| -> io::Result<()> {
        write!(w, "{label:<6}")?;
        for (name, v) in cpu_columns(s) {
            let v = v.map_or_else(|| "-".to_owned(), |v| v.to_string());
            write!(w, " {v:>w$}", w = name.len().max(8))?;
        }
        writeln!(w)
    };
    for s in cpus {
        line(w, &s.cpu.to_string(), s)?;
    }
    line(w, "total", total)
}

/// The JSON of `conntrack stats`.
#[derive(Debug, Serialize)]
pub struct StatsJson<'a> {
    /// One object per CPU (`cpu` is its number).
    pub cpus: &'a [CpuStats],
    /// Sums over the CPUs.
    pub total: serde_json::Value,
}

impl<'a> StatsJson<'a> {
    /// Builds the JSON; the total has no `cpu` key.
    pub fn new(cpus: &'a [CpuStats], total: &CpuStats) -> io::Result<Self> {
        let mut t = serde_json::to_value(total).map_err(io::Error::other)?;
        if let Some(o) = t.as_object_mut() {
            o.remove("cpu");
        }
        Ok(StatsJson { cpus, total: t })
    }
}

/// One row of the state timeout table: protocol, state, seconds.
pub type TimeoutRow = (&'static str, &'static str, u32);

/// The state timeouts as rows (protocol, kernel state name, seconds), in kernel order.
pub fn timeout_rows(t: &StateTimeouts) -> Vec<TimeoutRow> {
    let per_proto = [
        ("tcp", ProtoTimeouts::Tcp(t.tcp)),
        ("udp", ProtoTimeouts::Udp(t.udp)),
        ("udplite", ProtoTimeouts::UdpLite(t.udplite)),
        ("sctp", ProtoTimeouts::Sctp(t.sctp)),
        ("dccp", ProtoTimeouts::Dccp(t.dccp)),
        ("icmp", ProtoTimeouts::Icmp(t.icmp)),
        ("icmpv6", ProtoTimeouts::Icmpv6(t.icmpv6)),
        ("gre", ProtoTimeouts::Gre(t.gre)),
        ("generic", ProtoTimeouts::Generic(t.generic)),
    ];
    let mut rows = Vec::new();
    for (proto, p) in per_proto {
        for (name, secs) in p.named_values() {
            // CTA_TIMEOUT_TCP_TIME_WAIT -> TIME_WAIT
            let state = name
                .strip_prefix("CTA_TIMEOUT_")
                .and_then(|s| s.split_once('_'))
                .map_or(name, |(_, st)| st);
            rows.push((proto, state, secs));
        }
    }
    rows
}

/// Where state timeouts came from, in words.
pub fn source_text(t: &StateTimeouts) -> &'static str {
    match t.source {
        ipvs_conntrack::conntrack::TimeoutSource::Cttimeout => {
            "cttimeout (the kernel's default policies, IPCTNL_MSG_TIMEOUT_DEFAULT_GET)"
        }
        ipvs_conntrack::conntrack::TimeoutSource::Sysctl => {
            "sysctl (net.netfilter.nf_conntrack_*timeout*)"
        }
    }
}

/// Writes `conntrack timeouts` for humans.
pub fn write_timeouts(w: &mut impl Write, t: &StateTimeouts) -> io::Result<()> {
    writeln!(w, "source: {}", source_text(t))?;
    writeln!(w, "{:<8} {:<18} {:>8}", "PROTO", "STATE", "SECONDS")?;
    for (proto, state, secs) in timeout_rows(t) {
        if secs >= 60 {
            writeln!(
                w,
                "{proto:<8} {state:<18} {secs:>8}  ({})",
                human_secs(secs)
            )?;
        } else {
            writeln!(w, "{proto:<8} {state:<18} {secs:>8}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipvs_conntrack::conntrack::tuple::{IPPROTO_ICMP, IPPROTO_TCP};
    use ipvs_conntrack::conntrack::{
        Family, Labels, MessageInfo, ProtoInfo, State, Status, TcpInfo, TcpState, TimeoutSource,
    };

    fn tcp_entry() -> Entry {
        let orig = Tuple::with_ports(
            IPPROTO_TCP,
            "10.213.0.1".parse().unwrap(),
            40000,
            "10.213.0.2".parse().unwrap(),
            80,
        );
        Entry {
            family: Family::Ipv4,
            message: MessageInfo {
                msg: 0,
                flags: 0,
                res_id: 0,
            },
            state: State::Tcp(TcpState::TimeWait),
            reply: orig.reversed(),
            orig,
            master: None,
            status: Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED,
            protoinfo: Some(ProtoInfo {
                tcp: Some(TcpInfo {
                    state: Some(TcpState::TimeWait),
                    ..TcpInfo::default()
                }),
                ..ProtoInfo::default()
            }),
            helper: None,
            nat_src: None,
            nat_dst: None,
            timeout: Some(117),
            state_timeout: Some(120),
            mark: Some(7),
            mark_mask: None,
            counters_orig: Some(Counters {
                packets: 6,
                bytes: 400,
            }),
            counters_reply: None,
            use_count: Some(1),
            id: Some(0xdead_beef),
            seq_adj_orig: None,
            seq_adj_reply: None,
            secmark: None,
            zone: None,
            secctx: None,
            timestamp: None,
            event_time: None,
            labels: Some(Labels(vec![1, 33])),
            labels_mask: None,
            synproxy: None,
            status_mask: None,
            unknown: Vec::new(),
            unknown_nested: Vec::new(),
        }
    }

    #[test]
    fn json_schema_of_a_tcp_entry() {
        let v = serde_json::to_value(EntryJson::from(&tcp_entry())).unwrap();
        let want = serde_json::json!({
            "family": "ipv4",
            "proto": "tcp",
            "orig": {"src": "10.213.0.1", "dst": "10.213.0.2", "sport": 40000, "dport": 80},
            "reply": {"src": "10.213.0.2", "dst": "10.213.0.1", "sport": 80, "dport": 40000},
            "state": "TIME_WAIT",
            "timeout": 117,
            "state_timeout": 120,
            "status": ["SEEN_REPLY", "ASSURED", "CONFIRMED"],
            "mark": 7,
            "zone": 0,
            "id": 3735928559u32,
            "use": 1,
            "counters": {"orig": {"packets": 6, "bytes": 400}, "reply": {"packets": 0, "bytes": 0}},
            "timestamp": null,
            "labels": [1, 33],
        });
        assert_eq!(v, want);
    }

    #[test]
    fn json_schema_of_an_icmp_entry() {
        let mut e = tcp_entry();
        e.orig = Tuple::icmp(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            8,
            0,
            99,
        );
        e.reply = e.orig.reversed();
        e.state = State::Icmp;
        e.counters_orig = None;
        e.labels = None;
        e.zone = Some(5);
        let v = serde_json::to_value(EntryJson::from(&e)).unwrap();
        assert_eq!(v["proto"], "icmp");
        assert_eq!(e.orig.proto, IPPROTO_ICMP);
        assert_eq!(
            v["orig"],
            serde_json::json!({"src": "10.0.0.1", "dst": "10.0.0.2", "type": 8, "code": 0, "id": 99})
        );
        assert_eq!(v["reply"]["type"], 0);
        assert_eq!(v["state"], serde_json::Value::Null);
        assert_eq!(v["counters"], serde_json::Value::Null);
        assert_eq!(v["labels"], serde_json::json!([]));
        assert_eq!(v["zone"], 5);
        assert_eq!(
            tuple_text(&e.orig),
            "10.0.0.1 -> 10.0.0.2 type 8 code 0 id 99"
        );
    }

    #[test]
    fn human_row_and_helpers() {
        let mut out = Vec::new();
        let mut t = EntryTable::default();
        t.row(&mut out, &tcp_entry()).unwrap();
        t.finish(&mut out, 1).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("PROTO   STATE"), "{text}");
        assert!(
            lines[1]
                .starts_with("tcp     TIME_WAIT         117/120 10.213.0.1:40000 -> 10.213.0.2:80"),
            "{text}"
        );
        assert!(
            lines[1].ends_with(" 7    0 SEEN_REPLY,ASSURED,CONFIRMED"),
            "{text}"
        );
        assert_eq!(lines[2], "1 entry");
        assert_eq!(endpoint("::1".parse().unwrap(), Some(80)), "[::1]:80");
        assert_eq!(human_secs(432_000), "5d");
        assert_eq!(human_secs(150), "2m30s");
        assert_eq!(human_secs(3_630), "1h30s");
        assert_eq!(human_secs(0), "0s");
        assert_eq!(timeout_text(Some(3), None), "3/-");
    }

    #[test]
    fn count_and_timeout_rows() {
        let c = CountJson::from(&GlobalStats {
            entries: 50,
            max_entries: None,
            ..GlobalStats::default()
        });
        assert_eq!(c.percent_full, None);
        let c = CountJson::from(&GlobalStats {
            entries: 50,
            max_entries: Some(200),
            ..GlobalStats::default()
        });
        assert_eq!(c.percent_full, Some(25.0));
        let mut out = Vec::new();
        write_count(&mut out, &c).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "entries 50  max 200 (nf_conntrack_max)  25.00% full\n"
        );
        let mut t = StateTimeouts::empty(TimeoutSource::Sysctl);
        t.tcp.time_wait = Some(120);
        t.udp.replied = Some(180);
        t.icmpv6 = Some(30);
        assert_eq!(
            timeout_rows(&t),
            vec![
                ("tcp", "TIME_WAIT", 120),
                ("udp", "REPLIED", 180),
                ("icmpv6", "TIMEOUT", 30)
            ]
        );
    }
}

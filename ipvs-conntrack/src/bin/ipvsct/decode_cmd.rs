//! `ipvsct decode FILE.pcap [--json]`: decodes a netlink capture (from `ipvsct capture`,
//! or tcpdump on an nlmon device) into conntrack entries, statistics, timeout policies,
//! errors and IPVS messages.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;
use ipvs_conntrack::capture::{decode_pcap_file, Body, DecodeOptions, Decoded, DecodedMessage};
use ipvs_conntrack::conntrack::CpuStats;
use ipvs_conntrack::socket::Direction;

use crate::failure::Failure;
use crate::output::{proto_label, timeout_text, tuple_text, write_json_line, EntryJson};

/// Options of `ipvsct decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// A pcap or pcapng file of netlink traffic (LINKTYPE_NETLINK).
    #[arg(value_name = "FILE.pcap")]
    pub file: PathBuf,
    /// Print one JSON object per netlink message (entries in the schema of `conntrack list --json`).
    #[arg(long)]
    pub json: bool,
    /// Generic netlink family id of IPVS, for captures without the nlctrl answer that names it
    /// (decimal or 0x hex; `genl ctrl get name IPVS` shows it on the capturing machine).
    #[arg(long, value_name = "ID", value_parser = parse_id)]
    pub ipvs_family_id: Option<u16>,
}

/// Parses a family id in decimal or `0x` hex.
fn parse_id(s: &str) -> Result<u16, String> {
    let t = s.trim();
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u16::from_str_radix(h, 16),
        None => t.parse(),
    };
    match v {
        Ok(id) if id >= 0x10 => Ok(id),
        _ => Err(format!(
            "not a generic netlink family id: {s:?} (a number from 16 to 65535)"
        )),
    }
}

/// Runs `ipvsct decode`.
pub fn run(a: &DecodeArgs) -> Result<(), Failure> {
    let opts = DecodeOptions {
        ipvs_family_id: a.ipvs_family_id,
    };
    let decoded = decode_pcap_file(&a.file, &opts).map_err(|e| Failure::new(e.to_string()))?;
    let mut out = io::stdout().lock();
    let r = if a.json {
        decoded
            .messages
            .iter()
            .try_for_each(|m| write_json_line(&mut out, &message_json(m)?))
    } else {
        write_text(&mut out, &decoded)
    };
    r.and_then(|()| out.flush()).map_err(Failure::from_output)
}

/// The JSON object of one message; an entry uses the `conntrack list --json` schema.
fn message_json(m: &DecodedMessage) -> io::Result<serde_json::Value> {
    let mut v = serde_json::to_value(m).map_err(io::Error::other)?;
    if let (Body::Entry(e), Some(obj)) = (&m.body, v.as_object_mut()) {
        obj.insert(
            "entry".into(),
            serde_json::to_value(EntryJson::from(e)).map_err(io::Error::other)?,
        );
    }
    Ok(v)
}

/// Writes one line per message and a summary.
fn write_text(w: &mut impl Write, d: &Decoded) -> io::Result<()> {
    let t0 = d.messages.first().map(|m| m.timestamp).unwrap_or_default();
    writeln!(
        w,
        "{:>5} {:>10} {:<3} {:<30} WHAT",
        "FRAME", "TIME", "DIR", "MESSAGE"
    )?;
    for m in &d.messages {
        let dir = match m.direction {
            Direction::Sent => "->",
            Direction::Received => "<-",
        };
        writeln!(
            w,
            "{:>5} {:>10.6} {:<3} {:<30} {}",
            m.frame,
            m.timestamp.saturating_sub(t0).as_secs_f64(),
            dir,
            m.name,
            summary(m)
        )?;
    }
    let entries = d.entries().count();
    let invalid = d
        .messages
        .iter()
        .filter(|m| matches!(m.body, Body::Invalid(_)))
        .count();
    writeln!(
        w,
        "{} records, {} messages: {} conntrack {}, {} that did not decode; IPVS family id: {}",
        d.records,
        d.messages.len(),
        entries,
        if entries == 1 { "entry" } else { "entries" },
        invalid,
        d.ipvs_family_id
            .map_or_else(|| "unknown".to_owned(), |id| id.to_string())
    )
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |x| x.to_string())
}

fn cpu_text(c: &CpuStats) -> String {
    let fields = [
        ("found", c.found),
        ("invalid", c.invalid),
        ("insert", c.insert),
        ("insert_failed", c.insert_failed),
        ("drop", c.drop),
        ("early_drop", c.early_drop),
        ("error", c.error),
        ("search_restart", c.search_restart),
        ("clash_resolve", c.clash_resolve),
        ("chaintoolong", c.chaintoolong),
    ];
    let mut s = format!("cpu={}", c.cpu);
    for (name, v) in fields {
        if let Some(v) = v {
            s.push_str(&format!(" {name}={v}"));
        }
    }
    s
}

/// One line about what a message carries.
fn summary(m: &DecodedMessage) -> String {
    match &m.body {
        Body::Entry(e) => {
            let status: Vec<_> = e.status.names().collect();
            format!(
                "{} {} {} {} reply {} id={} status={}{}",
                proto_label(e.orig.proto),
                e.state,
                timeout_text(e.timeout, e.state_timeout),
                tuple_text(&e.orig),
                tuple_text(&e.reply),
                opt(e.id),
                if status.is_empty() {
                    "-".to_owned()
                } else {
                    status.join(",")
                },
                e.mark.map_or_else(String::new, |mk| format!(" mark={mk}")),
            )
        }
        Body::Expectation(x) => format!(
            "expectation {} master {} timeout={} id={} helper={}",
            tuple_text(&x.tuple),
            tuple_text(&x.master),
            opt(x.timeout),
            opt(x.id),
            x.helper.as_deref().unwrap_or("-")
        ),
        Body::Stats(s) => format!("entries={} max={}", s.entries, opt(s.max_entries)),
        Body::CpuStats(c) => cpu_text(c),
        Body::ExpectCpuStats(c) => format!("expectations cpu={} {c:?}", c.cpu),
        Body::TimeoutPolicy(p) => {
            let values: Vec<String> = p
                .timeouts
                .named_values()
                .into_iter()
                .map(|(n, v)| format!("{}={v}", n.strip_prefix("CTA_TIMEOUT_").unwrap_or(n)))
                .collect();
            format!(
                "{} l3={} l4={}: {}",
                p.name
                    .as_deref()
                    .map_or_else(|| "default policy".to_owned(), |n| format!("policy {n}")),
                p.l3proto,
                proto_label(p.l4proto),
                values.join(" ")
            )
        }
        Body::Family(f) => format!("family {} id={} version={}", f.name, f.id, f.version),
        Body::IpvsService(s) => format!(
            "service {} scheduler={} conns={}",
            s.key,
            s.scheduler,
            opt(s.best_stats().map(|x| x.conns))
        ),
        Body::IpvsDest(k, d) => format!(
            "{}real server {} {:?} weight={} active={} inactive={} persistent={}",
            k.map_or_else(String::new, |k| format!("{k} ")),
            d.socket_addr(),
            d.fwd_method,
            d.weight,
            d.active_conns,
            d.inactive_conns,
            d.persist_conns
        ),
        Body::IpvsDaemon(dm) => format!(
            "sync daemon {:?} ifn={} syncid={}",
            dm.state, dm.mcast_ifn, dm.sync_id
        ),
        Body::IpvsConfig(t) => format!(
            "timeouts tcp={} tcp_fin={} udp={}",
            opt(t.tcp),
            opt(t.tcp_fin),
            opt(t.udp)
        ),
        Body::IpvsInfo(i) => format!("version={:#x} conn_tab_size={}", i.version, i.conn_tab_size),
        Body::Ack => "ack".to_owned(),
        Body::Done => "done".to_owned(),
        Body::Error(e) => format!("error: {e}"),
        Body::Noop => "noop".to_owned(),
        Body::Overrun => "overrun: messages were lost".to_owned(),
        Body::Request => format!(
            "request seq={} flags={:#x}",
            m.header.sequence, m.header.flags
        ),
        Body::Other => format!("type {:#06x} not decoded", m.header.message_type),
        Body::Invalid(e) => format!("DOES NOT DECODE: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_ids() {
        assert_eq!(parse_id("37"), Ok(37));
        assert_eq!(parse_id("0x25"), Ok(37));
        assert!(parse_id("3").is_err());
        assert!(parse_id("70000").is_err());
        assert!(parse_id("ipvs").is_err());
    }
}

//! `ipvsct conntrack ...`: list, get, count, stats and timeouts of one namespace's table.

use std::io::{self, Write};
use std::net::IpAddr;

use clap::{Args, Subcommand, ValueEnum};
use ipvs_conntrack::conntrack::protoinfo::{DccpState, SctpState, TcpState};
use ipvs_conntrack::conntrack::tuple::{
    proto_from_name, IPPROTO_DCCP, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP,
    IPPROTO_UDP, IPPROTO_UDPLITE,
};
use ipvs_conntrack::conntrack::{
    Conntrack, CpuStats, DumpFilter, Entry, Family, Status, Table, Tuple, UdpState,
};
use ipvs_conntrack::{Error, Netns};

use crate::failure::Failure;
use crate::output::{self, EntryJson, EntryTable};

// The write, event, expectation and policy commands live in their own files next to this one.
#[path = "events_cmd.rs"]
pub mod events_cmd;
#[path = "expect_cmd.rs"]
pub mod expect_cmd;
#[path = "policy_cmd.rs"]
pub mod policy_cmd;
#[path = "write_cmd.rs"]
pub mod write_cmd;

/// Options every conntrack subcommand takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Network namespace: an `ip netns` name or a path such as /proc/PID/ns/net (default: the current one).
    #[arg(long, value_name = "NAME|PATH")]
    pub netns: Option<String>,
    /// Print JSON (`list`: one object per line).
    #[arg(long)]
    pub json: bool,
}

impl Common {
    /// The namespace to work in.
    pub fn netns(&self) -> Netns {
        self.netns.as_deref().map_or(Netns::Current, Netns::parse)
    }

    /// Opens a conntrack client in the namespace.
    fn open(&self) -> Result<Conntrack, Failure> {
        Ok(Conntrack::open(&self.netns())?)
    }
}

/// The conntrack subcommands.
#[derive(Debug, Subcommand)]
pub enum ConntrackCommand {
    /// List entries, streamed as they are decoded (filters run in the kernel where it can).
    List(ListArgs),
    /// Get one entry by its original tuple (exit code 1 if there is none).
    Get(GetArgs),
    /// Entries in the table, nf_conntrack_max, and how full the table is.
    Count(CountArgs),
    /// Per-CPU statistics and their total.
    Stats(CountArgs),
    /// The default state timeout of every protocol and state, and where it came from;
    /// `timeouts policy …` manages named and default timeout policies.
    Timeouts(TimeoutsArgs),
    /// Stream NEW/UPDATE/DESTROY (and expectation) events until Ctrl-C, N events or a time limit.
    Events(Box<events_cmd::EventsArgs>),
    /// Create an entry (like `conntrack -I`).
    Create(Box<write_cmd::CreateArgs>),
    /// Change an entry's timeout, mark, labels, status or state (like `conntrack -U`).
    Update(Box<write_cmd::UpdateArgs>),
    /// Delete one entry by tuple or by id (like `conntrack -D`).
    Delete(Box<write_cmd::DeleteArgs>),
    /// Delete every entry, or those matching a kernel-side filter (like `conntrack -F`).
    Flush(Box<write_cmd::FlushArgs>),
    /// Expectations: list, create, delete, flush.
    #[command(subcommand)]
    Expect(expect_cmd::ExpectCommand),
}

/// An address family on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FamilyArg {
    /// IPv4.
    #[value(alias = "inet", alias = "4")]
    Ipv4,
    /// IPv6.
    #[value(alias = "inet6", alias = "6")]
    Ipv6,
}

impl From<FamilyArg> for Family {
    fn from(f: FamilyArg) -> Family {
        match f {
            FamilyArg::Ipv4 => Family::Ipv4,
            FamilyArg::Ipv6 => Family::Ipv6,
        }
    }
}

/// Arguments of `conntrack list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Namespace and output format.
    #[command(flatten)]
    pub common: Common,
    /// Only this address family.
    #[arg(long, value_enum)]
    pub family: Option<FamilyArg>,
    /// Only this L4 protocol (tcp, udp, icmp, icmpv6, sctp, dccp, gre, udplite or a number).
    #[arg(long)]
    pub proto: Option<String>,
    /// Only entries whose mark matches: VALUE or VALUE/MASK (decimal or 0x hex).
    #[arg(long, value_name = "V[/MASK]")]
    pub mark: Option<String>,
    /// Only this conntrack zone.
    #[arg(long)]
    pub zone: Option<u16>,
    /// Only entries with all these status bits set (IPS_* names, comma-separated).
    #[arg(long, value_name = "ASSURED[,SEEN_REPLY...]")]
    pub status: Option<String>,
    /// Original source address.
    #[arg(long)]
    pub src: Option<IpAddr>,
    /// Original destination address.
    #[arg(long)]
    pub dst: Option<IpAddr>,
    /// Original source port (needs --proto).
    #[arg(long)]
    pub sport: Option<u16>,
    /// Original destination port (needs --proto).
    #[arg(long)]
    pub dport: Option<u16>,
    /// Only entries in this state (TIME_WAIT, ESTABLISHED, UNREPLIED, …); checked in user space.
    #[arg(long)]
    pub state: Option<String>,
    /// List the entries being destroyed instead of the main table.
    #[arg(long, conflicts_with = "unconfirmed")]
    pub dying: bool,
    /// List the entries not yet confirmed instead of the main table.
    #[arg(long)]
    pub unconfirmed: bool,
}

/// Arguments of `conntrack get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Namespace and output format.
    #[command(flatten)]
    pub common: Common,
    /// L4 protocol (tcp, udp, icmp, …).
    #[arg(long)]
    pub proto: String,
    /// Original source address.
    #[arg(long)]
    pub src: IpAddr,
    /// Original destination address.
    #[arg(long)]
    pub dst: IpAddr,
    /// Original source port (TCP, UDP, SCTP, DCCP, UDP-Lite).
    #[arg(long)]
    pub sport: Option<u16>,
    /// Original destination port.
    #[arg(long)]
    pub dport: Option<u16>,
    /// ICMP type.
    #[arg(long)]
    pub icmp_type: Option<u8>,
    /// ICMP code.
    #[arg(long)]
    pub icmp_code: Option<u8>,
    /// ICMP identifier.
    #[arg(long)]
    pub icmp_id: Option<u16>,
    /// Conntrack zone.
    #[arg(long)]
    pub zone: Option<u16>,
}

/// Arguments of `conntrack count` and `conntrack stats`.
#[derive(Debug, Args)]
pub struct CountArgs {
    /// Namespace and output format.
    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `conntrack timeouts`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TimeoutsArgs {
    /// Namespace and output format.
    #[command(flatten)]
    pub common: Common,
    /// Read the net.netfilter sysctls instead of asking cttimeout.
    #[arg(long)]
    pub sysctl: bool,
    /// Timeout policies instead of the table of defaults.
    #[command(subcommand)]
    pub command: Option<policy_cmd::TimeoutsCommand>,
}

/// Runs one conntrack subcommand.
pub fn run(cmd: ConntrackCommand) -> Result<(), Failure> {
    match cmd {
        ConntrackCommand::List(a) => list(&a),
        ConntrackCommand::Get(a) => get(&a),
        ConntrackCommand::Count(a) => count(&a),
        ConntrackCommand::Stats(a) => stats(&a),
        ConntrackCommand::Timeouts(a) => match &a.command {
            Some(c) => policy_cmd::run(c),
            None => timeouts(&a),
        },
        ConntrackCommand::Events(a) => events_cmd::run(&a),
        ConntrackCommand::Create(a) => write_cmd::create(&a),
        ConntrackCommand::Update(a) => write_cmd::update(&a),
        ConntrackCommand::Delete(a) => write_cmd::delete(&a),
        ConntrackCommand::Flush(a) => write_cmd::flush(&a),
        ConntrackCommand::Expect(c) => expect_cmd::run(&c),
    }
}

/// Parses a protocol name or number.
pub fn parse_proto(s: &str) -> Result<u8, Failure> {
    proto_from_name(s).ok_or_else(|| {
        Failure::usage(format!(
            "unknown protocol '{s}': use tcp, udp, icmp, icmpv6, sctp, dccp, gre, udplite or a number"
        ))
    })
}

/// Parses a number in decimal or `0x` hex.
fn parse_u32(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses `VALUE[/MASK]` (mask defaults to all ones).
pub fn parse_mark(s: &str) -> Result<(u32, u32), Failure> {
    let bad = || Failure::usage(format!("bad --mark '{s}': expected VALUE or VALUE/MASK"));
    match s.split_once('/') {
        Some((v, m)) => Ok((parse_u32(v).ok_or_else(bad)?, parse_u32(m).ok_or_else(bad)?)),
        None => Ok((parse_u32(s).ok_or_else(bad)?, u32::MAX)),
    }
}

/// Parses a comma-separated list of IPS_* names into one status word.
pub fn parse_status(s: &str) -> Result<Status, Failure> {
    let mut out = Status::empty();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let bit = Status::from_kernel_name(&name.to_ascii_uppercase()).ok_or_else(|| {
            Failure::usage(format!(
                "unknown status bit '{name}': use {}",
                ipvs_conntrack::conntrack::status::STATUS_NAMES.join(", ")
            ))
        })?;
        out |= bit;
    }
    if out.is_empty() {
        return Err(Failure::usage("--status needs at least one IPS_* name"));
    }
    Ok(out)
}

/// Normalizes a state name (`time-wait` → `TIME_WAIT`) and checks that some protocol has it.
pub fn parse_state(s: &str) -> Result<String, Failure> {
    let n = s.trim().to_ascii_uppercase().replace('-', "_");
    let known = TcpState::from_name(&n).is_some()
        || SctpState::from_name(&n).is_some()
        || DccpState::from_name(&n).is_some()
        || UdpState::from_name(&n).is_some();
    if known {
        Ok(n)
    } else {
        Err(Failure::usage(format!(
            "unknown state '{s}': use a TCP/SCTP/DCCP state such as TIME_WAIT or ESTABLISHED, \
             or UNREPLIED/REPLIED/STREAM for UDP and GRE"
        )))
    }
}

/// The address family implied by `--family` and the addresses given.
fn family_of(
    explicit: Option<FamilyArg>,
    addrs: &[Option<IpAddr>],
) -> Result<Option<Family>, Failure> {
    let mut fam = explicit.map(Family::from);
    for a in addrs.iter().flatten() {
        let f = if a.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        };
        match fam {
            Some(g) if g != f => {
                return Err(Failure::usage(format!(
                    "address {a} does not belong to family {g}"
                )))
            }
            _ => fam = Some(f),
        }
    }
    Ok(fam)
}

impl ListArgs {
    /// The dump filter these arguments ask for.
    pub fn filter(&self) -> Result<DumpFilter, Failure> {
        let mut f = DumpFilter::all();
        f.family = family_of(self.family, &[self.src, self.dst])?;
        if let Some(m) = &self.mark {
            f.mark = Some(parse_mark(m)?);
        }
        f.zone = self.zone;
        if let Some(s) = &self.status {
            let st = parse_status(s)?;
            f.status = Some((st, st));
        }
        f.orig.src = self.src;
        f.orig.dst = self.dst;
        f.orig.proto = self.proto.as_deref().map(parse_proto).transpose()?;
        f.orig.src_port = self.sport;
        f.orig.dst_port = self.dport;
        if (self.sport.is_some() || self.dport.is_some()) && f.orig.proto.is_none() {
            return Err(Failure::usage(
                "--sport/--dport need --proto (e.g. --proto tcp)",
            ));
        }
        Ok(f)
    }

    /// The table to dump.
    fn table(&self) -> Table {
        if self.dying {
            Table::Dying
        } else if self.unconfirmed {
            Table::Unconfirmed
        } else {
            Table::Main
        }
    }
}

/// Prints entries as they come: one JSON line or one table row each.
struct EntrySink<W: Write> {
    out: W,
    json: bool,
    table: EntryTable,
    printed: u64,
}

impl<W: Write> EntrySink<W> {
    fn new(out: W, json: bool) -> Self {
        EntrySink {
            out,
            json,
            table: EntryTable::default(),
            printed: 0,
        }
    }

    fn entry(&mut self, e: &Entry) -> Result<(), Failure> {
        self.printed += 1;
        let r = if self.json {
            output::write_json_line(&mut self.out, &EntryJson::from(e))
        } else {
            self.table.row(&mut self.out, e)
        };
        r.map_err(Failure::from_output)
    }

    fn finish(&mut self) -> Result<(), Failure> {
        if !self.json {
            self.table
                .finish(&mut self.out, self.printed)
                .map_err(Failure::from_output)?;
        }
        self.out.flush().map_err(Failure::from_output)
    }
}

/// Streams the dump through `sink`, skipping entries not in `state`.
fn stream<W: Write>(
    ct: &mut Conntrack,
    table: Table,
    filter: &DumpFilter,
    state: Option<&str>,
    sink: &mut EntrySink<W>,
) -> Result<(), StreamError> {
    let dump = ct.dump_table(table, filter).map_err(StreamError::Lib)?;
    for e in dump {
        let e = e.map_err(StreamError::Lib)?;
        if state.is_some_and(|s| e.state.name() != Some(s)) {
            continue;
        }
        sink.entry(&e).map_err(StreamError::Output)?;
    }
    Ok(())
}

/// A failure while streaming: from the library (maybe retryable) or from writing.
enum StreamError {
    Lib(Error),
    Output(Failure),
}

fn list(a: &ListArgs) -> Result<(), Failure> {
    let mut filter = a.filter()?;
    let state = a.state.as_deref().map(parse_state).transpose()?;
    let mut ct = a.common.open()?;
    let stdout = io::stdout();
    let mut sink = EntrySink::new(io::BufWriter::new(stdout.lock()), a.common.json);
    let table = a.table();
    match stream(&mut ct, table, &filter, state.as_deref(), &mut sink) {
        Ok(()) => {}
        Err(StreamError::Output(f)) => return Err(f),
        // An older kernel that rejects the filter attributes: filter in user space instead.
        Err(StreamError::Lib(Error::Unsupported { .. })) if sink.printed == 0 => {
            filter.user_space_only = true;
            match stream(&mut ct, table, &filter, state.as_deref(), &mut sink) {
                Ok(()) => {}
                Err(StreamError::Output(f)) => return Err(f),
                Err(StreamError::Lib(e)) => {
                    let _ = sink.finish();
                    return Err(e.into());
                }
            }
        }
        Err(StreamError::Lib(e)) => {
            let _ = sink.finish();
            return Err(e.into());
        }
    }
    sink.finish()
}

impl GetArgs {
    /// The original tuple to look up.
    pub fn tuple(&self) -> Result<Tuple, Failure> {
        let proto = parse_proto(&self.proto)?;
        family_of(None, &[Some(self.src), Some(self.dst)])?;
        let mut t = match proto {
            IPPROTO_ICMP | IPPROTO_ICMPV6 => {
                let (Some(ty), Some(id)) = (self.icmp_type, self.icmp_id) else {
                    return Err(Failure::usage(
                        "an ICMP lookup needs --icmp-type and --icmp-id (and --icmp-code, default 0)",
                    ));
                };
                let mut t = Tuple::icmp(self.src, self.dst, ty, self.icmp_code.unwrap_or(0), id);
                t.proto = proto;
                t
            }
            IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP | IPPROTO_DCCP | IPPROTO_UDPLITE => {
                let (Some(sp), Some(dp)) = (self.sport, self.dport) else {
                    return Err(Failure::usage(format!(
                        "a {} lookup needs --sport and --dport",
                        output::proto_label(proto)
                    )));
                };
                Tuple::with_ports(proto, self.src, sp, self.dst, dp)
            }
            _ => {
                let mut t = Tuple::with_ports(proto, self.src, 0, self.dst, 0);
                t.src_port = self.sport;
                t.dst_port = self.dport;
                t
            }
        };
        t.zone = self.zone;
        Ok(t)
    }
}

fn get(a: &GetArgs) -> Result<(), Failure> {
    let tuple = a.tuple()?;
    let mut ct = a.common.open()?;
    let e = match ct.get(&tuple) {
        Ok(e) => e,
        Err(e) if e.is_not_found() => {
            return Err(Failure::new(format!(
                "not found: {} {}{}",
                output::proto_label(tuple.proto),
                output::tuple_text(&tuple),
                tuple
                    .zone
                    .map_or_else(String::new, |z| format!(" zone {z}"))
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let r = if a.common.json {
        output::write_json_line(&mut out, &EntryJson::from(&e))
    } else {
        EntryTable::default().row(&mut out, &e)
    };
    r.and_then(|()| out.flush()).map_err(Failure::from_output)
}

fn count(a: &CountArgs) -> Result<(), Failure> {
    let mut ct = a.common.open()?;
    let c = output::CountJson::from(&ct.count()?);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let r = if a.common.json {
        output::write_json_line(&mut out, &c)
    } else {
        output::write_count(&mut out, &c)
    };
    r.and_then(|()| out.flush()).map_err(Failure::from_output)
}

fn stats(a: &CountArgs) -> Result<(), Failure> {
    let mut ct = a.common.open()?;
    let cpus = ct.cpu_stats()?;
    let total = CpuStats::sum(&cpus);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let r = if a.common.json {
        output::StatsJson::new(&cpus, &total).and_then(|j| output::write_json_line(&mut out, &j))
    } else {
        output::write_stats(&mut out, &cpus, &total)
    };
    r.and_then(|()| out.flush()).map_err(Failure::from_output)
}

fn timeouts(a: &TimeoutsArgs) -> Result<(), Failure> {
    let mut ct = a.common.open()?;
    let t = if a.sysctl {
        ct.sysctl_timeouts()?
    } else {
        ct.default_timeouts()?
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let r = if a.common.json {
        output::write_json_line(&mut out, &t)
    } else {
        output::write_timeouts(&mut out, &t)
    };
    r.and_then(|()| out.flush()).map_err(Failure::from_output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_status_states_protocols() {
        assert_eq!(parse_mark("7").unwrap(), (7, u32::MAX));
        assert_eq!(parse_mark("0x10/0xff").unwrap(), (16, 255));
        assert_eq!(parse_mark("1/x").unwrap_err().code, 2);
        assert_eq!(
            parse_status("ASSURED,ips_seen_reply").unwrap(),
            Status::ASSURED | Status::SEEN_REPLY
        );
        assert!(parse_status("ASSURED,NOPE")
            .unwrap_err()
            .message
            .contains("NOPE"));
        assert_eq!(parse_state("time-wait").unwrap(), "TIME_WAIT");
        assert_eq!(parse_state("unreplied").unwrap(), "UNREPLIED");
        assert!(parse_state("TIME-WAITING").is_err());
        assert_eq!(parse_proto("TCP").unwrap(), IPPROTO_TCP);
        assert_eq!(parse_proto("132").unwrap(), IPPROTO_SCTP);
        assert!(parse_proto("tcpp").is_err());
    }

    fn list_args(extra: &[&str]) -> ListArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct W {
            #[command(flatten)]
            l: ListArgs,
        }
        let mut argv = vec!["x"];
        argv.extend_from_slice(extra);
        W::try_parse_from(argv).unwrap().l
    }

    #[test]
    fn list_filter_from_arguments() {
        let f = list_args(&[
            "--src", "10.0.0.1", "--proto", "tcp", "--dport", "80", "--mark", "3/0xf", "--zone",
            "4", "--status", "ASSURED",
        ])
        .filter()
        .unwrap();
        assert_eq!(f.family, Some(Family::Ipv4));
        assert_eq!(f.orig.src, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(f.orig.proto, Some(IPPROTO_TCP));
        assert_eq!(f.orig.dst_port, Some(80));
        assert_eq!(f.mark, Some((3, 15)));
        assert_eq!(f.zone, Some(4));
        assert_eq!(f.status, Some((Status::ASSURED, Status::ASSURED)));
        assert!(f.validate().is_ok());
        let e = list_args(&["--dport", "80"]).filter().unwrap_err();
        assert!(e.message.contains("--proto"), "{}", e.message);
        let e = list_args(&["--family", "ipv6", "--src", "10.0.0.1"])
            .filter()
            .unwrap_err();
        assert!(e.message.contains("family"), "{}", e.message);
        assert_eq!(list_args(&["--dying"]).table(), Table::Dying);
        assert_eq!(list_args(&[]).filter().unwrap(), DumpFilter::all());
    }
}

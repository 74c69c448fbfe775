//! `ipvsct conntrack expect list|create|delete|flush`: the connections helpers expect.
//!
//! # JSON schema of one expectation (`expect list --json`, one object per line)
//!
//! | key      | type                 | meaning |
//! |----------|----------------------|---------|
//! | `family` | string               | `ipv4` or `ipv6` |
//! | `proto`  | string               | L4 protocol of the expected connection |
//! | `master` | tuple object         | original tuple of the master connection (schema of `list --json`) |
//! | `tuple`  | tuple object         | the expected connection's original tuple |
//! | `mask`   | tuple object         | which bits of `tuple` must match (addresses and ports as masks) |
//! | `timeout`| integer \| null      | seconds left |
//! | `id`     | integer \| null      | expectation id |
//! | `helper` | string \| null       | helper of the master |
//! | `zone`   | integer              | zone (0 when the kernel sends none) |
//! | `flags`  | array of strings     | `PERMANENT`, `INACTIVE`, `USERSPACE` (unknown bits as `BIT<n>`) |
//! | `class`  | integer \| null      | the helper's expectation class |
//! | `nat`    | object \| null       | `{"dir": "original"\|"reply", "src", "sport"}` |
//! | `fn`     | string \| null       | expectation function (`nat-follow-master`, …) |

use std::borrow::Cow;
use std::io::{self, Write};
use std::net::IpAddr;

use clap::{Args, Subcommand};
use ipvs_conntrack::conntrack::expect::exact_mask;
use ipvs_conntrack::conntrack::{
    ExpectDeleteRequest, ExpectFlags, ExpectFlushRequest, ExpectNat, ExpectRequest, Expectation,
    Tuple,
};
use serde::Serialize;

use super::write_cmd::{checked, describe, write_failure, NetnsArg};
use super::{parse_proto, Common, FamilyArg};
use crate::failure::Failure;
use crate::output::{self, TupleJson};

/// The expectation subcommands.
#[derive(Debug, Subcommand)]
pub enum ExpectCommand {
    /// List the expectations of the namespace.
    List(ExpectListArgs),
    /// Create an expectation on behalf of a master connection that has a helper.
    Create(Box<ExpectCreateArgs>),
    /// Delete one expectation by its tuple, or by id.
    Delete(ExpectDeleteArgs),
    /// Delete every expectation, or those of one helper.
    Flush(ExpectFlushArgs),
}

/// Arguments of `expect list`.
#[derive(Debug, Args)]
pub struct ExpectListArgs {
    /// Namespace and output format.
    #[command(flatten)]
    pub common: Common,
    /// Only this address family.
    #[arg(long, value_enum)]
    pub family: Option<FamilyArg>,
}

/// The expected connection's tuple (a port left out matches any port).
#[derive(Debug, Args)]
pub struct ExpectedArgs {
    /// L4 protocol of the expected connection (tcp, udp, …).
    #[arg(long)]
    pub proto: String,
    /// Source address of the expected connection.
    #[arg(long)]
    pub src: IpAddr,
    /// Destination address of the expected connection.
    #[arg(long)]
    pub dst: IpAddr,
    /// Source port (default 0 with a zero mask: any port).
    #[arg(long)]
    pub sport: Option<u16>,
    /// Destination port (default 0 with a zero mask: any port).
    #[arg(long)]
    pub dport: Option<u16>,
}

impl ExpectedArgs {
    /// The tuple; missing ports are 0.
    fn tuple(&self) -> Result<Tuple, Failure> {
        let proto = parse_proto(&self.proto)?;
        Ok(Tuple::with_ports(
            proto,
            self.src,
            self.sport.unwrap_or(0),
            self.dst,
            self.dport.unwrap_or(0),
        ))
    }
}

/// Arguments of `expect create`.
#[derive(Debug, Args)]
pub struct ExpectCreateArgs {
    /// Namespace.
    #[command(flatten)]
    pub netns: NetnsArg,
    /// Expected connection.
    #[command(flatten)]
    pub expected: ExpectedArgs,
    /// L4 protocol of the master (default: --proto).
    #[arg(long)]
    pub master_proto: Option<String>,
    /// Master original source address.
    #[arg(long)]
    pub master_src: IpAddr,
    /// Master original destination address.
    #[arg(long)]
    pub master_dst: IpAddr,
    /// Master original source port.
    #[arg(long)]
    pub master_sport: u16,
    /// Master original destination port.
    #[arg(long)]
    pub master_dport: u16,
    /// Source address mask (default: all ones).
    #[arg(long)]
    pub mask_src: Option<IpAddr>,
    /// Destination address mask (default: all ones).
    #[arg(long)]
    pub mask_dst: Option<IpAddr>,
    /// Source port mask (default 0xffff, or 0 when --sport is left out).
    #[arg(long)]
    pub mask_sport: Option<u16>,
    /// Destination port mask (default 0xffff, or 0 when --dport is left out).
    #[arg(long)]
    pub mask_dport: Option<u16>,
    /// Seconds until the expectation expires (the helper's policy may override it).
    #[arg(long, value_name = "SECS")]
    pub timeout: u32,
    /// Helper of the expectation (the master's, e.g. ftp).
    #[arg(long)]
    pub helper: Option<String>,
    /// Zone of the master.
    #[arg(long)]
    pub zone: Option<u16>,
    /// Flags: PERMANENT, INACTIVE (comma-separated).
    #[arg(long, value_name = "FLAGS")]
    pub flags: Option<String>,
    /// The helper's expectation class (needs --helper).
    #[arg(long)]
    pub class: Option<u32>,
    /// NAT direction of the expectation: original or reply (needs --nat).
    #[arg(long, value_parser = ["original", "reply"], requires = "nat")]
    pub nat_dir: Option<String>,
    /// NAT address and port saved with the expectation: `IP[:PORT]` or `[IPv6]:PORT`.
    #[arg(long, value_name = "IP[:PORT]", requires = "nat_dir")]
    pub nat: Option<String>,
    /// Expectation function registered by a NAT helper (e.g. nat-follow-master).
    #[arg(long = "fn", value_name = "NAME")]
    pub expect_fn: Option<String>,
}

/// Arguments of `expect delete`.
#[derive(Debug, Args)]
pub struct ExpectDeleteArgs {
    /// Namespace.
    #[command(flatten)]
    pub netns: NetnsArg,
    /// L4 protocol of the expected connection.
    #[arg(long)]
    pub proto: Option<String>,
    /// Source address of the expected connection.
    #[arg(long)]
    pub src: Option<IpAddr>,
    /// Destination address of the expected connection.
    #[arg(long)]
    pub dst: Option<IpAddr>,
    /// Source port (default 0).
    #[arg(long)]
    pub sport: Option<u16>,
    /// Destination port (default 0).
    #[arg(long)]
    pub dport: Option<u16>,
    /// Zone.
    #[arg(long)]
    pub zone: Option<u16>,
    /// Expectation id: alone, deletes the expectation with this id; with a tuple, only if it matches.
    #[arg(long)]
    pub id: Option<u32>,
}

/// Arguments of `expect flush`.
#[derive(Debug, Args)]
pub struct ExpectFlushArgs {
    /// Namespace.
    #[command(flatten)]
    pub netns: NetnsArg,
    /// Only the expectations of this helper.
    #[arg(long)]
    pub helper: Option<String>,
}

/// The NAT part of an expectation in JSON.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ExpectNatJson {
    /// `original` or `reply`.
    pub dir: Cow<'static, str>,
    /// Saved address.
    pub src: IpAddr,
    /// Saved port.
    pub sport: Option<u16>,
}

/// One expectation as `expect list --json` prints it (see the module docs).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ExpectJson {
    /// Address family name.
    pub family: String,
    /// L4 protocol of the expected connection.
    pub proto: Cow<'static, str>,
    /// Master's original tuple.
    pub master: TupleJson,
    /// Expected tuple.
    pub tuple: TupleJson,
    /// Mask of the expected tuple.
    pub mask: TupleJson,
    /// Seconds left.
    pub timeout: Option<u32>,
    /// Expectation id.
    pub id: Option<u32>,
    /// Helper name.
    pub helper: Option<String>,
    /// Zone (0 when absent).
    pub zone: u16,
    /// Flag names.
    pub flags: Vec<String>,
    /// Expectation class.
    pub class: Option<u32>,
    /// NAT part.
    pub nat: Option<ExpectNatJson>,
    /// Expectation function.
    #[serde(rename = "fn")]
    pub expect_fn: Option<String>,
}

/// Names of the set expectation flags (unknown bits as `BIT<n>`).
pub fn flag_names(f: ExpectFlags) -> Vec<String> {
    let known = [
        (ExpectFlags::PERMANENT, "PERMANENT"),
        (ExpectFlags::INACTIVE, "INACTIVE"),
        (ExpectFlags::USERSPACE, "USERSPACE"),
    ];
    let mut out = Vec::new();
    for b in 0..32u32 {
        let bit = ExpectFlags::from_bits_retain(1 << b);
        if !f.contains(bit) {
            continue;
        }
        match known.iter().find(|(k, _)| *k == bit) {
            Some((_, n)) => out.push((*n).to_owned()),
            None => out.push(format!("BIT{b}")),
        }
    }
    out
}

/// Parses PERMANENT,INACTIVE,… into flags.
pub fn parse_flags(s: &str) -> Result<ExpectFlags, Failure> {
    let mut f = ExpectFlags::empty();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        f |= match name.to_ascii_uppercase().as_str() {
            "PERMANENT" => ExpectFlags::PERMANENT,
            "INACTIVE" => ExpectFlags::INACTIVE,
            "USERSPACE" => ExpectFlags::USERSPACE,
            _ => {
                return Err(Failure::usage(format!(
                    "unknown expectation flag '{name}': use PERMANENT, INACTIVE or USERSPACE"
                )))
            }
        };
    }
    Ok(f)
}

impl From<&Expectation> for ExpectJson {
    fn from(e: &Expectation) -> Self {
        ExpectJson {
            family: e.family.to_string(),
            proto: output::proto_label(e.tuple.proto),
            master: TupleJson::from(&e.master),
            tuple: TupleJson::from(&e.tuple),
            mask: TupleJson::from(&e.mask),
            timeout: e.timeout,
            id: e.id,
            helper: e.helper.clone(),
            zone: e.zone.unwrap_or(0),
            flags: e.flags.map(flag_names).unwrap_or_default(),
            class: e.class,
            nat: e.nat.as_ref().map(|n| ExpectNatJson {
                dir: match n.dir {
                    0 => Cow::Borrowed("original"),
                    1 => Cow::Borrowed("reply"),
                    d => Cow::Owned(d.to_string()),
                },
                src: n.tuple.src,
                sport: n.tuple.src_port,
            }),
            expect_fn: e.expect_fn.clone(),
        }
    }
}

/// `key=value` words of a tuple, each key prefixed with `prefix`.
fn tuple_words(out: &mut String, prefix: &str, t: &Tuple) {
    out.push_str(&format!(" {prefix}src={} {prefix}dst={}", t.src, t.dst));
    for (k, v) in [
        ("sport", t.src_port),
        ("dport", t.dst_port),
        ("id", t.icmp_id),
    ] {
        if let Some(v) = v {
            out.push_str(&format!(" {prefix}{k}={v}"));
        }
    }
    for (k, v) in [("type", t.icmp_type), ("code", t.icmp_code)] {
        if let Some(v) = v {
            out.push_str(&format!(" {prefix}{k}={v}"));
        }
    }
}

/// One expectation on one line: `tcp timeout=297 src=… dst=… sport=0 dport=50000 mask-src=…
/// master-src=… helper=ftp class=0 flags=PERMANENT zone=0 id=…`.
pub fn expect_text(e: &Expectation) -> String {
    let mut s = format!(
        "{} timeout={}",
        output::proto_label(e.tuple.proto),
        e.timeout.map_or_else(|| "-".to_owned(), |t| t.to_string())
    );
    tuple_words(&mut s, "", &e.tuple);
    tuple_words(&mut s, "mask-", &e.mask);
    tuple_words(&mut s, "master-", &e.master);
    if let Some(h) = &e.helper {
        s.push_str(&format!(" helper={h}"));
    }
    if let Some(c) = e.class {
        s.push_str(&format!(" class={c}"));
    }
    let flags = e.flags.map(flag_names).unwrap_or_default();
    if !flags.is_empty() {
        s.push_str(&format!(" flags={}", flags.join(",")));
    }
    if let Some(n) = &e.nat {
        s.push_str(&format!(
            " nat-dir={} nat={}",
            if n.dir == 0 { "original" } else { "reply" },
            output::endpoint(n.tuple.src, n.tuple.src_port)
        ));
    }
    if let Some(f) = &e.expect_fn {
        s.push_str(&format!(" fn={f}"));
    }
    s.push_str(&format!(" zone={}", e.zone.unwrap_or(0)));
    if let Some(id) = e.id {
        s.push_str(&format!(" id={id}"));
    }
    s
}

/// Parses `IP[:PORT]` or `[IPv6]:PORT` or a bare IPv6 address.
fn parse_endpoint(s: &str) -> Result<(IpAddr, Option<u16>), Failure> {
    let bad = || {
        Failure::usage(format!(
            "bad --nat '{s}': expected IP[:PORT] or [IPv6]:PORT"
        ))
    };
    let (a, p) = if let Some(rest) = s.strip_prefix('[') {
        let (a, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (a, None),
            p => (a, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if s.matches(':').count() > 1 {
        (s, None)
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let ip = a.parse().map_err(|_| bad())?;
    let port = p.map(|p| p.parse().map_err(|_| bad())).transpose()?;
    Ok((ip, port))
}

impl ExpectCreateArgs {
    /// The request these arguments describe.
    pub fn request(&self) -> Result<ExpectRequest, Failure> {
        let tuple = self.expected.tuple()?;
        let master_proto = match &self.master_proto {
            Some(p) => parse_proto(p)?,
            None => tuple.proto,
        };
        let master = Tuple::with_ports(
            master_proto,
            self.master_src,
            self.master_sport,
            self.master_dst,
            self.master_dport,
        );
        let mut mask = exact_mask(&tuple);
        if self.expected.sport.is_none() {
            mask.src_port = Some(0);
        }
        if self.expected.dport.is_none() {
            mask.dst_port = Some(0);
        }
        mask.src = self.mask_src.unwrap_or(mask.src);
        mask.dst = self.mask_dst.unwrap_or(mask.dst);
        mask.src_port = self.mask_sport.or(mask.src_port);
        mask.dst_port = self.mask_dport.or(mask.dst_port);
        let mut req = ExpectRequest::new(master, tuple, self.timeout).mask(mask);
        req.zone = self.zone;
        req.helper = self.helper.clone();
        req.flags = self.flags.as_deref().map(parse_flags).transpose()?;
        req.class = self.class;
        if let (Some(dir), Some(nat)) = (&self.nat_dir, &self.nat) {
            let (ip, port) = parse_endpoint(nat)?;
            let any: IpAddr = if ip.is_ipv4() {
                std::net::Ipv4Addr::UNSPECIFIED.into()
            } else {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            };
            req.nat = Some(ExpectNat {
                dir: u32::from(dir == "reply"),
                tuple: Tuple::with_ports(req.tuple.proto, ip, port.unwrap_or(0), any, 0),
            });
        }
        req.expect_fn = self.expect_fn.clone();
        Ok(req)
    }
}

/// What `expect delete` deletes.
#[derive(Debug, PartialEq, Eq)]
pub enum ExpectTarget {
    /// By tuple (zone, id optional).
    Tuple(ExpectDeleteRequest),
    /// The expectation with this id, found by a dump.
    Id(u32),
}

impl ExpectDeleteArgs {
    /// The deletion these arguments describe.
    pub fn target(&self) -> Result<ExpectTarget, Failure> {
        let tuple_given = self.proto.is_some()
            || self.src.is_some()
            || self.dst.is_some()
            || self.sport.is_some()
            || self.dport.is_some();
        if !tuple_given {
            return match (self.id, self.zone) {
                (Some(id), None) => Ok(ExpectTarget::Id(id)),
                _ => Err(Failure::usage(
                    "expect delete needs the expected tuple (--proto --src --dst [--sport] --dport) or --id alone",
                )),
            };
        }
        let (Some(p), Some(src), Some(dst)) = (&self.proto, self.src, self.dst) else {
            return Err(Failure::usage(
                "expect delete needs --proto, --src and --dst",
            ));
        };
        let t = Tuple::with_ports(
            parse_proto(p)?,
            src,
            self.sport.unwrap_or(0),
            dst,
            self.dport.unwrap_or(0),
        );
        let mut req = ExpectDeleteRequest::new(t);
        req.zone = self.zone;
        req.id = self.id;
        Ok(ExpectTarget::Tuple(req))
    }
}

/// Runs one expectation subcommand.
pub fn run(cmd: &ExpectCommand) -> Result<(), Failure> {
    match cmd {
        ExpectCommand::List(a) => list(a),
        ExpectCommand::Create(a) => create(a),
        ExpectCommand::Delete(a) => delete(a),
        ExpectCommand::Flush(a) => flush(a),
    }
}

fn list(a: &ExpectListArgs) -> Result<(), Failure> {
    let mut ct = ipvs_conntrack::conntrack::Conntrack::open(&a.common.netns())?;
    let all = ct.expectations(a.family.map(Into::into))?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let r = (|| -> io::Result<()> {
        for e in &all {
            if a.common.json {
                output::write_json_line(&mut out, &ExpectJson::from(e))?;
            } else {
                writeln!(out, "{}", expect_text(e))?;
            }
        }
        if !a.common.json {
            let n = all.len();
            writeln!(
                out,
                "{n} {}",
                if n == 1 {
                    "expectation"
                } else {
                    "expectations"
                }
            )?;
        }
        out.flush()
    })();
    r.map_err(Failure::from_output)
}

fn create(a: &ExpectCreateArgs) -> Result<(), Failure> {
    let req = a.request()?;
    checked(&req)?;
    a.netns
        .open()?
        .create_expectation(&req)
        .map_err(|e| match e {
            // ENOENT here means the master connection does not exist.
            e if e.is_not_found() => Failure::new(format!(
                "no master connection {} (create it first, with a helper)",
                describe(&req.master, req.zone)
            )),
            e => write_failure(e, || {
                format!("expectation {}", describe(&req.tuple, req.zone))
            }),
        })
}

fn delete(a: &ExpectDeleteArgs) -> Result<(), Failure> {
    match a.target()? {
        ExpectTarget::Tuple(req) => {
            checked(&req)?;
            a.netns.open()?.delete_expectation(&req).map_err(|e| {
                write_failure(e, || {
                    format!("expectation {}", describe(&req.tuple, req.zone))
                })
            })
        }
        ExpectTarget::Id(id) => {
            let mut ct = a.netns.open()?;
            let found = ct
                .expectations(None)?
                .into_iter()
                .find(|e| e.id == Some(id))
                .ok_or_else(|| Failure::new(format!("not found: no expectation with id {id}")))?;
            ct.delete_expectation(&ExpectDeleteRequest::expectation(&found))
                .map_err(|e| write_failure(e, || format!("expectation id {id}")))
        }
    }
}

fn flush(a: &ExpectFlushArgs) -> Result<(), Failure> {
    let req = ExpectFlushRequest {
        helper: a.helper.clone(),
    };
    checked(&req)?;
    a.netns
        .open()?
        .flush_expectations(a.helper.as_deref())
        .map_err(Failure::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use ipvs_conntrack::conntrack::tuple::IPPROTO_TCP;

    fn parse<T: Args>(argv: &[&str]) -> T {
        #[derive(Parser)]
        struct W<A: Args> {
            #[command(flatten)]
            a: A,
        }
        let mut v = vec!["x"];
        v.extend_from_slice(argv);
        W::<T>::try_parse_from(v).unwrap().a
    }

    const MASTER: [&str; 8] = [
        "--master-src",
        "10.8.0.1",
        "--master-dst",
        "10.8.0.2",
        "--master-sport",
        "40000",
        "--master-dport",
        "21",
    ];

    #[test]
    fn create_request_leaves_missing_ports_open() {
        let mut argv = vec![
            "--proto",
            "tcp",
            "--src",
            "10.8.0.2",
            "--dst",
            "10.8.0.1",
            "--dport",
            "50000",
            "--timeout",
            "60",
            "--helper",
            "ftp",
            "--flags",
            "permanent",
            "--class",
            "0",
            "--nat-dir",
            "reply",
            "--nat",
            "10.8.0.9:2121",
            "--fn",
            "nat-follow-master",
        ];
        argv.extend_from_slice(&MASTER);
        let r = parse::<ExpectCreateArgs>(&argv).request().unwrap();
        assert_eq!(r.master.src_port, Some(40000));
        assert_eq!(r.master.proto, IPPROTO_TCP);
        assert_eq!((r.tuple.src_port, r.tuple.dst_port), (Some(0), Some(50000)));
        assert_eq!((r.mask.src_port, r.mask.dst_port), (Some(0), Some(0xffff)));
        assert_eq!(r.mask.src, "255.255.255.255".parse::<IpAddr>().unwrap());
        assert_eq!(r.flags, Some(ExpectFlags::PERMANENT));
        let nat = r.nat.clone().unwrap();
        assert_eq!((nat.dir, nat.tuple.src_port), (1, Some(2121)));
        assert_eq!(r.expect_fn.as_deref(), Some("nat-follow-master"));
        assert!(checked(&r).is_ok());
        // A class without a helper: the builder refuses it (exit code 2).
        let mut argv = vec![
            "--proto",
            "tcp",
            "--src",
            "10.8.0.2",
            "--dst",
            "10.8.0.1",
            "--dport",
            "50000",
            "--timeout",
            "60",
            "--class",
            "1",
        ];
        argv.extend_from_slice(&MASTER);
        let f = checked(&parse::<ExpectCreateArgs>(&argv).request().unwrap()).unwrap_err();
        assert_eq!(f.code, 2);
        assert!(f.message.contains("class"), "{}", f.message);
        assert!(parse_flags("PERMANENT,NOPE").is_err());
        assert_eq!(
            flag_names(ExpectFlags::from_bits_retain(0b1001)),
            ["PERMANENT", "BIT3"]
        );
    }

    #[test]
    fn delete_targets() {
        let d: ExpectDeleteArgs = parse(&["--id", "9"]);
        assert_eq!(d.target().unwrap(), ExpectTarget::Id(9));
        let d: ExpectDeleteArgs = parse(&["--src", "10.0.0.1"]);
        assert!(d.target().unwrap_err().message.contains("--proto"));
        let d: ExpectDeleteArgs = parse(&[
            "--proto", "tcp", "--src", "10.8.0.2", "--dst", "10.8.0.1", "--dport", "50000",
        ]);
        match d.target().unwrap() {
            ExpectTarget::Tuple(r) => {
                assert_eq!((r.tuple.src_port, r.tuple.dst_port), (Some(0), Some(50000)))
            }
            other => panic!("{other:?}"),
        }
    }
}

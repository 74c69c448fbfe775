//! Records the kernel's answer to one conntrack request as a binary fixture.
//!
//! Every datagram received from the kernel during the request is appended, exactly as
//! received, to the output file (so the file is a sequence of whole netlink messages).
//! The request itself can be saved too (`--request FILE`), which lets a test check an
//! extended-ACK offset against the attribute it points at.
//!
//! ```text
//! record_fixture [--netns NS] --out FILE [--request FILE] OPERATION [ARGS]
//!
//! OPERATION:
//!   dump [--family ipv4|ipv6] [--mark VALUE/MASK] [--zone Z] [--proto P]
//!                               dump the table (filtered in the kernel if options are given)
//!   count                       IPCTNL_MSG_CT_GET_STATS
//!   cpu-stats                   IPCTNL_MSG_CT_GET_STATS_CPU
//!   policy L3 L4                cttimeout default policy, e.g. `policy inet tcp`, `policy inet6 icmpv6`
//!   get PROTO SRC SPORT DST DPORT [ZONE]
//!                               get one entry by its original tuple (tcp, udp, sctp, ...)
//!   get-icmp SRC DST TYPE CODE ID
//!                               get one ICMP / ICMPv6 entry
//!   bad-dump                    a dump whose CTA_MARK has 2 bytes instead of 4 (kernel rejects it)
//! ```
//!
//! The outcome of the request (value or error) is printed on stdout; the exit status is
//! 0 whenever at least one datagram was received and written, because recording the
//! kernel's errors is part of the purpose.
//!
//! Run as root, e.g.
//! `cargo run --example record_fixture -- --netns fx --out count.bin count`.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use ipvs_conntrack::conntrack::tuple::proto_from_name;
use ipvs_conntrack::conntrack::wire::{CTA_MARK, IPCTNL_MSG_CT_GET};
use ipvs_conntrack::conntrack::{Conntrack, DumpFilter, Family, Tuple, TupleFilter};
use ipvs_conntrack::netlink::emit::MessageBuilder;
use ipvs_conntrack::netlink::frame::flags::{NLM_F_DUMP, NLM_F_REQUEST};
use ipvs_conntrack::netlink::nfnetlink::{
    message_type, NfGenMsg, NFNETLINK_V0, NFNL_SUBSYS_CTNETLINK,
};
use ipvs_conntrack::socket::{Direction, Step};
use ipvs_conntrack::Netns;

type AnyError = Box<dyn std::error::Error>;

/// Command-line options.
struct Args {
    netns: Netns,
    out: String,
    request: Option<String>,
    op: Vec<String>,
}

fn usage() -> AnyError {
    "usage: record_fixture [--netns NS] --out FILE [--request FILE] \
     dump [--family F] [--mark V/M] [--zone Z] [--proto P] | count | cpu-stats | \
     policy L3 L4 | get PROTO SRC SPORT DST DPORT [ZONE] | get-icmp SRC DST TYPE CODE ID | bad-dump"
        .into()
}

fn parse_args() -> Result<Args, AnyError> {
    let mut it = std::env::args().skip(1);
    let mut netns = Netns::Current;
    let mut out = None;
    let mut request = None;
    let mut op = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--netns" if op.is_empty() => netns = Netns::parse(&it.next().ok_or_else(usage)?),
            "--out" if op.is_empty() => out = Some(it.next().ok_or_else(usage)?),
            "--request" if op.is_empty() => request = Some(it.next().ok_or_else(usage)?),
            _ => op.push(a),
        }
    }
    Ok(Args {
        netns,
        out: out.ok_or_else(usage)?,
        request,
        op,
    })
}

fn num<T: std::str::FromStr>(s: Option<&String>) -> Result<T, AnyError> {
    let s = s.ok_or_else(usage)?;
    s.parse().map_err(|_| format!("not a number: {s}").into())
}

/// Parses a decimal or `0x` hexadecimal u32.
fn u32_value(s: &str) -> Result<u32, AnyError> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("not a number: {s}").into())
}

fn l3(s: &str) -> Result<u16, AnyError> {
    match s {
        "inet" | "ipv4" => Ok(2),
        "inet6" | "ipv6" => Ok(10),
        n => n.parse().map_err(|_| format!("unknown family {n}").into()),
    }
}

fn l4(s: &str) -> Result<u8, AnyError> {
    if s == "generic" {
        return Ok(255);
    }
    proto_from_name(s).ok_or_else(|| format!("unknown protocol {s}").into())
}

fn addr(s: Option<&String>) -> Result<IpAddr, AnyError> {
    let s = s.ok_or_else(usage)?;
    s.parse().map_err(|_| format!("not an address: {s}").into())
}

fn dump_filter(args: &[String]) -> Result<DumpFilter, AnyError> {
    let mut f = DumpFilter::all();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(usage)?;
        match a.as_str() {
            "--family" => {
                f = f.family(match v.as_str() {
                    "ipv4" | "inet" => Family::Ipv4,
                    "ipv6" | "inet6" => Family::Ipv6,
                    x => return Err(format!("unknown family {x}").into()),
                })
            }
            "--mark" => {
                let (m, mask) = v.split_once('/').unwrap_or((v, "0xffffffff"));
                f = f.mark(u32_value(m)?, u32_value(mask)?);
            }
            "--zone" => f = f.zone(num(Some(v))?),
            "--proto" => {
                f.orig = TupleFilter {
                    proto: Some(l4(v)?),
                    ..TupleFilter::default()
                }
            }
            x => return Err(format!("unknown dump option {x}").into()),
        }
    }
    Ok(f)
}

/// Runs the operation and describes its outcome.
fn run(ct: &mut Conntrack, op: &[String]) -> Result<String, AnyError> {
    let name = op.first().ok_or_else(usage)?;
    let rest = op.get(1..).unwrap_or_default();
    Ok(match name.as_str() {
        "dump" => {
            let filter = dump_filter(rest)?;
            let mut n = 0;
            let mut errors = Vec::new();
            for e in ct.dump(&filter)? {
                match e {
                    Ok(_) => n += 1,
                    Err(e) => errors.push(e.to_string()),
                }
            }
            format!("{n} entries, errors: {errors:?}")
        }
        "count" => format!("{:?}", ct.count()),
        "cpu-stats" => format!("{:?}", ct.cpu_stats()),
        "policy" => {
            let l3p = l3(rest.first().ok_or_else(usage)?)?;
            let l4p = l4(rest.get(1).ok_or_else(usage)?)?;
            format!("{:?}", ct.default_policy(l3p, l4p))
        }
        "get" => {
            let proto = l4(rest.first().ok_or_else(usage)?)?;
            let mut t = Tuple::with_ports(
                proto,
                addr(rest.get(1))?,
                num(rest.get(2))?,
                addr(rest.get(3))?,
                num(rest.get(4))?,
            );
            if rest.get(5).is_some() {
                t.zone = Some(num(rest.get(5))?);
            }
            format!("{:?}", ct.get(&t))
        }
        "get-icmp" => {
            let t = Tuple::icmp(
                addr(rest.first())?,
                addr(rest.get(1))?,
                num(rest.get(2))?,
                num(rest.get(3))?,
                num(rest.get(4))?,
            );
            format!("{:?}", ct.get(&t))
        }
        "bad-dump" => bad_dump(ct)?,
        _ => return Err(usage()),
    })
}

/// Sends a dump request with a 2-byte CTA_MARK and reads the answer to its end.
fn bad_dump(ct: &mut Conntrack) -> Result<String, AnyError> {
    let mut b = MessageBuilder::new(
        message_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET),
        NLM_F_REQUEST | NLM_F_DUMP,
    );
    b.put_raw(
        &NfGenMsg {
            family: 2,
            version: NFNETLINK_V0,
            res_id: 0,
        }
        .to_bytes(),
    );
    b.put_bytes(CTA_MARK, &[0, 1]);
    let mut bytes = b.finish();
    let sock = ct.socket_mut();
    let seq = sock.send(&mut bytes, "bad dump")?;
    let mut ex = sock.exchange(seq, "bad dump");
    // Bounded: the answer ends with DONE or an error; cap the data frames anyway.
    for _ in 0..100_000 {
        match ex.next_frame() {
            Ok(Step::Data(_)) => {}
            Ok(Step::Finished) => return Ok("finished without error".into()),
            Err(e) => return Ok(format!("error: {e}")),
        }
    }
    Ok("too many frames".into())
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("record_fixture: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<(), AnyError> {
    let args = parse_args()?;
    let mut ct = Conntrack::open(&args.netns)?;
    // Timeout joins would add cttimeout requests to the recording.
    ct.set_join_timeouts(false);
    let received = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sent = Arc::new(Mutex::new(Vec::<u8>::new()));
    let (r, s) = (Arc::clone(&received), Arc::clone(&sent));
    ct.socket_mut()
        .set_recorder(Some(Box::new(move |dir, bytes: &[u8]| {
            let target = match dir {
                Direction::Received => &r,
                Direction::Sent => &s,
            };
            if let Ok(mut v) = target.lock() {
                v.extend_from_slice(bytes);
            }
        })));
    let outcome = run(&mut ct, &args.op)?;
    ct.socket_mut().set_recorder(None);
    println!("{outcome}");
    let bytes = received
        .lock()
        .map_err(|_| "recorder lock poisoned")?
        .clone();
    if bytes.is_empty() {
        return Err("nothing was received".into());
    }
    std::fs::write(&args.out, &bytes)?;
    eprintln!("wrote {} bytes to {}", bytes.len(), args.out);
    if let Some(path) = &args.request {
        let req = sent.lock().map_err(|_| "recorder lock poisoned")?.clone();
        std::fs::write(path, &req)?;
        eprintln!("wrote {} request bytes to {path}", req.len());
    }
    Ok(())
}

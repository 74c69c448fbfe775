//! `ipvsct conntrack timeouts policy list|add|delete|default-set`: named timeout policies
//! (what `nfct timeout` manages) and the namespace's default policies, over cttimeout.
//!
//! # JSON schema of one policy (`policy list --json`, one object per line)
//!
//! | key        | type                 | meaning |
//! |------------|----------------------|---------|
//! | `name`     | string               | policy name |
//! | `family`   | string               | L3 protocol: `ipv4`, `ipv6` (or `UNKNOWN(n)`) |
//! | `proto`    | string               | L4 protocol name, `generic` for the generic policy |
//! | `use`      | integer \| null      | references (rules and entries using it) |
//! | `timeouts` | object               | state name (`ESTABLISHED`, `UNREPLIED`, `TIMEOUT`, …) → seconds |

use std::collections::BTreeMap;
use std::io::{self, Write};

use clap::{Args, Subcommand};
use ipvs_conntrack::conntrack::policy::{L3_INET, L3_INET6};
use ipvs_conntrack::conntrack::timeout::{DccpTimeouts, SctpTimeouts, TcpTimeouts, UdpTimeouts};
use ipvs_conntrack::conntrack::tuple::{
    IPPROTO_DCCP, IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP,
    IPPROTO_UDP, IPPROTO_UDPLITE,
};
use ipvs_conntrack::conntrack::wire::{
    CTA_TIMEOUT_DCCP_NAMES, CTA_TIMEOUT_GENERIC_NAMES, CTA_TIMEOUT_GRE_NAMES,
    CTA_TIMEOUT_ICMPV6_NAMES, CTA_TIMEOUT_ICMP_NAMES, CTA_TIMEOUT_SCTP_NAMES,
    CTA_TIMEOUT_TCP_NAMES, CTA_TIMEOUT_UDPLITE_NAMES, CTA_TIMEOUT_UDP_NAMES,
};
use ipvs_conntrack::conntrack::{
    Conntrack, DefaultPolicyRequest, Family, PolicyDeleteRequest, PolicyRequest, PolicyWrite,
    ProtoTimeouts, TimeoutPolicy,
};
use serde::Serialize;

use super::write_cmd::{checked, write_failure, NetnsArg};
use super::{parse_proto, Common, FamilyArg};
use crate::failure::Failure;
use crate::output;

/// L4 protocol number the kernel uses for the generic policy.
const GENERIC_L4: u8 = 255;

/// Subcommands of `conntrack timeouts`.
#[derive(Debug, Subcommand)]
pub enum TimeoutsCommand {
    /// Named timeout policies (`nfct timeout`) and the namespace's default policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

/// The policy subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the named policies (or one with --name).
    List(PolicyListArgs),
    /// Create a named policy (--replace sets an existing one anew).
    Add(PolicyAddArgs),
    /// Delete a named policy (EBUSY while a rule uses it), or every unused one.
    Delete(PolicyDeleteArgs),
    /// Set some default timeouts of one protocol in the namespace (the others stay).
    DefaultSet(DefaultSetArgs),
}

/// Arguments of `policy list`.
#[derive(Debug, Args)]
pub struct PolicyListArgs {
    /// Namespace and output format.
    #[command(flatten)]
    pub common: Common,
    /// Only this policy (exit code 1 if there is none).
    #[arg(long)]
    pub name: Option<String>,
}

/// Protocol, family and `--set STATE=SECS` values shared by `add` and `default-set`.
#[derive(Debug, Args)]
pub struct PolicyValues {
    /// L4 protocol: tcp, udp, udplite, sctp, dccp, icmp, icmpv6, gre or generic.
    #[arg(long)]
    pub proto: String,
    /// L3 protocol the policy is for.
    #[arg(long, value_enum, default_value = "ipv4")]
    pub family: FamilyArg,
    /// A state timeout, e.g. ESTABLISHED=100 or time_wait=30 (repeat for more states).
    #[arg(long = "set", value_name = "STATE=SECS", required = true)]
    pub set: Vec<String>,
}

/// Arguments of `policy add`.
#[derive(Debug, Args)]
pub struct PolicyAddArgs {
    /// Namespace.
    #[command(flatten)]
    pub netns: NetnsArg,
    /// Policy name (1 to 31 bytes).
    pub name: String,
    /// Protocol and values.
    #[command(flatten)]
    pub values: PolicyValues,
    /// Replace an existing policy of the same protocol (values not given take the defaults).
    #[arg(long)]
    pub replace: bool,
}

/// Arguments of `policy delete`.
#[derive(Debug, Args)]
pub struct PolicyDeleteArgs {
    /// Namespace.
    #[command(flatten)]
    pub netns: NetnsArg,
    /// Policy name.
    #[arg(required_unless_present = "unused", conflicts_with = "unused")]
    pub name: Option<String>,
    /// Delete every policy that nothing uses.
    #[arg(long)]
    pub unused: bool,
}

/// Arguments of `policy default-set`.
#[derive(Debug, Args)]
pub struct DefaultSetArgs {
    /// Namespace.
    #[command(flatten)]
    pub netns: NetnsArg,
    /// Protocol and values.
    #[command(flatten)]
    pub values: PolicyValues,
}

/// The attribute names of one L4 protocol's timeouts and that protocol's number.
fn names_of(proto: &str) -> Result<(u8, &'static [&'static str]), Failure> {
    let l4 = if proto.eq_ignore_ascii_case("generic") {
        GENERIC_L4
    } else {
        parse_proto(proto)?
    };
    let names = match l4 {
        IPPROTO_TCP => CTA_TIMEOUT_TCP_NAMES,
        IPPROTO_UDP => CTA_TIMEOUT_UDP_NAMES,
        IPPROTO_UDPLITE => CTA_TIMEOUT_UDPLITE_NAMES,
        IPPROTO_SCTP => CTA_TIMEOUT_SCTP_NAMES,
        IPPROTO_DCCP => CTA_TIMEOUT_DCCP_NAMES,
        IPPROTO_ICMP => CTA_TIMEOUT_ICMP_NAMES,
        IPPROTO_ICMPV6 => CTA_TIMEOUT_ICMPV6_NAMES,
        IPPROTO_GRE => CTA_TIMEOUT_GRE_NAMES,
        GENERIC_L4 => CTA_TIMEOUT_GENERIC_NAMES,
        other => {
            return Err(Failure::usage(format!(
                "no timeout policy for protocol {other}: use tcp, udp, udplite, sctp, dccp, \
                 icmp, icmpv6, gre or generic"
            )))
        }
    };
    Ok((l4, names))
}

/// `CTA_TIMEOUT_TCP_TIME_WAIT` → `TIME_WAIT`.
pub fn state_key(attr_name: &str) -> &str {
    attr_name
        .strip_prefix("CTA_TIMEOUT_")
        .and_then(|s| s.split_once('_'))
        .map_or(attr_name, |(_, st)| st)
}

/// Builds one protocol's timeouts from values indexed by attribute type.
fn proto_timeouts(l4: u8, v: &[Option<u32>]) -> ProtoTimeouts {
    let at = |i: usize| v.get(i).copied().flatten();
    let udp = || UdpTimeouts {
        unreplied: at(1),
        replied: at(2),
    };
    match l4 {
        IPPROTO_TCP => ProtoTimeouts::Tcp(TcpTimeouts {
            syn_sent: at(1),
            syn_recv: at(2),
            established: at(3),
            fin_wait: at(4),
            close_wait: at(5),
            last_ack: at(6),
            time_wait: at(7),
            close: at(8),
            syn_sent2: at(9),
            retrans: at(10),
            unack: at(11),
        }),
        IPPROTO_UDP => ProtoTimeouts::Udp(udp()),
        IPPROTO_UDPLITE => ProtoTimeouts::UdpLite(udp()),
        IPPROTO_GRE => ProtoTimeouts::Gre(udp()),
        IPPROTO_SCTP => ProtoTimeouts::Sctp(SctpTimeouts {
            closed: at(1),
            cookie_wait: at(2),
            cookie_echoed: at(3),
            established: at(4),
            shutdown_sent: at(5),
            shutdown_recd: at(6),
            shutdown_ack_sent: at(7),
            heartbeat_sent: at(8),
            heartbeat_acked: at(9),
        }),
        IPPROTO_DCCP => ProtoTimeouts::Dccp(DccpTimeouts {
            request: at(1),
            respond: at(2),
            partopen: at(3),
            open: at(4),
            closereq: at(5),
            closing: at(6),
            timewait: at(7),
        }),
        IPPROTO_ICMP => ProtoTimeouts::Icmp(at(1)),
        IPPROTO_ICMPV6 => ProtoTimeouts::Icmpv6(at(1)),
        _ => ProtoTimeouts::Generic(at(1)),
    }
}

impl PolicyValues {
    /// The L3 protocol number.
    pub fn l3proto(&self) -> u16 {
        match self.family {
            FamilyArg::Ipv4 => L3_INET,
            FamilyArg::Ipv6 => L3_INET6,
        }
    }

    /// The timeouts the `--set` values give.
    pub fn timeouts(&self) -> Result<ProtoTimeouts, Failure> {
        let (l4, names) = names_of(&self.proto)?;
        let states: Vec<&str> = names.iter().skip(1).map(|n| state_key(n)).collect();
        let mut vals = vec![None; names.len()];
        for s in &self.set {
            let (k, v) = s.split_once('=').ok_or_else(|| {
                Failure::usage(format!("bad --set '{s}': expected STATE=SECONDS"))
            })?;
            let mut key = k.trim().to_ascii_uppercase().replace('-', "_");
            // `nfct` spells the TCP state UNACK out.
            if key == "UNACKNOWLEDGED" {
                key = "UNACK".to_owned();
            }
            let idx = states.iter().position(|n| *n == key).ok_or_else(|| {
                Failure::usage(format!(
                    "protocol {} has no state '{}': use {}",
                    self.proto,
                    k.trim(),
                    states.join(", ")
                ))
            })?;
            let secs: u32 = v.trim().parse().map_err(|_| {
                Failure::usage(format!("bad --set '{s}': seconds must be a whole number"))
            })?;
            if let Some(slot) = vals.get_mut(idx + 1) {
                *slot = Some(secs);
            }
        }
        Ok(proto_timeouts(l4, &vals))
    }
}

/// One named policy as `policy list --json` prints it (see the module docs).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PolicyJson {
    /// Policy name.
    pub name: Option<String>,
    /// L3 protocol name.
    pub family: String,
    /// L4 protocol name.
    pub proto: String,
    /// Reference count.
    #[serde(rename = "use")]
    pub use_count: Option<u32>,
    /// State → seconds.
    pub timeouts: BTreeMap<String, u32>,
}

impl From<&TimeoutPolicy> for PolicyJson {
    fn from(p: &TimeoutPolicy) -> Self {
        PolicyJson {
            name: p.name.clone(),
            family: Family::from(u8::try_from(p.l3proto).unwrap_or(0)).to_string(),
            proto: if p.l4proto == GENERIC_L4 {
                "generic".to_owned()
            } else {
                output::proto_label(p.l4proto).into_owned()
            },
            use_count: p.use_count,
            timeouts: p
                .timeouts
                .named_values()
                .into_iter()
                .map(|(n, v)| (state_key(n).to_owned(), v))
                .collect(),
        }
    }
}

/// Runs one `timeouts` subcommand.
pub fn run(cmd: &TimeoutsCommand) -> Result<(), Failure> {
    let TimeoutsCommand::Policy(p) = cmd;
    match p {
        PolicyCommand::List(a) => list(a),
        PolicyCommand::Add(a) => add(a),
        PolicyCommand::Delete(a) => delete(a),
        PolicyCommand::DefaultSet(a) => default_set(a),
    }
}

/// Writes the human table of policies.
fn write_policies(w: &mut impl Write, all: &[TimeoutPolicy]) -> io::Result<()> {
    writeln!(
        w,
        "{:<31} {:<6} {:<8} {:>4} TIMEOUTS",
        "NAME", "FAMILY", "PROTO", "USE"
    )?;
    for p in all {
        let j = PolicyJson::from(p);
        let values: Vec<String> = p
            .timeouts
            .named_values()
            .into_iter()
            .map(|(n, v)| format!("{}={v}", state_key(n)))
            .collect();
        writeln!(
            w,
            "{:<31} {:<6} {:<8} {:>4} {}",
            j.name.as_deref().unwrap_or("-"),
            j.family,
            j.proto,
            j.use_count
                .map_or_else(|| "-".to_owned(), |u| u.to_string()),
            values.join(" ")
        )?;
    }
    let n = all.len();
    writeln!(w, "{n} {}", if n == 1 { "policy" } else { "policies" })
}

fn list(a: &PolicyListArgs) -> Result<(), Failure> {
    if let Some(n) = &a.name {
        checked(&PolicyDeleteRequest {
            name: Some(n.clone()),
        })?;
    }
    let mut ct = Conntrack::open(&a.common.netns())?;
    let all = match &a.name {
        Some(n) => vec![ct
            .timeout_policy(n)
            .map_err(|e| write_failure(e, || format!("timeout policy {n}")))?],
        None => ct.timeout_policies()?,
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let r = if a.common.json {
        all.iter()
            .try_for_each(|p| output::write_json_line(&mut out, &PolicyJson::from(p)))
    } else {
        write_policies(&mut out, &all)
    };
    r.and_then(|()| out.flush()).map_err(Failure::from_output)
}

fn add(a: &PolicyAddArgs) -> Result<(), Failure> {
    let policy = TimeoutPolicy::named(&a.name, a.values.l3proto(), a.values.timeouts()?);
    let req = PolicyRequest {
        policy,
        mode: if a.replace {
            PolicyWrite::Replace
        } else {
            PolicyWrite::Create
        },
    };
    checked(&req)?;
    a.netns
        .open()?
        .execute(&req)
        .map_err(|e| write_failure(e, || format!("timeout policy {}", a.name)))
}

fn delete(a: &PolicyDeleteArgs) -> Result<(), Failure> {
    let req = PolicyDeleteRequest {
        name: if a.unused { None } else { a.name.clone() },
    };
    checked(&req)?;
    a.netns.open()?.execute(&req).map_err(|e| {
        write_failure(e, || {
            format!("timeout policy {}", a.name.as_deref().unwrap_or("-"))
        })
    })
}

fn default_set(a: &DefaultSetArgs) -> Result<(), Failure> {
    let req = DefaultPolicyRequest {
        l3proto: a.values.l3proto(),
        timeouts: a.values.timeouts()?,
    };
    checked(&req)?;
    a.netns.open()?.execute(&req).map_err(Failure::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn values(argv: &[&str]) -> PolicyValues {
        #[derive(Parser)]
        struct W {
            #[command(flatten)]
            v: PolicyValues,
        }
        let mut v = vec!["x"];
        v.extend_from_slice(argv);
        W::try_parse_from(v).unwrap().v
    }

    #[test]
    fn set_values_build_protocol_timeouts() {
        let v = values(&[
            "--proto",
            "tcp",
            "--set",
            "ESTABLISHED=100",
            "--set",
            "time-wait=30",
            "--set",
            "unacknowledged=9",
        ]);
        assert_eq!(v.l3proto(), L3_INET);
        assert_eq!(
            v.timeouts().unwrap(),
            ProtoTimeouts::Tcp(TcpTimeouts {
                established: Some(100),
                time_wait: Some(30),
                unack: Some(9),
                ..TcpTimeouts::default()
            })
        );
        let v = values(&[
            "--proto",
            "udp",
            "--family",
            "ipv6",
            "--set",
            "unreplied=12",
        ]);
        assert_eq!(v.l3proto(), L3_INET6);
        assert_eq!(
            v.timeouts().unwrap(),
            ProtoTimeouts::Udp(UdpTimeouts {
                unreplied: Some(12),
                replied: None
            })
        );
        let v = values(&["--proto", "generic", "--set", "TIMEOUT=5"]);
        assert_eq!(v.timeouts().unwrap(), ProtoTimeouts::Generic(Some(5)));
        let v = values(&["--proto", "sctp", "--set", "SHUTDOWN_ACK_SENT=3"]);
        assert_eq!(
            v.timeouts().unwrap(),
            ProtoTimeouts::Sctp(SctpTimeouts {
                shutdown_ack_sent: Some(3),
                ..SctpTimeouts::default()
            })
        );
        let e = values(&["--proto", "udp", "--set", "ESTABLISHED=1"])
            .timeouts()
            .unwrap_err();
        assert!(e.message.contains("UNREPLIED, REPLIED"), "{}", e.message);
        assert!(values(&["--proto", "tcp", "--set", "x"])
            .timeouts()
            .is_err());
        assert!(values(&["--proto", "esp", "--set", "TIMEOUT=1"])
            .timeouts()
            .is_err());
        assert_eq!(
            state_key("CTA_TIMEOUT_SCTP_SHUTDOWN_ACK_SENT"),
            "SHUTDOWN_ACK_SENT"
        );
    }

    #[test]
    fn policy_json_names_states() {
        let p = TimeoutPolicy::named(
            "web",
            L3_INET,
            ProtoTimeouts::Tcp(TcpTimeouts {
                established: Some(100),
                ..TcpTimeouts::default()
            }),
        );
        let v = serde_json::to_value(PolicyJson::from(&p)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name": "web", "family": "ipv4", "proto": "tcp", "use": null,
                               "timeouts": {"ESTABLISHED": 100}})
        );
        let mut out = Vec::new();
        write_policies(&mut out, &[p]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(" tcp "), "{text}");
        assert!(text.contains("ESTABLISHED=100\n1 policy\n"), "{text}");
    }
}

//! `ipvsct conntrack create|update|delete|flush`: the write requests of `conntrack
//! -I/-U/-D/-F`. Every request is checked by the library's builders before a socket is
//! opened; a combination they refuse exits with code 2 and their message.

use std::net::IpAddr;

use clap::Args;
use ipvs_conntrack::conntrack::protoinfo::{DccpInfo, DccpState, SctpInfo, SctpState, TcpState};
use ipvs_conntrack::conntrack::tuple::{IPPROTO_DCCP, IPPROTO_SCTP, IPPROTO_TCP};
use ipvs_conntrack::conntrack::{
    Conntrack, CreateRequest, DeleteRequest, DumpFilter, FlushRequest, Labels, NatRange, ProtoInfo,
    TcpInfo, Tuple, UpdateRequest, WriteRequest,
};
use ipvs_conntrack::{Error, Netns};

use super::{parse_mark, parse_proto, parse_status, FamilyArg};
use crate::failure::Failure;
use crate::output;

/// errno EEXIST.
const EEXIST: i32 = 17;

/// The namespace option of the commands that print nothing.
#[derive(Debug, Args)]
pub struct NetnsArg {
    /// Network namespace: an `ip netns` name or a path such as /proc/PID/ns/net (default: the current one).
    #[arg(long, value_name = "NAME|PATH")]
    pub netns: Option<String>,
}

impl NetnsArg {
    /// The namespace to work in.
    pub fn netns(&self) -> Netns {
        self.netns.as_deref().map_or(Netns::Current, Netns::parse)
    }

    /// Opens a conntrack client there (without reading the state timeouts).
    pub fn open(&self) -> Result<Conntrack, Failure> {
        let mut ct = Conntrack::open(&self.netns())?;
        ct.set_join_timeouts(false);
        Ok(ct)
    }
}

/// The original tuple of an entry, given as flags.
#[derive(Debug, Default, Args)]
pub struct TupleArgs {
    /// L4 protocol (tcp, udp, icmp, icmpv6, sctp, dccp, gre, udplite or a number).
    #[arg(long)]
    pub proto: Option<String>,
    /// Original source address.
    #[arg(long, visible_alias = "orig-src")]
    pub src: Option<IpAddr>,
    /// Original destination address.
    #[arg(long, visible_alias = "orig-dst")]
    pub dst: Option<IpAddr>,
    /// Original source port (TCP, UDP, SCTP, DCCP, UDP-Lite; GRE key).
    #[arg(long, visible_alias = "orig-port-src")]
    pub sport: Option<u16>,
    /// Original destination port.
    #[arg(long, visible_alias = "orig-port-dst")]
    pub dport: Option<u16>,
    /// ICMP / ICMPv6 type.
    #[arg(long)]
    pub icmp_type: Option<u8>,
    /// ICMP / ICMPv6 code.
    #[arg(long)]
    pub icmp_code: Option<u8>,
    /// ICMP / ICMPv6 identifier.
    #[arg(long)]
    pub icmp_id: Option<u16>,
}

impl TupleArgs {
    /// True if no tuple flag was given.
    pub fn is_empty(&self) -> bool {
        self.proto.is_none()
            && self.src.is_none()
            && self.dst.is_none()
            && self.sport.is_none()
            && self.dport.is_none()
            && self.icmp_type.is_none()
            && self.icmp_code.is_none()
            && self.icmp_id.is_none()
    }

    /// The tuple as given; the builders check that it is complete for its protocol.
    pub fn tuple(&self, command: &str) -> Result<Tuple, Failure> {
        let need = |flag: &str| Failure::usage(format!("{command} needs {flag}"));
        let proto = parse_proto(self.proto.as_deref().ok_or_else(|| need("--proto"))?)?;
        Ok(Tuple {
            src: self.src.ok_or_else(|| need("--src"))?,
            dst: self.dst.ok_or_else(|| need("--dst"))?,
            proto,
            src_port: self.sport,
            dst_port: self.dport,
            icmp_type: self.icmp_type,
            icmp_code: self.icmp_code,
            icmp_id: self.icmp_id,
            zone: None,
            unknown: Vec::new(),
        })
    }
}

/// The reply tuple of a new entry, field by field (default: the original reversed).
#[derive(Debug, Default, Args)]
pub struct ReplyArgs {
    /// Reply source address (default: the original destination).
    #[arg(long)]
    pub reply_src: Option<IpAddr>,
    /// Reply destination address (default: the original source).
    #[arg(long)]
    pub reply_dst: Option<IpAddr>,
    /// Reply source port (default: the original destination port).
    #[arg(long, visible_alias = "reply-port-src")]
    pub reply_sport: Option<u16>,
    /// Reply destination port (default: the original source port).
    #[arg(long, visible_alias = "reply-port-dst")]
    pub reply_dport: Option<u16>,
}

impl ReplyArgs {
    /// `orig` reversed, with the fields given replaced.
    pub fn reply_of(&self, orig: &Tuple) -> Tuple {
        let mut r = orig.reversed();
        if let Some(a) = self.reply_src {
            r.src = a;
        }
        if let Some(a) = self.reply_dst {
            r.dst = a;
        }
        if self.reply_sport.is_some() {
            r.src_port = self.reply_sport;
        }
        if self.reply_dport.is_some() {
            r.dst_port = self.reply_dport;
        }
        r
    }
}

/// The master connection of an expected (related) entry.
#[derive(Debug, Default, Args)]
pub struct MasterArgs {
    /// L4 protocol of the master connection (default: --proto).
    #[arg(long)]
    pub master_proto: Option<String>,
    /// Master original source address (makes the entry an expected connection).
    #[arg(long)]
    pub master_src: Option<IpAddr>,
    /// Master original destination address.
    #[arg(long)]
    pub master_dst: Option<IpAddr>,
    /// Master original source port.
    #[arg(long)]
    pub master_sport: Option<u16>,
    /// Master original destination port.
    #[arg(long)]
    pub master_dport: Option<u16>,
}

impl MasterArgs {
    /// The master tuple, if any master flag was given; `proto` is the entry's protocol.
    pub fn master(&self, proto: u8) -> Result<Option<Tuple>, Failure> {
        let any = self.master_proto.is_some()
            || self.master_src.is_some()
            || self.master_dst.is_some()
            || self.master_sport.is_some()
            || self.master_dport.is_some();
        if !any {
            return Ok(None);
        }
        let (Some(src), Some(dst)) = (self.master_src, self.master_dst) else {
            return Err(Failure::usage(
                "a master connection needs --master-src and --master-dst",
            ));
        };
        let proto = match &self.master_proto {
            Some(p) => parse_proto(p)?,
            None => proto,
        };
        Ok(Some(Tuple {
            src,
            dst,
            proto,
            src_port: self.master_sport,
            dst_port: self.master_dport,
            icmp_type: None,
            icmp_code: None,
            icmp_id: None,
            zone: None,
            unknown: Vec::new(),
        }))
    }
}

/// Arguments of `conntrack create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Namespace.
    #[command(flatten)]
    pub netns: NetnsArg,
    /// Original tuple.
    #[command(flatten)]
    pub tuple: TupleArgs,
    /// Reply tuple overrides.
    #[command(flatten)]
    pub reply: ReplyArgs,
    /// Seconds until the entry expires.
    #[arg(long, value_name = "SECS", required = true)]
    pub timeout: Option<u32>,
    /// TCP, SCTP or DCCP state (ESTABLISHED, SYN_SENT, TIME_WAIT, …).
    #[arg(long)]
    pub state: Option<String>,
    /// Status bits to set (IPS_* names, comma-separated: SEEN_REPLY,ASSURED,…).
    #[arg(long, value_name = "BITS")]
    pub status: Option<String>,
    /// Connection mark (decimal or 0x hex).
    #[arg(long, value_name = "MARK")]
    pub mark: Option<String>,
    /// Conntrack zone.
    #[arg(long)]
    pub zone: Option<u16>,
    /// Connection label bits to set (0..127; repeat or comma-separate).
    #[arg(long, value_name = "BIT", value_delimiter = ',')]
    pub label: Vec<u16>,
    /// Helper to attach (ftp, sip, …).
    #[arg(long)]
    pub helper: Option<String>,
    /// Source NAT: `IP[-IP][:PORT[-PORT]]` or `[IPv6[-IPv6]]:PORT[-PORT]`.
    #[arg(long, value_name = "RANGE")]
    pub src_nat: Option<String>,
    /// Destination NAT: `IP[-IP][:PORT[-PORT]]` or `[IPv6[-IPv6]]:PORT[-PORT]`.
    #[arg(long, value_name = "RANGE")]
    pub dst_nat: Option<String>,
    /// Master connection (the entry becomes an expected connection of it).
    #[command(flatten)]
    pub master: MasterArgs,
}

/// Arguments of `conntrack update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Namespace.
    #[command(flatten)]
    pub netns: NetnsArg,
    /// Original tuple of the entry to change.
    #[command(flatten)]
    pub tuple: TupleArgs,
    /// Zone of the entry.
    #[arg(long)]
    pub zone: Option<u16>,
    /// New timeout in seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u32>,
    /// New TCP, SCTP or DCCP state.
    #[arg(long)]
    pub state: Option<String>,
    /// Status bits to set (SEEN_REPLY and ASSURED cannot be cleared).
    #[arg(long, value_name = "BITS")]
    pub status: Option<String>,
    /// New mark: VALUE, or VALUE/MASK to change only the masked bits.
    #[arg(long, value_name = "V[/MASK]")]
    pub mark: Option<String>,
    /// Label bits to set (0..127; repeat or comma-separate).
    #[arg(long, value_name = "BIT", value_delimiter = ',')]
    pub label: Vec<u16>,
    /// Label bits to change (default: all, so unlisted labels are cleared).
    #[arg(long, value_name = "BIT", value_delimiter = ',')]
    pub label_mask: Vec<u16>,
    /// The entry's own helper (updates its data) or "" to detach it.
    #[arg(long)]
    pub helper: Option<String>,
}

/// Arguments of `conntrack delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Namespace.
    #[command(flatten)]
    pub netns: NetnsArg,
    /// Tuple of the entry.
    #[command(flatten)]
    pub tuple: TupleArgs,
    /// The tuple flags describe the reply direction.
    #[arg(long)]
    pub by_reply: bool,
    /// Zone of the entry.
    #[arg(long)]
    pub zone: Option<u16>,
    /// Entry id (CTA_ID): alone, deletes the entry with this id; with a tuple, only if the id matches.
    #[arg(long)]
    pub id: Option<u32>,
}

/// Arguments of `conntrack flush`.
#[derive(Debug, Args)]
pub struct FlushArgs {
    /// Namespace.
    #[command(flatten)]
    pub netns: NetnsArg,
    /// Only this address family (needed for tuple filters).
    #[arg(long, value_enum)]
    pub family: Option<FamilyArg>,
    /// Only entries whose mark matches: VALUE or VALUE/MASK.
    #[arg(long, value_name = "V[/MASK]")]
    pub mark: Option<String>,
    /// Only this zone.
    #[arg(long)]
    pub zone: Option<u16>,
    /// Only entries with all these status bits set (IPS_* names, comma-separated).
    #[arg(long, value_name = "BITS")]
    pub status: Option<String>,
    /// Only this L4 protocol.
    #[arg(long)]
    pub proto: Option<String>,
    /// Original source address.
    #[arg(long, visible_alias = "orig-src")]
    pub src: Option<IpAddr>,
    /// Original destination address.
    #[arg(long, visible_alias = "orig-dst")]
    pub dst: Option<IpAddr>,
    /// Original source port (needs --proto).
    #[arg(long)]
    pub sport: Option<u16>,
    /// Original destination port (needs --proto).
    #[arg(long)]
    pub dport: Option<u16>,
}

/// Parses `IP[-IP][:PORT[-PORT]]`, `[IPv6[-IPv6]]:PORT[-PORT]`, a bare IPv6 range or `:PORT[-PORT]`.
pub fn parse_nat(s: &str) -> Result<NatRange, Failure> {
    let bad = |why: &str| {
        Failure::usage(format!(
            "bad NAT range '{s}': {why} (expected IP[-IP][:PORT[-PORT]] or [IPv6[-IPv6]]:PORT[-PORT])"
        ))
    };
    let (addrs, ports) = if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
        let ports = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("':' expected after ']'"))?,
            ),
        };
        (inside, ports)
    } else if s.matches(':').count() > 1 {
        (s, None)
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let mut n = NatRange::default();
    if !addrs.is_empty() {
        let (lo, hi) = split_range(addrs);
        let ip = |t: &str| t.trim().parse::<IpAddr>().map_err(|_| bad("bad address"));
        n.min_ip = Some(ip(lo)?);
        n.max_ip = hi.map(ip).transpose()?;
    }
    if let Some(p) = ports {
        let (lo, hi) = split_range(p);
        let port = |t: &str| t.trim().parse::<u16>().map_err(|_| bad("bad port"));
        n.min_port = Some(port(lo)?);
        n.max_port = hi.map(port).transpose()?;
    }
    if n.min_ip.is_none() && n.min_port.is_none() {
        return Err(bad("empty"));
    }
    Ok(n)
}

fn split_range(s: &str) -> (&str, Option<&str>) {
    match s.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    }
}

/// The protocol info that sets `state` on an entry of protocol `proto`.
pub fn state_protoinfo(proto: u8, state: &str) -> Result<ProtoInfo, Failure> {
    let n = state.trim().to_ascii_uppercase().replace('-', "_");
    let unknown = |kind: &str| {
        Failure::usage(format!(
            "unknown {kind} state '{state}' (for example ESTABLISHED, SYN_SENT, TIME_WAIT)"
        ))
    };
    let mut p = ProtoInfo::default();
    match proto {
        IPPROTO_TCP => {
            p.tcp = Some(TcpInfo {
                state: Some(TcpState::from_name(&n).ok_or_else(|| unknown("TCP"))?),
                ..TcpInfo::default()
            })
        }
        IPPROTO_SCTP => {
            p.sctp = Some(SctpInfo {
                state: Some(SctpState::from_name(&n).ok_or_else(|| unknown("SCTP"))?),
                ..SctpInfo::default()
            })
        }
        IPPROTO_DCCP => {
            p.dccp = Some(DccpInfo {
                state: Some(DccpState::from_name(&n).ok_or_else(|| unknown("DCCP"))?),
                ..DccpInfo::default()
            })
        }
        other => {
            return Err(Failure::usage(format!(
                "--state applies to tcp, sctp and dccp entries, not {}; \
                 UDP-like entries take --status SEEN_REPLY,ASSURED",
                output::proto_label(other)
            )))
        }
    }
    Ok(p)
}

/// Parses a mark flag; `Some(mask)` only when a mask was written.
fn mark_and_mask(s: &str) -> Result<(u32, Option<u32>), Failure> {
    let (v, m) = parse_mark(s)?;
    Ok((v, s.contains('/').then_some(m)))
}

/// The library's refusal of a request: exit code 2 with its message.
pub fn invalid(e: Error) -> Failure {
    Failure::usage(e.to_string())
}

/// Validates a request before anything is sent.
pub fn checked(req: &impl WriteRequest) -> Result<(), Failure> {
    req.validate().map_err(invalid)
}

/// `tcp 10.0.0.1:1 -> 10.0.0.2:80 zone 3`.
pub fn describe(t: &Tuple, zone: Option<u16>) -> String {
    format!(
        "{} {}{}",
        output::proto_label(t.proto),
        output::tuple_text(t),
        zone.map_or_else(String::new, |z| format!(" zone {z}"))
    )
}

/// Turns a failed write into a one-line failure naming the entry when the kernel said
/// ENOENT or EEXIST.
pub fn write_failure(e: Error, what: impl FnOnce() -> String) -> Failure {
    match e {
        Error::InvalidRequest(_) => invalid(e),
        e if e.is_not_found() => Failure::new(format!("not found: {}", what())),
        e if e.errno() == Some(EEXIST) && matches!(e, Error::Kernel(_)) => {
            Failure::new(format!("already exists: {}", what()))
        }
        e => Failure::from(e),
    }
}

impl CreateArgs {
    /// The create request these arguments describe.
    pub fn request(&self) -> Result<CreateRequest, Failure> {
        let orig = self.tuple.tuple("create")?;
        let mut req = CreateRequest::new(orig.clone(), self.timeout.unwrap_or_default());
        req.attrs.timeout = self.timeout;
        req.reply = self.reply.reply_of(&orig);
        req.zone = self.zone;
        if let Some(s) = &self.state {
            req.attrs.protoinfo = Some(state_protoinfo(orig.proto, s)?);
        }
        if let Some(s) = &self.status {
            req.attrs.status = Some(parse_status(s)?);
        }
        if let Some(m) = &self.mark {
            let (v, mask) = mark_and_mask(m)?;
            req.attrs.mark = Some(v);
            req.attrs.mark_mask = mask;
        }
        if !self.label.is_empty() {
            req.attrs.labels = Some(Labels(self.label.clone()));
        }
        req.attrs.helper = self.helper.clone();
        req.nat_src = self.src_nat.as_deref().map(parse_nat).transpose()?;
        req.nat_dst = self.dst_nat.as_deref().map(parse_nat).transpose()?;
        req.master = self.master.master(orig.proto)?;
        Ok(req)
    }
}

impl UpdateArgs {
    /// The update request these arguments describe.
    pub fn request(&self) -> Result<UpdateRequest, Failure> {
        let orig = self.tuple.tuple("update")?;
        let mut req = UpdateRequest::new(orig.clone());
        req.zone = self.zone;
        req.attrs.timeout = self.timeout;
        if let Some(s) = &self.state {
            req.attrs.protoinfo = Some(state_protoinfo(orig.proto, s)?);
        }
        if let Some(s) = &self.status {
            req.attrs.status = Some(parse_status(s)?);
        }
        if let Some(m) = &self.mark {
            let (v, mask) = mark_and_mask(m)?;
            req.attrs.mark = Some(v);
            req.attrs.mark_mask = mask;
        }
        if !self.label.is_empty() {
            req.attrs.labels = Some(Labels(self.label.clone()));
        }
        if !self.label_mask.is_empty() {
            req.attrs.labels_mask = Some(Labels(self.label_mask.clone()));
        }
        req.attrs.helper = self.helper.clone();
        Ok(req)
    }
}

/// What `conntrack delete` deletes.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteTarget {
    /// One entry by tuple (and zone, and id if given).
    Tuple(DeleteRequest),
    /// The entry with this id, found by a dump.
    Id(u32),
}

impl DeleteArgs {
    /// The deletion these arguments describe.
    pub fn target(&self) -> Result<DeleteTarget, Failure> {
        if self.tuple.is_empty() {
            return match (self.id, self.zone, self.by_reply) {
                (Some(id), None, false) => Ok(DeleteTarget::Id(id)),
                (Some(_), _, _) => Err(Failure::usage(
                    "delete --id alone finds the entry by its id; --zone and --by-reply need a tuple",
                )),
                (None, _, _) => Err(Failure::usage(
                    "delete needs a tuple (--proto --src --dst [--sport --dport]) or --id",
                )),
            };
        }
        let t = self.tuple.tuple("delete")?;
        let mut req = if self.by_reply {
            DeleteRequest::reply(t)
        } else {
            DeleteRequest::orig(t)
        };
        req.zone = self.zone;
        req.id = self.id;
        Ok(DeleteTarget::Tuple(req))
    }
}

impl FlushArgs {
    /// The flush request these arguments describe.
    pub fn request(&self) -> Result<FlushRequest, Failure> {
        let mut f = DumpFilter::all();
        f.family = self.family.map(Into::into);
        if let Some(m) = &self.mark {
            f.mark = Some(parse_mark(m)?);
        }
        f.zone = self.zone;
        if let Some(s) = &self.status {
            let st = parse_status(s)?;
            f.status = Some((st, st));
        }
        f.orig.proto = self.proto.as_deref().map(parse_proto).transpose()?;
        f.orig.src = self.src;
        f.orig.dst = self.dst;
        f.orig.src_port = self.sport;
        f.orig.dst_port = self.dport;
        if f.family.is_none() && f.orig != Default::default() {
            // The addresses name the family; otherwise the user has to.
            match [self.src, self.dst].into_iter().flatten().next() {
                Some(a) if a.is_ipv4() => f.family = Some(FamilyArg::Ipv4.into()),
                Some(_) => f.family = Some(FamilyArg::Ipv6.into()),
                None => {
                    return Err(Failure::usage(
                        "flush by --proto/--sport/--dport needs --family ipv4 or ipv6",
                    ))
                }
            }
        }
        Ok(FlushRequest::matching(f))
    }
}

/// Runs `conntrack create`.
pub fn create(a: &CreateArgs) -> Result<(), Failure> {
    let req = a.request()?;
    checked(&req)?;
    a.netns
        .open()?
        .create(&req)
        .map_err(|e| write_failure(e, || describe(&req.orig, req.zone)))
}

/// Runs `conntrack update`.
pub fn update(a: &UpdateArgs) -> Result<(), Failure> {
    let req = a.request()?;
    checked(&req)?;
    a.netns
        .open()?
        .update(&req)
        .map_err(|e| write_failure(e, || describe(&req.orig, req.zone)))
}

/// Runs `conntrack delete`.
pub fn delete(a: &DeleteArgs) -> Result<(), Failure> {
    match a.target()? {
        DeleteTarget::Tuple(req) => {
            checked(&req)?;
            a.netns.open()?.delete(&req).map_err(|e| {
                write_failure(e, || {
                    let mut s = describe(&req.tuple, req.zone);
                    if let Some(id) = req.id {
                        s.push_str(&format!(" id {id}"));
                    }
                    s
                })
            })
        }
        DeleteTarget::Id(id) => a
            .netns
            .open()?
            .delete_by_id(id)
            .map(drop)
            .map_err(|e| write_failure(e, || format!("no entry with id {id}"))),
    }
}

/// Runs `conntrack flush`.
pub fn flush(a: &FlushArgs) -> Result<(), Failure> {
    let req = a.request()?;
    checked(&req)?;
    a.netns.open()?.flush(&req).map_err(Failure::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use ipvs_conntrack::conntrack::tuple::IPPROTO_UDP;
    use ipvs_conntrack::conntrack::{Family, Status};

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

    #[test]
    fn nat_ranges() {
        let n = parse_nat("10.0.0.1-10.0.0.9:80-90").unwrap();
        assert_eq!(n.min_ip, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(n.max_ip, Some("10.0.0.9".parse().unwrap()));
        assert_eq!((n.min_port, n.max_port), (Some(80), Some(90)));
        let n = parse_nat("[fd00::1]:8080").unwrap();
        assert_eq!(n.min_ip, Some("fd00::1".parse().unwrap()));
        assert_eq!((n.min_port, n.max_port, n.max_ip), (Some(8080), None, None));
        let n = parse_nat("fd00::1-fd00::2").unwrap();
        assert_eq!(n.max_ip, Some("fd00::2".parse().unwrap()));
        assert_eq!(n.min_port, None);
        let n = parse_nat(":4000").unwrap();
        assert_eq!((n.min_ip, n.min_port), (None, Some(4000)));
        assert_eq!(parse_nat("10.0.0.x").unwrap_err().code, 2);
        assert!(parse_nat("[fd00::1:80")
            .unwrap_err()
            .message
            .contains("']'"));
        assert!(parse_nat("").unwrap_err().message.contains("empty"));
    }

    #[test]
    fn create_request_from_flags() {
        let a: CreateArgs = parse(&[
            "--proto",
            "tcp",
            "--src",
            "10.0.0.1",
            "--sport",
            "1000",
            "--dst",
            "10.0.0.2",
            "--dport",
            "80",
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
            "--dst-nat",
            "10.9.9.9:8080",
            "--reply-sport",
            "8080",
        ]);
        let r = a.request().unwrap();
        assert_eq!(r.orig.src_port, Some(1000));
        assert_eq!(r.reply.src, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(
            (r.reply.src_port, r.reply.dst_port),
            (Some(8080), Some(1000))
        );
        assert_eq!(r.attrs.timeout, Some(300));
        assert_eq!(r.attrs.mark, Some(0x42));
        assert_eq!(r.attrs.mark_mask, None);
        assert_eq!(r.zone, Some(7));
        assert_eq!(r.attrs.labels, Some(Labels(vec![1, 70])));
        assert_eq!(r.attrs.status, Some(Status::SEEN_REPLY | Status::ASSURED));
        assert_eq!(
            r.attrs.protoinfo.unwrap().tcp.unwrap().state,
            Some(TcpState::Established)
        );
        assert_eq!(r.nat_dst.unwrap().min_port, Some(8080));
        assert!(r.master.is_none());
    }

    #[test]
    fn builder_refusals_become_usage_failures() {
        // No ports on TCP: the builder's check, surfaced with exit code 2.
        let a: CreateArgs = parse(&[
            "--proto",
            "tcp",
            "--src",
            "10.0.0.1",
            "--dst",
            "10.0.0.2",
            "--timeout",
            "5",
        ]);
        let f = checked(&a.request().unwrap()).unwrap_err();
        assert_eq!(f.code, 2);
        assert!(f.message.contains("needs both ports"), "{}", f.message);
        // A mark mask on create.
        let a: CreateArgs = parse(&[
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
        ]);
        let f = checked(&a.request().unwrap()).unwrap_err();
        assert!(
            f.message.contains("mark mask only applies to updates"),
            "{}",
            f.message
        );
        // --state on UDP is refused by the CLI itself.
        let a: CreateArgs = parse(&[
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
        ]);
        assert!(a.request().unwrap_err().message.contains("--status"));
        // Update with nothing to change.
        let u: UpdateArgs = parse(&[
            "--proto", "udp", "--src", "10.0.0.1", "--dst", "10.0.0.2", "--sport", "1", "--dport",
            "2",
        ]);
        let f = checked(&u.request().unwrap()).unwrap_err();
        assert!(f.message.contains("nothing to change"), "{}", f.message);
    }

    #[test]
    fn update_delete_flush_from_flags() {
        let u: UpdateArgs = parse(&[
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
            "--mark",
            "0x11/0xff",
            "--timeout",
            "9",
            "--label",
            "3",
            "--label-mask",
            "2,3",
        ]);
        let r = u.request().unwrap();
        assert_eq!((r.attrs.mark, r.attrs.mark_mask), (Some(0x11), Some(0xff)));
        assert_eq!(r.attrs.labels_mask, Some(Labels(vec![2, 3])));
        assert!(checked(&r).is_ok());

        let d: DeleteArgs = parse(&["--id", "77"]);
        assert_eq!(d.target().unwrap(), DeleteTarget::Id(77));
        let d: DeleteArgs = parse(&[]);
        assert!(d.target().unwrap_err().message.contains("--id"));
        let d: DeleteArgs = parse(&[
            "--proto",
            "udp",
            "--src",
            "10.0.0.2",
            "--dst",
            "10.0.0.1",
            "--sport",
            "2",
            "--dport",
            "1",
            "--by-reply",
            "--zone",
            "3",
            "--id",
            "5",
        ]);
        match d.target().unwrap() {
            DeleteTarget::Tuple(r) => {
                assert_eq!(r.tuple.proto, IPPROTO_UDP);
                assert_eq!((r.zone, r.id), (Some(3), Some(5)));
                assert_eq!(
                    r.direction,
                    ipvs_conntrack::conntrack::TupleDirection::Reply
                );
            }
            other => panic!("{other:?}"),
        }

        let f: FlushArgs = parse(&["--mark", "2", "--src", "fd00::1"]);
        let r = f.request().unwrap();
        assert_eq!(r.filter.mark, Some((2, u32::MAX)));
        assert_eq!(r.filter.family, Some(Family::Ipv6));
        assert!(checked(&r).is_ok());
        let f: FlushArgs = parse(&["--proto", "udp", "--dport", "53"]);
        assert!(f.request().unwrap_err().message.contains("--family"));
        let f: FlushArgs = parse(&["--proto", "udp", "--dport", "53", "--family", "ipv4"]);
        assert!(checked(&f.request().unwrap()).is_ok());
    }
}

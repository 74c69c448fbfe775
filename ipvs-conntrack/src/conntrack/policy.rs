//! Named timeout policies (NFNL_SUBSYS_CTNETLINK_TIMEOUT, what `nfct timeout` manages):
//! list, get, create, replace, delete, and setting a protocol's default policy.
//!
//! A named policy applies to the connections a rule binds to it (for example
//! `iptables -t raw … -j CT --timeout NAME`). ctnetlink does not say which policy an
//! entry is bound to, so the caller names it: [`Entry::apply_policy`] and
//! [`StateTimeouts::with_policy`] make such entries report the policy's values as
//! their state timeouts.

use crate::conntrack::client::Conntrack;
use crate::conntrack::entry::Entry;
use crate::conntrack::request::{nfnl_message, WriteRequest};
use crate::conntrack::timeout::{ProtoTimeouts, StateTimeouts, TimeoutPolicy};
use crate::conntrack::tuple::*;
use crate::conntrack::wire::*;
use crate::error::{libc_errno, Error, KernelError, Result};
use crate::netlink::emit::MessageBuilder;
use crate::netlink::frame::flags::*;
use crate::netlink::nfnetlink::{NFNETLINK_V0, NFNL_SUBSYS_CTNETLINK_TIMEOUT};
use crate::socket::Step;

/// AF_INET, the L3 protocol `nfct` uses for `inet` policies.
pub const L3_INET: u16 = 2;
/// AF_INET6.
pub const L3_INET6: u16 = 10;
/// Largest timeout the kernel stores without overflow (it multiplies seconds by HZ ≤ 1000).
pub const MAX_POLICY_SECONDS: u32 = u32::MAX / 1000;

/// The L4 protocol a set of timeouts belongs to (255 for the generic policy).
pub fn l4proto_of(t: &ProtoTimeouts) -> u8 {
    match t {
        ProtoTimeouts::Tcp(_) => IPPROTO_TCP,
        ProtoTimeouts::Udp(_) => IPPROTO_UDP,
        ProtoTimeouts::UdpLite(_) => IPPROTO_UDPLITE,
        ProtoTimeouts::Sctp(_) => IPPROTO_SCTP,
        ProtoTimeouts::Dccp(_) => IPPROTO_DCCP,
        ProtoTimeouts::Icmp(_) => IPPROTO_ICMP,
        ProtoTimeouts::Icmpv6(_) => IPPROTO_ICMPV6,
        ProtoTimeouts::Gre(_) => IPPROTO_GRE,
        ProtoTimeouts::Generic(_) => 255,
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidRequest(msg.into())
}

fn check_timeouts(t: &ProtoTimeouts, what: &str) -> Result<()> {
    let values = t.values();
    if values.is_empty() {
        return Err(invalid(format!("{what}: no timeout value set")));
    }
    if let Some((name, v)) = t
        .named_values()
        .into_iter()
        .find(|(_, v)| *v > MAX_POLICY_SECONDS)
    {
        return Err(invalid(format!(
            "{what}: {name} = {v} s overflows the kernel's jiffies (max {MAX_POLICY_SECONDS})"
        )));
    }
    Ok(())
}

fn check_l3(l3: u16, what: &str) -> Result<()> {
    if l3 != L3_INET && l3 != L3_INET6 {
        return Err(invalid(format!(
            "{what}: L3 protocol {l3} is neither AF_INET (2) nor AF_INET6 (10)"
        )));
    }
    Ok(())
}

impl TimeoutPolicy {
    /// A named policy; the L4 protocol follows from the kind of `timeouts`.
    pub fn named(name: impl Into<String>, l3proto: u16, timeouts: ProtoTimeouts) -> Self {
        TimeoutPolicy {
            name: Some(name.into()),
            l3proto,
            l4proto: l4proto_of(&timeouts),
            timeouts,
            use_count: None,
            unknown: Vec::new(),
        }
    }

    /// Checks name, protocols and values the way the kernel will.
    pub fn validate(&self) -> Result<()> {
        let name = self
            .name
            .as_deref()
            .ok_or_else(|| invalid("timeout policy: a name is required"))?;
        if name.is_empty() || name.len() >= CTNL_TIMEOUT_NAME_MAX || name.contains('\0') {
            return Err(invalid(format!(
                "timeout policy: name {name:?} must be 1 to {} bytes without NUL",
                CTNL_TIMEOUT_NAME_MAX - 1
            )));
        }
        check_l3(self.l3proto, "timeout policy")?;
        if l4proto_of(&self.timeouts) != self.l4proto {
            return Err(invalid(format!(
                "timeout policy {name}: L4 protocol {} does not match its {} timeouts",
                self.l4proto,
                proto_name(l4proto_of(&self.timeouts)).unwrap_or("generic")
            )));
        }
        check_timeouts(&self.timeouts, "timeout policy")
    }
}

/// How a named policy is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyWrite {
    /// Create; EEXIST if the name exists (NLM_F_CREATE|NLM_F_EXCL).
    Create,
    /// Set every value of an existing policy of the same protocols — values not given
    /// fall back to the namespace defaults — or create it (NLM_F_CREATE|NLM_F_REPLACE).
    Replace,
}

/// Creates or replaces a named policy (IPCTNL_MSG_TIMEOUT_NEW).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRequest {
    /// The policy; `name` is required.
    pub policy: TimeoutPolicy,
    /// Create or replace.
    pub mode: PolicyWrite,
}

impl WriteRequest for PolicyRequest {
    fn operation(&self) -> &'static str {
        match self.mode {
            PolicyWrite::Create => "timeout policy create",
            PolicyWrite::Replace => "timeout policy replace",
        }
    }
    fn validate(&self) -> Result<()> {
        self.policy.validate()
    }
    fn encode_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        self.validate()?;
        let flags = match self.mode {
            PolicyWrite::Create => NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            PolicyWrite::Replace => NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        };
        let mut b = nfnl_message(
            std::mem::take(buf),
            NFNL_SUBSYS_CTNETLINK_TIMEOUT,
            IPCTNL_MSG_TIMEOUT_NEW,
            flags,
            0,
            NFNETLINK_V0,
        );
        let p = &self.policy;
        b.put_str(CTA_TIMEOUT_NAME, p.name.as_deref().unwrap_or_default());
        emit_protocols(&mut b, p.l3proto, &p.timeouts);
        *buf = b.finish();
        Ok(())
    }
}

fn emit_protocols(b: &mut MessageBuilder, l3: u16, t: &ProtoTimeouts) {
    b.put_be16(CTA_TIMEOUT_L3PROTO, l3);
    b.put_u8(CTA_TIMEOUT_L4PROTO, l4proto_of(t));
    t.emit(b);
}

/// Deletes a named policy, or every policy not in use (IPCTNL_MSG_TIMEOUT_DELETE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDeleteRequest {
    /// The policy (None = every unused policy; policies in use stay).
    pub name: Option<String>,
}

impl WriteRequest for PolicyDeleteRequest {
    fn operation(&self) -> &'static str {
        "timeout policy delete"
    }
    fn validate(&self) -> Result<()> {
        match &self.name {
            Some(n) if n.is_empty() || n.len() >= CTNL_TIMEOUT_NAME_MAX || n.contains('\0') => {
                Err(invalid(format!("timeout policy delete: bad name {n:?}")))
            }
            _ => Ok(()),
        }
    }
    fn encode_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        self.validate()?;
        let mut b = nfnl_message(
            std::mem::take(buf),
            NFNL_SUBSYS_CTNETLINK_TIMEOUT,
            IPCTNL_MSG_TIMEOUT_DELETE,
            NLM_F_ACK,
            0,
            NFNETLINK_V0,
        );
        if let Some(n) = &self.name {
            b.put_str(CTA_TIMEOUT_NAME, n);
        }
        *buf = b.finish();
        Ok(())
    }
}

/// Sets a protocol's default timeouts in the namespace (IPCTNL_MSG_TIMEOUT_DEFAULT_SET);
/// values left `None` keep their current setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultPolicyRequest {
    /// L3 protocol (AF_INET or AF_INET6; the kernel keeps one policy per L4 protocol).
    pub l3proto: u16,
    /// The values to set.
    pub timeouts: ProtoTimeouts,
}

impl WriteRequest for DefaultPolicyRequest {
    fn operation(&self) -> &'static str {
        "timeout default-set"
    }
    fn validate(&self) -> Result<()> {
        check_l3(self.l3proto, "default policy")?;
        check_timeouts(&self.timeouts, "default policy")
    }
    fn encode_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        self.validate()?;
        let mut b = nfnl_message(
            std::mem::take(buf),
            NFNL_SUBSYS_CTNETLINK_TIMEOUT,
            IPCTNL_MSG_TIMEOUT_DEFAULT_SET,
            NLM_F_ACK,
            0,
            NFNETLINK_V0,
        );
        emit_protocols(&mut b, self.l3proto, &self.timeouts);
        *buf = b.finish();
        Ok(())
    }
}

impl StateTimeouts {
    /// These timeouts with the values `policy` sets replacing those of its protocol.
    pub fn with_policy(mut self, policy: &TimeoutPolicy) -> Self {
        let merged = overlay(self.for_protocol(policy.l4proto), &policy.timeouts);
        self.set(&merged);
        self
    }

    /// The current values of one L4 protocol, as the policy type of that protocol.
    pub fn for_protocol(&self, l4proto: u8) -> ProtoTimeouts {
        match l4proto {
            IPPROTO_TCP => ProtoTimeouts::Tcp(self.tcp),
            IPPROTO_UDP => ProtoTimeouts::Udp(self.udp),
            IPPROTO_UDPLITE => ProtoTimeouts::UdpLite(self.udplite),
            IPPROTO_SCTP => ProtoTimeouts::Sctp(self.sctp),
            IPPROTO_DCCP => ProtoTimeouts::Dccp(self.dccp),
            IPPROTO_ICMP => ProtoTimeouts::Icmp(self.icmp),
            IPPROTO_ICMPV6 => ProtoTimeouts::Icmpv6(self.icmpv6),
            IPPROTO_GRE => ProtoTimeouts::Gre(self.gre),
            _ => ProtoTimeouts::Generic(self.generic),
        }
    }
}

/// `base` with every value `top` sets replaced (both must be of the same protocol).
fn overlay(base: ProtoTimeouts, top: &ProtoTimeouts) -> ProtoTimeouts {
    fn pick(a: Option<u32>, b: Option<u32>) -> Option<u32> {
        b.or(a)
    }
    match (base, top) {
        (ProtoTimeouts::Tcp(a), ProtoTimeouts::Tcp(b)) => {
            ProtoTimeouts::Tcp(crate::conntrack::timeout::TcpTimeouts {
                syn_sent: pick(a.syn_sent, b.syn_sent),
                syn_recv: pick(a.syn_recv, b.syn_recv),
                established: pick(a.established, b.established),
                fin_wait: pick(a.fin_wait, b.fin_wait),
                close_wait: pick(a.close_wait, b.close_wait),
                last_ack: pick(a.last_ack, b.last_ack),
                time_wait: pick(a.time_wait, b.time_wait),
                close: pick(a.close, b.close),
                syn_sent2: pick(a.syn_sent2, b.syn_sent2),
                retrans: pick(a.retrans, b.retrans),
                unack: pick(a.unack, b.unack),
            })
        }
        (ProtoTimeouts::Udp(a), ProtoTimeouts::Udp(b)) => ProtoTimeouts::Udp(udp_pick(a, *b)),
        (ProtoTimeouts::UdpLite(a), ProtoTimeouts::UdpLite(b)) => {
            ProtoTimeouts::UdpLite(udp_pick(a, *b))
        }
        (ProtoTimeouts::Gre(a), ProtoTimeouts::Gre(b)) => ProtoTimeouts::Gre(udp_pick(a, *b)),
        (ProtoTimeouts::Sctp(a), ProtoTimeouts::Sctp(b)) => {
            ProtoTimeouts::Sctp(crate::conntrack::timeout::SctpTimeouts {
                closed: pick(a.closed, b.closed),
                cookie_wait: pick(a.cookie_wait, b.cookie_wait),
                cookie_echoed: pick(a.cookie_echoed, b.cookie_echoed),
                established: pick(a.established, b.established),
                shutdown_sent: pick(a.shutdown_sent, b.shutdown_sent),
                shutdown_recd: pick(a.shutdown_recd, b.shutdown_recd),
                shutdown_ack_sent: pick(a.shutdown_ack_sent, b.shutdown_ack_sent),
                heartbeat_sent: pick(a.heartbeat_sent, b.heartbeat_sent),
                heartbeat_acked: pick(a.heartbeat_acked, b.heartbeat_acked),
            })
        }
        (ProtoTimeouts::Dccp(a), ProtoTimeouts::Dccp(b)) => {
            ProtoTimeouts::Dccp(crate::conntrack::timeout::DccpTimeouts {
                request: pick(a.request, b.request),
                respond: pick(a.respond, b.respond),
                partopen: pick(a.partopen, b.partopen),
                open: pick(a.open, b.open),
                closereq: pick(a.closereq, b.closereq),
                closing: pick(a.closing, b.closing),
                timewait: pick(a.timewait, b.timewait),
            })
        }
        (ProtoTimeouts::Icmp(a), ProtoTimeouts::Icmp(b)) => ProtoTimeouts::Icmp(pick(a, *b)),
        (ProtoTimeouts::Icmpv6(a), ProtoTimeouts::Icmpv6(b)) => ProtoTimeouts::Icmpv6(pick(a, *b)),
        (ProtoTimeouts::Generic(a), ProtoTimeouts::Generic(b)) => {
            ProtoTimeouts::Generic(pick(a, *b))
        }
        // Different protocols: the policy's values as they are.
        (_, top) => top.clone(),
    }
}

fn udp_pick(
    a: crate::conntrack::timeout::UdpTimeouts,
    b: crate::conntrack::timeout::UdpTimeouts,
) -> crate::conntrack::timeout::UdpTimeouts {
    crate::conntrack::timeout::UdpTimeouts {
        unreplied: b.unreplied.or(a.unreplied),
        replied: b.replied.or(a.replied),
    }
}

impl Entry {
    /// Sets `state_timeout` from `policy` for an entry bound to it (by a `CT --timeout`
    /// rule); returns false, changing nothing, if the policy is for another protocol
    /// or does not cover the entry's state.
    pub fn apply_policy(&mut self, policy: &TimeoutPolicy) -> bool {
        if policy.l4proto != self.orig.proto && !(policy.l4proto == 255 && l4_is_generic(self)) {
            return false;
        }
        let mut t = StateTimeouts::empty(crate::conntrack::timeout::TimeoutSource::Cttimeout);
        t.set(&policy.timeouts);
        match t.for_state(self.orig.proto, self.state) {
            Some(v) => {
                self.state_timeout = Some(v);
                true
            }
            None => false,
        }
    }
}

fn l4_is_generic(e: &Entry) -> bool {
    matches!(e.state, crate::conntrack::state::State::Generic)
}

impl Conntrack {
    fn read_policies(
        &mut self,
        mut bytes: Vec<u8>,
        op: &'static str,
    ) -> Result<Vec<TimeoutPolicy>> {
        let sock = self.socket_mut();
        let seq = sock.send(&mut bytes, op)?;
        let mut ex = sock.exchange(seq, op);
        let mut out = Vec::new();
        // Bounded by the answer: each turn consumes one frame.
        loop {
            match ex.next_frame() {
                Ok(Step::Data(frame)) => out.push(TimeoutPolicy::from_frame(&frame)?),
                Ok(Step::Finished) => break,
                Err(Error::Kernel(k)) if k.errno == libc_errno::EOPNOTSUPP => {
                    return Err(Error::Unsupported {
                        feature: "cttimeout (nfnetlink_cttimeout)",
                        detail: k.to_string(),
                    })
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Every named timeout policy of the namespace (`nfct timeout list`).
    pub fn timeout_policies(&mut self) -> Result<Vec<TimeoutPolicy>> {
        let b = nfnl_message(
            Vec::with_capacity(32),
            NFNL_SUBSYS_CTNETLINK_TIMEOUT,
            IPCTNL_MSG_TIMEOUT_GET,
            NLM_F_DUMP,
            0,
            NFNETLINK_V0,
        );
        self.read_policies(b.finish(), "timeout policy list")
    }

    /// One named policy (ENOENT if there is none).
    pub fn timeout_policy(&mut self, name: &str) -> Result<TimeoutPolicy> {
        PolicyDeleteRequest {
            name: Some(name.to_owned()),
        }
        .validate()?;
        let mut b = nfnl_message(
            Vec::with_capacity(64),
            NFNL_SUBSYS_CTNETLINK_TIMEOUT,
            IPCTNL_MSG_TIMEOUT_GET,
            NLM_F_ACK,
            0,
            NFNETLINK_V0,
        );
        b.put_str(CTA_TIMEOUT_NAME, name);
        let mut all = self.read_policies(b.finish(), "timeout policy get")?;
        if all.is_empty() {
            return Err(Error::Kernel(KernelError {
                errno: libc_errno::ENOENT,
                message: None,
                offset: None,
                request: "timeout policy get",
            }));
        }
        Ok(all.swap_remove(0))
    }

    /// Creates a named policy (EEXIST if the name is taken).
    pub fn add_timeout_policy(&mut self, policy: &TimeoutPolicy) -> Result<()> {
        self.execute(&PolicyRequest {
            policy: policy.clone(),
            mode: PolicyWrite::Create,
        })
    }

    /// Sets a named policy's values anew (values not given take the namespace defaults),
    /// creating it if absent (EINVAL if the existing policy is for other protocols).
    pub fn replace_timeout_policy(&mut self, policy: &TimeoutPolicy) -> Result<()> {
        self.execute(&PolicyRequest {
            policy: policy.clone(),
            mode: PolicyWrite::Replace,
        })
    }

    /// Deletes a named policy (EBUSY while a rule or an entry uses it, ENOENT if absent).
    pub fn delete_timeout_policy(&mut self, name: &str) -> Result<()> {
        self.execute(&PolicyDeleteRequest {
            name: Some(name.to_owned()),
        })
    }

    /// Deletes every named policy that nothing uses.
    pub fn delete_unused_timeout_policies(&mut self) -> Result<()> {
        self.execute(&PolicyDeleteRequest { name: None })
    }

    /// Sets a protocol's default timeouts in this namespace (the values `None` in
    /// `timeouts` are left as they are) and refreshes this client's cached defaults.
    pub fn set_default_policy(&mut self, l3proto: u16, timeouts: &ProtoTimeouts) -> Result<()> {
        self.execute(&DefaultPolicyRequest {
            l3proto,
            timeouts: timeouts.clone(),
        })?;
        let fresh = self.default_timeouts()?;
        self.set_state_timeouts(fresh);
        Ok(())
    }

    /// The namespace's default timeouts with those of policy `name` for its protocol:
    /// the state timeouts of connections bound to that policy.
    pub fn state_timeouts_with_policy(&mut self, name: &str) -> Result<StateTimeouts> {
        let p = self.timeout_policy(name)?;
        Ok(self.default_timeouts()?.with_policy(&p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::timeout::{TcpTimeouts, TimeoutSource, UdpTimeouts};
    use crate::netlink::frame::Frames;

    #[test]
    fn named_policy_round_trips_and_is_validated() {
        let p = TimeoutPolicy::named(
            "web",
            L3_INET,
            ProtoTimeouts::Tcp(TcpTimeouts {
                established: Some(600),
                time_wait: Some(5),
                ..TcpTimeouts::default()
            }),
        );
        assert_eq!(p.l4proto, IPPROTO_TCP);
        let msg = PolicyRequest {
            policy: p.clone(),
            mode: PolicyWrite::Create,
        }
        .encode()
        .unwrap();
        let f = Frames::new(&msg).next().unwrap().unwrap();
        assert_eq!(
            f.header.flags,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        );
        let back = TimeoutPolicy::from_frame(&f).unwrap();
        assert_eq!(back, p);

        let mut wrong = p.clone();
        wrong.l4proto = IPPROTO_UDP;
        assert!(
            matches!(wrong.validate(), Err(Error::InvalidRequest(m)) if m.contains("does not match"))
        );
        let long = TimeoutPolicy::named("x".repeat(32), L3_INET, ProtoTimeouts::Icmp(Some(3)));
        assert!(long.validate().is_err());
        let empty = TimeoutPolicy::named("e", L3_INET, ProtoTimeouts::Udp(UdpTimeouts::default()));
        assert!(
            matches!(empty.validate(), Err(Error::InvalidRequest(m)) if m.contains("no timeout"))
        );
        let huge = TimeoutPolicy::named("h", L3_INET, ProtoTimeouts::Generic(Some(u32::MAX)));
        assert!(
            matches!(huge.validate(), Err(Error::InvalidRequest(m)) if m.contains("overflows"))
        );
        let bad_l3 = TimeoutPolicy::named("b", 7, ProtoTimeouts::Generic(Some(1)));
        assert!(bad_l3.validate().is_err());
    }

    #[test]
    fn policy_values_overlay_defaults_and_set_entry_state_timeouts() {
        let mut defaults = StateTimeouts::empty(TimeoutSource::Cttimeout);
        defaults.udp = UdpTimeouts {
            unreplied: Some(30),
            replied: Some(120),
        };
        let p = TimeoutPolicy::named(
            "short-udp",
            L3_INET,
            ProtoTimeouts::Udp(UdpTimeouts {
                unreplied: Some(7),
                replied: None,
            }),
        );
        let t = defaults.clone().with_policy(&p);
        assert_eq!(t.udp.unreplied, Some(7));
        assert_eq!(t.udp.replied, Some(120));
        assert_eq!(t.tcp, defaults.tcp);
        assert_eq!(
            t.for_protocol(IPPROTO_UDP),
            ProtoTimeouts::Udp(UdpTimeouts {
                unreplied: Some(7),
                replied: Some(120)
            })
        );
    }
}

//! Explaining ActiveConn / InActConn: each destination's connection entries grouped by
//! state, with their full state timeouts, and when the inactive ones will have drained.
//!
//! The kernel's counters are read with the services; the entries come from
//! `/proc/net/ip_vs_conn` a moment later, so the two can differ by the entries
//! created or expired in between. Both are reported.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use crate::ipvs::conn::Connection;
use crate::ipvs::dest::{Destination, ForwardMethod};
use crate::ipvs::service::{Service, ServiceKey, ServiceTarget};
use crate::ipvs::timeouts::{Activity, ConnState, StateTimeoutTable};

/// One connection entry with what the timeout model says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ExplainedConn {
    /// The entry.
    pub conn: Connection,
    /// Which counter it is in.
    pub activity: Activity,
    /// Full timeout of its state in seconds (the persistence timeout for templates).
    pub state_timeout: Option<u32>,
    /// Seconds since the last packet refreshed it (`state_timeout - expires`).
    pub idle: Option<u32>,
}

/// The entries of one destination in one state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct StateGroup {
    /// The state.
    pub state: ConnState,
    /// Which counter entries in this state are in.
    pub activity: Activity,
    /// Number of entries.
    pub count: u32,
    /// Full timeout of the state in seconds.
    pub state_timeout: Option<u32>,
    /// Fewest seconds to expiry among them.
    pub min_expires: u32,
    /// Most seconds to expiry among them.
    pub max_expires: u32,
}

/// One destination: the kernel's counters and the entries behind them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DestReport {
    /// Real server address and port.
    pub dest: SocketAddr,
    /// Forwarding method.
    pub fwd_method: ForwardMethod,
    /// Weight.
    pub weight: u32,
    /// The kernel's ActiveConn.
    pub active_conns: u32,
    /// The kernel's InActConn.
    pub inactive_conns: u32,
    /// The kernel's PersistConn.
    pub persist_conns: u32,
    /// Entries found in the table that count as active.
    pub listed_active: u32,
    /// Entries found in the table that count as inactive.
    pub listed_inactive: u32,
    /// Persistence templates found in the table.
    pub listed_persistent: u32,
    /// Entries grouped by state: active first, then inactive, then templates.
    pub states: Vec<StateGroup>,
    /// Seconds until the last inactive entry expires, if nothing refreshes it (the kernel
    /// rounds down, so it may expire up to a second later).
    pub inactive_drain: Option<u32>,
    /// The entries, most recently refreshed first.
    pub connections: Vec<ExplainedConn>,
}

impl DestReport {
    /// The moment the inactive entries will all have expired, counted from `taken_at`.
    pub fn drain_at(&self, taken_at: SystemTime) -> Option<SystemTime> {
        self.inactive_drain
            .map(|s| taken_at + Duration::from_secs(u64::from(s)))
    }
}

/// One service and its destinations.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ServiceReport {
    /// The service.
    pub service: ServiceKey,
    /// Its scheduler.
    pub scheduler: String,
    /// Persistence timeout (0 when not persistent).
    pub persistence_timeout: u32,
    /// Its destinations.
    pub dests: Vec<DestReport>,
}

/// The explanation of a whole IPVS table at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Explanation {
    /// When the connection table was read.
    pub taken_at: SystemTime,
    /// The services.
    pub services: Vec<ServiceReport>,
    /// Entries that match no listed destination (service or destination removed since).
    pub unmatched: Vec<ExplainedConn>,
}

/// Groups `conns` under the destinations of `services` and applies the timeout model.
///
/// Entries are matched to a protocol/address/port service by protocol, virtual
/// address and port (any port for port-0 services), then to a destination by real
/// server address and port (any port when the destination's is 0). Entries left
/// over go to firewall-mark services whose destinations match them.
pub fn explain(
    services: &[(Service, Vec<Destination>)],
    conns: impl IntoIterator<Item = Connection>,
    table: &StateTimeoutTable,
    taken_at: SystemTime,
) -> Explanation {
    let mut buckets: Vec<Vec<Vec<ExplainedConn>>> = services
        .iter()
        .map(|(_, d)| vec![Vec::new(); d.len()])
        .collect();
    let mut unmatched = Vec::new();
    for conn in conns {
        let placed = find_slot(services, &conn);
        let timeout = match placed {
            Some((si, _)) if conn.is_template() => services.get(si).map(|(s, _)| s.timeout),
            _ => table.for_state(&conn.state),
        };
        let item = ExplainedConn {
            activity: conn.activity(),
            state_timeout: timeout,
            idle: timeout.map(|t| t.saturating_sub(conn.expires)),
            conn,
        };
        match placed.and_then(|(si, di)| buckets.get_mut(si)?.get_mut(di)) {
            Some(b) => b.push(item),
            None => unmatched.push(item),
        }
    }
    let services = services
        .iter()
        .zip(buckets)
        .map(|((svc, dests), b)| ServiceReport {
            service: svc.key,
            scheduler: svc.scheduler.clone(),
            persistence_timeout: if svc.is_persistent() { svc.timeout } else { 0 },
            dests: dests
                .iter()
                .zip(b)
                .map(|(d, conns)| report(d, conns))
                .collect(),
        })
        .collect();
    Explanation {
        taken_at,
        services,
        unmatched,
    }
}

fn report(d: &Destination, mut conns: Vec<ExplainedConn>) -> DestReport {
    conns.sort_by(|a, b| {
        (a.activity, a.idle.unwrap_or(u32::MAX)).cmp(&(b.activity, b.idle.unwrap_or(u32::MAX)))
    });
    let mut states: Vec<StateGroup> = Vec::new();
    for c in &conns {
        match states
            .iter_mut()
            .find(|g| g.state == c.conn.state && g.activity == c.activity)
        {
            Some(g) => {
                g.count += 1;
                g.min_expires = g.min_expires.min(c.conn.expires);
                g.max_expires = g.max_expires.max(c.conn.expires);
            }
            None => states.push(StateGroup {
                state: c.conn.state.clone(),
                activity: c.activity,
                count: 1,
                state_timeout: c.state_timeout,
                min_expires: c.conn.expires,
                max_expires: c.conn.expires,
            }),
        }
    }
    states.sort_by(|a, b| (a.activity, &a.state).cmp(&(b.activity, &b.state)));
    let count = |want: Activity| {
        let n = conns.iter().filter(|c| c.activity == want).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    DestReport {
        dest: d.socket_addr(),
        fwd_method: d.fwd_method,
        weight: d.weight,
        active_conns: d.active_conns,
        inactive_conns: d.inactive_conns,
        persist_conns: d.persist_conns,
        listed_active: count(Activity::Active),
        listed_inactive: count(Activity::Inactive),
        listed_persistent: count(Activity::Persistent),
        inactive_drain: conns
            .iter()
            .filter(|c| c.activity == Activity::Inactive)
            .map(|c| c.conn.expires)
            .max(),
        states,
        connections: conns,
    }
}

/// (service index, destination index) of the destination `conn` belongs to.
fn find_slot(
    services: &[(Service, Vec<Destination>)],
    conn: &Connection,
) -> Option<(usize, usize)> {
    let dest_of = |dests: &[Destination]| {
        dests
            .iter()
            .position(|d| d.addr == conn.dest.ip() && (d.port == 0 || d.port == conn.dest.port()))
    };
    for (si, (svc, dests)) in services.iter().enumerate() {
        if let ServiceTarget::Inet {
            protocol,
            addr,
            port,
        } = svc.key.target
        {
            if conn.protocol == protocol
                && conn.virtual_addr.ip() == addr
                && (port == 0 || conn.virtual_addr.port() == port || conn.is_template())
            {
                if let Some(di) = dest_of(dests) {
                    return Some((si, di));
                }
            }
        }
    }
    for (si, (svc, dests)) in services.iter().enumerate() {
        if let ServiceTarget::Fwmark(mark) = svc.key.target {
            if conn.protocol == crate::ipvs::addr::Protocol::Ip && template_mark(conn) != Some(mark)
            {
                continue;
            }
            if let Some(di) = dest_of(dests) {
                return Some((si, di));
            }
        }
    }
    None
}

/// The firewall mark a firewall-mark template carries in its virtual address.
fn template_mark(conn: &Connection) -> Option<u32> {
    match conn.virtual_addr.ip() {
        IpAddr::V4(a) => Some(u32::from(a)),
        IpAddr::V6(a) => {
            let o = a.octets();
            Some(u32::from(Ipv4Addr::new(o[0], o[1], o[2], o[3])))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::addr::{AddressFamily, Protocol};
    use crate::ipvs::conn::{parse_table, ConnTable};
    use crate::ipvs::service::{Netmask, ServiceFlags};
    use crate::ipvs::timeouts::TcpState;

    fn svc(key: ServiceKey, timeout: u32) -> Service {
        Service {
            key,
            scheduler: "rr".into(),
            pe_name: None,
            flags: if timeout > 0 {
                ServiceFlags::PERSISTENT
            } else {
                ServiceFlags::empty()
            },
            flags_mask: !0,
            timeout,
            netmask: Netmask::host(AddressFamily::Inet),
            stats: None,
            stats64: None,
            unknown: vec![],
        }
    }

    fn dest(addr: &str, active: u32, inactive: u32) -> Destination {
        let a: SocketAddr = addr.parse().unwrap();
        Destination {
            af: AddressFamily::Inet,
            addr: a.ip(),
            port: a.port(),
            fwd_method: ForwardMethod::Masq,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
            active_conns: active,
            inactive_conns: inactive,
            persist_conns: 0,
            tun_type: None,
            tun_port: None,
            tun_flags: None,
            stats: None,
            stats64: None,
            unknown: vec![],
        }
    }

    #[test]
    fn groups_by_state_and_predicts_drain() {
        let text = "\
TCP 0A000102 E1A4 0A000001 0050 0A000302 0050 TIME_WAIT       117\n\
TCP 0A000102 B1CA 0A000001 0050 0A000302 0050 TIME_WAIT        90\n\
TCP 0A000102 B1CB 0A000001 0050 0A000302 0050 FIN_WAIT          4\n\
TCP 0A000102 B1CC 0A000001 0050 0A000302 0050 ESTABLISHED     800\n\
TCP 0A000102 B1E8 0A000001 0050 0A000202 0050 TIME_WAIT       119\n\
UDP 0A000102 B1E8 0A000001 0035 0A000202 0035 UDP             250\n\
TCP 0A000102 B1E9 0A000009 0050 0A000202 0050 TIME_WAIT       100\n";
        let conns = parse_table(text, ConnTable::Conn).unwrap();
        let services = vec![
            (
                svc(ServiceKey::tcp("10.0.0.1:80".parse().unwrap()), 0),
                vec![dest("10.0.2.2:80", 0, 1), dest("10.0.3.2:80", 1, 3)],
            ),
            (
                svc(ServiceKey::udp("10.0.0.1:53".parse().unwrap()), 0),
                vec![dest("10.0.2.2:53", 0, 1)],
            ),
        ];
        let mut table = StateTimeoutTable::default();
        table.tcp[usize::from(TcpState::FinWait.value())] = 5;
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let ex = explain(&services, conns, &table, t0);
        assert_eq!(ex.unmatched.len(), 1, "10.0.0.9 matches no service");
        let rs2 = &ex.services[0].dests[1];
        assert_eq!(rs2.dest, "10.0.3.2:80".parse().unwrap());
        assert_eq!((rs2.listed_active, rs2.listed_inactive), (1, 3));
        assert_eq!((rs2.active_conns, rs2.inactive_conns), (1, 3));
        assert_eq!(rs2.states.len(), 3);
        assert_eq!(rs2.states[0].state, ConnState::Tcp(TcpState::Established));
        assert_eq!(rs2.states[0].activity, Activity::Active);
        let tw = rs2
            .states
            .iter()
            .find(|g| g.state == ConnState::Tcp(TcpState::TimeWait))
            .unwrap();
        assert_eq!((tw.count, tw.min_expires, tw.max_expires), (2, 90, 117));
        assert_eq!(tw.state_timeout, Some(120));
        let fw = rs2
            .states
            .iter()
            .find(|g| g.state == ConnState::Tcp(TcpState::FinWait))
            .unwrap();
        assert_eq!(fw.state_timeout, Some(5));
        assert_eq!(rs2.inactive_drain, Some(117));
        assert_eq!(rs2.drain_at(t0), Some(t0 + Duration::from_secs(117)));
        // Most recently refreshed first among the inactive: FIN_WAIT 4 of 5 s.
        let first_inactive = rs2
            .connections
            .iter()
            .find(|c| c.activity == Activity::Inactive)
            .unwrap();
        assert_eq!(first_inactive.idle, Some(1), "FIN_WAIT 4 of 5 is idle 1 s");
        let udp = &ex.services[1].dests[0];
        assert_eq!(udp.listed_inactive, 1);
        assert_eq!(udp.states[0].state_timeout, Some(300));
        assert_eq!(udp.connections[0].conn.protocol, Protocol::Udp);
    }

    #[test]
    fn templates_use_the_persistence_timeout_and_fwmark_matching() {
        let text = "\
TCP 0A000102 0000 0A000001 0050 0A000202 0050 NONE            250\n\
IP  0A000105 0000 00000007 0000 0A000303 0000 ASSURED         100\n\
TCP 0A000105 C000 0A000063 0016 0A000303 0016 ESTABLISHED     890\n";
        let conns = parse_table(text, ConnTable::Conn).unwrap();
        let services = vec![
            (
                svc(ServiceKey::tcp("10.0.0.1:80".parse().unwrap()), 300),
                vec![dest("10.0.2.2:80", 0, 0)],
            ),
            (
                svc(ServiceKey::fwmark(AddressFamily::Inet, 7), 120),
                vec![dest("10.0.3.3:0", 1, 0)],
            ),
        ];
        let ex = explain(
            &services,
            conns,
            &StateTimeoutTable::default(),
            SystemTime::UNIX_EPOCH,
        );
        let d = &ex.services[0].dests[0];
        assert_eq!(d.listed_persistent, 1);
        assert_eq!(d.connections[0].state_timeout, Some(300));
        assert_eq!(d.connections[0].idle, Some(50));
        assert_eq!(d.inactive_drain, None);
        let f = &ex.services[1].dests[0];
        assert_eq!((f.listed_active, f.listed_persistent), (1, 1));
        assert!(ex.unmatched.is_empty());
    }
}

//! Shared by the IPVS tests (included with `#[path]`): parsing of ipvsadm's text output
//! and the ipvsadm rendering of library values, for field-by-field comparison.
#![allow(dead_code)]

use std::net::SocketAddr;

use ipvs_conntrack::ipvs::{
    AddressFamily, Destination, ForwardMethod, Netmask, Protocol, Service, ServiceFlags,
    ServiceKey, TunnelFlags, TunnelType,
};

/// One service row of an ipvsadm listing with its destination rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmService {
    /// The service.
    pub key: ServiceKey,
    /// The columns after the service (scheduler and flags, or numbers).
    pub cols: Vec<String>,
    /// The destination rows.
    pub dests: Vec<AdmDest>,
}

/// One destination row of an ipvsadm listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmDest {
    /// Real server.
    pub addr: SocketAddr,
    /// The columns after the address.
    pub cols: Vec<String>,
}

/// Parses the service key at the start of `tokens`; returns it and how many tokens it used.
pub fn parse_key(tokens: &[&str]) -> Option<(ServiceKey, usize)> {
    let proto = *tokens.first()?;
    if proto == "FWM" {
        let mark: u32 = tokens.get(1)?.parse().ok()?;
        if tokens.get(2) == Some(&"IPv6") {
            return Some((ServiceKey::fwmark(AddressFamily::Inet6, mark), 3));
        }
        return Some((ServiceKey::fwmark(AddressFamily::Inet, mark), 2));
    }
    let p = Protocol::from_name(proto)?;
    let addr: SocketAddr = tokens.get(1)?.parse().ok()?;
    Some((ServiceKey::inet(p, addr), 2))
}

/// Parses an `ipvsadm -L -n` style listing (any column set).
pub fn parse_listing(text: &str) -> Vec<AdmService> {
    let mut out: Vec<AdmService> = Vec::new();
    for line in text.lines() {
        if line.starts_with("IP Virtual Server") || line.starts_with("Prot ") {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.first() == Some(&"->") {
            if tokens.get(1) == Some(&"RemoteAddress:Port") {
                continue;
            }
            let Some(addr) = tokens.get(1).and_then(|t| t.parse::<SocketAddr>().ok()) else {
                panic!("bad destination line {line:?}");
            };
            let dest = AdmDest {
                addr,
                cols: tokens[2..].iter().map(|s| s.to_string()).collect(),
            };
            out.last_mut()
                .unwrap_or_else(|| panic!("destination before any service: {line:?}"))
                .dests
                .push(dest);
            continue;
        }
        if tokens.is_empty() {
            continue;
        }
        let (key, used) = parse_key(&tokens).unwrap_or_else(|| panic!("bad service line {line:?}"));
        out.push(AdmService {
            key,
            cols: tokens[used..].iter().map(|s| s.to_string()).collect(),
            dests: Vec::new(),
        });
    }
    out
}

/// Finds a service of a listing.
pub fn find<'a>(list: &'a [AdmService], key: &ServiceKey) -> &'a AdmService {
    list.iter()
        .find(|s| s.key == *key)
        .unwrap_or_else(|| panic!("ipvsadm does not list {key}: {list:#?}"))
}

/// Finds a destination of a listed service.
pub fn find_dest(svc: &AdmService, addr: SocketAddr) -> &AdmDest {
    svc.dests
        .iter()
        .find(|d| d.addr == addr)
        .unwrap_or_else(|| panic!("ipvsadm lists no {addr} under {}", svc.key))
}

/// The scheduler and flag tokens ipvsadm prints for a service, sorted.
pub fn expected_service_cols(s: &Service) -> Vec<String> {
    let mut v = vec![s.scheduler.clone()];
    let sched = [
        (ServiceFlags::SCHED1, "fallback", "flag-1"),
        (ServiceFlags::SCHED2, "port", "flag-2"),
        (ServiceFlags::SCHED3, "", "flag-3"),
    ];
    let mut names = Vec::new();
    for (bit, suffix, generic) in sched {
        if s.flags.contains(bit) {
            if (s.scheduler == "sh" || s.scheduler == "mh") && !suffix.is_empty() {
                names.push(format!("{}-{suffix}", s.scheduler));
            } else {
                names.push(generic.to_owned());
            }
        }
    }
    if !names.is_empty() {
        v.push(format!("({})", names.join(",")));
    }
    if s.flags.contains(ServiceFlags::PERSISTENT) {
        v.push("persistent".into());
        v.push(s.timeout.to_string());
        match s.netmask {
            Netmask::Mask(m) if m != std::net::Ipv4Addr::BROADCAST => {
                v.push("mask".into());
                v.push(m.to_string());
            }
            Netmask::PrefixLen(n) if n != 128 => {
                v.push("mask".into());
                v.push(n.to_string());
            }
            _ => {}
        }
        if let Some(pe) = &s.pe_name {
            v.push("pe".into());
            v.push(pe.clone());
        }
    }
    if s.flags.contains(ServiceFlags::ONEPACKET) {
        v.push("ops".into());
    }
    v.sort();
    v
}

/// Sorted copy of ipvsadm's columns.
pub fn sorted(cols: &[String]) -> Vec<String> {
    let mut v = cols.to_vec();
    v.sort();
    v
}

/// ipvsadm's TunnelInfo column for a destination.
pub fn expected_tun_info(d: &Destination) -> String {
    if d.fwd_method != ForwardMethod::Tunnel {
        return "n/a".into();
    }
    let flags = d.tun_flags.unwrap_or_default();
    let csum = if flags.contains(TunnelFlags::REMCSUM) {
        "r+c"
    } else if flags.contains(TunnelFlags::CSUM) {
        "+c"
    } else {
        "-c"
    };
    match d.tun_type.unwrap_or(TunnelType::Ipip) {
        TunnelType::Gue => format!("gue:{}:{csum}", d.tun_port.unwrap_or(0)),
        TunnelType::Gre => format!("gre:{csum}"),
        _ => "ipip".into(),
    }
}

/// Parses `Timeout (tcp tcpfin udp): A B C`.
pub fn parse_timeouts(text: &str) -> (u32, u32, u32) {
    let line = text
        .lines()
        .find(|l| l.starts_with("Timeout (tcp tcpfin udp):"))
        .unwrap_or_else(|| panic!("no timeout line in {text:?}"));
    let v: Vec<u32> = line
        .split(':')
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .map(|t| {
            t.parse()
                .unwrap_or_else(|_| panic!("bad number in {line:?}"))
        })
        .collect();
    assert_eq!(v.len(), 3, "{line:?}");
    (v[0], v[1], v[2])
}

/// One `ipvsadm -L --daemon` line: (state, ifn, syncid, maxlen, group, port, ttl).
pub type AdmDaemon = (String, String, u32, u16, String, u16, u8);

/// Parses `ipvsadm -L --daemon`.
pub fn parse_daemons(text: &str) -> Vec<AdmDaemon> {
    text.lines()
        .filter(|l| l.contains("sync daemon"))
        .map(|l| {
            let state = l.split_whitespace().next().unwrap_or_default().to_owned();
            let inner = l
                .split_once('(')
                .and_then(|(_, r)| r.strip_suffix(')'))
                .unwrap_or_else(|| panic!("bad daemon line {l:?}"));
            let get = |k: &str| -> String {
                inner
                    .split(", ")
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .unwrap_or_else(|| panic!("no {k} in {l:?}"))
                    .to_owned()
            };
            (
                state,
                get("mcast"),
                get("syncid").parse().unwrap(),
                get("maxlen").parse().unwrap(),
                get("group"),
                get("port").parse().unwrap(),
                get("ttl").parse().unwrap(),
            )
        })
        .collect()
}

/// One `ipvsadm -Lnc` row: (protocol, client, virtual, destination, state, expire seconds).
pub type AdmConn = (String, SocketAddr, SocketAddr, SocketAddr, String, u32);

/// Parses `ipvsadm -Lnc` (expire as MM:SS).
pub fn parse_conns(text: &str) -> Vec<AdmConn> {
    text.lines()
        .skip_while(|l| !l.starts_with("pro "))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            assert!(t.len() >= 6, "bad connection line {l:?}");
            let (m, s) = t[1]
                .split_once(':')
                .unwrap_or_else(|| panic!("bad expire in {l:?}"));
            let secs = m.parse::<u32>().unwrap() * 60 + s.parse::<u32>().unwrap();
            (
                t[0].to_owned(),
                t[3].parse().unwrap(),
                t[4].parse().unwrap(),
                t[5].parse().unwrap(),
                t[2].to_owned(),
                secs,
            )
        })
        .collect()
}

#[test]
fn parses_ipvsadm_listings() {
    let text = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n\
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  10.0.0.1:80 rr\n\
  -> 10.0.2.2:80                  Masq    3      0          0         \n\
SCTP 10.0.0.1:3000 mh (mh-port) persistent 120 mask 255.255.255.0\n\
FWM  8 IPv6 lc\n\
  -> [2001:db8::44]:0             Route   1      0          0         \n";
    let l = parse_listing(text);
    assert_eq!(l.len(), 3);
    assert_eq!(l[0].key, ServiceKey::tcp("10.0.0.1:80".parse().unwrap()));
    assert_eq!(l[0].dests[0].cols, ["Masq", "3", "0", "0"]);
    assert_eq!(l[1].cols[1], "(mh-port)");
    assert_eq!(l[2].key, ServiceKey::fwmark(AddressFamily::Inet6, 8));
    assert_eq!(l[2].dests[0].addr, "[2001:db8::44]:0".parse().unwrap());
    assert_eq!(
        parse_timeouts("Timeout (tcp tcpfin udp): 900 120 300\n"),
        (900, 120, 300)
    );
    let d = parse_daemons(
        "master sync daemon (mcast=d0, syncid=5, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n",
    );
    assert_eq!(
        d,
        [(
            "master".into(),
            "d0".into(),
            5,
            1472,
            "224.0.0.81".into(),
            8848,
            1
        )]
    );
    let c = parse_conns(
        "IPVS connection entries\npro expire state       source             virtual            destination\n\
TCP 01:57  TIME_WAIT   10.0.1.2:57764     10.0.0.1:80        10.0.3.2:80\n",
    );
    assert_eq!(c[0].5, 117);
    assert_eq!(c[0].4, "TIME_WAIT");
}

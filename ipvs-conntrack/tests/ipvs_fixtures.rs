//! Decodes real IPVS messages recorded from Debian's 6.1 kernel (tests/fixtures/ipvs,
//! see PROVENANCE.txt there) and compares every field with what ipvsadm printed in the
//! same moment. Needs neither root nor IPVS. Re-record with
//! `tests/vm/ipvs/run.sh --record-fixtures`.
#![allow(clippy::unwrap_used)]

#[path = "ipvs_common.rs"]
mod ipvs_common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use ipvs_common::*;
use ipvs_conntrack::error::DecodeErrorKind;
use ipvs_conntrack::ipvs::conn::{parse_table, ConnTable};
use ipvs_conntrack::ipvs::explain::explain;
use ipvs_conntrack::ipvs::{
    Activity, AddressFamily, Body, ConnState, DaemonState, Destination, ForwardMethod, Info,
    Message, Netmask, Origin, Protocol, Service, ServiceFlags, ServiceKey, StateTimeoutTable,
    Stats, StatsWidth, TcpState, Timeouts, TunnelFlags, TunnelType,
};
use ipvs_conntrack::netlink::frame::{Frame, Frames, NLMSG_HDRLEN};
use ipvs_conntrack::netlink::genl::{FamilyInfo, GENL_HDRLEN, GENL_ID_CTRL};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ipvs")
}

fn bin(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn text(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The IPVS family id the kernel assigned when the fixtures were recorded.
fn family_id() -> u16 {
    let b = bin("family.bin");
    let f = Frames::new(&b).next().unwrap().unwrap();
    FamilyInfo::from_frame(&f).unwrap().id
}

/// Every IPVS message of a fixture, decoded.
fn messages(name: &str, af: AddressFamily) -> Vec<Message> {
    let b = bin(name);
    let id = family_id();
    let mut out = Vec::new();
    let mut ends = 0;
    for f in Frames::new(&b) {
        let f = f.unwrap();
        if f.header.message_type == id {
            out.push(Message::from_frame(&f, af).unwrap());
        } else {
            // A dump ends with NLMSG_DONE, a request with NLMSG_ERROR 0 (the ACK).
            assert!(
                [2, 3].contains(&f.header.message_type),
                "{name}: unexpected message type {}",
                f.header.message_type
            );
            ends += 1;
        }
    }
    assert_eq!(ends, 1, "{name}: one DONE or ACK ends the answer");
    out
}

fn services() -> Vec<Service> {
    messages("services.bin", AddressFamily::Inet)
        .into_iter()
        .map(|m| match m.body {
            Body::Service(s) => s,
            other => panic!("not a service: {other:?}"),
        })
        .collect()
}

/// (service, destinations) from the manifest and the dests-N fixtures.
fn snapshot() -> Vec<(Service, Vec<Destination>)> {
    let svcs = services();
    text("dests.manifest")
        .lines()
        .map(|l| {
            let (file, key) = l.split_once(' ').unwrap();
            let key: ServiceKey = key.parse().unwrap();
            let svc = svcs.iter().find(|s| s.key == key).unwrap().clone();
            let dests = messages(file, key.af)
                .into_iter()
                .map(|m| match m.body {
                    Body::Dest(None, d) => d,
                    other => panic!("not a destination: {other:?}"),
                })
                .collect();
            (svc, dests)
        })
        .collect()
}

fn stats_cols(s: &Stats) -> Vec<String> {
    [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
        .iter()
        .map(u64::to_string)
        .collect()
}

fn rate_cols(s: &Stats) -> Vec<String> {
    [s.cps, s.inpps, s.outpps, s.inbps, s.outbps]
        .iter()
        .map(u64::to_string)
        .collect()
}

#[test]
fn family_resolution_reply() {
    let b = bin("family.bin");
    let frames: Vec<Frame<'_>> = Frames::new(&b).map(Result::unwrap).collect();
    assert_eq!(frames[0].header.message_type, GENL_ID_CTRL);
    let info = FamilyInfo::from_frame(&frames[0]).unwrap();
    assert_eq!(info.name, "IPVS");
    assert_eq!(info.version, 1);
    assert_eq!(info.hdrsize, 0);
    assert_eq!(info.maxattr, 6, "IPVS_CMD_ATTR_MAX");
    assert!(info.id > GENL_ID_CTRL, "{info:?}");
}

#[test]
fn info_and_config_match_ipvsadm() {
    let m = messages("info.bin", AddressFamily::Inet);
    let Body::Info(info) = &m[0].body else {
        panic!("{m:?}")
    };
    assert_eq!(
        *info,
        Info {
            version: 0x010201,
            conn_tab_size: 4096
        }
    );
    let ln = text("ipvsadm-Ln.txt");
    assert_eq!(ln.lines().next().unwrap(), info.to_string());

    let m = messages("config.bin", AddressFamily::Inet);
    let Body::Config(t) = m[0].body else {
        panic!("{m:?}")
    };
    let (tcp, fin, udp) = parse_timeouts(&text("ipvsadm-timeout.txt"));
    assert_eq!(
        t,
        Timeouts {
            tcp: Some(tcp),
            tcp_fin: Some(fin),
            udp: Some(udp)
        }
    );
    assert_eq!((tcp, fin, udp), (900, 60, 300), "ipvsadm --set 900 60 300");
    assert!(m[0].unknown.is_empty());
}

#[test]
fn daemons_match_ipvsadm() {
    let m = messages("daemons.bin", AddressFamily::Inet);
    let lib: Vec<_> = m
        .into_iter()
        .map(|m| match m.body {
            Body::Daemon(d) => d,
            other => panic!("{other:?}"),
        })
        .collect();
    let adm = parse_daemons(&text("ipvsadm-daemon.txt"));
    assert_eq!(lib.len(), 2);
    for (d, a) in lib.iter().zip(&adm) {
        assert_eq!(
            (
                d.state.name().to_owned(),
                d.mcast_ifn.clone(),
                d.sync_id,
                d.sync_maxlen.unwrap(),
                d.mcast_group.unwrap().to_string(),
                d.mcast_port.unwrap(),
                d.mcast_ttl.unwrap()
            ),
            a.clone()
        );
        assert!(d.unknown.is_empty());
    }
    assert_eq!(lib[0].state, DaemonState::Master);
    assert_eq!(lib[1].state, DaemonState::Backup);
    assert_eq!(lib[1].mcast_group, Some("239.2.3.4".parse().unwrap()));
    assert_eq!(
        (lib[1].sync_maxlen, lib[1].mcast_port, lib[1].mcast_ttl),
        (Some(1200), Some(8900), Some(3))
    );
}

#[test]
fn services_and_destinations_match_ipvsadm() {
    let snap = snapshot();
    assert_eq!(snap.len(), 8);
    assert_eq!(
        services().len(),
        8,
        "the manifest lists every dumped service"
    );
    let ln = parse_listing(&text("ipvsadm-Ln.txt"));
    let thr = parse_listing(&text("ipvsadm-thresholds.txt"));
    let per = parse_listing(&text("ipvsadm-persistent-conn.txt"));
    let tun = parse_listing(&text("ipvsadm-tun-info.txt"));
    let st = parse_listing(&text("ipvsadm-stats.txt"));
    let rt = parse_listing(&text("ipvsadm-rate.txt"));
    assert_eq!(ln.len(), snap.len());
    for (s, dests) in &snap {
        let a = find(&ln, &s.key);
        assert_eq!(expected_service_cols(s), sorted(&a.cols), "{}", s.key);
        assert_eq!(a.dests.len(), dests.len(), "{}", s.key);
        assert!(s.unknown.is_empty(), "{}: {:?}", s.key, s.unknown);
        assert_eq!(s.flags_mask, u32::MAX, "the kernel sends the mask ~0");
        let s64 = s.stats64.as_ref().unwrap();
        let s32 = s.stats.as_ref().unwrap();
        assert_eq!(
            (s64.width, s32.width),
            (StatsWidth::Bits64, StatsWidth::Bits32)
        );
        assert_eq!(
            stats_cols(s64),
            stats_cols(s32),
            "no counter above 2^32 here"
        );
        assert_eq!(
            find(&st, &s.key).cols,
            stats_cols(s64),
            "stats of {}",
            s.key
        );
        assert_eq!(find(&rt, &s.key).cols, rate_cols(s64), "rates of {}", s.key);
        for d in dests {
            let sa = d.socket_addr();
            let n = |v: u32| v.to_string();
            assert_eq!(
                find_dest(a, sa).cols,
                [
                    d.fwd_method.ipvsadm_name().to_owned(),
                    n(d.weight),
                    n(d.active_conns),
                    n(d.inactive_conns)
                ]
            );
            assert_eq!(
                find_dest(find(&thr, &s.key), sa).cols,
                [
                    n(d.upper_threshold),
                    n(d.lower_threshold),
                    n(d.active_conns),
                    n(d.inactive_conns)
                ]
            );
            assert_eq!(
                find_dest(find(&per, &s.key), sa).cols,
                [
                    n(d.weight),
                    n(d.persist_conns),
                    n(d.active_conns),
                    n(d.inactive_conns)
                ]
            );
            assert_eq!(
                find_dest(find(&tun, &s.key), sa).cols,
                [
                    d.fwd_method.ipvsadm_name().to_owned(),
                    expected_tun_info(d),
                    n(d.weight),
                    n(d.active_conns),
                    n(d.inactive_conns)
                ]
            );
            let ds = d.best_stats().unwrap();
            assert_eq!(find_dest(find(&st, &s.key), sa).cols, stats_cols(ds));
            assert_eq!(find_dest(find(&rt, &s.key), sa).cols, rate_cols(ds));
            assert!(d.unknown.is_empty());
        }
    }
}

#[test]
fn decoded_values_are_the_configured_ones() {
    let snap = snapshot();
    let get = |k: &str| {
        let key: ServiceKey = k.parse().unwrap();
        snap.iter().find(|(s, _)| s.key == key).unwrap()
    };
    let (http, d) = get("tcp:10.0.0.1:80");
    assert_eq!(http.scheduler, "rr");
    assert_eq!(http.flags, ServiceFlags::HASHED);
    assert_eq!(
        http.netmask,
        Netmask::Mask("255.255.255.255".parse().unwrap())
    );
    let st = http.best_stats().unwrap();
    assert_eq!(st.conns, 6, "6 HTTP requests");
    assert!(st.inpkts >= 6 * 4 && st.outpkts >= 6 * 3, "{st:?}");
    let rs1 = d.iter().find(|d| d.addr.to_string() == "10.0.2.2").unwrap();
    assert_eq!(
        (
            rs1.fwd_method,
            rs1.weight,
            rs1.upper_threshold,
            rs1.lower_threshold
        ),
        (ForwardMethod::Masq, 1, 50, 5)
    );
    assert_eq!(
        (rs1.active_conns, rs1.inactive_conns),
        (0, 3),
        "3 TIME_WAIT each"
    );
    assert_eq!(rs1.af, AddressFamily::Inet);
    assert_eq!(
        rs1.tun_type,
        Some(TunnelType::Ipip),
        "the kernel always sends the tunnel type"
    );

    let (dns, d) = get("udp:10.0.0.1:53");
    assert_eq!(dns.best_stats().unwrap().inbytes, 4 * 34);
    assert!(d
        .iter()
        .all(|d| d.inactive_conns == 2 && d.active_conns == 0));

    let (sctp, d) = get("sctp:10.0.0.1:3000");
    assert_eq!(sctp.key.protocol(), Some(Protocol::Sctp));
    assert_eq!(
        sctp.flags,
        ServiceFlags::HASHED | ServiceFlags::PERSISTENT | ServiceFlags::SCHED2
    );
    assert_eq!((sctp.scheduler.as_str(), sctp.timeout), ("mh", 120));
    assert_eq!(sctp.netmask.prefix_len(), Some(24));
    let by = |a: &str| d.iter().find(|x| x.addr.to_string() == a).unwrap();
    assert_eq!(by("10.0.2.8").tun_type, Some(TunnelType::Ipip));
    let gue = by("10.0.2.9");
    assert_eq!(
        (gue.fwd_method, gue.tun_type, gue.tun_port, gue.tun_flags),
        (
            ForwardMethod::Tunnel,
            Some(TunnelType::Gue),
            Some(6080),
            Some(TunnelFlags::empty())
        )
    );
    assert_eq!(by("10.0.2.10").tun_flags, Some(TunnelFlags::CSUM));
    assert_eq!(by("10.0.2.11").tun_flags, Some(TunnelFlags::REMCSUM));
    assert_eq!(by("10.0.2.11").tun_port, Some(6081));

    let (v6, d) = get("tcp:[2001:db8::1]:443");
    assert_eq!(v6.key.af, AddressFamily::Inet6);
    assert_eq!(v6.netmask, Netmask::PrefixLen(64));
    assert_eq!(d[0].af, AddressFamily::Inet6);
    assert_eq!(
        d[0].socket_addr(),
        "[2001:db8:2::2]:443".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(d[0].weight, 2);

    let (fw, d) = get("fwmark:7");
    assert_eq!((fw.key.fwmark_value(), fw.timeout), (Some(7), 360));
    assert_eq!(
        (d[0].fwd_method, d[0].port, d[0].weight),
        (ForwardMethod::Route, 0, 5)
    );
    let (fw6, d) = get("fwmark6:8");
    assert_eq!(fw6.key.af, AddressFamily::Inet6);
    assert_eq!(fw6.netmask, Netmask::PrefixLen(128));
    assert_eq!(d[0].addr.to_string(), "2001:db8::44");

    let (sip, d) = get("udp:10.0.0.2:5060");
    assert_eq!((sip.pe_name.as_deref(), sip.timeout), (Some("sip"), 30));
    assert!(d.is_empty());
    let (p0, _) = get("tcp:10.0.0.3:0");
    assert_eq!((p0.scheduler.as_str(), p0.timeout), ("dh", 10));

    // GET_SERVICE answers with the same service.
    let m = messages("service-get.bin", AddressFamily::Inet);
    let Body::Service(one) = &m[0].body else {
        panic!("{m:?}")
    };
    assert_eq!(
        (
            &one.key,
            &one.scheduler,
            one.flags,
            one.timeout,
            one.netmask
        ),
        (
            &http.key,
            &http.scheduler,
            http.flags,
            http.timeout,
            http.netmask
        )
    );
}

#[test]
fn connection_tables_match_ipvsadm() {
    let conns = parse_table(&text("ip_vs_conn.txt"), ConnTable::Conn).unwrap();
    let adm = parse_conns(&text("ipvsadm-Lnc.txt"));
    assert_eq!(conns.len(), 10);
    assert_eq!(adm.len(), 10);
    let key = |p: &str, c: SocketAddr, v: SocketAddr, d: SocketAddr, s: &str| {
        format!("{p} {c} {v} {d} {s}")
    };
    let lib: BTreeMap<String, u32> = conns
        .iter()
        .map(|c| {
            (
                key(
                    c.protocol.name(),
                    c.client,
                    c.virtual_addr,
                    c.dest,
                    c.state.name(),
                ),
                c.expires,
            )
        })
        .collect();
    for (p, c, v, d, s, e) in &adm {
        let k = key(p, *c, *v, *d, s);
        let le = lib.get(&k).unwrap_or_else(|| panic!("{k} not parsed"));
        assert!(le.abs_diff(*e) <= 1, "{k}: {le} vs {e}");
    }
    assert_eq!(
        conns
            .iter()
            .filter(|c| c.state == ConnState::Tcp(TcpState::TimeWait))
            .count(),
        6
    );
    assert_eq!(
        conns.iter().filter(|c| c.state == ConnState::Udp).count(),
        4
    );
    assert!(conns.iter().all(|c| c.activity() == Activity::Inactive));
    let sync = parse_table(&text("ip_vs_conn_sync.txt"), ConnTable::Sync).unwrap();
    assert_eq!(sync.len(), 10);
    assert!(sync.iter().all(|c| c.origin == Some(Origin::Local)));
}

#[test]
fn explain_accounts_for_every_inactive_connection() {
    let m = messages("config.bin", AddressFamily::Inet);
    let Body::Config(t) = m[0].body else { panic!() };
    let table = StateTimeoutTable::from_config(&t);
    let conns = parse_table(&text("ip_vs_conn.txt"), ConnTable::Conn).unwrap();
    let ex = explain(&snapshot(), conns, &table, SystemTime::UNIX_EPOCH);
    assert!(ex.unmatched.is_empty());
    let mut seen = 0;
    for s in &ex.services {
        for d in &s.dests {
            assert_eq!(
                d.listed_inactive, d.inactive_conns,
                "{} {}",
                s.service, d.dest
            );
            assert_eq!(d.listed_active, d.active_conns);
            for g in &d.states {
                let want = match g.state {
                    ConnState::Tcp(TcpState::TimeWait) => 120,
                    ConnState::Udp => 300,
                    ref other => panic!("unexpected state {other}"),
                };
                assert_eq!(g.state_timeout, Some(want));
                assert!(g.max_expires <= want);
                seen += g.count;
            }
            if d.inactive_conns > 0 {
                assert!(d.inactive_drain.unwrap() >= 110);
            }
        }
    }
    assert_eq!(seen, 10);
}

/// Every fixture file, and the family to decode its destinations with.
fn all_fixtures() -> Vec<(String, AddressFamily)> {
    let mut v: Vec<(String, AddressFamily)> = [
        "family.bin",
        "info.bin",
        "config.bin",
        "daemons.bin",
        "service-get.bin",
        "services.bin",
    ]
    .iter()
    .map(|s| (s.to_string(), AddressFamily::Inet))
    .collect();
    for l in text("dests.manifest").lines() {
        let (file, key) = l.split_once(' ').unwrap();
        v.push((file.to_owned(), key.parse::<ServiceKey>().unwrap().af));
    }
    v
}

#[test]
fn every_truncated_datagram_errors() {
    for (name, _) in all_fixtures() {
        let b = bin(&name);
        let boundaries: Vec<usize> = {
            let mut v = vec![0];
            for f in Frames::new(&b) {
                let f = f.unwrap();
                v.push(f.offset + (f.header.length as usize).div_ceil(4) * 4);
            }
            v
        };
        for cut in 1..b.len() {
            let r: Result<Vec<_>, _> = Frames::new(&b[..cut]).collect();
            if boundaries.contains(&cut) {
                assert!(r.is_ok(), "{name}: cut {cut} at a message boundary");
            } else {
                let e = r.unwrap_err();
                assert!(
                    matches!(
                        e.kind,
                        DecodeErrorKind::Truncated { .. } | DecodeErrorKind::LengthTooSmall { .. }
                    ),
                    "{name}: cut {cut}: {e}"
                );
            }
        }
    }
}

/// The offsets (within the attributes) where a top-level attribute ends, anywhere in
/// its padding: a cut there leaves whole attributes.
fn top_level_ends(attrs: &[u8]) -> Vec<usize> {
    let mut ends = vec![0];
    let mut pos = 0;
    while pos + 4 <= attrs.len() {
        let len = usize::from(u16::from_ne_bytes([attrs[pos], attrs[pos + 1]]));
        let next = pos + len.max(4).div_ceil(4) * 4;
        ends.extend((pos + len).min(attrs.len())..=next.min(attrs.len()));
        pos = next;
        if len < 4 {
            break;
        }
    }
    ends
}

#[test]
fn every_truncated_message_body_errors() {
    let id = family_id();
    let mut checked = 0;
    for (name, af) in all_fixtures() {
        let b = bin(&name);
        for f in Frames::new(&b) {
            let f = f.unwrap();
            let ty = f.header.message_type;
            if ty != id && ty != GENL_ID_CTRL {
                continue;
            }
            let full = f.payload;
            let ends = top_level_ends(&full[GENL_HDRLEN..]);
            for cut in 0..full.len() {
                // The message with its body cut and its length field fixed up.
                let mut msg = b[f.offset..f.offset + NLMSG_HDRLEN].to_vec();
                msg[..4].copy_from_slice(&((NLMSG_HDRLEN + cut) as u32).to_ne_bytes());
                msg.extend_from_slice(&full[..cut]);
                let frame = Frames::new(&msg).next().unwrap().unwrap();
                let ok = if ty == GENL_ID_CTRL {
                    FamilyInfo::from_frame(&frame).is_ok()
                } else {
                    Message::from_frame(&frame, af).is_ok()
                };
                let on_boundary = cut >= GENL_HDRLEN && ends.contains(&(cut - GENL_HDRLEN));
                if !on_boundary {
                    assert!(!ok, "{name}: body cut at {cut} of {} decoded", full.len());
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 5000, "only {checked} cuts checked");
}

#[test]
fn truncation_inside_a_nest_names_the_nest() {
    let b = bin("services.bin");
    let f = Frames::new(&b).next().unwrap().unwrap();
    // Cut 6 bytes off the end of the first service: inside its STATS64 nest.
    let cut = f.payload.len() - 6;
    let mut msg = b[..NLMSG_HDRLEN].to_vec();
    msg[..4].copy_from_slice(&((NLMSG_HDRLEN + cut) as u32).to_ne_bytes());
    msg.extend_from_slice(&f.payload[..cut]);
    // Fix the outer nest's length too, so the error is found inside it.
    let nest_len = u16::from_ne_bytes([msg[20], msg[21]]) - 6;
    msg[20..22].copy_from_slice(&nest_len.to_ne_bytes());
    let frame = Frames::new(&msg).next().unwrap().unwrap();
    let err = Message::from_frame(&frame, AddressFamily::Inet).unwrap_err();
    assert!(
        matches!(err.kind, DecodeErrorKind::Truncated { .. }),
        "{err}"
    );
    let path = err.path.to_string();
    assert!(
        path.starts_with("IPVS_CMD_ATTR_SERVICE/IPVS_SVC_ATTR_STATS64"),
        "{path}"
    );
}

#[test]
fn mutated_messages_never_panic() {
    // Every byte of every recorded message set to a few values: decoding returns a
    // value or a typed error, never a panic.
    let id = family_id();
    let mut decoded = 0u32;
    let mut failed = 0u32;
    for (name, af) in all_fixtures() {
        let b = bin(&name);
        for f in Frames::new(&b) {
            let f = f.unwrap();
            let ty = f.header.message_type;
            if ty != id && ty != GENL_ID_CTRL {
                continue;
            }
            let msg = &b[f.offset..f.offset + f.header.length as usize];
            for pos in NLMSG_HDRLEN..msg.len() {
                for v in [0x00u8, 0x01, 0x04, 0x80, 0xff, msg[pos].wrapping_add(1)] {
                    let mut m = msg.to_vec();
                    m[pos] = v;
                    let Some(Ok(frame)) = Frames::new(&m).next() else {
                        continue;
                    };
                    let ok = if ty == GENL_ID_CTRL {
                        FamilyInfo::from_frame(&frame).is_ok()
                    } else {
                        Message::from_frame(&frame, af).is_ok()
                    };
                    if ok {
                        decoded += 1;
                    } else {
                        failed += 1;
                    }
                }
            }
        }
    }
    assert!(
        decoded > 1000 && failed > 1000,
        "{decoded} decoded, {failed} errors"
    );
}

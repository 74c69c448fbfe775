//! Writes generated seed inputs for the fuzz targets that have no recorded fixtures yet
//! (IPVS replies, `/proc/net/ip_vs_conn` text, expectations, events) into the directory
//! given as the first argument. Used by tests/fuzz.sh.
//!
//! The messages are built with the library's own encoders (the request nests of IPVS
//! carry the same attributes as the kernel's replies) and the layouts of the uapi headers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use ipvs_conntrack::conntrack::tuple::{IPPROTO_TCP, IPPROTO_UDP};
use ipvs_conntrack::conntrack::wire::*;
use ipvs_conntrack::conntrack::Tuple;
use ipvs_conntrack::ipvs::wire::*;
use ipvs_conntrack::ipvs::{
    DaemonSpec, DaemonState, DestSpec, ForwardMethod, ServiceKey, ServiceSpec, Timeouts,
};
use ipvs_conntrack::netlink::emit::MessageBuilder;
use ipvs_conntrack::netlink::frame::flags::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_MULTI};
use ipvs_conntrack::netlink::nfnetlink::{
    message_type, NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_CTNETLINK_EXP,
};

/// A made-up generic netlink family id (the kernel assigns one at boot).
const IPVS_FAMILY: u16 = 0x1c;

fn genl(cmd: u8, body: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
    let mut b = MessageBuilder::new(IPVS_FAMILY, NLM_F_MULTI);
    b.put_raw(&[cmd, 1, 0, 0]);
    body(&mut b);
    b.finish()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap_or_else(|e| panic!("write {name}: {e}"));
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: make_seeds DIR");
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("create seed directory");

    // IPVS replies.
    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
    let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)), 443);
    let svc4 = ServiceSpec::new(ServiceKey::tcp(v4), "rr").persistent(300);
    let svc6 = ServiceSpec::new(ServiceKey::udp(v6), "wlc");
    let fw = ServiceSpec::new(
        ServiceKey::fwmark(ipvs_conntrack::ipvs::AddressFamily::Inet, 7),
        "sh",
    );
    let mut all = Vec::new();
    for (i, s) in [&svc4, &svc6, &fw].into_iter().enumerate() {
        let m = genl(IPVS_CMD_NEW_SERVICE, |b| s.emit_nest(b));
        write(dir, &format!("ipvs-service-{i}.bin"), &m);
        all.extend_from_slice(&m);
    }
    let d4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 8080);
    let d6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)), 8443);
    for (i, (svc, d)) in [(&svc4, d4), (&svc6, d6)].into_iter().enumerate() {
        let dest = DestSpec::new(d, ForwardMethod::Masq)
            .weight(3)
            .thresholds(100, 10);
        let m = genl(IPVS_CMD_NEW_DEST, |b| {
            svc.key.emit_nest(b);
            dest.emit_nest(b);
        });
        write(dir, &format!("ipvs-dest-{i}.bin"), &m);
        all.extend_from_slice(&m);
    }
    let m = genl(IPVS_CMD_NEW_DAEMON, |b| {
        DaemonSpec::new(DaemonState::Master, "eth0", 9).emit_nest(b)
    });
    write(dir, "ipvs-daemon.bin", &m);
    all.extend_from_slice(&m);
    let m = genl(IPVS_CMD_SET_CONFIG, |b| {
        Timeouts {
            tcp: Some(900),
            tcp_fin: Some(120),
            udp: Some(300),
        }
        .emit(b)
    });
    write(dir, "ipvs-config.bin", &m);
    all.extend_from_slice(&m);
    let m = genl(IPVS_CMD_SET_INFO, |b| {
        b.put_ne32(IPVS_INFO_ATTR_VERSION, 0x010201)
            .put_ne32(IPVS_INFO_ATTR_CONN_TAB_SIZE, 4096);
    });
    write(dir, "ipvs-info.bin", &m);
    all.extend_from_slice(&m);
    write(dir, "ipvs-all.bin", &all);

    // /proc/net/ip_vs_conn and ip_vs_conn_sync.
    write(
        dir,
        "ipvs-conn.txt",
        b"Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n\
TCP 0A000102 E1A4 0A000001 0050 0A000302 0050 ESTABLISHED    899\n\
TCP 0A000102 E1A5 0A000001 0050 0A000302 0050 TIME_WAIT       117\n\
UDP 0A000103 D431 0A000001 0035 0A000303 0035 UDP             290\n\
TCP 0A000104 0000 0A000001 0000 0A000302 0000 NONE            355 sip 3132\n\
SCTP FD00:0000:0000:0000:0000:0000:0000:0002 8AE0 FD00:0000:0000:0000:0000:0000:0000:0001 0BB8 0A000202 0BB8 ESTABLISHED    895\n",
    );
    write(
        dir,
        "ipvs-conn-sync.txt",
        b"Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n\
TCP 0A000102 E1A4 0A000001 0050 0A000302 0050 FIN_WAIT    LOCAL        57\n\
UDP 0A000103 D431 0A000001 0035 0A000303 0035 UDP         SYNC        290\n",
    );

    for (name, table, n) in [
        ("ipvs-conn.txt", ipvs_conntrack::ipvs::ConnTable::Conn, 5),
        (
            "ipvs-conn-sync.txt",
            ipvs_conntrack::ipvs::ConnTable::Sync,
            2,
        ),
    ] {
        let text = std::fs::read_to_string(dir.join(name)).expect("read back");
        let conns = ipvs_conntrack::ipvs::conn::parse_table(&text, table)
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        assert_eq!(conns.len(), n, "{name}");
    }

    // An expectation (FTP data connection) and an expectation destroy event.
    let master = Tuple::with_ports(
        IPPROTO_TCP,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        40000,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        21,
    );
    let expected = Tuple::with_ports(
        IPPROTO_TCP,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        0,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        50000,
    );
    let mask = Tuple::with_ports(
        IPPROTO_TCP,
        IpAddr::V4(Ipv4Addr::BROADCAST),
        0,
        IpAddr::V4(Ipv4Addr::BROADCAST),
        0xffff,
    );
    let mut exp_all = Vec::new();
    for (i, msg) in [IPCTNL_MSG_EXP_NEW, IPCTNL_MSG_EXP_DELETE]
        .into_iter()
        .enumerate()
    {
        let mut b = MessageBuilder::new(
            message_type(NFNL_SUBSYS_CTNETLINK_EXP, msg),
            NLM_F_CREATE | NLM_F_EXCL,
        );
        b.put_raw(&[2, 0, 0, 0]);
        master.emit(&mut b, CTA_EXPECT_MASTER);
        expected.emit(&mut b, CTA_EXPECT_TUPLE);
        mask.emit(&mut b, CTA_EXPECT_MASK);
        b.put_be32(CTA_EXPECT_TIMEOUT, 300)
            .put_be32(CTA_EXPECT_ID, 77)
            .put_str(CTA_EXPECT_HELP_NAME, "ftp")
            .put_be16(CTA_EXPECT_ZONE, 0)
            .put_be32(CTA_EXPECT_FLAGS, 0)
            .put_be32(CTA_EXPECT_CLASS, 0);
        let nat = b.begin_nest(CTA_EXPECT_NAT);
        b.put_be32(CTA_EXPECT_NAT_DIR, 1);
        expected.emit(&mut b, CTA_EXPECT_NAT_TUPLE);
        b.end_nest(nat);
        b.put_str(CTA_EXPECT_FN, "nat-follow-master");
        let m = b.finish();
        write(dir, &format!("expect-{i}.bin"), &m);
        exp_all.extend_from_slice(&m);
    }
    write(dir, "expect-all.bin", &exp_all);

    // A conntrack NEW event and a DESTROY event.
    let flow = Tuple::with_ports(
        IPPROTO_UDP,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        5353,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        53,
    );
    let mut ev_all = Vec::new();
    for (i, (msg, flags)) in [
        (IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL),
        (IPCTNL_MSG_CT_NEW, 0),
        (IPCTNL_MSG_CT_DELETE, 0),
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = MessageBuilder::new(message_type(NFNL_SUBSYS_CTNETLINK, msg), flags);
        b.put_raw(&[2, 0, 0, 0]);
        flow.emit(&mut b, CTA_TUPLE_ORIG);
        flow.reversed().emit(&mut b, CTA_TUPLE_REPLY);
        b.put_be32(CTA_STATUS, 0xe)
            .put_be32(CTA_TIMEOUT, 30)
            .put_be32(CTA_ID, 9);
        let ts = b.begin_nest(CTA_TIMESTAMP);
        b.put_be64(CTA_TIMESTAMP_START, 1_700_000_000_000_000_000);
        if msg == IPCTNL_MSG_CT_DELETE {
            b.put_be64(CTA_TIMESTAMP_STOP, 1_700_000_100_000_000_000);
        }
        b.end_nest(ts);
        let m = b.finish();
        write(dir, &format!("event-{i}.bin"), &m);
        ev_all.extend_from_slice(&m);
    }
    write(dir, "event-all.bin", &ev_all);
    check(&all, &exp_all, &ev_all);
    println!("make_seeds: wrote seeds to {}", dir.display());
}

/// Every generated seed decodes: seeds that fail early would only fuzz the error paths.
fn check(ipvs: &[u8], expect: &[u8], events: &[u8]) {
    use ipvs_conntrack::conntrack::events::decode_event;
    use ipvs_conntrack::conntrack::expect::Expectation;
    use ipvs_conntrack::ipvs::{AddressFamily, Message};
    use ipvs_conntrack::netlink::Frames;
    for f in Frames::new(ipvs) {
        let f = f.expect("valid frame");
        if let Err(e) = Message::from_frame(&f, AddressFamily::Inet) {
            panic!("IPVS seed at {} does not decode: {e}", f.offset);
        }
    }
    for f in Frames::new(expect) {
        let f = f.expect("valid frame");
        if let Err(e) = Expectation::from_frame(&f) {
            panic!("expectation seed does not decode: {e}");
        }
    }
    for f in Frames::new(events) {
        let f = f.expect("valid frame");
        if let Err(e) = decode_event(&f, None) {
            panic!("event seed does not decode: {e}");
        }
    }
}

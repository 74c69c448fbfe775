//! The IPVS connection table as the kernel exposes it: `/proc/net/ip_vs_conn` and
//! `/proc/net/ip_vs_conn_sync`, parsed line by line into typed [`Connection`]s.
//!
//! IPVS has no netlink dump of its connections; these files are the only source
//! (ipvsadm -Lc reads them too). Lines look like
//! `TCP 0A000102 E1A4 0A000001 0050 0A000302 0050 TIME_WAIT       117`
//! (IPv4 as 8 hex digits, IPv6 as eight 4-digit groups, ports as 4 hex digits,
//! the seconds to expire last; the sync file adds an origin before them, the main
//! file may add a persistence engine name and data after them).

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::{Error, Result};
use crate::ipvs::addr::Protocol;
use crate::ipvs::timeouts::{Activity, ConnState};
use crate::netns::Netns;

/// Which file of the connection table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnTable {
    /// `/proc/net/ip_vs_conn` (with persistence engine data).
    Conn,
    /// `/proc/net/ip_vs_conn_sync` (with the origin: local or received by sync).
    Sync,
}

impl ConnTable {
    /// The file name under `/proc/net`.
    pub fn file_name(&self) -> &'static str {
        match self {
            ConnTable::Conn => "ip_vs_conn",
            ConnTable::Sync => "ip_vs_conn_sync",
        }
    }
}

/// Where a connection entry came from (the sync file's Origin column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Origin {
    /// Created by this director's own traffic.
    Local,
    /// Received from a master sync daemon.
    Sync,
}

/// One IPVS connection entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Connection {
    /// Protocol (`IP` for firewall-mark persistence templates).
    pub protocol: Protocol,
    /// Client address and port (port 0 in persistence templates).
    pub client: SocketAddr,
    /// Virtual address and port (a template of a firewall-mark service holds the mark as address).
    pub virtual_addr: SocketAddr,
    /// Real server address and port.
    pub dest: SocketAddr,
    /// State.
    pub state: ConnState,
    /// Seconds until the entry expires (unless a packet refreshes it).
    pub expires: u32,
    /// Persistence engine name, if the entry has engine data.
    pub pe_name: Option<String>,
    /// Persistence engine data (e.g. the SIP Call-ID).
    pub pe_data: Option<String>,
    /// Origin (sync file only).
    pub origin: Option<Origin>,
}

impl Connection {
    /// True for persistence templates (state ASSURED, protocol IP, or state NONE with client port 0).
    pub fn is_template(&self) -> bool {
        matches!(self.state, ConnState::Template(_))
            || self.protocol == Protocol::Ip
            || (self.client.port() == 0 && self.state.name() == "NONE")
    }

    /// Which counter of its destination the kernel has this entry in.
    pub fn activity(&self) -> Activity {
        if self.is_template() {
            Activity::Persistent
        } else {
            self.state.activity()
        }
    }
}

/// A line of a connection table that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}: {what} in {text:?}")]
pub struct ConnParseError {
    /// The file name.
    pub file: &'static str,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub what: String,
    /// The line.
    pub text: String,
}

/// Parses one data line (not the header) of `table`.
pub fn parse_line(table: ConnTable, line: &str) -> Result<Connection, String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let min = match table {
        ConnTable::Conn => 9,
        ConnTable::Sync => 10,
    };
    if f.len() < min {
        return Err(format!("{} fields, expected at least {min}", f.len()));
    }
    let field = |i: usize| f.get(i).copied().unwrap_or_default();
    let protocol = Protocol::from_proc_name(field(0))
        .ok_or_else(|| format!("unknown protocol {:?}", field(0)))?;
    let sock = |a: usize| -> Result<SocketAddr, String> {
        Ok(SocketAddr::new(
            parse_addr(field(a))?,
            parse_port(field(a + 1))?,
        ))
    };
    let client = sock(1)?;
    let virtual_addr = sock(3)?;
    let dest = sock(5)?;
    let state = ConnState::parse(protocol, field(7));
    let (origin, expires_at) = match table {
        ConnTable::Conn => (None, 8),
        ConnTable::Sync => {
            let o = match field(8) {
                "LOCAL" => Origin::Local,
                "SYNC" => Origin::Sync,
                other => return Err(format!("unknown origin {other:?}")),
            };
            (Some(o), 9)
        }
    };
    let expires = field(expires_at)
        .parse::<u32>()
        .map_err(|_| format!("bad expiry {:?}", field(expires_at)))?;
    let (pe_name, pe_data) = match (table, f.get(9)) {
        (ConnTable::Conn, Some(name)) => (
            Some((*name).to_owned()),
            Some(f.get(10..).unwrap_or_default().join(" ")),
        ),
        (ConnTable::Sync, Some(_)) if f.len() > 10 => {
            return Err(format!("{} fields, expected 10", f.len()))
        }
        _ => (None, None),
    };
    Ok(Connection {
        protocol,
        client,
        virtual_addr,
        dest,
        state,
        expires,
        pe_name,
        pe_data,
        origin,
    })
}

/// Parses an address as the kernel prints it: 8 hex digits (IPv4) or `%pI6` (IPv6).
fn parse_addr(s: &str) -> Result<IpAddr, String> {
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let v = u32::from_str_radix(s, 16).map_err(|_| format!("bad address {s:?}"))?;
        return Ok(IpAddr::V4(Ipv4Addr::from(v)));
    }
    s.parse::<Ipv6Addr>()
        .map(IpAddr::V6)
        .map_err(|_| format!("bad address {s:?}"))
}

fn parse_port(s: &str) -> Result<u16, String> {
    if s.len() != 4 {
        return Err(format!("bad port {s:?}"));
    }
    u16::from_str_radix(s, 16).map_err(|_| format!("bad port {s:?}"))
}

/// Streams the connections of a table from any reader.
#[derive(Debug)]
pub struct ConnReader<R> {
    reader: R,
    table: ConnTable,
    line: usize,
    buf: String,
    done: bool,
}

impl<R: BufRead> ConnReader<R> {
    /// Reads `table`-formatted text from `reader` (the header line is skipped).
    pub fn new(reader: R, table: ConnTable) -> Self {
        ConnReader {
            reader,
            table,
            line: 0,
            buf: String::new(),
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for ConnReader<R> {
    type Item = Result<Connection>;

    fn next(&mut self) -> Option<Self::Item> {
        // Bounded by the input: every pass consumes one line or ends.
        while !self.done {
            self.buf.clear();
            match self.reader.read_line(&mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(Error::io("read IPVS connection table", e)));
                }
            }
            self.line += 1;
            let text = self.buf.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() || text.starts_with("Pro ") {
                continue;
            }
            return Some(parse_line(self.table, text).map_err(|what| {
                let e = ConnParseError {
                    file: self.table.file_name(),
                    line: self.line,
                    what,
                    text: text.to_owned(),
                };
                Error::Io {
                    op: "parse IPVS connection table",
                    source: io::Error::new(io::ErrorKind::InvalidData, e),
                }
            }));
        }
        None
    }
}

/// Parses a whole table held in memory.
pub fn parse_table(text: &str, table: ConnTable) -> Result<Vec<Connection>> {
    ConnReader::new(text.as_bytes(), table).collect()
}

/// Opens `table` of the network namespace `netns` for streaming.
///
/// The file is opened on a thread inside the namespace (through
/// `/proc/thread-self/net`), so the entries are that namespace's.
pub fn open_table(netns: &Netns, table: ConnTable) -> Result<ConnReader<BufReader<File>>> {
    let name = table.file_name();
    let file = netns.run(|| {
        File::open(format!("/proc/thread-self/net/{name}")).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::Unsupported {
                    feature: "IPVS connection table",
                    detail: format!("/proc/net/{name} does not exist (is ip_vs loaded?)"),
                }
            } else {
                Error::io("open IPVS connection table", e)
            }
        })
    })?;
    Ok(ConnReader::new(
        BufReader::with_capacity(64 * 1024, file),
        table,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::timeouts::TcpState;

    const V4: &str =
        "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n\
TCP 0A000102 E1A4 0A000001 0050 0A000302 0050 TIME_WAIT       117\n\
UDP 0A000102 9C40 0A000001 0035 0A000202 0035 UDP             299\n\
TCP 0A000102 0000 0A000001 0050 0A000202 0050 NONE            359\n\
IP  0A000102 0000 00000007 0000 0A000202 0000 ASSURED         359\n\
UDP 0A000102 13C4 0A000001 13C4 0A000202 13C4 UDP             179 sip abc@host 1\n";

    #[test]
    fn parses_ipv4_lines() {
        let c = parse_table(V4, ConnTable::Conn).unwrap();
        assert_eq!(c.len(), 5);
        assert_eq!(c[0].protocol, Protocol::Tcp);
        assert_eq!(c[0].client, "10.0.1.2:57764".parse().unwrap());
        assert_eq!(c[0].virtual_addr, "10.0.0.1:80".parse().unwrap());
        assert_eq!(c[0].dest, "10.0.3.2:80".parse().unwrap());
        assert_eq!(c[0].state, ConnState::Tcp(TcpState::TimeWait));
        assert_eq!(c[0].expires, 117);
        assert_eq!(c[0].activity(), Activity::Inactive);
        assert_eq!(c[1].state, ConnState::Udp);
        assert_eq!(c[1].virtual_addr.port(), 53);
        assert!(c[2].is_template());
        assert_eq!(c[2].activity(), Activity::Persistent);
        assert_eq!(c[3].protocol, Protocol::Ip);
        assert_eq!(c[3].virtual_addr.ip(), "0.0.0.7".parse::<IpAddr>().unwrap());
        assert!(c[3].is_template());
        assert_eq!(c[4].pe_name.as_deref(), Some("sip"));
        assert_eq!(c[4].pe_data.as_deref(), Some("abc@host 1"));
        assert_eq!(c[0].pe_name, None);
    }

    #[test]
    fn parses_ipv6_and_sync_lines() {
        let text = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n\
SCTP 2001:0db8:0000:0000:0000:0000:0000:0002 8AE0 2001:0db8:0000:0000:0000:0000:0000:0001 0BB8 0A000202 0BB8 ESTABLISHED LOCAL      895\n\
TCP 0A000102 E1A4 0A000001 0050 0A000302 0050 FIN_WAIT    SYNC        12\n";
        let c = parse_table(text, ConnTable::Sync).unwrap();
        assert_eq!(c[0].protocol, Protocol::Sctp);
        assert_eq!(c[0].client, "[2001:db8::2]:35552".parse().unwrap());
        assert_eq!(c[0].virtual_addr, "[2001:db8::1]:3000".parse().unwrap());
        assert_eq!(c[0].dest, "10.0.2.2:3000".parse().unwrap());
        assert_eq!(c[0].origin, Some(Origin::Local));
        assert_eq!(c[0].activity(), Activity::Active);
        assert_eq!(c[1].origin, Some(Origin::Sync));
        assert_eq!(c[1].expires, 12);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let bad = [
            "TCP 0A000102 E1A4 0A000001 0050 0A000302 0050 TIME_WAIT",
            "XYZ 0A000102 E1A4 0A000001 0050 0A000302 0050 TIME_WAIT 1",
            "TCP 0A0001 E1A4 0A000001 0050 0A000302 0050 TIME_WAIT 1",
            "TCP 0A000102 E1A45 0A000001 0050 0A000302 0050 TIME_WAIT 1",
            "TCP 0A000102 E1A4 0A000001 0050 0A000302 0050 TIME_WAIT -1",
        ];
        for line in bad {
            let text = format!("Pro header\n{line}\n");
            let err = parse_table(&text, ConnTable::Conn).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("ip_vs_conn line 2"), "{msg}");
        }
        let err = parse_line(
            ConnTable::Sync,
            "TCP 0A000102 E1A4 0A000001 0050 0A000302 0050 FIN_WAIT ELSEWHERE 3",
        )
        .unwrap_err();
        assert!(err.contains("origin"), "{err}");
    }

    #[test]
    fn every_prefix_of_a_line_parses_or_errors() {
        let line = "TCP 0A000102 E1A4 0A000001 0050 0A000302 0050 TIME_WAIT       117";
        for cut in 0..line.len() {
            // Must never panic; a cut inside the expiry still parses (fewer digits).
            let _ = parse_line(ConnTable::Conn, &line[..cut]);
        }
        assert!(parse_line(ConnTable::Conn, &line[..line.len() - 4]).is_err());
    }
}

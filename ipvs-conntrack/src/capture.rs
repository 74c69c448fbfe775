//! Offline capture and replay: raw netlink datagrams in pcap files of link type
//! LINKTYPE_NETLINK (253) — the format `tcpdump -i nlmon0 -w FILE` writes and
//! Wireshark/tshark read — and their decoding back into typed messages.
//!
//! Every pcap record holds one netlink datagram behind the 16-byte Linux "cooked"
//! header that libpcap puts in front of netlink traffic on an nlmon device (its
//! fields are big-endian):
//!
//! | bytes | field | value |
//! |-------|-------|-------|
//! | 0–1   | packet type | nlmon + tcpdump: 4 (PACKET_OUTGOING) on every record; this module writes 6 (PACKET_USER, "to user space") for datagrams received from the kernel and 7 (PACKET_KERNEL, "to kernel space") for datagrams sent to it |
//! | 2–3   | ARPHRD type | 824 (ARPHRD_NETLINK) |
//! | 4–5   | link-layer address length | 0 |
//! | 6–13  | link-layer address | zeros |
//! | 14–15 | protocol | the netlink protocol (12 NETLINK_NETFILTER, 16 NETLINK_GENERIC) |
//!
//! The netlink messages that follow are in the byte order of the capturing machine
//! (this decoder reads them in the host's order). Where the packet type does not say
//! which way a datagram went (nlmon captures), the first message's `NLM_F_REQUEST`
//! flag does: requests go to the kernel, the kernel never sets it.
//!
//! * [`Capture`] writes a file while a program runs: install it process-wide with
//!   [`Capture::install`] and every [`NlSocket`](crate::socket::NlSocket) opened
//!   afterwards records into it (each datagram is flushed, so the file stays valid
//!   if the process is killed).
//! * [`write_pcap`] / [`read_pcap`] convert between [`Record`]s and file bytes
//!   (classic pcap, or pcapng as Wireshark saves it).
//! * [`decode_pcap`] decodes every message: conntrack entries, expectations,
//!   statistics, timeout policies, errors and acknowledgements, nlctrl family
//!   announcements and IPVS messages (the IPVS family id comes from the capture's
//!   nlctrl answers or from [`DecodeOptions::ipvs_family_id`]). Entries get their
//!   `state_timeout` from the default timeout policies found in the same capture.
//!
//! ```no_run
//! use ipvs_conntrack::capture::{decode_pcap_file, Body, DecodeOptions};
//!
//! let decoded = decode_pcap_file("dump.pcap".as_ref(), &DecodeOptions::default())?;
//! for m in &decoded.messages {
//!     if let Body::Entry(e) = &m.body {
//!         println!("{} {} {:?}s left", e.orig.src, e.state, e.timeout);
//!     }
//! }
//! # Ok::<(), ipvs_conntrack::capture::CaptureError>(())
//! ```

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapParser, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use crate::conntrack::expect::{ExpectCpuStats, Expectation};
use crate::conntrack::timeout::{StateTimeouts, TimeoutPolicy, TimeoutSource};
use crate::conntrack::wire::*;
use crate::conntrack::{CpuStats, Entry, GlobalStats};
use crate::error::{DecodeError, KernelError};
use crate::ipvs::addr::AddressFamily;
use crate::ipvs::message::{Body as IpvsBody, Message as IpvsMessage};
use crate::ipvs::wire::{IPVS_CMD_NAMES, IPVS_GENL_NAME};
use crate::ipvs::{Destination, Info, Service, ServiceKey, SyncDaemon, Timeouts};
use crate::netlink::frame::{flags, msg_type, Control, Frame, Frames, Header, NLMSG_HDRLEN};
use crate::netlink::genl::GENL_ID_CTRL;
use crate::netlink::genl::{FamilyInfo, GenlHeader, CTRL_CMD_GETFAMILY, CTRL_CMD_NEWFAMILY};
use crate::netlink::nfnetlink::{
    split_type, NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_CTNETLINK_EXP, NFNL_SUBSYS_CTNETLINK_TIMEOUT,
};
use crate::socket::{self, Direction, Recorder, RecorderFactory};

/// Link type of netlink captures (LINKTYPE_NETLINK / DLT_NETLINK).
pub const LINKTYPE_NETLINK: u32 = 253;
/// ARPHRD_NETLINK: the hardware type in the cooked header.
pub const ARPHRD_NETLINK: u16 = 824;
/// Packet type PACKET_OUTGOING (what nlmon + tcpdump record for every message).
pub const PACKET_OUTGOING: u16 = 4;
/// Packet type PACKET_USER: a datagram to user space (from the kernel).
pub const PACKET_USER: u16 = 6;
/// Packet type PACKET_KERNEL: a datagram to kernel space (from user space).
pub const PACKET_KERNEL: u16 = 7;
/// Size of the cooked header in front of every datagram.
pub const COOKED_HEADER_LEN: usize = 16;
/// Snapshot length written in the file header (tcpdump's default).
pub const SNAPLEN: u32 = 262_144;
/// netlink protocol number of nfnetlink (NETLINK_NETFILTER).
pub const PROTO_NETFILTER: u16 = 12;
/// netlink protocol number of generic netlink (NETLINK_GENERIC).
pub const PROTO_GENERIC: u16 = 16;

/// Why a capture could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Writing a record failed.
    #[error("writing the capture: {0}")]
    Write(String),
    /// The bytes are neither a pcap nor a pcapng file.
    #[error("not a pcap or pcapng file: {0}")]
    Format(String),
    /// The file (or one of its pcapng interfaces) is not a netlink capture.
    #[error("link type {0} is not LINKTYPE_NETLINK (253): capture netlink on an nlmon device")]
    LinkType(u32),
    /// A record ends early or is damaged.
    #[error("record {record}: {reason}")]
    Record {
        /// 1-based record (frame) number.
        record: usize,
        /// What is wrong.
        reason: String,
    },
}

impl From<PcapError> for CaptureError {
    fn from(e: PcapError) -> Self {
        CaptureError::Format(e.to_string())
    }
}

/// One captured netlink datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// When it was captured, since the Unix epoch.
    pub timestamp: Duration,
    /// Which way it went.
    pub direction: Direction,
    /// Netlink protocol of the socket (12 = NETLINK_NETFILTER, 16 = NETLINK_GENERIC).
    pub protocol: u16,
    /// The datagram: one or more netlink messages.
    pub data: Vec<u8>,
    /// Its length before the capture cut it (equal to `data.len()` unless truncated).
    pub orig_len: u32,
}

impl Record {
    /// A record of `data` captured now.
    pub fn now(direction: Direction, protocol: u16, data: &[u8]) -> Record {
        Record {
            timestamp: now(),
            direction,
            protocol,
            data: data.to_vec(),
            orig_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
        }
    }

    /// True if the capture cut the datagram short.
    pub fn truncated(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.orig_len)
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The cooked header for a datagram of `protocol` going `direction`.
fn cooked_header(direction: Direction, protocol: u16) -> [u8; COOKED_HEADER_LEN] {
    let pkttype = match direction {
        Direction::Received => PACKET_USER,
        Direction::Sent => PACKET_KERNEL,
    };
    let mut h = [0u8; COOKED_HEADER_LEN];
    h[0..2].copy_from_slice(&pkttype.to_be_bytes());
    h[2..4].copy_from_slice(&ARPHRD_NETLINK.to_be_bytes());
    h[14..16].copy_from_slice(&protocol.to_be_bytes());
    h
}

/// Writes records to a pcap stream, one after the other.
pub struct PcapSink<W: Write> {
    writer: PcapWriter<W>,
    records: u64,
    scratch: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for PcapSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapSink")
            .field("records", &self.records)
            .finish()
    }
}

impl<W: Write> PcapSink<W> {
    /// Writes the file header (LINKTYPE_NETLINK, nanosecond timestamps, host byte order).
    pub fn new(w: W) -> Result<Self, CaptureError> {
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::NETLINK,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(w, header).map_err(write_err)?;
        Ok(PcapSink {
            writer,
            records: 0,
            scratch: Vec::new(),
        })
    }

    /// Appends one datagram (cut to the snapshot length if longer).
    pub fn write_datagram(
        &mut self,
        timestamp: Duration,
        direction: Direction,
        protocol: u16,
        data: &[u8],
    ) -> Result<(), CaptureError> {
        let orig = u32::try_from(data.len().saturating_add(COOKED_HEADER_LEN)).unwrap_or(u32::MAX);
        self.write_with_orig(timestamp, direction, protocol, data, orig)
    }

    fn write_with_orig(
        &mut self,
        timestamp: Duration,
        direction: Direction,
        protocol: u16,
        data: &[u8],
        orig_len: u32,
    ) -> Result<(), CaptureError> {
        let keep = data.len().min(SNAPLEN as usize - COOKED_HEADER_LEN);
        self.scratch.clear();
        self.scratch
            .extend_from_slice(&cooked_header(direction, protocol));
        self.scratch
            .extend_from_slice(data.get(..keep).unwrap_or_default());
        let incl = u32::try_from(self.scratch.len()).unwrap_or(u32::MAX);
        let packet = PcapPacket::new(timestamp, orig_len.max(incl), &self.scratch);
        self.writer.write_packet(&packet).map_err(write_err)?;
        self.records += 1;
        Ok(())
    }

    /// Appends a record.
    pub fn write(&mut self, r: &Record) -> Result<(), CaptureError> {
        let orig =
            u32::try_from(u64::from(r.orig_len) + COOKED_HEADER_LEN as u64).unwrap_or(u32::MAX);
        self.write_with_orig(r.timestamp, r.direction, r.protocol, &r.data, orig)
    }

    /// Number of records written.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Gives the writer back.
    pub fn into_inner(self) -> W {
        self.writer.into_writer()
    }
}

fn write_err(e: PcapError) -> CaptureError {
    CaptureError::Write(e.to_string())
}

/// Writes `records` as a pcap file to `w` and returns `w`.
pub fn write_pcap<W: Write>(w: W, records: &[Record]) -> Result<W, CaptureError> {
    let mut sink = PcapSink::new(w)?;
    for r in records {
        sink.write(r)?;
    }
    Ok(sink.into_inner())
}

/// The file is written without a user-space buffer: every record is in the file once
/// `write` returns, so a capture stays readable if the program is killed.
struct Shared {
    sink: PcapSink<File>,
    error: Option<CaptureError>,
}

impl Shared {
    fn record(&mut self, direction: Direction, protocol: u16, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.sink.write_datagram(now(), direction, protocol, data) {
            self.error = Some(e);
        }
    }
}

/// A pcap file being written while a program talks netlink.
#[derive(Clone)]
pub struct Capture {
    shared: Arc<Mutex<Shared>>,
    path: PathBuf,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").field("path", &self.path).finish()
    }
}

impl Capture {
    /// Creates (or truncates) `path` and writes the pcap file header.
    pub fn create(path: &Path) -> Result<Capture, CaptureError> {
        let io_err = |source| CaptureError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::create(path).map_err(io_err)?;
        let sink = PcapSink::new(file)?;
        Ok(Capture {
            shared: Arc::new(Mutex::new(Shared { sink, error: None })),
            path: path.to_owned(),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A recorder for one socket of netlink `protocol` (see [`NlSocket::set_recorder`](crate::socket::NlSocket::set_recorder)).
    pub fn recorder(&self, protocol: isize) -> Recorder {
        let shared = Arc::clone(&self.shared);
        let protocol = u16::try_from(protocol).unwrap_or(u16::MAX);
        Box::new(move |direction, data| {
            shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(direction, protocol, data);
        })
    }

    /// Makes every socket opened from now on record into this capture (until [`Capture::finish`]).
    pub fn install(&self) {
        let me = self.clone();
        let factory: RecorderFactory = Arc::new(move |protocol| me.recorder(protocol));
        socket::set_global_recorder(Some(factory));
    }

    /// Number of datagrams recorded so far.
    pub fn records(&self) -> u64 {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sink
            .records()
    }

    /// Stops recording new sockets and returns the number of datagrams written, or the
    /// first write error. Sockets opened before keep recording while they live.
    pub fn finish(self) -> Result<u64, CaptureError> {
        socket::set_global_recorder(None);
        let mut s = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        match s.error.take() {
            Some(e) => Err(e),
            None => Ok(s.sink.records()),
        }
    }
}

/// pcapng section header magic (block type 0x0A0D0D0A reads the same in both byte orders).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Reads the records of a pcap or pcapng netlink capture held in memory.
pub fn read_pcap(bytes: &[u8]) -> Result<Vec<Record>, CaptureError> {
    if bytes.get(..4) == Some(&PCAPNG_MAGIC[..]) {
        read_pcapng(bytes)
    } else {
        read_classic(bytes)
    }
}

/// Reads the records of a pcap or pcapng netlink capture file.
pub fn read_pcap_file(path: &Path) -> Result<Vec<Record>, CaptureError> {
    let bytes = std::fs::read(path).map_err(|source| CaptureError::Io {
        path: path.to_owned(),
        source,
    })?;
    read_pcap(&bytes)
}

fn read_classic(bytes: &[u8]) -> Result<Vec<Record>, CaptureError> {
    let (mut rest, parser) = match PcapParser::new(bytes) {
        Ok(x) => x,
        Err(PcapError::IncompleteBuffer) => {
            return Err(CaptureError::Format("shorter than a pcap header".into()))
        }
        Err(e) => return Err(e.into()),
    };
    let header = parser.header();
    let link = u32::from(header.datalink);
    if link != LINKTYPE_NETLINK {
        return Err(CaptureError::LinkType(link));
    }
    let mut out = Vec::new();
    // Bounded: every turn consumes at least the 16-byte record header.
    while !rest.is_empty() {
        let n = out.len() + 1;
        let (next, raw) = parser
            .next_raw_packet(rest)
            .map_err(|e| CaptureError::Record {
                record: n,
                reason: match e {
                    PcapError::IncompleteBuffer => "the file ends inside this record".into(),
                    e => e.to_string(),
                },
            })?;
        rest = next;
        let nanos = match header.ts_resolution {
            TsResolution::MicroSecond => u64::from(raw.ts_frac).saturating_mul(1000),
            TsResolution::NanoSecond => u64::from(raw.ts_frac),
        };
        let ts =
            Duration::from_secs(u64::from(raw.ts_sec)).saturating_add(Duration::from_nanos(nanos));
        out.push(record_from(n, ts, &raw.data, raw.orig_len)?);
    }
    Ok(out)
}

fn read_pcapng(bytes: &[u8]) -> Result<Vec<Record>, CaptureError> {
    let (mut rest, mut parser) = PcapNgParser::new(bytes)?;
    let mut out = Vec::new();
    let mut frame = 0usize;
    // Bounded: every turn consumes at least one block header.
    while !rest.is_empty() {
        let (next, block) = parser.next_block(rest).map_err(|e| CaptureError::Record {
            record: frame + 1,
            reason: match e {
                PcapError::IncompleteBuffer => "the file ends inside a block".into(),
                e => e.to_string(),
            },
        })?;
        rest = next;
        let (iface, ts, data, orig) = match block {
            Block::EnhancedPacket(p) => (p.interface_id, p.timestamp, p.data, p.original_len),
            Block::SimplePacket(p) => (0, Duration::ZERO, p.data, p.original_len),
            Block::Packet(p) => (
                u32::from(p.interface_id),
                Duration::from_nanos(p.timestamp),
                p.data,
                p.original_len,
            ),
            _ => continue,
        };
        frame += 1;
        let iface_desc = parser.interfaces().get(iface as usize);
        let link = iface_desc.map(|i| u32::from(i.linktype));
        let ts = pcapng_time(ts, iface_desc.and_then(ts_resolution));
        match link {
            Some(LINKTYPE_NETLINK) => out.push(record_from(frame, ts, &data, orig)?),
            Some(other) if out.is_empty() && frame == 1 => {
                return Err(CaptureError::LinkType(other))
            }
            // Packets of other interfaces in a multi-interface capture are skipped.
            Some(_) => {}
            None => {
                return Err(CaptureError::Record {
                    record: frame,
                    reason: format!("packet of undeclared interface {iface}"),
                })
            }
        }
    }
    Ok(out)
}

/// The `if_tsresol` option of an interface, if it has one.
fn ts_resolution(
    i: &pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock<'_>,
) -> Option<u8> {
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    i.options.iter().find_map(|o| match o {
        InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
        _ => None,
    })
}

/// The time of a pcapng packet. pcap-file hands the raw 64-bit timestamp over as if it
/// counted nanoseconds; it counts units of the interface's `if_tsresol` (10^-6 s when
/// absent; 10^-n, or 2^-n when the top bit is set).
fn pcapng_time(raw: Duration, tsresol: Option<u8>) -> Duration {
    let units = raw.as_nanos();
    let r = tsresol.unwrap_or(6);
    let nanos = if r & 0x80 == 0 {
        let r = u32::from(r);
        if r <= 9 {
            10u128.checked_pow(9 - r).and_then(|m| units.checked_mul(m))
        } else {
            Some(10u128.checked_pow(r - 9).map_or(0, |d| units / d))
        }
    } else {
        let p = u32::from(r & 0x7f);
        units
            .checked_mul(1_000_000_000)
            .map(|n| 2u128.checked_pow(p).map_or(0, |d| n / d))
    };
    Duration::from_nanos(nanos.map_or(u64::MAX, |n| u64::try_from(n).unwrap_or(u64::MAX)))
}

/// Builds a record from one captured packet: cooked header, then the datagram.
fn record_from(
    n: usize,
    timestamp: Duration,
    packet: &[u8],
    orig_len: u32,
) -> Result<Record, CaptureError> {
    let bad = |reason: String| CaptureError::Record { record: n, reason };
    let (head, data) = match (
        packet.get(..COOKED_HEADER_LEN),
        packet.get(COOKED_HEADER_LEN..),
    ) {
        (Some(h), Some(d)) => (h, d),
        _ => {
            return Err(bad(format!(
                "{} bytes, shorter than the {COOKED_HEADER_LEN}-byte cooked header",
                packet.len()
            )))
        }
    };
    let be16 = |i: usize| u16::from_be_bytes([head[i], head[i + 1]]);
    let (pkttype, hatype, protocol) = (be16(0), be16(2), be16(14));
    if hatype != ARPHRD_NETLINK {
        return Err(bad(format!(
            "hardware type {hatype} in the cooked header is not ARPHRD_NETLINK ({ARPHRD_NETLINK})"
        )));
    }
    let direction = match pkttype {
        PACKET_USER => Direction::Received,
        PACKET_KERNEL => Direction::Sent,
        _ => direction_from_flags(data),
    };
    Ok(Record {
        timestamp,
        direction,
        protocol,
        data: data.to_vec(),
        orig_len: orig_len.saturating_sub(COOKED_HEADER_LEN as u32),
    })
}

/// The direction of a datagram by its first message: requests carry NLM_F_REQUEST.
fn direction_from_flags(data: &[u8]) -> Direction {
    match data.get(6..8) {
        Some(&[a, b]) if u16::from_ne_bytes([a, b]) & flags::NLM_F_REQUEST != 0 => Direction::Sent,
        _ => Direction::Received,
    }
}

/// How to decode a capture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The generic netlink family id of IPVS; `None` takes it from the capture's nlctrl answers.
    pub ipvs_family_id: Option<u16>,
}

/// What one netlink message of a capture is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Body {
    /// A conntrack entry (dump or get answer, or an event).
    Entry(Entry),
    /// An expectation.
    Expectation(Expectation),
    /// Table size (IPCTNL_MSG_CT_GET_STATS answer).
    Stats(GlobalStats),
    /// Per-CPU conntrack counters.
    CpuStats(CpuStats),
    /// Per-CPU expectation counters.
    ExpectCpuStats(ExpectCpuStats),
    /// A timeout policy (cttimeout answer).
    TimeoutPolicy(TimeoutPolicy),
    /// A generic netlink family announced by nlctrl.
    Family(FamilyInfo),
    /// An IPVS virtual service.
    IpvsService(Service),
    /// An IPVS destination, with its service when the message names it.
    IpvsDest(Option<ServiceKey>, Destination),
    /// An IPVS sync daemon.
    IpvsDaemon(SyncDaemon),
    /// The IPVS timeouts.
    IpvsConfig(Timeouts),
    /// The IPVS version and connection table size.
    IpvsInfo(Info),
    /// An acknowledgement (NLMSG_ERROR with error 0).
    Ack,
    /// The end of a dump (NLMSG_DONE).
    Done,
    /// An error from the kernel (NLMSG_ERROR, or a failed NLMSG_DONE).
    Error(KernelError),
    /// NLMSG_NOOP.
    Noop,
    /// NLMSG_OVERRUN.
    Overrun,
    /// A request from user space (its name says what it asks for).
    Request,
    /// A message of a family or type this decoder does not interpret.
    Other,
    /// A message that does not decode.
    Invalid(DecodeError),
}

/// One decoded netlink message of a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedMessage {
    /// 1-based number of its pcap record (Wireshark's frame number).
    pub frame: usize,
    /// When its datagram was captured, since the Unix epoch.
    pub timestamp: Duration,
    /// Which way it went.
    pub direction: Direction,
    /// Netlink protocol (12 = NETLINK_NETFILTER, 16 = NETLINK_GENERIC).
    pub protocol: u16,
    /// Its netlink header.
    pub header: Header,
    /// Kernel name of its type (`IPCTNL_MSG_CT_NEW`, `NLMSG_DONE`, `IPVS_CMD_NEW_SERVICE`, …).
    pub name: Cow<'static, str>,
    /// What it carries.
    pub body: Body,
}

/// A decoded capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Every message, in capture order.
    pub messages: Vec<DecodedMessage>,
    /// Number of pcap records.
    pub records: usize,
    /// The IPVS family id used (given, or found in the capture).
    pub ipvs_family_id: Option<u16>,
    /// The default state timeouts found in the capture's cttimeout answers (joined into entries).
    pub timeouts: Option<StateTimeouts>,
}

impl Decoded {
    /// The conntrack entries, in capture order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.messages.iter().filter_map(|m| match &m.body {
            Body::Entry(e) => Some(e),
            _ => None,
        })
    }
}

/// Decodes a pcap or pcapng netlink capture held in memory.
pub fn decode_pcap(bytes: &[u8], opts: &DecodeOptions) -> Result<Decoded, CaptureError> {
    Ok(decode_records(&read_pcap(bytes)?, opts))
}

/// Decodes a pcap or pcapng netlink capture file.
pub fn decode_pcap_file(path: &Path, opts: &DecodeOptions) -> Result<Decoded, CaptureError> {
    Ok(decode_records(&read_pcap_file(path)?, opts))
}

/// Decodes every message of `records`.
pub fn decode_records(records: &[Record], opts: &DecodeOptions) -> Decoded {
    // First pass: the IPVS family id and the default timeout policies.
    let mut ipvs = opts.ipvs_family_id;
    let mut timeouts: Option<StateTimeouts> = None;
    for r in records
        .iter()
        .filter(|r| r.direction == Direction::Received)
    {
        for frame in Frames::new(&r.data).map_while(Result::ok) {
            let ty = frame.header.message_type;
            if r.protocol == PROTO_GENERIC && ty == GENL_ID_CTRL && ipvs.is_none() {
                if let Ok(f) = FamilyInfo::from_frame(&frame) {
                    if f.name == IPVS_GENL_NAME {
                        ipvs = Some(f.id);
                    }
                }
            } else if r.protocol == PROTO_NETFILTER
                && split_type(ty).0 == NFNL_SUBSYS_CTNETLINK_TIMEOUT
            {
                if let Ok(p) = TimeoutPolicy::from_frame(&frame) {
                    if p.name.is_none() {
                        timeouts
                            .get_or_insert_with(|| StateTimeouts::empty(TimeoutSource::Cttimeout))
                            .set(&p.timeouts);
                    }
                }
            }
        }
    }
    let mut messages = Vec::new();
    for (i, r) in records.iter().enumerate() {
        for frame in Frames::new(&r.data) {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    messages.push(DecodedMessage {
                        frame: i + 1,
                        timestamp: r.timestamp,
                        direction: r.direction,
                        protocol: r.protocol,
                        header: broken_header(&r.data, e.offset),
                        name: Cow::Borrowed("INVALID"),
                        body: Body::Invalid(e),
                    });
                    break;
                }
            };
            let (name, mut body) = decode_frame(r, &frame, ipvs);
            if let Body::Entry(e) = &mut body {
                if let Some(t) = &timeouts {
                    e.state_timeout = t.for_state(e.orig.proto, e.state);
                }
            }
            messages.push(DecodedMessage {
                frame: i + 1,
                timestamp: r.timestamp,
                direction: r.direction,
                protocol: r.protocol,
                header: frame.header,
                name,
                body,
            });
        }
    }
    Decoded {
        messages,
        records: records.len(),
        ipvs_family_id: ipvs,
        timeouts,
    }
}

/// The header fields that can be read at `offset` of a datagram whose framing is broken.
fn broken_header(data: &[u8], offset: usize) -> Header {
    let at = |i: usize, n: usize| data.get(offset + i..offset + i + n).unwrap_or_default();
    let u32_at = |i| at(i, 4).try_into().map(u32::from_ne_bytes).unwrap_or(0);
    let u16_at = |i| at(i, 2).try_into().map(u16::from_ne_bytes).unwrap_or(0);
    Header {
        length: u32_at(0),
        message_type: u16_at(4),
        flags: u16_at(6),
        sequence: u32_at(8),
        port: u32_at(12),
    }
}

/// Request name used in the errors of captured answers.
const CAPTURED: &str = "captured request";

fn decode_frame(r: &Record, frame: &Frame<'_>, ipvs: Option<u16>) -> (Cow<'static, str>, Body) {
    let ty = frame.header.message_type;
    if ty < msg_type::NLMSG_OVERRUN + 12 {
        // Types below 16 are netlink control messages (NLMSG_MIN_TYPE is 0x10).
        let name = match ty {
            msg_type::NLMSG_NOOP => "NLMSG_NOOP",
            msg_type::NLMSG_ERROR => "NLMSG_ERROR",
            msg_type::NLMSG_DONE => "NLMSG_DONE",
            msg_type::NLMSG_OVERRUN => "NLMSG_OVERRUN",
            _ => "NLMSG_RESERVED",
        };
        let body = match frame.control(CAPTURED) {
            Ok(Control::Ack) => Body::Ack,
            Ok(Control::Done(None)) => Body::Done,
            Ok(Control::Done(Some(e))) | Ok(Control::Error(e)) => Body::Error(e),
            Ok(Control::Noop) => Body::Noop,
            Ok(Control::Overrun) => Body::Overrun,
            Ok(Control::Data) => Body::Other,
            Err(e) => Body::Invalid(e),
        };
        return (Cow::Borrowed(name), body);
    }
    let sent = r.direction == Direction::Sent;
    match r.protocol {
        PROTO_NETFILTER => decode_nfnetlink(frame, sent),
        PROTO_GENERIC if ty == GENL_ID_CTRL => {
            let cmd = GenlHeader::parse(frame.payload, frame.offset + NLMSG_HDRLEN).map(|h| h.cmd);
            let name = match cmd {
                Ok(CTRL_CMD_NEWFAMILY) => "CTRL_CMD_NEWFAMILY",
                Ok(CTRL_CMD_GETFAMILY) => "CTRL_CMD_GETFAMILY",
                _ => "CTRL_CMD",
            };
            let body = match cmd {
                Err(e) => Body::Invalid(e),
                Ok(_) if sent => Body::Request,
                Ok(CTRL_CMD_NEWFAMILY) => {
                    FamilyInfo::from_frame(frame).map_or_else(Body::Invalid, Body::Family)
                }
                Ok(_) => Body::Other,
            };
            (Cow::Borrowed(name), body)
        }
        PROTO_GENERIC if Some(ty) == ipvs => decode_ipvs(frame, sent),
        _ => (
            Cow::Owned(format!("type {ty:#06x}")),
            if sent { Body::Request } else { Body::Other },
        ),
    }
}

fn decode_ipvs(frame: &Frame<'_>, sent: bool) -> (Cow<'static, str>, Body) {
    let cmd = match GenlHeader::parse(frame.payload, frame.offset + NLMSG_HDRLEN) {
        Ok(h) => h.cmd,
        Err(e) => return (Cow::Borrowed("IPVS"), Body::Invalid(e)),
    };
    let name = IPVS_CMD_NAMES.get(usize::from(cmd)).map_or_else(
        || Cow::Owned(format!("IPVS_CMD_{cmd}")),
        |n| Cow::Borrowed(*n),
    );
    if sent {
        return (name, Body::Request);
    }
    let body = match IpvsMessage::from_frame(frame, AddressFamily::Inet) {
        Err(e) => Body::Invalid(e),
        Ok(m) => match m.body {
            IpvsBody::Service(s) => Body::IpvsService(s),
            IpvsBody::Dest(k, d) => Body::IpvsDest(k, d),
            IpvsBody::Daemon(d) => Body::IpvsDaemon(d),
            IpvsBody::Config(t) => Body::IpvsConfig(t),
            IpvsBody::Info(i) => Body::IpvsInfo(i),
            IpvsBody::Other => Body::Other,
        },
    };
    (name, body)
}

fn decode_nfnetlink(frame: &Frame<'_>, sent: bool) -> (Cow<'static, str>, Body) {
    let (subsys, msg) = split_type(frame.header.message_type);
    let name = nfnetlink_name(subsys, msg).map_or_else(
        || Cow::Owned(format!("NFNL subsystem {subsys} message {msg}")),
        Cow::Borrowed,
    );
    if sent {
        return (name, Body::Request);
    }
    let body = match (subsys, msg) {
        (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW | IPCTNL_MSG_CT_DELETE) => {
            Entry::from_frame(frame).map_or_else(Body::Invalid, Body::Entry)
        }
        (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS) => {
            GlobalStats::from_frame(frame).map_or_else(Body::Invalid, Body::Stats)
        }
        (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS_CPU) => {
            CpuStats::from_frame(frame).map_or_else(Body::Invalid, Body::CpuStats)
        }
        (NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_NEW | IPCTNL_MSG_EXP_DELETE) => {
            Expectation::from_frame(frame).map_or_else(Body::Invalid, Body::Expectation)
        }
        (NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_GET_STATS_CPU) => {
            ExpectCpuStats::from_frame(frame).map_or_else(Body::Invalid, Body::ExpectCpuStats)
        }
        (NFNL_SUBSYS_CTNETLINK_TIMEOUT, _) => {
            TimeoutPolicy::from_frame(frame).map_or_else(Body::Invalid, Body::TimeoutPolicy)
        }
        _ => Body::Other,
    };
    (name, body)
}

/// Kernel name of an nfnetlink message of the conntrack subsystems.
fn nfnetlink_name(subsys: u8, msg: u8) -> Option<&'static str> {
    let names: &[&'static str] = match subsys {
        NFNL_SUBSYS_CTNETLINK => &[
            "IPCTNL_MSG_CT_NEW",
            "IPCTNL_MSG_CT_GET",
            "IPCTNL_MSG_CT_DELETE",
            "IPCTNL_MSG_CT_GET_CTRZERO",
            "IPCTNL_MSG_CT_GET_STATS_CPU",
            "IPCTNL_MSG_CT_GET_STATS",
            "IPCTNL_MSG_CT_GET_DYING",
            "IPCTNL_MSG_CT_GET_UNCONFIRMED",
        ],
        NFNL_SUBSYS_CTNETLINK_EXP => &[
            "IPCTNL_MSG_EXP_NEW",
            "IPCTNL_MSG_EXP_GET",
            "IPCTNL_MSG_EXP_DELETE",
            "IPCTNL_MSG_EXP_GET_STATS_CPU",
        ],
        NFNL_SUBSYS_CTNETLINK_TIMEOUT => &[
            "IPCTNL_MSG_TIMEOUT_NEW",
            "IPCTNL_MSG_TIMEOUT_GET",
            "IPCTNL_MSG_TIMEOUT_DELETE",
            "IPCTNL_MSG_TIMEOUT_DEFAULT_SET",
            "IPCTNL_MSG_TIMEOUT_DEFAULT_GET",
        ],
        _ => &[],
    };
    names.get(usize::from(msg)).copied()
}

/// Name of a direction (`sent` / `received`).
pub fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Sent => "sent",
        Direction::Received => "received",
    }
}

#[cfg(feature = "serde")]
mod json {
    //! JSON form of decoded messages: header fields, `kind`, and the body under the kind's name.

    use super::*;
    use serde::ser::{SerializeMap, Serializer};
    use serde::Serialize;

    impl Serialize for DecodedMessage {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(None)?;
            m.serialize_entry("frame", &self.frame)?;
            m.serialize_entry("time", &self.timestamp.as_secs_f64())?;
            m.serialize_entry("direction", direction_name(self.direction))?;
            m.serialize_entry("protocol", &self.protocol)?;
            m.serialize_entry("message", &self.name)?;
            m.serialize_entry("type", &self.header.message_type)?;
            m.serialize_entry("flags", &self.header.flags)?;
            m.serialize_entry("seq", &self.header.sequence)?;
            m.serialize_entry("port", &self.header.port)?;
            m.serialize_entry("kind", self.body.kind())?;
            macro_rules! value {
                ($v:expr) => {
                    m.serialize_entry(self.body.kind(), $v)?
                };
            }
            match &self.body {
                Body::Entry(v) => value!(v),
                Body::Expectation(v) => value!(v),
                Body::Stats(v) => value!(v),
                Body::CpuStats(v) => value!(v),
                Body::ExpectCpuStats(v) => value!(v),
                Body::TimeoutPolicy(v) => value!(v),
                Body::Family(v) => value!(v),
                Body::IpvsService(v) => value!(v),
                Body::IpvsDest(k, v) => {
                    value!(v);
                    m.serialize_entry("ipvs_service_key", k)?;
                }
                Body::IpvsDaemon(v) => value!(v),
                Body::IpvsConfig(v) => value!(v),
                Body::IpvsInfo(v) => value!(v),
                Body::Error(e) => {
                    m.serialize_entry("errno", &e.errno)?;
                    m.serialize_entry("error", &e.to_string())?;
                }
                Body::Invalid(e) => m.serialize_entry("error", &e.to_string())?,
                Body::Ack
                | Body::Done
                | Body::Noop
                | Body::Overrun
                | Body::Request
                | Body::Other => {}
            }
            m.end()
        }
    }
}

impl Body {
    /// Short name of the variant (`entry`, `ack`, `ipvs_service`, …), also the JSON `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Entry(_) => "entry",
            Body::Expectation(_) => "expectation",
            Body::Stats(_) => "stats",
            Body::CpuStats(_) => "cpu_stats",
            Body::ExpectCpuStats(_) => "expect_cpu_stats",
            Body::TimeoutPolicy(_) => "timeout_policy",
            Body::Family(_) => "family",
            Body::IpvsService(_) => "ipvs_service",
            Body::IpvsDest(..) => "ipvs_dest",
            Body::IpvsDaemon(_) => "ipvs_daemon",
            Body::IpvsConfig(_) => "ipvs_config",
            Body::IpvsInfo(_) => "ipvs_info",
            Body::Ack => "ack",
            Body::Done => "done",
            Body::Error(_) => "error",
            Body::Noop => "noop",
            Body::Overrun => "overrun",
            Body::Request => "request",
            Body::Other => "other",
            Body::Invalid(_) => "invalid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::wire::{CTA_STATS_GLOBAL_ENTRIES, CTA_STATS_GLOBAL_MAX_ENTRIES};
    use crate::netlink::emit::MessageBuilder;
    use crate::netlink::frame::flags::{NLM_F_ACK, NLM_F_REQUEST};
    use crate::netlink::nfnetlink::{message_type, NfGenMsg};

    /// A stats request and the kernel's answer (stats message + ACK in one datagram).
    fn records() -> Vec<Record> {
        let gen = NfGenMsg {
            family: 0,
            version: 0,
            res_id: 0,
        }
        .to_bytes();
        let ty = message_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS);
        let mut req = MessageBuilder::new(ty, NLM_F_REQUEST | NLM_F_ACK);
        req.put_raw(&gen);
        let req = req.finish();
        let mut ans = MessageBuilder::new(ty, 0);
        ans.put_raw(&gen)
            .put_be32(CTA_STATS_GLOBAL_ENTRIES, 7)
            .put_be32(CTA_STATS_GLOBAL_MAX_ENTRIES, 65_536);
        let mut data = ans.finish();
        // NLMSG_ERROR 0 (ACK) echoing the request header.
        let mut ack = Vec::new();
        ack.extend_from_slice(&36u32.to_ne_bytes());
        ack.extend_from_slice(&msg_type::NLMSG_ERROR.to_ne_bytes());
        ack.extend_from_slice(&flags::NLM_F_CAPPED.to_ne_bytes());
        ack.extend_from_slice(&[0; 8]);
        ack.extend_from_slice(&0i32.to_ne_bytes());
        ack.extend_from_slice(req.get(..16).unwrap());
        data.extend_from_slice(&ack);
        vec![
            Record {
                timestamp: Duration::new(1_700_000_000, 123_456_789),
                direction: Direction::Sent,
                protocol: PROTO_NETFILTER,
                orig_len: req.len() as u32,
                data: req,
            },
            Record {
                timestamp: Duration::new(1_700_000_000, 223_456_789),
                direction: Direction::Received,
                protocol: PROTO_NETFILTER,
                orig_len: data.len() as u32,
                data,
            },
        ]
    }

    fn file() -> Vec<u8> {
        write_pcap(Vec::new(), &records()).unwrap()
    }

    #[test]
    fn records_round_trip_through_a_pcap_file() {
        let bytes = file();
        // LINKTYPE_NETLINK in the file header, nanosecond magic in host order.
        assert_eq!(bytes.get(20..24).unwrap(), &LINKTYPE_NETLINK.to_ne_bytes());
        assert_eq!(bytes.get(..4).unwrap(), &0xa1b2_3c4du32.to_ne_bytes());
        // The first record's cooked header: PACKET_KERNEL, ARPHRD_NETLINK, protocol 12.
        let cooked = bytes.get(24 + 16..24 + 32).unwrap();
        assert_eq!(
            cooked,
            &[0, 7, 3, 0x38, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12]
        );
        assert_eq!(read_pcap(&bytes).unwrap(), records());
    }

    #[test]
    fn decoding_names_and_types_every_message() {
        let d = decode_pcap(&file(), &DecodeOptions::default()).unwrap();
        assert_eq!(d.records, 2);
        let summary: Vec<_> = d
            .messages
            .iter()
            .map(|m| (m.frame, m.direction, m.name.as_ref(), m.body.kind()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (1, Direction::Sent, "IPCTNL_MSG_CT_GET_STATS", "request"),
                (2, Direction::Received, "IPCTNL_MSG_CT_GET_STATS", "stats"),
                (2, Direction::Received, "NLMSG_ERROR", "ack"),
            ]
        );
        let Body::Stats(s) = &d.messages[1].body else {
            panic!("not stats")
        };
        assert_eq!((s.entries, s.max_entries), (7, Some(65_536)));
    }

    #[test]
    fn direction_comes_from_the_flags_when_the_packet_type_is_outgoing() {
        let mut bytes = file();
        // Make both records look like nlmon + tcpdump wrote them (packet type 4).
        let first = 24 + 16;
        let second = first + 16 + records()[0].data.len();
        for at in [first, second] {
            bytes[at..at + 2].copy_from_slice(&PACKET_OUTGOING.to_be_bytes());
        }
        let r = read_pcap(&bytes).unwrap();
        assert_eq!(r[0].direction, Direction::Sent);
        assert_eq!(r[1].direction, Direction::Received);
    }

    #[test]
    fn other_link_types_and_garbage_are_typed_errors() {
        let mut bytes = file();
        bytes[20..24].copy_from_slice(&1u32.to_ne_bytes());
        assert!(matches!(read_pcap(&bytes), Err(CaptureError::LinkType(1))));
        assert!(matches!(read_pcap(b"hello"), Err(CaptureError::Format(_))));
        assert!(matches!(
            read_pcap(&[0u8; 64]),
            Err(CaptureError::Format(_))
        ));
        let bytes = file();
        let cut = bytes.len() - 3;
        match read_pcap(&bytes[..cut]) {
            Err(CaptureError::Record { record: 2, reason }) => {
                assert!(reason.contains("ends inside"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_and_mutated_files_never_panic() {
        let bytes = file();
        for cut in 0..bytes.len() {
            let _ = decode_pcap(&bytes[..cut], &DecodeOptions::default());
        }
        // Deterministic byte mutations (xorshift), also inside the netlink messages.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let mut m = bytes.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % m.len();
                m[i] = (x >> 32) as u8;
            }
            let _ = decode_pcap(&m, &DecodeOptions::default());
        }
    }

    /// The records as a pcapng file (as Wireshark saves captures), written with pcap-file.
    fn pcapng_file() -> Vec<u8> {
        use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
        use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
        use pcap_file::pcapng::PcapNgWriter;
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
        let mut idb = InterfaceDescriptionBlock::new(DataLink::NETLINK, SNAPLEN);
        // pcap-file writes the timestamps in nanoseconds: say so.
        idb.options.push(InterfaceDescriptionOption::IfTsResol(9));
        w.write_pcapng_block(idb).unwrap();
        for r in records() {
            let mut data = cooked_header(r.direction, r.protocol).to_vec();
            data.extend_from_slice(&r.data);
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: r.timestamp,
                original_len: data.len() as u32,
                data: Cow::Owned(data),
                options: Vec::new(),
            })
            .unwrap();
        }
        w.into_inner()
    }

    #[test]
    fn pcapng_files_read_like_pcap_files() {
        assert_eq!(read_pcap(&pcapng_file()).unwrap(), records());
        let raw = Duration::from_nanos(1_700_000_000_123_456);
        assert_eq!(
            pcapng_time(raw, None),
            Duration::new(1_700_000_000, 123_456_000)
        );
        assert_eq!(
            pcapng_time(raw, Some(6)),
            Duration::new(1_700_000_000, 123_456_000)
        );
        assert_eq!(pcapng_time(raw, Some(9)), raw);
        assert_eq!(
            pcapng_time(Duration::from_nanos(3 << 20), Some(0x80 | 20)),
            Duration::from_secs(3)
        );
        assert_eq!(pcapng_time(raw, Some(127)), Duration::ZERO);
        assert_eq!(
            pcapng_time(Duration::MAX, Some(0)),
            Duration::from_nanos(u64::MAX)
        );
        let bytes = pcapng_file();
        for cut in 0..bytes.len() {
            let _ = read_pcap(&bytes[..cut]);
        }
        let mut x = 0x1234_5678_9abc_def1u64;
        for _ in 0..3000 {
            let mut m = bytes.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % m.len();
                m[i] = (x >> 32) as u8;
            }
            let _ = decode_pcap(&m, &DecodeOptions::default());
        }
    }

    #[test]
    fn pcapng_garbage_never_panics() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..400usize {
            let mut m = PCAPNG_MAGIC.to_vec();
            while m.len() < len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                m.push(x as u8);
            }
            let _ = read_pcap(&m);
        }
    }
}

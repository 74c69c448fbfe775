//! The blocking IPVS client: reads (services, destinations, daemons, config, info,
//! connections) and control (services, destinations, flush, zero, timeouts, daemons).

use std::fs::File;
use std::io::BufReader;
use std::net::SocketAddr;
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::ipvs::addr::AddressFamily;
use crate::ipvs::config::Timeouts;
use crate::ipvs::conn::{open_table, ConnReader, ConnTable, Connection};
use crate::ipvs::daemon::{DaemonSpec, DaemonState, SyncDaemon};
use crate::ipvs::dest::{DestSpec, Destination};
use crate::ipvs::explain::{explain, Explanation};
use crate::ipvs::info::Info;
use crate::ipvs::message::{unexpected, Body, Message};
use crate::ipvs::service::{Service, ServiceKey, ServiceSpec};
use crate::ipvs::timeouts::StateTimeoutTable;
use crate::ipvs::wire::*;
use crate::netlink::emit::MessageBuilder;
use crate::netlink::frame::flags::{NLM_F_ACK, NLM_F_DUMP};
use crate::netlink::genl::{self, FamilyInfo};
use crate::netns::Netns;
use crate::socket::{NlSocket, SocketOptions, Step, NETLINK_GENERIC};

/// A client for the IPVS table of one network namespace.
#[derive(Debug)]
pub struct Ipvs {
    sock: NlSocket,
    netns: Netns,
    family: FamilyInfo,
}

/// Each service with its destinations.
pub type Snapshot = Vec<(Service, Vec<Destination>)>;

impl Ipvs {
    /// Opens a client in the caller's namespace.
    pub fn new() -> Result<Self> {
        Self::open(&Netns::Current)
    }

    /// Opens a client in `netns`.
    pub fn open(netns: &Netns) -> Result<Self> {
        Self::with_options(netns, &SocketOptions::default())
    }

    /// Opens a client in `netns` with socket options; resolves the IPVS family and checks its version.
    pub fn with_options(netns: &Netns, opts: &SocketOptions) -> Result<Self> {
        let mut sock = NlSocket::open(NETLINK_GENERIC, netns, opts)?;
        let family = genl::resolve_family(&mut sock, IPVS_GENL_NAME, "IPVS")?;
        if family.version < u32::from(IPVS_GENL_VERSION) {
            return Err(Error::Unsupported {
                feature: "IPVS",
                detail: format!(
                    "the kernel's IPVS family has version {}, this library needs {}",
                    family.version, IPVS_GENL_VERSION
                ),
            });
        }
        Ok(Ipvs {
            sock,
            netns: netns.clone(),
            family,
        })
    }

    /// What nlctrl said about the IPVS family.
    pub fn family(&self) -> &FamilyInfo {
        &self.family
    }

    /// The namespace this client works in.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The underlying socket.
    pub fn socket(&self) -> &NlSocket {
        &self.sock
    }

    /// The underlying socket, mutable (to install a recorder or change timeouts).
    pub fn socket_mut(&mut self) -> &mut NlSocket {
        &mut self.sock
    }

    fn request(&self, cmd: u8, flags: u16) -> MessageBuilder {
        genl::request(self.family.id, cmd, IPVS_GENL_VERSION, flags)
    }

    /// Sends `b` and decodes every data message of the answer with `f`.
    fn exchange<T>(
        &mut self,
        b: MessageBuilder,
        op: &'static str,
        dest_af: AddressFamily,
        mut f: impl FnMut(Message) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut bytes = b.finish();
        let seq = self.sock.send(&mut bytes, op)?;
        let mut ex = self.sock.exchange(seq, op);
        let mut out = Vec::new();
        // Bounded: each step consumes a message; the socket's receive timeout bounds waits.
        while let Step::Data(frame) = ex.next_frame()? {
            if frame.header.message_type != self.family.id {
                let err = unexpected(&frame);
                ex.drain()?;
                return Err(err.into());
            }
            let msg = Message::from_frame(&frame, dest_af)?;
            out.push(f(msg)?);
        }
        if ex.interrupted() {
            return Err(Error::DumpInterrupted);
        }
        Ok(out)
    }

    /// Sends a command that answers with an acknowledgement only.
    fn command(&mut self, b: MessageBuilder, op: &'static str) -> Result<()> {
        self.exchange(b, op, AddressFamily::Inet, |_| Ok(()))
            .map(|_| ())
    }

    /// The IPVS version and connection table size.
    pub fn info(&mut self) -> Result<Info> {
        let b = self.request(IPVS_CMD_GET_INFO, NLM_F_ACK);
        let mut v = self.exchange(b, "ipvs get info", AddressFamily::Inet, |m| match m.body {
            Body::Info(i) => Ok(i),
            _ => Err(bad_reply("ipvs get info", &m)),
        })?;
        v.pop().ok_or_else(|| no_reply("ipvs get info"))
    }

    /// The three configurable timeouts (TCP, TCP FIN_WAIT, UDP).
    pub fn config(&mut self) -> Result<Timeouts> {
        let b = self.request(IPVS_CMD_GET_CONFIG, NLM_F_ACK);
        let mut v = self.exchange(b, "ipvs get config", AddressFamily::Inet, |m| {
            match m.body {
                Body::Config(t) => Ok(t),
                _ => Err(bad_reply("ipvs get config", &m)),
            }
        })?;
        v.pop().ok_or_else(|| no_reply("ipvs get config"))
    }

    /// The state timeout tables in force: kernel defaults with the configured values.
    pub fn state_timeouts(&mut self) -> Result<StateTimeoutTable> {
        Ok(StateTimeoutTable::from_config(&self.config()?))
    }

    /// Every virtual service, in one dump.
    pub fn services(&mut self) -> Result<Vec<Service>> {
        let b = self.request(IPVS_CMD_GET_SERVICE, NLM_F_DUMP);
        self.exchange(b, "ipvs dump services", AddressFamily::Inet, |m| {
            match m.body {
                Body::Service(s) => Ok(s),
                _ => Err(bad_reply("ipvs dump services", &m)),
            }
        })
    }

    /// One virtual service (ESRCH from the kernel when it does not exist).
    pub fn service(&mut self, key: &ServiceKey) -> Result<Service> {
        key.validate()?;
        let mut b = self.request(IPVS_CMD_GET_SERVICE, NLM_F_ACK);
        key.emit_nest(&mut b);
        let mut v = self.exchange(b, "ipvs get service", key.af, |m| match m.body {
            Body::Service(s) => Ok(s),
            _ => Err(bad_reply("ipvs get service", &m)),
        })?;
        v.pop().ok_or_else(|| no_reply("ipvs get service"))
    }

    /// The destinations of a service (an empty list when the service does not exist).
    pub fn destinations(&mut self, key: &ServiceKey) -> Result<Vec<Destination>> {
        key.validate()?;
        let mut b = self.request(IPVS_CMD_GET_DEST, NLM_F_DUMP);
        key.emit_nest(&mut b);
        self.exchange(b, "ipvs dump destinations", key.af, |m| match m.body {
            Body::Dest(_, d) => Ok(d),
            _ => Err(bad_reply("ipvs dump destinations", &m)),
        })
    }

    /// Every service with its destinations.
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        let services = self.services()?;
        let mut out = Vec::with_capacity(services.len());
        for s in services {
            let d = self.destinations(&s.key)?;
            out.push((s, d));
        }
        Ok(out)
    }

    /// The running sync daemons (master first, then backup).
    pub fn daemons(&mut self) -> Result<Vec<SyncDaemon>> {
        let b = self.request(IPVS_CMD_GET_DAEMON, NLM_F_DUMP);
        self.exchange(b, "ipvs dump daemons", AddressFamily::Inet, |m| {
            match m.body {
                Body::Daemon(d) => Ok(d),
                _ => Err(bad_reply("ipvs dump daemons", &m)),
            }
        })
    }

    /// Adds a virtual service.
    pub fn add_service(&mut self, spec: &ServiceSpec) -> Result<()> {
        spec.validate()?;
        let mut b = self.request(IPVS_CMD_NEW_SERVICE, NLM_F_ACK);
        spec.emit_nest(&mut b);
        self.command(b, "ipvs add service")
    }

    /// Changes a virtual service (scheduler, flags, persistence).
    pub fn edit_service(&mut self, spec: &ServiceSpec) -> Result<()> {
        spec.validate()?;
        let mut b = self.request(IPVS_CMD_SET_SERVICE, NLM_F_ACK);
        spec.emit_nest(&mut b);
        self.command(b, "ipvs edit service")
    }

    /// Deletes a virtual service and its destinations.
    pub fn del_service(&mut self, key: &ServiceKey) -> Result<()> {
        key.validate()?;
        let mut b = self.request(IPVS_CMD_DEL_SERVICE, NLM_F_ACK);
        key.emit_nest(&mut b);
        self.command(b, "ipvs delete service")
    }

    /// Adds a destination to a service.
    pub fn add_dest(&mut self, service: &ServiceKey, dest: &DestSpec) -> Result<()> {
        dest.validate(service)?;
        let mut b = self.request(IPVS_CMD_NEW_DEST, NLM_F_ACK);
        service.emit_nest(&mut b);
        dest.emit_nest(&mut b);
        self.command(b, "ipvs add destination")
    }

    /// Changes a destination (forwarding method, weight, thresholds, tunnel).
    pub fn edit_dest(&mut self, service: &ServiceKey, dest: &DestSpec) -> Result<()> {
        dest.validate(service)?;
        let mut b = self.request(IPVS_CMD_SET_DEST, NLM_F_ACK);
        service.emit_nest(&mut b);
        dest.emit_nest(&mut b);
        self.command(b, "ipvs edit destination")
    }

    /// Deletes a destination from a service.
    pub fn del_dest(&mut self, service: &ServiceKey, dest: SocketAddr) -> Result<()> {
        service.validate()?;
        let mut b = self.request(IPVS_CMD_DEL_DEST, NLM_F_ACK);
        service.emit_nest(&mut b);
        DestSpec::emit_key_nest(dest, &mut b);
        self.command(b, "ipvs delete destination")
    }

    /// Deletes every service and destination.
    pub fn flush(&mut self) -> Result<()> {
        let b = self.request(IPVS_CMD_FLUSH, NLM_F_ACK);
        self.command(b, "ipvs flush")
    }

    /// Zeroes the counters of one service (and its destinations), or of everything.
    pub fn zero(&mut self, service: Option<&ServiceKey>) -> Result<()> {
        let mut b = self.request(IPVS_CMD_ZERO, NLM_F_ACK);
        if let Some(k) = service {
            k.validate()?;
            k.emit_nest(&mut b);
        }
        self.command(b, "ipvs zero")
    }

    /// Sets the configurable timeouts that are `Some`.
    pub fn set_timeouts(&mut self, t: &Timeouts) -> Result<()> {
        t.validate()?;
        let mut b = self.request(IPVS_CMD_SET_CONFIG, NLM_F_ACK);
        t.emit(&mut b);
        self.command(b, "ipvs set timeouts")
    }

    /// Starts a sync daemon.
    pub fn start_daemon(&mut self, spec: &DaemonSpec) -> Result<()> {
        spec.validate()?;
        let mut b = self.request(IPVS_CMD_NEW_DAEMON, NLM_F_ACK);
        spec.emit_nest(&mut b);
        self.command(b, "ipvs start daemon")
    }

    /// Stops the sync daemon of role `state`.
    pub fn stop_daemon(&mut self, state: DaemonState) -> Result<()> {
        if !matches!(state, DaemonState::Master | DaemonState::Backup) {
            return Err(Error::InvalidRequest(format!(
                "daemon state must be master or backup, not {state}"
            )));
        }
        let mut b = self.request(IPVS_CMD_DEL_DAEMON, NLM_F_ACK);
        DaemonSpec::emit_stop_nest(state, &mut b);
        self.command(b, "ipvs stop daemon")
    }

    /// Streams this namespace's connection table (`/proc/net/ip_vs_conn`).
    ///
    /// The kernel does not give a consistent snapshot: one table holds every namespace's
    /// connections and each `read` walks it again from the start, counting entries, so
    /// while other namespaces add or remove connections a listing can show an entry twice
    /// or miss one (as `ipvsadm -Lnc` can, which reads the same file). Compare two reads,
    /// or the listing with the counters read right after, when exact numbers matter.
    pub fn connections(&self) -> Result<ConnReader<BufReader<File>>> {
        open_table(&self.netns, ConnTable::Conn)
    }

    /// Streams this namespace's connection table with origins (`/proc/net/ip_vs_conn_sync`).
    pub fn sync_connections(&self) -> Result<ConnReader<BufReader<File>>> {
        open_table(&self.netns, ConnTable::Sync)
    }

    /// Reads services, destinations, timeouts and connections and explains the counters.
    pub fn explain(&mut self) -> Result<Explanation> {
        let table = self.state_timeouts()?;
        let snapshot = self.snapshot()?;
        // The kernel prints seconds left (rounded down) as it reads: count from the start.
        let taken_at = SystemTime::now();
        let conns: Vec<Connection> = self.connections()?.collect::<Result<_>>()?;
        Ok(explain(&snapshot, conns, &table, taken_at))
    }
}

fn bad_reply(op: &'static str, m: &Message) -> Error {
    Error::Io {
        op,
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unexpected IPVS reply command {}", m.cmd),
        ),
    }
}

fn no_reply(op: &'static str) -> Error {
    Error::Io {
        op,
        source: std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the kernel sent no reply",
        ),
    }
}

//! IPVS (the kernel's layer-4 load balancer) over generic netlink, and its connection
//! table with state timeouts.
//!
//! * [`Ipvs`] reads and changes services, destinations, sync daemons and the three
//!   configurable timeouts through the generic netlink family `IPVS`, in any
//!   network namespace.
//! * [`conn`] parses `/proc/net/ip_vs_conn` (the only place the kernel shows its
//!   connection entries) and [`timeouts`] models the per-protocol state timeouts
//!   and which entries count as active or inactive.
//! * [`explain()`](explain::explain) answers "why does `ipvsadm -Ln` still show InActConn?":
//!   per destination, the entries by state, their remaining seconds, and when the
//!   last inactive one expires.
//!
//! Every IPVS message is decoded in one pass into owned structs (unknown attributes
//! kept as raw bytes); see [`message`] for why there is no separate zero-copy view.
//!
//! ```no_run
//! use ipvs_conntrack::ipvs::Ipvs;
//! use ipvs_conntrack::Netns;
//!
//! let mut ipvs = Ipvs::open(&Netns::Current)?;
//! let why = ipvs.explain()?;
//! for svc in &why.services {
//!     for d in &svc.dests {
//!         println!("{} {}: InActConn {} drains in {:?} s", svc.service, d.dest,
//!                  d.inactive_conns, d.inactive_drain);
//!     }
//! }
//! # Ok::<(), ipvs_conntrack::Error>(())
//! ```

pub mod addr;
pub mod client;
pub mod config;
pub mod conn;
pub mod daemon;
pub mod dest;
pub mod explain;
pub mod info;
pub mod message;
pub mod service;
pub mod stats;
pub mod timeouts;
pub mod wire;

pub use addr::{AddressFamily, Protocol};
pub use client::{Ipvs, Snapshot};
pub use config::Timeouts;
pub use conn::{ConnReader, ConnTable, Connection, Origin};
pub use daemon::{DaemonSpec, DaemonState, SyncDaemon};
pub use dest::{DestSpec, Destination, ForwardMethod, TunnelFlags, TunnelType};
pub use explain::{DestReport, ExplainedConn, Explanation, ServiceReport, StateGroup};
pub use info::Info;
pub use message::{Body, Command, Message};
pub use service::{Netmask, Service, ServiceFlags, ServiceKey, ServiceSpec, ServiceTarget};
pub use stats::{Stats, StatsWidth};
pub use timeouts::{Activity, ConnState, SctpState, StateTimeoutTable, TcpState, TemplateState};

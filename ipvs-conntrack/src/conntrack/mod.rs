//! Connection tracking over ctnetlink: entries, tuples, states, statistics, timeouts and the client.

pub mod client;
pub mod entry;
pub mod filter;
pub mod protoinfo;
pub mod state;
pub mod stats;
pub mod status;
pub mod timeout;
pub mod tuple;
pub mod wire;

pub use client::{Conntrack, Dump, Table};
pub use entry::{
    Counters, Entry, EntryView, Family, Helper, Labels, MessageInfo, NatRange, SeqAdj, Synproxy,
    Timestamp,
};
pub use filter::{DumpFilter, TupleFilter};
pub use protoinfo::{
    DccpInfo, DccpRole, DccpState, ProtoInfo, SctpInfo, SctpState, TcpFlags, TcpFlagsMask, TcpInfo,
    TcpState,
};
pub use state::{State, UdpState};
pub use stats::{CpuStats, GlobalStats};
pub use status::Status;
pub use timeout::{ProtoTimeouts, StateTimeouts, TimeoutPolicy, TimeoutSource};
pub use tuple::{Tuple, TupleView};

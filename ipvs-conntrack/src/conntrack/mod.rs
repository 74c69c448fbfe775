//! Connection tracking over ctnetlink: entries, tuples, states, statistics, timeouts and the client.

pub mod batch;
pub mod client;
pub mod entry;
pub mod events;
pub mod expect;
pub mod filter;
pub mod layout;
pub mod messages;
pub mod policy;
pub mod protoinfo;
pub mod request;
mod shape;
pub mod state;
pub mod stats;
pub mod status;
#[cfg(test)]
mod test_bodies;
pub mod timeout;
pub mod tuple;
pub mod wire;

pub use batch::{Batch, BatchFailure, BatchOptions, BatchReport};
pub use client::{Conntrack, Dump, DumpState, DumpStep, Table};
pub use entry::{
    Counters, Entry, EntryView, Family, Helper, HelperView, Labels, MessageInfo, NatRange, SeqAdj,
    Synproxy, Timestamp,
};
pub use events::{
    set_accounting, Change, ConnKey, ConntrackEvent, Event, EventFilter, EventGroups, EventKind,
    EventOptions, EventStats, EventStream, EventView, ExpectEvent, Overrun, TableView, TupleKey,
};
pub use expect::{
    ExpectCpuStats, ExpectDeleteRequest, ExpectFlags, ExpectFlushRequest, ExpectNat, ExpectRequest,
    Expectation,
};
pub use filter::{DumpFilter, TupleFilter};
pub use layout::LayoutCache;
pub use messages::{EntryViews, OwnedEntries};
pub use policy::{DefaultPolicyRequest, PolicyDeleteRequest, PolicyRequest, PolicyWrite};
pub use protoinfo::{
    DccpInfo, DccpRole, DccpState, ProtoInfo, SctpInfo, SctpState, TcpFlags, TcpFlagsMask, TcpInfo,
    TcpState,
};
pub use request::{
    CreateRequest, DeleteRequest, EntryAttrs, FlushRequest, TupleDirection, UpdateRequest,
    WriteRequest,
};
pub use shape::ShapedEntry;
pub use state::{State, UdpState};
pub use stats::{CpuStats, GlobalStats};
pub use status::Status;
pub use timeout::{ProtoTimeouts, StateTimeouts, TimeoutPolicy, TimeoutSource};
pub use tuple::{Tuple, TupleView};

//! `ipvsct.decode(data)`: raw netlink bytes (as received from the kernel) to the same
//! objects the live calls return, offline.

use std::borrow::Cow;

use ipvs_conntrack::conntrack::stats::{CpuStats as CoreCpuStats, GlobalStats as CoreGlobal};
use ipvs_conntrack::conntrack::timeout::TimeoutPolicy as CorePolicy;
use ipvs_conntrack::conntrack::wire::{
    IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_CT_GET_STATS, IPCTNL_MSG_CT_GET_STATS_CPU, IPCTNL_MSG_CT_NEW,
};
use ipvs_conntrack::conntrack::Entry as CoreEntry;
use ipvs_conntrack::netlink::frame::{Control, Frames};
use ipvs_conntrack::netlink::nfnetlink::{
    split_type, NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_CTNETLINK_TIMEOUT,
};
use ipvs_conntrack::{AttrPath, DecodeError, DecodeErrorKind, Error};
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

use crate::entry::Entry;
use crate::errors::to_py;
use crate::timeouts::{StateTimeouts, TimeoutPolicy};
use crate::values::{CpuStats, GlobalStats};

/// One decoded message.
enum Item {
    Entry(Box<CoreEntry>),
    Global(CoreGlobal),
    Cpu(CoreCpuStats),
    Policy(CorePolicy),
}

/// Decodes every message of `data`; control messages (DONE, ACK, NOOP) are skipped.
fn decode_all(
    data: &[u8],
    timeouts: Option<&ipvs_conntrack::conntrack::StateTimeouts>,
) -> Result<Vec<Item>, Error> {
    let mut out = Vec::new();
    for frame in Frames::new(data) {
        let frame = frame?;
        match frame.control("decode")? {
            Control::Data => {}
            Control::Done(None) | Control::Ack | Control::Noop => continue,
            Control::Done(Some(k)) | Control::Error(k) => return Err(Error::Kernel(k)),
            Control::Overrun => {
                return Err(Error::Io {
                    op: "decode",
                    source: std::io::Error::from_raw_os_error(105),
                })
            }
        }
        let (subsys, msg) = split_type(frame.header.message_type);
        let item = match (subsys, msg) {
            (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW | IPCTNL_MSG_CT_DELETE) => {
                let mut e = CoreEntry::from_frame(&frame)?;
                if let Some(t) = timeouts {
                    e.state_timeout = t.for_state(e.orig.proto, e.state);
                }
                Item::Entry(Box::new(e))
            }
            (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS) => {
                Item::Global(CoreGlobal::from_frame(&frame)?)
            }
            (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS_CPU) => {
                Item::Cpu(CoreCpuStats::from_frame(&frame)?)
            }
            (NFNL_SUBSYS_CTNETLINK_TIMEOUT, _) => Item::Policy(CorePolicy::from_frame(&frame)?),
            _ => {
                return Err(Error::Decode(DecodeError {
                    kind: DecodeErrorKind::UnexpectedMessage {
                        message_type: frame.header.message_type,
                    },
                    path: AttrPath::ROOT,
                    offset: frame.offset,
                }))
            }
        };
        out.push(item);
    }
    Ok(out)
}

/// Decodes raw netlink bytes (one or more whole messages, as received from the kernel)
/// into `Entry`, `GlobalStats`, `CpuStats` and `TimeoutPolicy` objects.
///
/// `timeouts`, if given, fills `Entry.state_timeout`. Raises `DecodeError` for bytes
/// that do not decode and `NetlinkError` for a recorded kernel error.
#[pyfunction]
#[pyo3(signature = (data, timeouts=None))]
pub fn decode<'py>(
    py: Python<'py>,
    data: Cow<'_, [u8]>,
    timeouts: Option<PyRef<'py, StateTimeouts>>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let t = timeouts.map(|t| t.inner.clone());
    let data: &[u8] = &data;
    let items = py
        .detach(|| decode_all(data, t.as_ref()))
        .map_err(|e| to_py(py, e))?;
    items
        .into_iter()
        .map(|i| match i {
            Item::Entry(e) => Entry::from(*e).into_bound_py_any(py),
            Item::Global(g) => GlobalStats::from(&g).into_bound_py_any(py),
            Item::Cpu(c) => CpuStats::from(&c).into_bound_py_any(py),
            Item::Policy(p) => TimeoutPolicy { inner: p }.into_bound_py_any(py),
        })
        .collect()
}

//! `ipvsct.decode(data)`: raw netlink bytes (as received from the kernel) to the same
//! objects the live calls return, offline.

use std::borrow::Cow;

use ipvs_conntrack::conntrack::expect::Expectation as CoreExpectation;
use ipvs_conntrack::conntrack::stats::{CpuStats as CoreCpuStats, GlobalStats as CoreGlobal};
use ipvs_conntrack::conntrack::timeout::TimeoutPolicy as CorePolicy;
use ipvs_conntrack::conntrack::wire::{
    IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_CT_GET_STATS, IPCTNL_MSG_CT_GET_STATS_CPU, IPCTNL_MSG_CT_NEW,
    IPCTNL_MSG_EXP_DELETE, IPCTNL_MSG_EXP_NEW,
};
use ipvs_conntrack::conntrack::Entry as CoreEntry;
use ipvs_conntrack::ipvs::addr::AddressFamily;
use ipvs_conntrack::ipvs::wire::IPVS_GENL_NAME;
use ipvs_conntrack::ipvs::{Body as IpvsBody, Message as IpvsMessage};
use ipvs_conntrack::netlink::frame::{Control, Frames};
use ipvs_conntrack::netlink::genl::{FamilyInfo, GENL_ID_CTRL};
use ipvs_conntrack::netlink::nfnetlink::{
    split_type, NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_CTNETLINK_EXP, NFNL_SUBSYS_CTNETLINK_TIMEOUT,
};
use ipvs_conntrack::{AttrPath, DecodeError, DecodeErrorKind, Error};
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

use crate::entry::Entry;
use crate::entry_pool::PooledEntry;
use crate::errors::to_py;
use crate::expect::Expectation;
use crate::ipvs_values::{body_to_py, GenlFamily};
use crate::timeouts::{StateTimeouts, TimeoutPolicy};
use crate::values::{CpuStats, GlobalStats};

/// One decoded message.
enum Item {
    Entry(PooledEntry),
    Global(CoreGlobal),
    Cpu(CoreCpuStats),
    Policy(CorePolicy),
    Expect(Box<CoreExpectation>),
    Family(FamilyInfo),
    Ipvs(IpvsBody),
}

/// The error for a message this decoder does not know.
fn unexpected(frame: &ipvs_conntrack::netlink::frame::Frame<'_>) -> Error {
    Error::Decode(DecodeError {
        kind: DecodeErrorKind::UnexpectedMessage {
            message_type: frame.header.message_type,
        },
        path: AttrPath::ROOT,
        offset: frame.offset,
    })
}

/// Decodes every message of `data`; control messages (DONE, ACK, NOOP) are skipped.
fn decode_all(
    data: &[u8],
    timeouts: Option<&ipvs_conntrack::conntrack::StateTimeouts>,
    mut ipvs_family: Option<u16>,
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
        let t = frame.header.message_type;
        if t == GENL_ID_CTRL {
            let f = FamilyInfo::from_frame(&frame)?;
            if f.name == IPVS_GENL_NAME && ipvs_family.is_none() {
                ipvs_family = Some(f.id);
            }
            out.push(Item::Family(f));
            continue;
        }
        if Some(t) == ipvs_family {
            let m = IpvsMessage::from_frame(&frame, AddressFamily::Inet)?;
            if matches!(m.body, IpvsBody::Other) {
                return Err(unexpected(&frame));
            }
            out.push(Item::Ipvs(m.body));
            continue;
        }
        let (subsys, msg) = split_type(frame.header.message_type);
        let item = match (subsys, msg) {
            (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW | IPCTNL_MSG_CT_DELETE) => {
                let mut e = CoreEntry::from_frame(&frame)?;
                if let Some(t) = timeouts {
                    e.state_timeout = t.for_state(e.orig.proto, e.state);
                }
                Item::Entry(PooledEntry::new(e))
            }
            (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS) => {
                Item::Global(CoreGlobal::from_frame(&frame)?)
            }
            (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS_CPU) => {
                Item::Cpu(CoreCpuStats::from_frame(&frame)?)
            }
            (NFNL_SUBSYS_CTNETLINK_TIMEOUT, _) => Item::Policy(CorePolicy::from_frame(&frame)?),
            (NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_NEW | IPCTNL_MSG_EXP_DELETE) => {
                Item::Expect(Box::new(CoreExpectation::from_frame(&frame)?))
            }
            _ => return Err(unexpected(&frame)),
        };
        out.push(item);
    }
    Ok(out)
}

/// Decodes raw netlink bytes (one or more whole messages, as received from the kernel)
/// into `Entry`, `Expectation`, `GlobalStats`, `CpuStats`, `TimeoutPolicy`, `GenlFamily`
/// and IPVS objects (`Service`, `Destination`, `SyncDaemon`, `IpvsTimeouts`, `IpvsInfo`).
///
/// `timeouts`, if given, fills `Entry.state_timeout`. IPVS messages are recognised by
/// `ipvs_family` (the generic netlink id), or by an nlctrl answer for `IPVS` earlier in
/// `data`. Raises `DecodeError` for bytes that do not decode and `NetlinkError` for a
/// recorded kernel error.
#[pyfunction]
#[pyo3(signature = (data, timeouts=None, *, ipvs_family=None))]
pub fn decode<'py>(
    py: Python<'py>,
    data: Cow<'_, [u8]>,
    timeouts: Option<PyRef<'py, StateTimeouts>>,
    ipvs_family: Option<u16>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let t = timeouts.map(|t| t.inner.clone());
    let data: &[u8] = &data;
    let items = py
        .detach(|| decode_all(data, t.as_ref(), ipvs_family))
        .map_err(|e| to_py(py, e))?;
    items
        .into_iter()
        .map(|i| match i {
            Item::Entry(e) => Entry::new(py, e)?.into_bound_py_any(py),
            Item::Global(g) => GlobalStats::from(&g).into_bound_py_any(py),
            Item::Cpu(c) => CpuStats::from(&c).into_bound_py_any(py),
            Item::Policy(p) => TimeoutPolicy { inner: p }.into_bound_py_any(py),
            Item::Expect(e) => Expectation::from(*e).into_bound_py_any(py),
            Item::Family(f) => GenlFamily::from(&f).into_bound_py_any(py),
            Item::Ipvs(b) => match body_to_py(py, &b)? {
                Some(o) => Ok(o.into_bound(py)),
                None => Ok(py.None().into_bound(py)),
            },
        })
        .collect()
}

//! Conversions to the Python enums of `ipvsct._enums` (`Status` is an `enum.IntFlag`,
//! the states are open `enum.IntEnum`s), and the core's names for checking them.

use ipvs_conntrack::conntrack::protoinfo::{DccpRole, DccpState, SctpState, TcpState};
use ipvs_conntrack::conntrack::status::STATUS_NAMES;
use ipvs_conntrack::conntrack::{Family, State, Status, TcpFlags, UdpState};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

/// The pure-Python module holding the enum classes.
const MODULE: &str = "ipvsct._enums";

/// Values below this have their member cached (states, roles, families, flag bytes).
const CACHED: usize = 256;

/// One lazily imported enum class, with its members for small values made once:
/// calling an enum class runs Python code (about 0.6 µs), a cache hit is a load.
struct Class {
    name: &'static str,
    cell: PyOnceLock<Py<PyType>>,
    members: [PyOnceLock<Py<PyAny>>; CACHED],
}

impl Class {
    const fn new(name: &'static str) -> Self {
        Class {
            name,
            cell: PyOnceLock::new(),
            members: [const { PyOnceLock::new() }; CACHED],
        }
    }

    /// `cls(value)` (the same object every time for values below [`CACHED`]; the enums
    /// are immutable, so sharing members, even `UNKNOWN_<n>` pseudo-members, is safe).
    fn make<'py>(&self, py: Python<'py>, value: u64) -> PyResult<Bound<'py, PyAny>> {
        let Some(slot) = usize::try_from(value)
            .ok()
            .and_then(|v| self.members.get(v))
        else {
            return self.cell.import(py, MODULE, self.name)?.call1((value,));
        };
        if let Some(m) = slot.get(py) {
            return Ok(m.bind(py).clone());
        }
        let m = self.cell.import(py, MODULE, self.name)?.call1((value,))?;
        Ok(slot.get_or_init(py, || m.clone().unbind()).bind(py).clone())
    }
}

static FAMILY: Class = Class::new("Family");
static STATUS: Class = Class::new("Status");
static TCP_STATE: Class = Class::new("TcpState");
static SCTP_STATE: Class = Class::new("SctpState");
static DCCP_STATE: Class = Class::new("DccpState");
static UDP_STATE: Class = Class::new("UdpState");
static DCCP_ROLE: Class = Class::new("DccpRole");
static TCP_FLAGS: Class = Class::new("TcpFlags");

/// `ipvsct.Family` of a family.
pub fn family<'py>(py: Python<'py>, f: Family) -> PyResult<Bound<'py, PyAny>> {
    FAMILY.make(py, u64::from(f.value()))
}

/// `ipvsct.Status` of a status word.
pub fn status<'py>(py: Python<'py>, s: Status) -> PyResult<Bound<'py, PyAny>> {
    STATUS.make(py, u64::from(s.bits()))
}

/// `ipvsct.TcpFlags` of a TCP flags byte.
pub fn tcp_flags<'py>(py: Python<'py>, f: TcpFlags) -> PyResult<Bound<'py, PyAny>> {
    TCP_FLAGS.make(py, u64::from(f.bits()))
}

/// `ipvsct.TcpState` of a TCP state.
pub fn tcp_state<'py>(py: Python<'py>, s: TcpState) -> PyResult<Bound<'py, PyAny>> {
    TCP_STATE.make(py, u64::from(s.value()))
}

/// `ipvsct.SctpState` of an SCTP state.
pub fn sctp_state<'py>(py: Python<'py>, s: SctpState) -> PyResult<Bound<'py, PyAny>> {
    SCTP_STATE.make(py, u64::from(s.value()))
}

/// `ipvsct.DccpState` of a DCCP state.
pub fn dccp_state<'py>(py: Python<'py>, s: DccpState) -> PyResult<Bound<'py, PyAny>> {
    DCCP_STATE.make(py, u64::from(s.value()))
}

/// `ipvsct.DccpRole` of a DCCP role.
pub fn dccp_role<'py>(py: Python<'py>, r: DccpRole) -> PyResult<Bound<'py, PyAny>> {
    DCCP_ROLE.make(py, u64::from(r.value()))
}

/// The state as the member of its protocol's enum; `None` for stateless protocols.
pub fn state<'py>(py: Python<'py>, s: State) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(Some(match s {
        State::Tcp(x) => tcp_state(py, x)?,
        State::Sctp(x) => sctp_state(py, x)?,
        State::Dccp(x) => dccp_state(py, x)?,
        State::Udp(x) | State::Gre(x) => UDP_STATE.make(py, u64::from(x.value()))?,
        State::Icmp | State::Generic | State::Unknown => return Ok(None),
    }))
}

/// Parses a state given from Python: an enum member of a state enum, or a name.
pub fn state_from_py(proto: u8, v: &Bound<'_, PyAny>) -> PyResult<State> {
    use ipvs_conntrack::conntrack::tuple::*;
    let by_name = |name: &str| -> Option<State> {
        match proto {
            IPPROTO_TCP => TcpState::from_name(name).map(State::Tcp),
            IPPROTO_SCTP => SctpState::from_name(name).map(State::Sctp),
            IPPROTO_DCCP => DccpState::from_name(name).map(State::Dccp),
            IPPROTO_UDP | IPPROTO_UDPLITE => UdpState::from_name(name).map(State::Udp),
            IPPROTO_GRE => UdpState::from_name(name).map(State::Gre),
            IPPROTO_ICMP | IPPROTO_ICMPV6 => Some(State::Icmp),
            _ => Some(State::Generic),
        }
    };
    if v.is_none() {
        return Ok(by_name("").unwrap_or(State::Unknown));
    }
    // Enum members carry their name; plain strings are names.
    let name: String = match v.getattr("name") {
        Ok(n) if !v.is_instance_of::<pyo3::types::PyString>() => n.extract()?,
        _ => v.extract()?,
    };
    by_name(&name).ok_or_else(|| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "unknown state {name:?} for protocol {proto}"
        ))
    })
}

/// `{value: name}` of an open enum, for values `0..=max`.
fn names<'py, T: Copy>(
    py: Python<'py>,
    max: u8,
    from: impl Fn(u8) -> T,
    name: impl Fn(T) -> &'static str,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for v in 0..=max {
        let n = name(from(v));
        if n != "UNKNOWN" {
            d.set_item(v, n)?;
        }
    }
    Ok(d)
}

/// The core's names of every enum the Python package mirrors (tests compare them
/// with `ipvsct._enums`, so the two cannot drift apart).
#[pyfunction]
#[pyo3(name = "_core_enum_names")]
pub fn core_enum_names(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    out.set_item(
        "Family",
        names(py, 255, Family::from, |f: Family| f.name())?,
    )?;
    out.set_item(
        "TcpState",
        names(py, 255, TcpState::from, |s: TcpState| s.name())?,
    )?;
    out.set_item(
        "SctpState",
        names(py, 255, SctpState::from, |s: SctpState| s.name())?,
    )?;
    out.set_item(
        "DccpState",
        names(py, 255, DccpState::from, |s: DccpState| s.name())?,
    )?;
    out.set_item(
        "UdpState",
        names(py, 255, UdpState::from, |s: UdpState| s.name())?,
    )?;
    out.set_item(
        "DccpRole",
        names(py, 255, DccpRole::from, |s: DccpRole| s.name())?,
    )?;
    let status = PyDict::new(py);
    for (i, n) in STATUS_NAMES.iter().enumerate() {
        status.set_item(1u32 << i, *n)?;
    }
    out.set_item("Status", status)?;
    let flags = PyDict::new(py);
    for f in TcpFlags::all().iter_names() {
        flags.set_item(f.1.bits(), f.0)?;
    }
    out.set_item("TcpFlags", flags)?;
    Ok(out)
}

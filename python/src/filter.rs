//! Dump filters from Python keyword arguments (`family=`, `mark=`, `zone=`, `status=`, …).

use std::net::IpAddr;

use ipvs_conntrack::conntrack::{DumpFilter, Family, Status, Table};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::entry::proto_from_py;

/// The filter arguments every dump method takes.
pub struct FilterArgs<'a, 'py> {
    /// `family=`: `Family`, an AF_* number, or `"ipv4"` / `"ipv6"`.
    pub family: Option<&'a Bound<'py, PyAny>>,
    /// `mark=`: a value, or `(value, mask)`.
    pub mark: Option<&'a Bound<'py, PyAny>>,
    /// `zone=`.
    pub zone: Option<u16>,
    /// `status=`: bits that must be set, or `(value, mask)`.
    pub status: Option<&'a Bound<'py, PyAny>>,
    /// `proto=`: L4 protocol number or name.
    pub proto: Option<&'a Bound<'py, PyAny>>,
    /// `src=` (original direction).
    pub src: Option<IpAddr>,
    /// `dst=` (original direction).
    pub dst: Option<IpAddr>,
    /// `src_port=` (original direction).
    pub src_port: Option<u16>,
    /// `dst_port=` (original direction).
    pub dst_port: Option<u16>,
    /// `reply_src=`.
    pub reply_src: Option<IpAddr>,
    /// `reply_dst=`.
    pub reply_dst: Option<IpAddr>,
    /// `table=`: `"main"`, `"dying"` or `"unconfirmed"`.
    pub table: &'a str,
    /// `kernel_filter=`: send the filter to the kernel (else filter in user space only).
    pub kernel_filter: bool,
}

/// Parses a family: `Family`, an AF_* number, or `"ipv4"` / `"ipv6"`.
pub fn family_from_py(v: &Bound<'_, PyAny>) -> PyResult<Family> {
    if let Ok(s) = v.cast::<PyString>() {
        let s = s.to_cow()?.to_ascii_lowercase();
        return match s.as_str() {
            "ipv4" | "inet" | "ip" => Ok(Family::Ipv4),
            "ipv6" | "inet6" | "ip6" => Ok(Family::Ipv6),
            _ => Err(PyValueError::new_err(format!(
                "unknown family {s:?} (use \"ipv4\" or \"ipv6\")"
            ))),
        };
    }
    let n: i64 = v
        .extract()
        .map_err(|_| PyTypeError::new_err("family must be a Family, an AF_* number or a name"))?;
    match n {
        2 => Ok(Family::Ipv4),
        10 => Ok(Family::Ipv6),
        _ => Err(PyValueError::new_err(format!(
            "family {n} is not AF_INET (2) or AF_INET6 (10)"
        ))),
    }
}

/// A `u32` or a `(value, mask)` pair; a lone value gets `default_mask(value)`.
fn value_mask(
    v: &Bound<'_, PyAny>,
    what: &str,
    default_mask: impl Fn(u32) -> u32,
) -> PyResult<(u32, u32)> {
    if let Ok(t) = v.cast::<PyTuple>() {
        let (value, mask): (u32, u32) = t.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must be an int or a (value, mask) pair of ints"
            ))
        })?;
        return Ok((value, mask));
    }
    let value: u32 = v.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be an int (0..2**32) or a (value, mask) pair"
        ))
    })?;
    Ok((value, default_mask(value)))
}

fn family_of(a: IpAddr) -> Family {
    if a.is_ipv4() {
        Family::Ipv4
    } else {
        Family::Ipv6
    }
}

/// Builds the core filter and table from the arguments.
pub fn build(a: &FilterArgs<'_, '_>) -> PyResult<(DumpFilter, Table)> {
    let mut f = DumpFilter::all();
    f.family = a.family.map(family_from_py).transpose()?;
    if f.family.is_none() {
        // Address filters need the family: take it from the addresses.
        f.family = [a.src, a.dst, a.reply_src, a.reply_dst]
            .into_iter()
            .flatten()
            .next()
            .map(family_of);
    }
    f.mark = a
        .mark
        .map(|m| value_mask(m, "mark", |_| u32::MAX))
        .transpose()?;
    f.zone = a.zone;
    f.status = a
        .status
        .map(|s| value_mask(s, "status", |v| v))
        .transpose()?
        .map(|(v, m)| (Status::from_bits_retain(v), Status::from_bits_retain(m)));
    let proto = a.proto.map(proto_from_py).transpose()?;
    f.orig.proto = proto;
    f.orig.src = a.src;
    f.orig.dst = a.dst;
    f.orig.src_port = a.src_port;
    f.orig.dst_port = a.dst_port;
    f.reply.src = a.reply_src;
    f.reply.dst = a.reply_dst;
    if f.reply.src.is_some() || f.reply.dst.is_some() {
        f.reply.proto = proto;
    }
    f.user_space_only = !a.kernel_filter;
    let table = match a.table {
        "main" => Table::Main,
        "dying" => Table::Dying,
        "unconfirmed" => Table::Unconfirmed,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown table {other:?} (use \"main\", \"dying\" or \"unconfirmed\")"
            )))
        }
    };
    Ok((f, table))
}

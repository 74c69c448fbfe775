//! Column-wise collection of a dump for `Conntrack.dataframe()`: numbers in typed
//! buffers with null masks, strings as dictionary codes, handed to
//! `ipvsct._frame.build` which wraps them in pandas arrays without a Python loop.

use std::collections::HashMap;
use std::net::IpAddr;

use ipvs_conntrack::conntrack::timeout::StateTimeouts;
use ipvs_conntrack::conntrack::tuple::proto_name;
use ipvs_conntrack::conntrack::{Counters, EntryView, TupleView};
use ipvs_conntrack::DecodeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyList, PyTuple};
use pyo3::IntoPyObjectExt;

/// A nullable integer column: values and a mask (true = missing, as pandas has it).
struct Num<T> {
    values: Vec<T>,
    missing: Vec<bool>,
}

impl<T> Default for Num<T> {
    fn default() -> Self {
        Num {
            values: Vec::new(),
            missing: Vec::new(),
        }
    }
}

/// Integer types a column can hold, with their numpy dtype name.
trait Int: Copy + Default {
    const DTYPE: &'static str;
    fn extend_ne(self, out: &mut Vec<u8>);
}

macro_rules! int {
    ($t:ty, $name:literal) => {
        impl Int for $t {
            const DTYPE: &'static str = $name;
            fn extend_ne(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_ne_bytes());
            }
        }
    };
}
int!(u8, "uint8");
int!(u16, "uint16");
int!(u32, "uint32");
int!(u64, "uint64");
int!(i32, "int32");

impl<T: Int> Num<T> {
    fn push(&mut self, v: Option<T>) {
        self.values.push(v.unwrap_or_default());
        self.missing.push(v.is_none());
    }

    /// `("int", dtype, values, mask)` for `ipvsct._frame.build`.
    fn into_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut bytes = Vec::with_capacity(self.values.len() * std::mem::size_of::<T>());
        for v in &self.values {
            v.extend_ne(&mut bytes);
        }
        let mask: Vec<u8> = self.missing.iter().map(|m| u8::from(*m)).collect();
        (
            "int",
            T::DTYPE,
            PyByteArray::new(py, &bytes),
            PyByteArray::new(py, &mask),
        )
            .into_bound_py_any(py)
    }
}

/// A string column stored as codes into a dictionary of distinct values (-1 = missing).
struct Dict<K> {
    codes: Vec<i32>,
    index: HashMap<K, i32>,
    values: Vec<String>,
}

impl<K> Default for Dict<K> {
    fn default() -> Self {
        Dict {
            codes: Vec::new(),
            index: HashMap::new(),
            values: Vec::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq> Dict<K> {
    fn push(&mut self, key: Option<K>, show: impl FnOnce(&K) -> String) {
        let code = match key {
            None => -1,
            Some(k) => match self.index.get(&k) {
                Some(c) => *c,
                None => {
                    let c = i32::try_from(self.values.len()).unwrap_or(i32::MAX);
                    self.values.push(show(&k));
                    self.index.insert(k, c);
                    c
                }
            },
        };
        self.codes.push(code);
    }

    /// `("category", codes, categories)` for `ipvsct._frame.build`.
    fn into_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut bytes = Vec::with_capacity(self.codes.len() * 4);
        for c in &self.codes {
            c.extend_ne(&mut bytes);
        }
        (
            "category",
            PyByteArray::new(py, &bytes),
            PyList::new(py, &self.values)?,
        )
            .into_bound_py_any(py)
    }
}

/// The columns of a dump, one row per entry.
#[derive(Default)]
pub struct Columns {
    family: Dict<u8>,
    proto: Dict<u8>,
    state: Dict<&'static str>,
    orig_src: Dict<IpAddr>,
    orig_dst: Dict<IpAddr>,
    orig_src_port: Num<u16>,
    orig_dst_port: Num<u16>,
    reply_src: Dict<IpAddr>,
    reply_dst: Dict<IpAddr>,
    reply_src_port: Num<u16>,
    reply_dst_port: Num<u16>,
    icmp_type: Num<u8>,
    icmp_code: Num<u8>,
    icmp_id: Num<u16>,
    status: Num<u32>,
    timeout: Num<u32>,
    state_timeout: Num<u32>,
    mark: Num<u32>,
    zone: Num<u16>,
    id: Num<u32>,
    use_count: Num<u32>,
    counters_orig_packets: Num<u64>,
    counters_orig_bytes: Num<u64>,
    counters_reply_packets: Num<u64>,
    counters_reply_bytes: Num<u64>,
    timestamp_start: Num<u64>,
    helper: Dict<String>,
}

fn counters(c: Option<Counters>) -> (Option<u64>, Option<u64>) {
    (c.map(|c| c.packets), c.map(|c| c.bytes))
}

impl Columns {
    /// Appends one entry (fails on an attribute that does not decode).
    pub fn push(
        &mut self,
        v: &EntryView<'_>,
        timeouts: Option<&StateTimeouts>,
    ) -> Result<(), DecodeError> {
        let family = v.family().value();
        self.family.push(Some(family), |f| match f {
            2 => "ipv4".to_owned(),
            10 => "ipv6".to_owned(),
            n => n.to_string(),
        });
        let proto = v.proto()?;
        self.proto.push(proto, |p| {
            proto_name(*p).map_or_else(|| p.to_string(), str::to_owned)
        });
        let state = v.state()?;
        self.state.push(state.name(), |s| (*s).to_owned());
        let orig = v.orig()?;
        let reply = v.reply()?;
        let tuple = |t: &Option<TupleView<'_>>| {
            t.as_ref()
                .map(|t| (Some(t.src()), Some(t.dst()), t.src_port(), t.dst_port()))
                .unwrap_or((None, None, None, None))
        };
        let (os, od, osp, odp) = tuple(&orig);
        self.orig_src.push(os, IpAddr::to_string);
        self.orig_dst.push(od, IpAddr::to_string);
        self.orig_src_port.push(osp);
        self.orig_dst_port.push(odp);
        let (rs, rd, rsp, rdp) = tuple(&reply);
        self.reply_src.push(rs, IpAddr::to_string);
        self.reply_dst.push(rd, IpAddr::to_string);
        self.reply_src_port.push(rsp);
        self.reply_dst_port.push(rdp);
        self.icmp_type
            .push(orig.as_ref().and_then(|t| t.icmp_type()));
        self.icmp_code
            .push(orig.as_ref().and_then(|t| t.icmp_code()));
        self.icmp_id.push(orig.as_ref().and_then(|t| t.icmp_id()));
        self.status
            .push(Some(v.status().unwrap_or_default().bits()));
        self.timeout.push(v.timeout());
        self.state_timeout
            .push(timeouts.and_then(|t| t.for_state(proto.unwrap_or(0), state)));
        self.mark.push(v.mark());
        self.zone.push(v.zone());
        self.id.push(v.id());
        self.use_count.push(v.use_count());
        let (p, b) = counters(v.counters_orig()?);
        self.counters_orig_packets.push(p);
        self.counters_orig_bytes.push(b);
        let (p, b) = counters(v.counters_reply()?);
        self.counters_reply_packets.push(p);
        self.counters_reply_bytes.push(b);
        self.timestamp_start
            .push(v.timestamp()?.and_then(|t| t.start));
        self.helper
            .push(v.helper()?.map(|h| h.name.to_owned()), String::clone);
        Ok(())
    }

    /// `[(name, column spec), …]` in column order, for `ipvsct._frame.build`.
    pub fn into_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
        let c = self;
        let cols: Vec<(&str, Bound<'_, PyAny>)> = vec![
            ("family", c.family.into_py(py)?),
            ("proto", c.proto.into_py(py)?),
            ("state", c.state.into_py(py)?),
            ("orig_src", c.orig_src.into_py(py)?),
            ("orig_dst", c.orig_dst.into_py(py)?),
            ("orig_src_port", c.orig_src_port.into_py(py)?),
            ("orig_dst_port", c.orig_dst_port.into_py(py)?),
            ("reply_src", c.reply_src.into_py(py)?),
            ("reply_dst", c.reply_dst.into_py(py)?),
            ("reply_src_port", c.reply_src_port.into_py(py)?),
            ("reply_dst_port", c.reply_dst_port.into_py(py)?),
            ("icmp_type", c.icmp_type.into_py(py)?),
            ("icmp_code", c.icmp_code.into_py(py)?),
            ("icmp_id", c.icmp_id.into_py(py)?),
            ("status", c.status.into_py(py)?),
            ("timeout", c.timeout.into_py(py)?),
            ("state_timeout", c.state_timeout.into_py(py)?),
            ("mark", c.mark.into_py(py)?),
            ("zone", c.zone.into_py(py)?),
            ("id", c.id.into_py(py)?),
            ("use_count", c.use_count.into_py(py)?),
            (
                "counters_orig_packets",
                c.counters_orig_packets.into_py(py)?,
            ),
            ("counters_orig_bytes", c.counters_orig_bytes.into_py(py)?),
            (
                "counters_reply_packets",
                c.counters_reply_packets.into_py(py)?,
            ),
            ("counters_reply_bytes", c.counters_reply_bytes.into_py(py)?),
            ("timestamp_start", c.timestamp_start.into_py(py)?),
            ("helper", c.helper.into_py(py)?),
        ];
        let out = PyList::empty(py);
        for (name, spec) in cols {
            out.append(PyTuple::new(py, [name.into_bound_py_any(py)?, spec])?)?;
        }
        Ok(out)
    }
}

//! Column-wise collection of a dump for `Conntrack.dataframe()`: numbers in typed
//! buffers with null masks, strings as dictionary codes, handed to
//! `ipvsct._frame.build` which wraps them in pandas arrays without a Python loop.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::IpAddr;

use ipvs_conntrack::conntrack::timeout::StateTimeouts;
use ipvs_conntrack::conntrack::tuple::proto_name;
use ipvs_conntrack::conntrack::{Counters, EntryView, TupleView};
use ipvs_conntrack::DecodeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyList, PyString, PyTuple};
use pyo3::IntoPyObjectExt;

/// A fast hasher for the dictionary keys (small integers and short strings): the
/// multiply-rotate scheme of rustc's FxHash. The keys come from the kernel, not from
/// an adversary choosing collisions, and each map lives for one call.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Fx {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

type FxMap<K> = HashMap<K, i32, BuildHasherDefault<Fx>>;

/// A nullable integer column: values (native byte order) and a mask (1 = missing, as
/// pandas has it), kept as the bytes numpy reads.
struct Num<T> {
    values: Vec<u8>,
    missing: Vec<u8>,
    _t: std::marker::PhantomData<T>,
}

impl<T> Default for Num<T> {
    fn default() -> Self {
        Num {
            values: Vec::new(),
            missing: Vec::new(),
            _t: std::marker::PhantomData,
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
            #[inline]
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
    #[inline]
    fn push(&mut self, v: Option<T>) {
        v.unwrap_or_default().extend_ne(&mut self.values);
        self.missing.push(u8::from(v.is_none()));
    }

    /// `("int", dtype, values, mask)` for `ipvsct._frame.build`.
    fn into_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        (
            "int",
            T::DTYPE,
            PyByteArray::new(py, &self.values),
            PyByteArray::new(py, &self.missing),
        )
            .into_bound_py_any(py)
    }
}

/// Codes into a list of distinct strings (-1 = missing), in order of first appearance.
/// The strings are kept end to end in one buffer (no allocation per value).
#[derive(Default)]
struct Codes {
    codes: Vec<u8>,
    text: String,
    /// End of each value in `text`.
    ends: Vec<usize>,
}

impl Codes {
    #[inline]
    fn push(&mut self, code: i32) {
        code.extend_ne(&mut self.codes);
    }

    /// Appends a new distinct value, written by `write`, and returns its code.
    fn add(&mut self, write: impl FnOnce(&mut String)) -> i32 {
        let c = i32::try_from(self.ends.len()).unwrap_or(i32::MAX);
        write(&mut self.text);
        self.ends.push(self.text.len());
        c
    }

    /// `("category", codes, categories)` for `ipvsct._frame.build`.
    fn into_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut start = 0;
        let values = self.ends.iter().map(|&end| {
            let v = self.text.get(start..end).unwrap_or_default();
            start = end;
            v
        });
        (
            "category",
            PyByteArray::new(py, &self.codes),
            PyList::new(py, values)?,
        )
            .into_bound_py_any(py)
    }
}

/// A string column keyed by a small copyable value (the string made once per key).
struct Dict<K> {
    out: Codes,
    index: FxMap<K>,
    /// The previous row's key and code (runs of equal values are common).
    last: Option<(K, i32)>,
}

impl<K> Default for Dict<K> {
    fn default() -> Self {
        Dict {
            out: Codes::default(),
            index: FxMap::default(),
            last: None,
        }
    }
}

impl<K: Hash + Eq + Copy> Dict<K> {
    #[inline]
    fn push(&mut self, key: Option<K>, show: impl FnOnce(K, &mut String)) {
        let code = match key {
            None => -1,
            Some(k) => match self.last {
                Some((l, c)) if l == k => c,
                _ => {
                    let out = &mut self.out;
                    let c = *self
                        .index
                        .entry(k)
                        .or_insert_with(|| out.add(|s| show(k, s)));
                    self.last = Some((k, c));
                    c
                }
            },
        };
        self.out.push(code);
    }

    fn into_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.out.into_py(py)
    }
}

/// The distinct addresses of the four address columns, each with an id and its text
/// (written once: in a table without NAT the reply addresses are the original ones).
#[derive(Default)]
struct AddrPool {
    v4: FxMap<u32>,
    v6: FxMap<u128>,
    text: String,
    /// End of each address's text in `text`, by id.
    ends: Vec<usize>,
}

impl AddrPool {
    /// The id of `a` (a new one the first time).
    #[inline]
    fn id(&mut self, a: IpAddr) -> i32 {
        let (text, ends) = (&mut self.text, &mut self.ends);
        let mut add = |write: &dyn Fn(&mut String)| {
            let id = i32::try_from(ends.len()).unwrap_or(i32::MAX);
            write(text);
            ends.push(text.len());
            id
        };
        match a {
            IpAddr::V4(v4) => {
                let k = u32::from(v4);
                *self
                    .v4
                    .entry(k)
                    .or_insert_with(|| add(&|s| ipv4_text(k, s)))
            }
            IpAddr::V6(v6) => *self
                .v6
                .entry(u128::from(v6))
                .or_insert_with(|| add(&|s| s.push_str(&v6.to_string()))),
        }
    }

    /// The text of every address, by id.
    fn texts(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let v = self.text.get(start..end).unwrap_or_default();
            start = end;
            v
        })
    }
}

/// An address column: codes into its own distinct addresses (in order of first
/// appearance), which are ids in the [`AddrPool`].
#[derive(Default)]
struct Addrs {
    codes: Vec<u8>,
    /// The code of each pool id in this column (-1: not in it yet).
    code_of: Vec<i32>,
    /// The pool id of each code.
    ids: Vec<i32>,
    /// The previous row's address and pool id (runs of equal values are common).
    last: Option<(IpAddr, i32)>,
}

impl Addrs {
    /// Appends `a`; `hint` is the address and pool id of another column of the same row
    /// (saves a look-up when equal). Returns the pool id.
    #[inline]
    fn push(
        &mut self,
        pool: &mut AddrPool,
        a: Option<IpAddr>,
        hint: Option<(IpAddr, i32)>,
    ) -> Option<(IpAddr, i32)> {
        let Some(a) = a else {
            (-1i32).extend_ne(&mut self.codes);
            return None;
        };
        let id = match (self.last, hint) {
            (Some((l, id)), _) if l == a => id,
            (_, Some((h, id))) if h == a => id,
            _ => pool.id(a),
        };
        self.last = Some((a, id));
        let i = usize::try_from(id).unwrap_or(usize::MAX);
        if self.code_of.len() <= i {
            self.code_of.resize(i + 1, -1);
        }
        let code = match self.code_of.get_mut(i) {
            Some(c) if *c >= 0 => *c,
            Some(c) => {
                *c = i32::try_from(self.ids.len()).unwrap_or(i32::MAX);
                self.ids.push(id);
                *c
            }
            None => -1,
        };
        code.extend_ne(&mut self.codes);
        Some((a, id))
    }

    /// `("category", codes, categories)` for `ipvsct._frame.build`; `strs` holds the
    /// Python string of each pool id once made (shared by the columns).
    fn into_py<'py>(
        self,
        py: Python<'py>,
        strs: &mut [Option<Bound<'py, PyString>>],
        texts: &[&str],
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut values = Vec::with_capacity(self.ids.len());
        for id in self.ids {
            let i = usize::try_from(id).unwrap_or(usize::MAX);
            let s = match strs.get_mut(i) {
                Some(Some(s)) => s.clone(),
                Some(slot) => {
                    let s = PyString::new(py, texts.get(i).copied().unwrap_or_default());
                    *slot = Some(s.clone());
                    s
                }
                None => PyString::new(py, ""),
            };
            values.push(s);
        }
        (
            "category",
            PyByteArray::new(py, &self.codes),
            PyList::new(py, values)?,
        )
            .into_bound_py_any(py)
    }
}

/// Writes `a.b.c.d` (the same text as `Ipv4Addr`'s `Display`, without the formatting
/// machinery).
fn ipv4_text(a: u32, s: &mut String) {
    for (i, o) in a.to_be_bytes().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if o >= 100 {
            s.push(char::from(b'0' + o / 100));
        }
        if o >= 10 {
            s.push(char::from(b'0' + o / 10 % 10));
        }
        s.push(char::from(b'0' + o % 10));
    }
}

/// The helper column (rare; looked up by `&str`, allocated once per distinct name).
#[derive(Default)]
struct Names {
    out: Codes,
    index: HashMap<String, i32, BuildHasherDefault<Fx>>,
}

impl Names {
    fn push(&mut self, name: Option<&str>) {
        let code = match name {
            None => -1,
            Some(n) => match self.index.get(n) {
                Some(c) => *c,
                None => {
                    let c = self.out.add(|s| s.push_str(n));
                    self.index.insert(n.to_owned(), c);
                    c
                }
            },
        };
        self.out.push(code);
    }
}

/// The columns of a dump, one row per entry.
#[derive(Default)]
pub struct Columns {
    family: Dict<u8>,
    proto: Dict<u8>,
    state: Dict<&'static str>,
    addrs: AddrPool,
    orig_src: Addrs,
    orig_dst: Addrs,
    orig_src_port: Num<u16>,
    orig_dst_port: Num<u16>,
    reply_src: Addrs,
    reply_dst: Addrs,
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
    helper: Names,
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
        self.family.push(Some(family), |f, s| match f {
            2 => s.push_str("ipv4"),
            10 => s.push_str("ipv6"),
            n => s.push_str(&n.to_string()),
        });
        let proto = v.proto()?;
        self.proto.push(proto, |p, s| match proto_name(p) {
            Some(name) => s.push_str(name),
            None => s.push_str(&p.to_string()),
        });
        let state = v.state()?;
        self.state.push(state.name(), |n, s| s.push_str(n));
        let orig = v.orig()?;
        let reply = v.reply()?;
        let tuple = |t: &Option<TupleView<'_>>| {
            t.as_ref()
                .map(|t| (Some(t.src()), Some(t.dst()), t.src_port(), t.dst_port()))
                .unwrap_or((None, None, None, None))
        };
        let (os, od, osp, odp) = tuple(&orig);
        let os = self.orig_src.push(&mut self.addrs, os, None);
        let od = self.orig_dst.push(&mut self.addrs, od, os);
        self.orig_src_port.push(osp);
        self.orig_dst_port.push(odp);
        let (rs, rd, rsp, rdp) = tuple(&reply);
        self.reply_src.push(&mut self.addrs, rs, od);
        self.reply_dst.push(&mut self.addrs, rd, os);
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
        self.helper.push(v.helper()?.map(|h| h.name));
        Ok(())
    }

    /// `[(name, column spec), …]` in column order, for `ipvsct._frame.build`.
    pub fn into_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
        let c = self;
        let texts: Vec<&str> = c.addrs.texts().collect();
        let mut strs: Vec<Option<Bound<'_, PyString>>> = vec![None; texts.len()];
        let cols: Vec<(&str, Bound<'_, PyAny>)> = vec![
            ("family", c.family.into_py(py)?),
            ("proto", c.proto.into_py(py)?),
            ("state", c.state.into_py(py)?),
            ("orig_src", c.orig_src.into_py(py, &mut strs, &texts)?),
            ("orig_dst", c.orig_dst.into_py(py, &mut strs, &texts)?),
            ("orig_src_port", c.orig_src_port.into_py(py)?),
            ("orig_dst_port", c.orig_dst_port.into_py(py)?),
            ("reply_src", c.reply_src.into_py(py, &mut strs, &texts)?),
            ("reply_dst", c.reply_dst.into_py(py, &mut strs, &texts)?),
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
            ("helper", c.helper.out.into_py(py)?),
        ];
        let out = PyList::empty(py);
        for (name, spec) in cols {
            out.append(PyTuple::new(py, [name.into_bound_py_any(py)?, spec])?)?;
        }
        Ok(out)
    }
}

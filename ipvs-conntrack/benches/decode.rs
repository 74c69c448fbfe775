//! Offline decoding speed, fed by real kernel bytes recorded at start.
//!
//! As root, the benchmark fills a throw-away namespace with `IPVSCT_BENCH_ENTRIES`
//! entries (default 250000) through the batched write path, records the NEW events
//! that fill causes and then one full dump of the table, byte for byte, and times:
//!
//! * `read`: reading every byte of the recording (a sum of its 64-bit words), the memory
//!   floor of a decoder that looks at every header;
//! * `frames`: splitting the datagrams into netlink messages ([`Frames`]) only;
//! * `view`: [`EntryViews`] over every datagram (the offline decoder, with the layout
//!   cache a live dump uses), reading a few fields of every entry;
//! * `owned`: the same, into owned [`Entry`] values;
//! * `view_uncached` / `owned_uncached`: [`EntryView::from_frame`] / [`Entry::from_frame`]
//!   on every entry (no layout cache: every attribute header checked);
//! * `event_owned` / `event_view`: [`decode_event`] / [`EntryViews`] on the recorded NEW
//!   events;
//! * `view_hot` / `owned_hot`: `view` and `owned` over the largest datagram only, again
//!   and again, with one decoder for all the repeats (the data stays in the CPU cache, as
//!   in a live dump where each datagram has just been copied in and the layout cache
//!   lives for the whole dump).
//!
//! Group `entries` reports entries/s, group `bytes` bytes/s (netlink bytes, headers included).
//! Without root, or with `IPVSCT_BENCH_FIXTURE=FILE` (a file of whole netlink messages as
//! `examples/record_fixture.rs` writes them), the dump comes from that file instead
//! (default `tests/fixtures/dump_all.bin`) and the event benchmarks are skipped.
//! `IPVSCT_BENCH_SAVE=FILE` writes the recorded dump to FILE for later runs.
//! `IPVSCT_BENCH_SECONDS` sets the measurement time per benchmark (default 8).
//! `IPVSCT_BENCH_CLOCK=cpu` measures the thread's CPU time instead of wall time (for a
//! machine shared with other work; results then read "ms cpu" and "Melem/cpu-s").

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use ipvs_conntrack::conntrack::events::decode_event;
use ipvs_conntrack::conntrack::{Entry, EntryView, EntryViews, Event, State, TcpState};
use ipvs_conntrack::netlink::Frames;

#[path = "support/cpu_time.rs"]
mod cpu_time;
#[path = "support/mod.rs"]
mod support;

use support::{is_entry_message, AnyError, Recording};

/// What the benchmarks decode.
struct Inputs {
    dump: Recording,
    events: Option<Recording>,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn default_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dump_all.bin")
}

/// Fills a namespace and records its events and dump.
fn record_live(entries: u32) -> Result<Inputs, AnyError> {
    let _max = support::ConntrackMaxGuard::at_least(u64::from(entries) + 10_000)?;
    let ns = support::BenchNs::create("decode")?;
    let netns = ns.netns();
    let ev = support::record_new_events(&netns, 0, entries)?;
    let dump = support::record_dump(&netns)?;
    if dump.entries != u64::from(entries) {
        return Err(format!("dumped {} entries, expected {entries}", dump.entries).into());
    }
    if ev.overruns > 0 {
        eprintln!(
            "note: {} receive overruns while recording events; {} of {entries} events kept",
            ev.overruns, ev.recording.entries
        );
    }
    Ok(Inputs {
        dump,
        events: Some(ev.recording),
    })
}

fn load() -> Inputs {
    let entries = u32::try_from(env_u64("IPVSCT_BENCH_ENTRIES", 250_000)).unwrap_or(250_000);
    let fixture = std::env::var_os("IPVSCT_BENCH_FIXTURE").map(PathBuf::from);
    let inputs = match fixture {
        Some(path) => file_inputs(&path),
        None if !support::is_root() => {
            eprintln!(
                "NOTE: not root, so no live recording: decoding the fixture {} instead",
                default_fixture().display()
            );
            file_inputs(&default_fixture())
        }
        None => match record_live(entries) {
            Ok(i) => i,
            Err(e) => {
                eprintln!(
                    "NOTE: live recording failed ({e}); decoding the fixture {} instead",
                    default_fixture().display()
                );
                file_inputs(&default_fixture())
            }
        },
    };
    if let Some(out) = std::env::var_os("IPVSCT_BENCH_SAVE") {
        let all: Vec<u8> = inputs.dump.datagrams.concat();
        match std::fs::write(&out, all) {
            Ok(()) => eprintln!("saved the recorded dump to {}", Path::new(&out).display()),
            Err(e) => eprintln!("warning: saving to {}: {e}", Path::new(&out).display()),
        }
    }
    let d = &inputs.dump;
    eprintln!(
        "input: {}: {} entries in {} datagrams, {} bytes ({:.1} bytes/entry)",
        d.source,
        d.entries,
        d.datagrams.len(),
        d.bytes,
        d.bytes_per_entry()
    );
    if let Some(e) = &inputs.events {
        eprintln!(
            "input: {}: {} events in {} datagrams, {} bytes",
            e.source,
            e.entries,
            e.datagrams.len(),
            e.bytes
        );
    }
    inputs
}

fn file_inputs(path: &Path) -> Inputs {
    match Recording::from_file(path) {
        Ok(dump) => Inputs { dump, events: None },
        Err(e) => {
            eprintln!("cannot read {}: {e}", path.display());
            std::process::exit(2);
        }
    }
}

fn inputs() -> &'static Inputs {
    static INPUTS: OnceLock<Inputs> = OnceLock::new();
    INPUTS.get_or_init(load)
}

/// Reads every byte of the recording (a sum of its 64-bit words): what streaming the bytes
/// from memory costs, the floor of any decoder that looks at every header.
fn read_all(r: &Recording) -> u64 {
    let mut sum = 0u64;
    for d in &r.datagrams {
        let words = d.chunks_exact(8);
        let tail = words.remainder().iter().map(|&b| u64::from(b)).sum::<u64>();
        sum = words.fold(sum.wrapping_add(tail), |s, w| {
            s.wrapping_add(u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])))
        });
    }
    black_box(sum)
}

/// Messages in all datagrams (control messages included).
fn count_frames(r: &Recording) -> u64 {
    let mut n = 0u64;
    for d in &r.datagrams {
        for f in Frames::new(d).flatten() {
            n += u64::from(black_box(f.header.length) > 0);
        }
    }
    n
}

/// Reads the source port, timeout and state of a view.
#[inline]
fn touch(v: &EntryView<'_>) -> u64 {
    let port = v.orig().ok().flatten().and_then(|t| t.src_port());
    u64::from(port.unwrap_or(0))
        + u64::from(v.timeout().unwrap_or(0))
        + u64::from(v.state().ok() == Some(State::Tcp(TcpState::Established)))
}

/// Decodes every entry as a view and touches it: one [`EntryViews`] over the datagrams in
/// turn (`next_buffer`), so the layout cache lives for the whole recording, as it does for
/// a live dump or event stream.
fn decode_views<D: AsRef<[u8]>>(datagrams: &[D]) -> u64 {
    let mut sum = 0u64;
    let Some(first) = datagrams.first() else {
        return 0;
    };
    let mut views = EntryViews::new(first.as_ref());
    for d in datagrams {
        views.next_buffer(d.as_ref());
        for v in views.by_ref().flatten() {
            sum += touch(&v);
        }
    }
    sum
}

/// Decodes every entry into an owned [`Entry`] (layout cache and shapes for the whole
/// recording, as [`decode_views`]).
fn decode_owned<D: AsRef<[u8]>>(datagrams: &[D]) -> u64 {
    let mut sum = 0u64;
    let Some(first) = datagrams.first() else {
        return 0;
    };
    let mut owned = EntryViews::new(first.as_ref()).owned();
    for d in datagrams {
        owned.next_buffer(d.as_ref());
        // Not `.flatten()`: that adapter moves each (large) entry once more.
        for e in owned.by_ref() {
            match e {
                Ok(e) => {
                    sum += u64::from(e.timeout.unwrap_or(0));
                    black_box(&e);
                }
                Err(_) => sum += 1,
            }
        }
    }
    sum
}

/// [`decode_views`] without the layout cache.
fn decode_views_uncached(datagrams: &[Vec<u8>]) -> u64 {
    let mut sum = 0u64;
    for d in datagrams {
        for f in Frames::new(d).flatten() {
            if !is_entry_message(&f) {
                continue;
            }
            if let Ok(v) = EntryView::from_frame(&f) {
                sum += touch(&v);
            }
        }
    }
    sum
}

/// [`decode_owned`] without the layout cache.
fn decode_owned_uncached(datagrams: &[Vec<u8>]) -> u64 {
    let mut sum = 0u64;
    for d in datagrams {
        for f in Frames::new(d).flatten() {
            if !is_entry_message(&f) {
                continue;
            }
            if let Ok(e) = Entry::from_frame(&f) {
                sum += u64::from(e.timeout.unwrap_or(0));
                black_box(e);
            }
        }
    }
    sum
}

/// Decodes every event message into an owned [`Event`].
fn decode_events(datagrams: &[Vec<u8>]) -> u64 {
    let mut n = 0u64;
    for d in datagrams {
        for f in Frames::new(d).flatten() {
            if let Ok(Event::Conntrack(c)) = decode_event(&f, None) {
                n += u64::from(c.entry.timeout.is_some());
                black_box(c);
            }
        }
    }
    n
}

fn configure<M: Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(env_u64("IPVSCT_BENCH_SECONDS", 8)));
}

/// Times `f` over the whole recording, as entries/s.
fn bench_entries<M: Measurement>(c: &mut Criterion<M>) {
    let inp = inputs();
    let dump = &inp.dump;
    // Sanity: every decoder sees every entry, so the timings compare like with like.
    let views_ok = dump
        .datagrams
        .iter()
        .flat_map(|d| Frames::new(d).flatten())
        .filter(|f| is_entry_message(f) && EntryView::from_frame(f).is_ok())
        .count() as u64;
    assert_eq!(
        views_ok, dump.entries,
        "some recorded entries fail to decode"
    );
    let mut g = c.benchmark_group("entries");
    configure(&mut g);
    g.throughput(Throughput::Elements(dump.entries));
    g.bench_function("read", |b| b.iter(|| read_all(dump)));
    g.bench_function("frames", |b| b.iter(|| count_frames(dump)));
    g.bench_function("view", |b| b.iter(|| decode_views(&dump.datagrams)));
    g.bench_function("owned", |b| b.iter(|| decode_owned(&dump.datagrams)));
    g.bench_function("view_uncached", |b| {
        b.iter(|| decode_views_uncached(&dump.datagrams))
    });
    g.bench_function("owned_uncached", |b| {
        b.iter(|| decode_owned_uncached(&dump.datagrams))
    });
    if let Some(ev) = &inp.events {
        g.throughput(Throughput::Elements(ev.entries));
        g.bench_function("event_owned", |b| b.iter(|| decode_events(&ev.datagrams)));
        g.bench_function("event_view", |b| b.iter(|| decode_views(&ev.datagrams)));
    }
    // One full datagram over and over: the decoder's speed with the data in cache. The
    // largest one (the kernel's first dump datagram is a small one).
    let first: Vec<Vec<u8>> = dump
        .datagrams
        .iter()
        .max_by_key(|d| d.len())
        .cloned()
        .into_iter()
        .collect();
    let in_first = Recording::new(first.clone(), String::new()).entries;
    eprintln!("input: the hot benchmarks decode one datagram of {in_first} entries");
    if in_first > 0 {
        // One decoder for all the repeats (as a live dump keeps its layout cache).
        const REPEAT: usize = 256;
        let hot: Vec<&[u8]> = vec![first[0].as_slice(); REPEAT];
        g.throughput(Throughput::Elements(in_first * REPEAT as u64));
        g.bench_function("view_hot", |b| b.iter(|| decode_views(&hot)));
        g.bench_function("owned_hot", |b| b.iter(|| decode_owned(&hot)));
    }
    g.finish();
}

/// The main decoders again, as bytes/s.
fn bench_bytes<M: Measurement>(c: &mut Criterion<M>) {
    let dump = &inputs().dump;
    let mut g = c.benchmark_group("bytes");
    configure(&mut g);
    g.throughput(Throughput::Bytes(dump.bytes));
    g.bench_function("read", |b| b.iter(|| read_all(dump)));
    g.bench_function("frames", |b| b.iter(|| count_frames(dump)));
    g.bench_function("view", |b| b.iter(|| decode_views(&dump.datagrams)));
    g.bench_function("owned", |b| b.iter(|| decode_owned(&dump.datagrams)));
    g.finish();
}

fn main() {
    if std::env::var("IPVSCT_BENCH_CLOCK").is_ok_and(|v| v == "cpu") {
        let mut c = Criterion::default()
            .with_measurement(cpu_time::ThreadCpuTime)
            .configure_from_args();
        bench_entries(&mut c);
        bench_bytes(&mut c);
        c.final_summary();
    } else {
        let mut c = Criterion::default().configure_from_args();
        bench_entries(&mut c);
        bench_bytes(&mut c);
        c.final_summary();
    }
}

//! A criterion measurement of the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`).
//!
//! On a machine shared with other work, wall time also counts the moments the benchmark
//! waits for a core; CPU time does not (cache and memory contention still show).

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::Throughput;

/// CPU time of the calling thread.
pub struct ThreadCpuTime;

fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu()
    }

    fn end(&self, start: Duration) -> Duration {
        thread_cpu().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Formats nanoseconds of CPU time and the throughputs derived from them.
struct CpuFormatter;

/// Divides `values` by the unit that suits `typical` (nanoseconds) and names it.
fn scale_ns(typical: f64, values: &mut [f64]) -> &'static str {
    let (div, unit) = if typical < 1e3 {
        (1.0, "ns cpu")
    } else if typical < 1e6 {
        (1e3, "µs cpu")
    } else if typical < 1e9 {
        (1e6, "ms cpu")
    } else {
        (1e9, "s cpu")
    };
    for v in values.iter_mut() {
        *v /= div;
    }
    unit
}

/// Turns per-iteration nanoseconds into `per_iter` units per CPU second, scaled.
fn per_second(
    per_iter: f64,
    typical: f64,
    values: &mut [f64],
    units: [&'static str; 4],
    base: f64,
) -> &'static str {
    let rate = per_iter * 1e9 / typical;
    let (div, unit) = if rate < base {
        (1.0, units[0])
    } else if rate < base * base {
        (base, units[1])
    } else if rate < base * base * base {
        (base * base, units[2])
    } else {
        (base * base * base, units[3])
    };
    for v in values.iter_mut() {
        *v = per_iter * 1e9 / *v / div;
    }
    unit
}

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        scale_ns(typical, values)
    }

    fn scale_throughputs(&self, typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        match *t {
            Throughput::Bytes(b) => per_second(
                b as f64,
                typical,
                values,
                ["B/cpu-s", "KiB/cpu-s", "MiB/cpu-s", "GiB/cpu-s"],
                1024.0,
            ),
            Throughput::BytesDecimal(b) => per_second(
                b as f64,
                typical,
                values,
                ["B/cpu-s", "KB/cpu-s", "MB/cpu-s", "GB/cpu-s"],
                1000.0,
            ),
            Throughput::Elements(e) => per_second(
                e as f64,
                typical,
                values,
                ["elem/cpu-s", "Kelem/cpu-s", "Melem/cpu-s", "Gelem/cpu-s"],
                1000.0,
            ),
            Throughput::Bits(b) => per_second(
                b as f64,
                typical,
                values,
                ["b/cpu-s", "Kb/cpu-s", "Mb/cpu-s", "Gb/cpu-s"],
                1000.0,
            ),
        }
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

//! Prints a namespace's conntrack table as JSON, one entry per line, through the Rust API
//! (the reference the Python tests compare `ipvsct` with).
//!
//! ```text
//! ct_json [NETNS]      # an `ip netns` name or a path; none = this namespace
//! ```
//!
//! The first line is the count (`{"count": N}`), then one `Entry` per line as the
//! core's serde serialization writes it (state timeouts joined).

use std::io::Write;

use ipvs_conntrack::conntrack::{Conntrack, DumpFilter};
use ipvs_conntrack::Netns;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let netns = std::env::args()
        .nth(1)
        .map_or(Netns::Current, |s| Netns::parse(&s));
    let mut ct = Conntrack::open(&netns)?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    writeln!(out, "{{\"count\": {}}}", ct.count()?.entries)?;
    for e in ct.dump(&DumpFilter::all())? {
        serde_json::to_writer(&mut out, &e?)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

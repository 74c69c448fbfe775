//! Records one dump of a namespace's table and times offline decoding of it (view and owned).
//!
//! Usage: `decode_speed NETNS [ROUNDS]`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ipvs_conntrack::conntrack::{Conntrack, DumpFilter, Entry, EntryView};
use ipvs_conntrack::netlink::Frames;
use ipvs_conntrack::socket::Direction;
use ipvs_conntrack::Netns;

fn main() -> Result<(), ipvs_conntrack::Error> {
    let mut args = std::env::args().skip(1);
    let ns = args.next().map_or(Netns::Current, |s| Netns::parse(&s));
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(50);
    let mut ct = Conntrack::open(&ns)?;
    ct.set_join_timeouts(false);
    let datagrams = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let sink = datagrams.clone();
    ct.socket_mut()
        .set_recorder(Some(Box::new(move |d, b: &[u8]| {
            if d == Direction::Received {
                sink.lock().unwrap().push(b.to_vec());
            }
        })));
    let n = ct.dump(&DumpFilter::all())?.count();
    let datagrams = datagrams.lock().unwrap().clone();
    let bytes: usize = datagrams.iter().map(Vec::len).sum();
    println!("{n} entries, {} datagrams, {bytes} bytes", datagrams.len());

    let t = Instant::now();
    let mut seen = 0usize;
    for _ in 0..rounds {
        for d in &datagrams {
            for f in Frames::new(d).flatten() {
                if let Ok(v) = EntryView::from_frame(&f) {
                    seen += usize::from(v.timeout().is_some());
                }
            }
        }
    }
    let per = t.elapsed().as_nanos() as f64 / (rounds * n) as f64;
    println!("view:  {per:.1} ns/entry ({seen})");

    let t = Instant::now();
    let mut seen = 0usize;
    for _ in 0..rounds {
        for d in &datagrams {
            for f in Frames::new(d).flatten() {
                if let Ok(e) = Entry::from_frame(&f) {
                    seen += usize::from(e.timeout.is_some());
                }
            }
        }
    }
    let per = t.elapsed().as_nanos() as f64 / (rounds * n) as f64;
    println!("owned: {per:.1} ns/entry ({seen})");
    Ok(())
}

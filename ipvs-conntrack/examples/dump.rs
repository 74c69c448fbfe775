//! Dumps the conntrack table of a namespace (argument: `ip netns` name; none = current).

use ipvs_conntrack::conntrack::{Conntrack, DumpFilter};
use ipvs_conntrack::Netns;

fn main() -> Result<(), ipvs_conntrack::Error> {
    let ns = std::env::args()
        .nth(1)
        .map_or(Netns::Current, |s| Netns::parse(&s));
    let mut ct = Conntrack::open(&ns)?;
    println!("{:?}", ct.count()?);
    println!("{:?}", ct.default_timeouts()?);
    for e in ct.dump(&DumpFilter::all())? {
        let e = e?;
        println!(
            "{} {} {}:{:?} -> {}:{:?} state={} timeout={:?} state_timeout={:?} status={:?} id={:?}",
            e.family,
            e.orig.proto,
            e.orig.src,
            e.orig.src_port,
            e.orig.dst,
            e.orig.dst_port,
            e.state,
            e.timeout,
            e.state_timeout,
            e.status,
            e.id
        );
    }
    for s in ct.cpu_stats()? {
        println!("{s:?}");
    }
    Ok(())
}

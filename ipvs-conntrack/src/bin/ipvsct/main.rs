//! `ipvsct`: conntrack and IPVS tables with their state timeouts.

fn main() {
    println!("ipvsct: work in progress");
}

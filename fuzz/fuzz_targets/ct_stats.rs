//! Table statistics: every frame of the input through `GlobalStats::from_frame` and
//! `CpuStats::from_frame`, and the per-CPU sum. Seeds: tests/fixtures/count.bin, cpu_stats.bin.
#![no_main]

use ipvs_conntrack::conntrack::{CpuStats, GlobalStats};
use ipvs_conntrack::netlink::Frames;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut cpus = Vec::new();
    for frame in Frames::new(data) {
        let Ok(frame) = frame else { break };
        let _ = frame.control("fuzz");
        match GlobalStats::from_frame(&frame) {
            Ok(g) => assert!(g.unknown.iter().all(|a| a.value.len() <= data.len())),
            Err(e) => {
                let _ = e.to_string();
                assert!(e.offset <= data.len());
            }
        }
        match CpuStats::from_frame(&frame) {
            Ok(c) => cpus.push(c),
            Err(e) => {
                let _ = e.to_string();
                assert!(e.offset <= data.len());
            }
        }
    }
    let _ = CpuStats::sum(&cpus);
});

//! The capacity model on a live namespace: counts, states and rates against the kernel.

mod support;

use std::time::Duration;

use ipvs_conntrack::capacity::{count_states, observe};
use ipvs_conntrack::conntrack::Conntrack;

use support::{setup, tcp_exchange};

#[test]
fn capacity_model_matches_the_table_and_measures_the_rate() {
    let Some(ns) = setup(
        "capacity_model_matches_the_table_and_measures_the_rate",
        &[],
    ) else {
        return;
    };
    ns.set_sysctl("net.netfilter.nf_conntrack_tcp_timeout_time_wait", "77");
    let lo = "127.0.0.1".parse().unwrap();
    for _ in 0..6 {
        tcp_exchange(&ns, &ns, lo);
    }
    let mut ct = Conntrack::open(&ns.netns()).unwrap();
    let timeouts = ct.default_timeouts().unwrap();
    let states = count_states(&mut ct, &timeouts).unwrap();
    let tw = states
        .iter()
        .find(|s| s.proto == "tcp" && s.state == "TIME_WAIT")
        .expect("TIME_WAIT entries");
    assert_eq!(tw.count, 6);
    assert_eq!(tw.state_timeout, Some(77));
    assert!(tw.max_seconds_left.unwrap() <= 77);

    // Make 10 more connections while the model measures over 1.5 s.
    let worker = std::thread::scope(|s| {
        let h = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            for _ in 0..10 {
                tcp_exchange(&ns, &ns, lo);
            }
        });
        let r = observe(&mut ct, Duration::from_millis(1500)).unwrap();
        h.join().unwrap();
        r
    });
    let r = worker;
    let o = &r.observation;
    let count = ct.count().unwrap();
    assert_eq!(o.entries, u64::from(count.entries));
    assert_eq!(o.max_entries, u64::from(count.max_entries.unwrap()));
    assert_eq!(o.states.iter().map(|s| s.count).sum::<u64>(), o.entries);
    assert_eq!(o.entries, 16);
    // 10 new connections, counted from NEW events, over ~1.5 s.
    assert_eq!(o.rate_source, Some("events"));
    assert!(!o.rate_is_lower_bound);
    let rate = o.new_per_second.unwrap();
    let expected = 10.0 / o.interval_seconds;
    assert!((rate - expected).abs() < 1e-9, "{rate} vs {expected}");
    assert!(o.interval_seconds >= 1.5 && o.interval_seconds < 5.0);
    assert_eq!(r.short_connection_dwell_seconds, Some(77));
    let m = r.max_short_connections_per_second.unwrap();
    assert!((m - o.max_entries as f64 / 77.0).abs() < 1e-6);
    assert_eq!(r.expected_occupancy, Some(rate * 77.0));
    assert_eq!(
        r.dominant_state
            .as_ref()
            .map(|d| (d.0.as_str(), d.1.as_str())),
        Some(("tcp", "TIME_WAIT"))
    );
    assert!(r.suggestions.is_empty(), "{:?}", r.suggestions);
}

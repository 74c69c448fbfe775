//! Samples of the IPVS `conns` counters, and reading them in step with the kernel's
//! estimator, which copies the per-CPU counters into the reported ones every 2 s.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::ipvs::service::ServiceKey;
use crate::ipvs::{Ipvs, Snapshot};

/// How often the kernel copies its per-CPU counters into the values it reports (its rate
/// estimator's period): a counter read shows the traffic up to the last copy.
pub const ESTIMATOR_PERIOD: Duration = Duration::from_secs(2);

/// The 64-bit `conns` counters of every service and real server at one moment.
#[derive(Clone, Debug)]
pub struct ConnSample {
    taken: Instant,
    services: Vec<ServiceCounters>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ServiceCounters {
    key: ServiceKey,
    conns: Option<u64>,
    dests: Vec<(SocketAddr, Option<u64>)>,
}

impl ConnSample {
    /// Reads the counters now (dated to the start of the read).
    pub fn read(ipvs: &mut Ipvs) -> Result<ConnSample> {
        let taken = Instant::now();
        let snapshot = ipvs.snapshot()?;
        Ok(Self::of(&snapshot, taken))
    }

    /// The counters of a snapshot read at `taken`.
    pub fn of(snapshot: &Snapshot, taken: Instant) -> ConnSample {
        let services = snapshot
            .iter()
            .map(|(s, dests)| ServiceCounters {
                key: s.key,
                conns: s.best_stats().map(|st| st.conns),
                dests: dests
                    .iter()
                    .map(|d| (d.socket_addr(), d.best_stats().map(|st| st.conns)))
                    .collect(),
            })
            .collect();
        ConnSample { taken, services }
    }

    /// Reads the counters a whole number of [`ESTIMATOR_PERIOD`]s after `since` was read
    /// (sleeping until then, at least one period). The kernel copies its counters every
    /// period, so two reads a whole number of periods apart are the same time after their
    /// last copy, and their difference counts exactly the traffic of that many periods.
    pub fn read_aligned(ipvs: &mut Ipvs, since: &ConnSample) -> Result<ConnSample> {
        sleep_to_period_boundary(since.taken);
        Self::read(ipvs)
    }

    /// The same counters dated `taken`: for a read made once the counters have caught up
    /// with traffic that is known to have ended at `taken`.
    pub fn dated(mut self, taken: Instant) -> ConnSample {
        self.taken = taken;
        self
    }

    /// When the counters were read (or the moment they were dated to).
    pub fn taken(&self) -> Instant {
        self.taken
    }

    /// The `conns` counter of a service (None if absent or without statistics).
    pub fn service_conns(&self, key: &ServiceKey) -> Option<u64> {
        self.services.iter().find(|s| s.key == *key)?.conns
    }

    /// The `conns` counter of one real server of a service.
    pub fn dest_conns(&self, key: &ServiceKey, dest: SocketAddr) -> Option<u64> {
        let s = self.services.iter().find(|s| s.key == *key)?;
        s.dests.iter().find(|(a, _)| *a == dest)?.1
    }

    /// The sum of every service's `conns` counter.
    pub fn total_conns(&self) -> u64 {
        self.services.iter().filter_map(|s| s.conns).sum()
    }
}

/// Sleeps until the first instant `since + k × ESTIMATOR_PERIOD` (k ≥ 1) that is not past.
pub(crate) fn sleep_to_period_boundary(since: Instant) {
    let period = ESTIMATOR_PERIOD.as_secs_f64();
    let elapsed = since.elapsed().as_secs_f64();
    let k = (elapsed / period).ceil().max(1.0);
    let target = since + Duration::from_secs_f64(k * period);
    std::thread::sleep(target.saturating_duration_since(Instant::now()));
}

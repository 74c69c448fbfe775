"""``ipvsct.capacity()`` against the real kernel in a namespace the test creates (root):
the entry count, states, rate of new connections and headroom of a table filled with
known entries while the observation runs."""

from __future__ import annotations

import threading
import time

import pytest

import ipvsct
from conftest import Namespace


def test_capacity_report_of_a_known_table(netns: Namespace) -> None:
    netns.insert_batch(2000, timeout=600)
    ct = ipvsct.Conntrack(netns.name)
    added = [
        {"orig": ipvsct.Tuple("10.5.0.1", "10.5.0.2", "tcp", src_port=p, dst_port=443),
         "timeout": 500, "state": "ESTABLISHED"}
        for p in range(1, 301)
    ]
    result = []

    def burst() -> None:
        time.sleep(0.4)
        result.append(ct.create_many(added))

    t = threading.Thread(target=burst)
    t.start()
    try:
        rep = ipvsct.capacity(ct, interval=1.5)
    finally:
        t.join(timeout=30)
    assert result and result[0].ok
    o = rep.observation
    count = int(netns.conntrack("-C").strip())
    mx = int(netns.sysctl("net.netfilter.nf_conntrack_max"))
    assert o.entries == count == 2300 and o.max_entries == mx
    assert rep.headroom_entries == mx - 2300
    assert rep.fill_ratio == pytest.approx(2300 / mx)
    assert (o.buckets or 0) == int(netns.sysctl("net.netfilter.nf_conntrack_buckets"))
    # Every entry is an ESTABLISHED TCP connection with at most 600 s left.
    assert [(s.proto, s.state, s.count) for s in o.states] == [("tcp", "ESTABLISHED", 2300)]
    est = o.states[0]
    assert est.state_timeout == o.timeouts.tcp.established == ct.default_timeouts().tcp.established
    assert est.max_seconds_left is not None and 590 <= est.max_seconds_left <= 600
    # The 300 entries created during the interval were counted from their NEW events.
    assert o.rate_source == "events" and not o.rate_is_lower_bound
    assert 1.4 < o.interval_seconds < 5
    assert o.new_per_second is not None and round(o.new_per_second * o.interval_seconds) == 300
    assert o.growth_per_second is not None and round(o.growth_per_second * o.interval_seconds) == 300
    tw = ct.default_timeouts().tcp.time_wait
    assert tw is not None
    assert rep.short_connection_dwell_seconds == tw
    assert rep.max_short_connections_per_second == pytest.approx(mx / tw)
    assert rep.dominant_state is not None and rep.dominant_state[:2] == ("tcp", "ESTABLISHED")
    assert rep.dominant_state[2] == pytest.approx(1.0)
    d = rep.to_dict()
    assert d["observation"]["states"][0]["count"] == 2300
    assert d["observation"]["timeouts"]["tcp"]["established"] == est.state_timeout
    with pytest.raises(ValueError):
        ipvsct.capacity(ct, interval=-1)
    quick = ipvsct.capacity(ct, interval=0)
    assert quick.observation.new_per_second is None and quick.observation.entries == 2300

"""Conntrack.dataframe(): the same rows as Conntrack.list(), typed columns, and fast."""

from __future__ import annotations

import time

import pytest

import ipvsct
from conftest import BIG_TABLE, IN_CI, Namespace
from test_kernel import INSERTED, populate

try:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
except ImportError:  # pragma: no cover - run-tests.sh installs pandas
    pd = None


@pytest.fixture(autouse=True)
def need_pandas() -> None:
    if pd is None:
        if IN_CI:
            pytest.fail("pandas is not installed (python/run-tests.sh installs it)")
        pytest.skip("pandas is not installed")


def test_rows_match_entries(netns: Namespace) -> None:
    populate(netns)
    ct = ipvsct.Conntrack(netns.name)
    entries = {e.id: e for e in ct.list()}
    df = ct.dataframe()
    assert len(df) == len(entries) >= len(INSERTED)
    assert str(df["orig_src_port"].dtype) == "UInt16"
    assert str(df["timeout"].dtype) == "UInt32"
    assert str(df["state"].dtype) == "category"
    for row in df.itertuples(index=False):
        e = entries[row.id]
        assert row.family == e.family.name.lower()
        assert row.proto == (e.orig.proto_name or str(e.proto))
        assert (row.state if isinstance(row.state, str) else None) == (
            e.state.name if e.state is not None else None
        )
        assert row.orig_src == str(e.orig.src) and row.reply_dst == str(e.reply.dst)
        for col, want in [
            ("orig_src_port", e.orig.src_port),
            ("orig_dst_port", e.orig.dst_port),
            ("reply_src_port", e.reply.src_port),
            ("icmp_id", e.orig.icmp_id),
            ("mark", e.mark),
            ("zone", e.zone),
            ("state_timeout", e.state_timeout),
            ("use_count", e.use_count),
        ]:
            got = getattr(row, col)
            assert (None if got is pd.NA else got) == want, (col, e)
        assert row.status == int(e.status)
        assert abs(row.timeout - (e.timeout or 0)) <= 2
    sub = ct.dataframe(zone=7)
    assert sorted(sub["id"]) == sorted(e.id or 0 for e in entries.values() if e.zone == 7)
    by_state = df.groupby("state", observed=True).size().to_dict()
    assert by_state["ESTABLISHED"] == sum(
        1 for e in entries.values() if e.state is not None and e.state.name == "ESTABLISHED"
    )


def test_a_big_table_is_fast(big_netns: Namespace) -> None:
    ct = ipvsct.Conntrack(big_netns.name)
    t0 = time.perf_counter()
    n = sum(1 for _ in ct.dump())
    t1 = time.perf_counter()
    df = ct.dataframe()
    t2 = time.perf_counter()
    assert n == len(df) == BIG_TABLE
    assert df["state"].value_counts().to_dict() == {"ESTABLISHED": BIG_TABLE}
    assert df["state_timeout"].min() == ct.default_timeouts().tcp.established
    print(f"{BIG_TABLE} entries: iterate {t1 - t0:.3f} s, dataframe {t2 - t1:.3f} s")
    # Column-wise building costs little beyond the dump: bounded by one iteration
    # (which makes an Entry object per row) plus a margin for a loaded machine.
    assert t2 - t1 < max(2.0, 1.5 * (t1 - t0))


def test_categorical_fast_path_matches_the_public_call() -> None:
    import numpy as np

    from ipvsct._frame import categorical

    cases: list[tuple[list[str], list[int]]] = [
        (["10.0.0.1", "192.0.2.255", "2001:db8::1"], [0, -1, 2, 1, 0, 0]),
        (["ESTABLISHED"], [-1, -1]),
        ([], []),
    ]
    for cats, codes in cases:
        c = np.array(codes, dtype=np.int32)
        fast = categorical(pd, c, cats)
        public = pd.Categorical.from_codes(c, categories=cats)
        assert fast.dtype == public.dtype
        assert fast.categories.dtype == public.categories.dtype
        assert list(fast.categories) == cats
        assert fast.equals(public)
        assert [None if pd.isna(x) else x for x in fast] == [
            None if i < 0 else cats[i] for i in codes
        ]

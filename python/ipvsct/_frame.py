"""Builds pandas DataFrames from the column buffers ``Conntrack.dataframe()`` collects."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

__all__ = ["require_pandas", "build", "categorical", "from_columns"]

_MISSING = (
    "{what} needs pandas, which is not installed: "
    "pip install pandas  (or: pip install 'ipvsct[pandas]')"
)


def require_pandas(what: str = "Conntrack.dataframe()") -> Any:
    """Imports pandas, or raises ImportError saying how to install it."""
    try:
        import pandas  # type: ignore[import-untyped,unused-ignore]
    except ImportError as e:
        raise ImportError(_MISSING.format(what=what)) from e
    return pandas


def categorical(pd: Any, codes: Any, categories: List[str]) -> Any:
    """``pd.Categorical.from_codes(codes, categories=categories)`` for codes and
    categories that are valid by construction (codes in range, categories distinct).

    The public call checks both, which for a column of distinct addresses costs more
    than the rest of the column (hashing every category); pandas' own fast path skips
    the checks. Pandas without it (or with another signature) gets the public call.
    The result is the same (tests compare the two).
    """
    try:
        dtype = pd.CategoricalDtype._from_fastpath(categories, ordered=False)
        return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
    except (AttributeError, TypeError):
        return pd.Categorical.from_codes(codes, categories=categories)


def build(columns: Sequence[Tuple[str, Tuple[Any, ...]]]) -> Any:
    """Wraps the column buffers in pandas arrays (no Python loop over rows)."""
    pd = require_pandas()
    import numpy as np

    data = {}
    for name, spec in columns:
        kind = spec[0]
        if kind == "int":
            _, dtype, values, mask = spec
            data[name] = pd.arrays.IntegerArray(
                np.frombuffer(values, dtype=dtype),
                np.frombuffer(mask, dtype=np.bool_),
            )
        elif kind == "category":
            _, codes, categories = spec
            data[name] = categorical(pd, np.frombuffer(codes, dtype=np.int32), categories)
        else:
            raise ValueError(f"unknown column kind {kind!r} for {name!r}")
    return pd.DataFrame(data)


def from_columns(columns: Dict[str, List[Any]]) -> Any:
    """A DataFrame of ``{column: values}`` (``Ipvs.dataframe()``; IPVS tables are small)."""
    pd = require_pandas()
    return pd.DataFrame(columns)

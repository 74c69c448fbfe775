"""Builds pandas DataFrames from the column buffers ``Conntrack.dataframe()`` collects."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

__all__ = ["require_pandas", "build", "from_columns"]

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
            data[name] = pd.Categorical.from_codes(
                np.frombuffer(codes, dtype=np.int32), categories=categories
            )
        else:
            raise ValueError(f"unknown column kind {kind!r} for {name!r}")
    return pd.DataFrame(data)


def from_columns(columns: Dict[str, List[Any]]) -> Any:
    """A DataFrame of ``{column: values}`` (``Ipvs.dataframe()``; IPVS tables are small)."""
    pd = require_pandas()
    return pd.DataFrame(columns)

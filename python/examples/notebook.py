"""Writes conntrack_states.ipynb from conntrack_states.py (cells split at ``# %%``).

``python notebook.py`` rewrites the notebook; ``python notebook.py --check`` exits 1
if the notebook does not hold exactly the script's cells (the tests run this).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "conntrack_states.py"
NOTEBOOK = HERE / "conntrack_states.ipynb"


def cells(source: str) -> List[Dict[str, Any]]:
    """The script's cells: markdown cells have their `# ` prefixes removed."""
    out: List[Dict[str, Any]] = []
    chunks: List[List[str]] = []
    kinds: List[str] = []
    for line in source.splitlines():
        if line.startswith("# %%"):
            kinds.append("markdown" if "[markdown]" in line else "code")
            chunks.append([])
        elif chunks:
            chunks[-1].append(line)
    for kind, lines in zip(kinds, chunks):
        while lines and not lines[-1].strip():
            lines.pop()
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        text = [ln + "\n" for ln in lines]
        if text:
            text[-1] = text[-1].rstrip("\n")
        cell: Dict[str, Any] = {"cell_type": kind, "metadata": {}, "source": text}
        if kind == "code":
            cell["execution_count"] = None
            cell["outputs"] = []
        out.append(cell)
    return out


def notebook() -> str:
    nb: Dict[str, Any] = {
        "cells": cells(SCRIPT.read_text()),
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for i, c in enumerate(nb["cells"]):
        c["id"] = f"cell-{i}"
    return json.dumps(nb, indent=1) + "\n"


def main() -> int:
    text = notebook()
    if "--check" in sys.argv[1:]:
        if NOTEBOOK.read_text() != text:
            print(f"{NOTEBOOK.name} is stale: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    NOTEBOOK.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

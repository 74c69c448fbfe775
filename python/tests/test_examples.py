"""The notebook example: its script form runs (text without pandas/matplotlib, and
with the plots), and the .ipynb holds exactly the script's cells."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Dict

import ipvsct
from conftest import HERE, Namespace
from test_kernel import populate

EXAMPLES = HERE.parent / "examples"
SCRIPT = EXAMPLES / "conntrack_states.py"


def run_script(*args: str, hide: str = "") -> str:
    """Runs the example; `hide` names modules made unimportable (as if not installed)."""
    prelude = "".join(f"sys.modules[{m!r}] = None; " for m in hide.split(",") if m)
    code = (
        f"import sys, runpy; {prelude}"
        f"sys.argv = [{str(SCRIPT)!r}, *{list(args)!r}]; "
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_notebook_matches_the_script() -> None:
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "notebook.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr


def test_script_prints_states_without_pandas(netns: Namespace) -> None:
    populate(netns)
    entries = ipvsct.Conntrack(netns.name).list()
    out = run_script("--netns", netns.name, hide="pandas,matplotlib")
    assert f"entries: {len(entries)}" in out
    rows = dict(
        re.findall(r"^([a-z0-9]+(?: [A-Z_0-9]+)?)\s+(\d+)\s+\d+\s+[\d.]+\s+\d+\s+\S+$", out, re.M)
    )
    want: Dict[str, int] = {}
    for e in entries:
        label = f"{e.orig.proto_name} {e.state.name}" if e.state is not None else f"{e.orig.proto_name}"
        want[label] = want.get(label, 0) + 1
    assert {k: int(v) for k, v in rows.items()} == want
    assert "install matplotlib" in out
    assert re.search(r"capacity: \d+ of \d+ entries in use .* headroom \d+ entries", out)


def test_script_plots_with_matplotlib(netns: Namespace, tmp_path: Path) -> None:
    try:
        import matplotlib  # noqa: F401
        import pandas  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        from conftest import skip_or_fail

        skip_or_fail("pandas/matplotlib not installed (python/run-tests.sh installs them)")
    populate(netns)
    png = tmp_path / "states.png"
    out = run_script("--netns", netns.name, "--plot", str(png))
    assert "state_timeout_s" in out and f"plots saved to {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

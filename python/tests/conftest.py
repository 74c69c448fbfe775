"""Shared fixtures: throw-away network namespaces (root), the skip-or-fail rule, helpers
to insert entries and to read the table with conntrack-tools (``-o xml``)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = REPO / "tests" / "fixtures"
IN_CI = os.environ.get("CI") == "true"
CMD_TIMEOUT = 120

_counter = itertools.count()


def skip_or_fail(reason: str) -> None:
    """A loud SKIPPED line and a pytest skip; under CI=true a failure instead."""
    if IN_CI:
        pytest.fail(f"cannot run under CI=true: {reason}")
    print(f"SKIPPED: {reason}", file=sys.stderr)
    pytest.skip(reason)


def run(cmd: List[str], *, check: bool = True, timeout: float = CMD_TIMEOUT) -> str:
    """Runs a command (bounded in time) and returns its stdout."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd!r} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


@dataclass
class XmlFlow:
    """One ``<flow>`` of ``conntrack -o xml``."""

    orig: Dict[str, str] = field(default_factory=dict)
    reply: Dict[str, str] = field(default_factory=dict)
    meta: Dict[str, str] = field(default_factory=dict)
    flags: List[str] = field(default_factory=list)


def _direction(meta: ET.Element) -> Dict[str, str]:
    out: Dict[str, str] = {}
    l3 = meta.find("layer3")
    if l3 is not None:
        out["family"] = l3.get("protoname", "")
        for tag in ("src", "dst"):
            el = l3.find(tag)
            if el is not None and el.text:
                out[tag] = el.text
    l4 = meta.find("layer4")
    if l4 is not None:
        out["proto"] = l4.get("protonum", "")
        for tag in ("sport", "dport"):
            el = l4.find(tag)
            if el is not None and el.text:
                out[tag] = el.text
    counters = meta.find("counters")
    if counters is not None:
        for tag in ("packets", "bytes"):
            el = counters.find(tag)
            if el is not None and el.text:
                out[tag] = el.text
    return out


def parse_xml(text: str) -> List[XmlFlow]:
    """Parses ``conntrack -o xml`` output (also the unterminated one of ``-G``)."""
    start = text.find("<conntrack>")
    if start < 0:
        return []
    body = text[start:]
    if "</conntrack>" not in body:
        body += "</conntrack>"
    root = ET.fromstring(body)
    flows = []
    for f in root.iter("flow"):
        x = XmlFlow()
        for meta in f.iter("meta"):
            d = meta.get("direction")
            if d == "original":
                x.orig = _direction(meta)
            elif d == "reply":
                x.reply = _direction(meta)
            elif d == "independent":
                for child in meta:
                    if len(child) == 0 and (child.text or "").strip():
                        x.meta[child.tag] = (child.text or "").strip()
                    elif len(child) == 0:
                        x.flags.append(child.tag)
                    elif child.tag == "timestamp":
                        start_el = child.find("start")
                        if start_el is not None and start_el.text:
                            x.meta["timestamp_start"] = start_el.text
                    elif child.tag == "labels":
                        x.meta["labels"] = ",".join(
                            (el.text or "") for el in child.iter("label")
                        )
        flows.append(x)
    return flows


class Namespace:
    """A network namespace created for one test (deleted by the fixture)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def exec(self, *cmd: str, check: bool = True, timeout: float = CMD_TIMEOUT) -> str:
        return run(["ip", "netns", "exec", self.name, *cmd], check=check, timeout=timeout)

    def conntrack(self, *args: str, check: bool = True) -> str:
        return self.exec("conntrack", *args, check=check)

    def insert_batch(self, count: int, *, start: int = 0, timeout: int = 600, mark: int = 0) -> None:
        """Inserts `count` TCP entries with ``ctbatch.py`` (batched ctnetlink requests)."""
        out = self.exec(
            sys.executable,
            str(HERE / "ctbatch.py"),
            str(count),
            "--start",
            str(start),
            "--timeout",
            str(timeout),
            "--mark",
            str(mark),
        )
        assert out.strip() == str(count)

    def xml(self, *filters: str) -> List[XmlFlow]:
        return parse_xml(self.conntrack("-L", *filters, "-o", "xml,id"))

    def sysctl(self, key: str) -> str:
        return self.exec("sysctl", "-n", key).strip()


def _require_root_tools(*tools: str) -> None:
    if os.geteuid() != 0:
        skip_or_fail("needs root (CAP_NET_ADMIN, ip netns)")
    for t in ("ip", *tools):
        if shutil.which(t) is None:
            skip_or_fail(f"{t} is missing (apt-get install -y iproute2 conntrack)")


def _create(prefix: str) -> Namespace:
    name = f"ipvsct-py-{prefix}-{os.getpid()}-{next(_counter)}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        skip_or_fail(f"ip netns add {name} failed: {r.stderr.strip()}")
    return Namespace(name)


def _delete(ns: Namespace) -> None:
    subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, timeout=20)


@pytest.fixture
def netns() -> Iterator[Namespace]:
    """A fresh, empty network namespace (root only)."""
    _require_root_tools("conntrack")
    ns = _create("t")
    try:
        yield ns
    finally:
        _delete(ns)


BIG_TABLE = 200_000


@pytest.fixture(scope="session")
def big_netns() -> Iterator[Namespace]:
    """A namespace holding BIG_TABLE TCP entries (shared by the slow tests)."""
    _require_root_tools("conntrack")
    ns = _create("big")
    try:
        ns.insert_batch(BIG_TABLE, timeout=3600)
        yield ns
    finally:
        _delete(ns)


def rust_reference() -> Optional[Path]:
    """The `ct_json` example (Rust API reference), if built."""
    env = os.environ.get("IPVSCT_CT_JSON")
    if env:
        return Path(env)
    for profile in ("release", "debug"):
        p = REPO / "target" / profile / "examples" / "ct_json"
        if p.is_file():
            return p
    return None


def first(items: List[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]

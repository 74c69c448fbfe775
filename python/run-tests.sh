#!/usr/bin/env bash
# The Python suite (the README's test command runs it through `make test`):
#   1. a virtual environment in python/.venv (needs python3 with venv: Debian's python3-venv);
#   2. the package built from source with maturin and installed there, with pytest, mypy,
#      pandas and matplotlib;
#   3. the Rust reference the tests compare with (examples/ct_json.rs, release build);
#   4. mypy.stubtest on the stubs, mypy --strict on the package, examples and tests;
#   5. pytest with warnings as errors.
# Kernel tests need root (they create network namespaces); without root they print
# SKIPPED, and fail under CI=true.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
venv="${IPVSCT_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
    if ! "$python" -m venv "$venv"; then
        echo "run-tests: cannot create a virtual environment; install python3-venv" >&2
        exit 1
    fi
fi
py="$venv/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export MYPY_CACHE_DIR="$venv/.mypy_cache"
"$py" -m pip install -q "maturin>=1.9.4,<2" "pytest>=7" "mypy>=1.8" pandas matplotlib
"$py" -m pip install -q --force-reinstall --no-deps "$here"

(cd "$repo" && cargo build -q --release -p ipvsct-python --example ct_json)
export IPVSCT_CT_JSON="${CARGO_TARGET_DIR:-$repo/target}/release/examples/ct_json"

# From the tests directory, so that `import ipvsct` is the installed package and not
# the source tree (which has no compiled module).
cd "$here/tests"
# (stubtest keeps its cache in the working directory: run it in the venv's.)
(cd "$venv" && "$py" -m mypy.stubtest ipvsct)
"$py" -m mypy --strict -p ipvsct
"$py" -m mypy --strict --follow-imports=silent \
    "$here/examples/conntrack_states.py" "$here/examples/notebook.py" "$here/tests"
"$py" -m pytest -W error -p no:cacheprovider "$@" .

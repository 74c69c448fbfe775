#!/usr/bin/env bash
# Puts a CPython and the ipvsct package into a VM payload directory (used by
# tests/vm/python/run.sh and tests/bench/ipvs/run.sh):
#   DIR/python/   the host's interpreter as bin/python3 and its standard library (pruned) as
#                 lib/pythonX.Y, with lib-dynload: the guest runs it with PYTHONHOME=DIR/python
#   DIR/site/     python/ipvsct/ with the extension module (cargo build --release -p
#                 ipvsct-python, copied as _native.abi3.so, as maturin names it)
#   DIR/python.env  PY_VERSION=X.Y and PY_LIBDIR=<directory of libpython, or empty>
# tests/vm/run.sh copies the libraries of every ELF file (libpython at its host path).
#
# Usage: tests/vm/python/payload.sh DIR
# Environment: PYTHON (default python3; CPython >= 3.9), CARGO_TARGET_DIR.
# Exit status: 0; 3 when there is no usable CPython (the reason is the last line on stderr);
# other non-zero values on build errors.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
(($# == 1)) && [[ -d "$1" ]] || { echo "usage: $0 DIR (an existing directory)" >&2; exit 2; }
payload="$(cd "$1" && pwd)"
log() { printf '[py-payload] %s\n' "$*" >&2; }
unusable() { echo "$*" >&2; exit 3; }

# --- the host's CPython ------------------------------------------------------------------
python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || unusable "no $python on PATH (set PYTHON=...)"
# One line each: version, the real interpreter (not a venv's or pyenv's shim), the standard
# library, the directory of the C extension modules (lib-dynload).
pyinfo="$("$python" - <<'PY'
import os, sys, sysconfig
if sys.implementation.name != "cpython" or sys.version_info < (3, 9):
    sys.exit("CPython >= 3.9 needed, this is %s %s" % (sys.implementation.name, sys.version.split()[0]))
exe = getattr(sys, "_base_executable", None) or sys.executable
stdlib = sysconfig.get_paths()["stdlib"]
dyn = [p for p in sys.path if os.path.basename(p) == "lib-dynload" and os.path.isdir(p)]
print("%d.%d" % sys.version_info[:2])
print(os.path.realpath(exe))
print(os.path.realpath(stdlib))
print(os.path.realpath(dyn[0] if dyn else sysconfig.get_config_var("DESTSHARED") or ""))
PY
)" || unusable "$python cannot be used: $pyinfo"
{ read -r pyver; read -r pyexe; read -r pystdlib; read -r pydynload; } <<<"$pyinfo"
[[ -x "$pyexe" && -f "$pystdlib/os.py" ]] || unusable "cannot find the interpreter/stdlib of $python ($pyexe, $pystdlib)"
[[ -d "$pydynload" ]] || unusable "cannot find lib-dynload of $python ($pydynload)"
# The directory of libpython as the host's loader finds it (tests/vm/run.sh copies it to the
# same path in the guest; LD_LIBRARY_PATH covers interpreters that rely on it or on $ORIGIN).
pylibdir=""
if libpy="$(ldd "$pyexe" 2>/dev/null | sed -n 's/^[[:space:]]*libpython[^ ]* => \(\/[^ ]*\) .*/\1/p' | head -n 1)" && [[ -n "$libpy" ]]; then
    pylibdir="$(dirname "$libpy")"
fi
log "CPython $pyver: $pyexe (stdlib $pystdlib${pylibdir:+, libpython in $pylibdir})"

# --- the package ---------------------------------------------------------------------------
cd "$ROOT"
target=${CARGO_TARGET_DIR:-$ROOT/target}
log "building the ipvsct extension module (cargo build --release -p ipvsct-python)"
# What maturin builds (the cdylib with pyo3's abi3 + extension-module features), without
# needing maturin/pip here: the package is python/ipvsct/ plus the module as _native.abi3.so.
cargo build --release -p ipvsct-python --lib >&2
so="$target/release/lib_native.so"
[[ -f "$so" ]] || { log "cargo did not produce $so"; exit 1; }
site="$payload/site"
mkdir -p "$site/ipvsct"
cp "$ROOT"/python/ipvsct/*.py "$ROOT"/python/ipvsct/*.pyi "$ROOT/python/ipvsct/py.typed" "$site/ipvsct/"
cp "$so" "$site/ipvsct/_native.abi3.so"
if command -v strip >/dev/null 2>&1; then
    strip --strip-debug "$site/ipvsct/_native.abi3.so" 2>/dev/null || true
fi

# --- the interpreter -----------------------------------------------------------------------
# PYTHONHOME=/payload/python in the guest, so the standard library goes to lib/pythonX.Y and
# the extension modules to lib/pythonX.Y/lib-dynload, whatever the host's layout. Large
# parts no test imports stay out (tests, IDLE, Tk, ensurepip, site-packages...).
ph="$payload/python"
lib="$ph/lib/python$pyver"
mkdir -p "$ph/bin" "$lib/lib-dynload" "$lib/site-packages"
cp "$pyexe" "$ph/bin/python3"
tar -C "$pystdlib" -cf - \
    --exclude=./test --exclude=./idlelib --exclude=./tkinter --exclude=./turtledemo \
    --exclude=./ensurepip --exclude=./lib2to3 --exclude=./distutils --exclude=./pydoc_data \
    --exclude=./site-packages --exclude=./dist-packages --exclude=./lib-dynload \
    --exclude='./config-*' --exclude='*/tests' --exclude='*.opt-1.pyc' --exclude='*.opt-2.pyc' \
    --exclude='*.exe' . | tar -C "$lib" -xf -
# Extension modules whose libraries exist here (tests/vm/run.sh copies them), minus the GUI
# and self-test ones.
for f in "$pydynload"/*.so; do
    [[ -e "$f" ]] || continue
    case "$(basename "$f")" in _tkinter* | _test* | xx* | _ctypes_test* | _xx*) continue ;; esac
    if ldd "$f" 2>/dev/null | grep -q 'not found'; then
        log "note: leaving out $(basename "$f") (libraries missing on this host)"
        continue
    fi
    cp "$f" "$lib/lib-dynload/"
done
# Byte-compile what has no valid .pyc yet (the guest is emulated: compiling there is slow).
"$pyexe" -E -m compileall -q -j 0 "$lib" "$site" >/dev/null 2>&1 ||
    log "note: compileall reported errors (modules that do not compile stay .py)"
printf 'PY_VERSION=%s\nPY_LIBDIR=%s\n' "$pyver" "$pylibdir" >"$payload/python.env"

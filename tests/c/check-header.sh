#!/usr/bin/env bash
# Regenerates include/ipvsct.h with the pinned cbindgen and fails if it differs from the
# committed file. `--update` writes the regenerated header instead.
set -euo pipefail
CBINDGEN_VERSION=0.29.2
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}

cbindgen=""
if command -v cbindgen >/dev/null && [ "$(cbindgen --version)" = "cbindgen $CBINDGEN_VERSION" ]; then
    cbindgen=$(command -v cbindgen)
elif [ -x "$target/tools/bin/cbindgen" ] &&
    [ "$("$target/tools/bin/cbindgen" --version)" = "cbindgen $CBINDGEN_VERSION" ]; then
    cbindgen=$target/tools/bin/cbindgen
else
    echo "check-header: installing cbindgen $CBINDGEN_VERSION into $target/tools" >&2
    cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --root "$target/tools" >&2
    cbindgen=$target/tools/bin/cbindgen
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$cbindgen" --quiet --config ffi/cbindgen.toml --crate ipvsct-ffi --output "$tmp" ffi

if [ "${1:-}" = "--update" ]; then
    cp "$tmp" include/ipvsct.h
    echo "check-header: include/ipvsct.h regenerated"
    exit 0
fi
if ! diff -u include/ipvsct.h "$tmp"; then
    echo "check-header: FAILED: include/ipvsct.h differs from what cbindgen $CBINDGEN_VERSION" \
        "generates from ffi/src; run 'make -C ffi header' and commit the result" >&2
    exit 1
fi
echo "check-header: include/ipvsct.h is up to date (cbindgen $CBINDGEN_VERSION)"

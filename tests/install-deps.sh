#!/usr/bin/env bash
# Installs what a fresh machine lacks for the full test suite and the demo.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

debs=(conntrack nftables nfct iproute2 ipvsadm qemu-system-x86 busybox-static cpio
      xz-utils zstd curl pkg-config valgrind kmod python3-venv iptables gcc g++ make libc6-dev procps util-linux
      tshark tcpdump prometheus)

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
# Miri checks the unsafe code of ffi/ (tests/c/run.sh runs it when it is installed).
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  rustup +nightly component list --installed 2>/dev/null | grep -q '^miri' ||
    rustup +nightly component add miri rust-src >/dev/null 2>&1 ||
    echo "install-deps: miri could not be added (tests/c/run.sh will say SKIPPED for it)"
fi
echo "install-deps: ok"

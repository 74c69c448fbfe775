#!/bin/sh
# shellcheck shell=sh
# shellcheck disable=SC3040 # busybox sh has pipefail
# Guest side of the IPVS listing benchmark (busybox sh inside the QEMU guest of
# tests/vm/run.sh): the real servers' network on a dummy device (the kernel wants a route to
# them), then tests/bench/ipvs/guest_bench.py under the CPython of the payload.
set -u -o pipefail
[ -e /proc/net/ip_vs ] || { echo "bench guest: ip_vs is not loaded"; exit 1; }
ip link add rs0 type dummy
ip addr add 10.200.0.254/16 dev rs0
ip link set rs0 up
export PYTHONHOME=/payload/python PYTHONPATH=/payload/site PYTHONDONTWRITEBYTECODE=1
export PYTHONUNBUFFERED=1
[ -n "${PY_LIBDIR:-}" ] && export LD_LIBRARY_PATH="$PY_LIBDIR"
/payload/python/bin/python3 /payload/guest_bench.py 2>&1 | tee /results/bench.log

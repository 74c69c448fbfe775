#!/usr/bin/env bash
# Soak run (issue 8): several minutes of churning conntrack traffic in a throw-away network
# namespace while one process (ipvs-conntrack/examples/soak.rs) holds an event stream,
# dumps the table over and over (owned entries and zero-copy views), reads the count and
# the per-CPU statistics, and samples its own memory. Prints the table of samples and fails
# if VmRSS grows by more than 1 MB after the warm-up or if any library call failed.
#
#   tests/soak.sh          # 300 s
#   tests/soak.sh 900      # 15 minutes (at most 86400)
#
# In the namespace: `lo` up, nftables rules that make conntrack track every packet,
# TCP TIME_WAIT and UDP timeouts shortened to 1-3 s (entries expire all the time),
# accounting and timestamps on. The soak process itself makes short TCP connections and
# UDP flows on 127.0.0.1 (100 of each per second) and inserts/deletes entries in batches
# through the library; beside it this script inserts and deletes entries with the
# `conntrack` tool (another writer than the library). Everything is bounded by the
# duration and removed on exit (also on failure or Ctrl-C).
#
# Environment:
#   SOAK_WARMUP     seconds before the memory baseline (default 60, at most a third of the run)
#   SOAK_ARGS       extra arguments for the soak example (e.g. "--rate 200 --rcvbuf 262144")
#   GLIBC_TUNABLES  passed through; by default glibc's dynamic mmap threshold is pinned (see below)
#
# Needs: root, iproute2, nftables, conntrack (Debian packages iproute2 nftables conntrack),
# cargo.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_WANTED=${1:-300}
if ! [[ $SECONDS_WANTED =~ ^[0-9]+$ ]] || ((SECONDS_WANTED < 10 || SECONDS_WANTED > 86400)); then
    echo "usage: $0 [SECONDS]   (10 to 86400, default 300)" >&2
    exit 2
fi
WARMUP=${SOAK_WARMUP:-60}

log() { echo "soak.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "needs root (network namespaces, CAP_NET_ADMIN)"
for tool in ip nft conntrack cargo; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install -y iproute2 nftables conntrack)"
done

log "building the soak example (release)"
(cd "$REPO" && cargo build -q --release -p ipvs-conntrack --example soak)
BIN="$REPO/target/release/examples/soak"
[[ -x $BIN ]] || die "no $BIN"

NS="ipvsct-soak-$$"
CHURN_PID=
cleanup() {
    if [[ -n $CHURN_PID ]]; then
        kill "$CHURN_PID" 2>/dev/null || true
        wait "$CHURN_PID" 2>/dev/null || true
        CHURN_PID=
    fi
    ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
ip netns exec "$NS" nft '
    add table inet soak
    add chain inet soak out { type filter hook output priority 0; }
    add rule inet soak out ct state new counter
    add chain inet soak pre { type filter hook prerouting priority 0; }
    add rule inet soak pre ct state new counter'
log "namespace $NS ready"

# The conntrack tool as a second writer: 5 inserts and 5 deletes a second, 200 keys,
# 4-second timeouts (entries it does not delete expire). Bounded by the deadline.
conntrack_churn() {
    local end=$((SECONDS + SECONDS_WANTED)) i=0 port
    while ((SECONDS < end)); do
        port=$((20000 + i % 200))
        ip netns exec "$NS" conntrack -I -p tcp -s 10.252.0.1 -d 10.252.0.2 --sport "$port" \
            --dport 80 --state ESTABLISHED -t 4 -m 1 >/dev/null 2>&1 || true
        port=$((20000 + (i + 190) % 200))
        ip netns exec "$NS" conntrack -D -p tcp -s 10.252.0.1 -d 10.252.0.2 --sport "$port" \
            --dport 80 >/dev/null 2>&1 || true
        i=$((i + 1))
        sleep 0.2
    done
}
conntrack_churn &
CHURN_PID=$!

# glibc raises its mmap threshold to the largest block freed so far, so the first
# few large blocks (a table view, a dump buffer) move from mmap to the heap one after the
# other and VmRSS climbs in steps that are not growth. A fixed threshold stops that.
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=131072}

log "running for ${SECONDS_WANTED}s (warm-up ${WARMUP}s)"
set +e
# shellcheck disable=SC2086
timeout --signal=INT $((SECONDS_WANTED + 120)) "$BIN" --netns "$NS" --seconds "$SECONDS_WANTED" \
    --warmup "$WARMUP" --sample 5 ${SOAK_ARGS:-}
rc=$?
set -e
cleanup
if ((rc != 0)); then
    log "FAILED (exit $rc)"
    exit "$rc"
fi
log "passed"

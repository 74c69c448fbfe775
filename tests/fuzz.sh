#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time, seeded with the recorded
# fixtures (tests/fixtures/*.bin) and, when run as root, with a live recording made in a
# throw-away network namespace. Fails on any crash, panic, leak or timeout of a target.
#
#   tests/fuzz.sh                 # every target, 45 s each
#   FUZZ_TIME=600 tests/fuzz.sh   # longer local runs
#   tests/fuzz.sh ct_entry nl_attrs
#
# Environment:
#   FUZZ_TIME           seconds per target (default 45)
#   FUZZ_FIXTURE_WAIT   seconds to wait for tests/fixtures/*.bin to appear (default 60)
#   FUZZ_LIVE_SEEDS     0 to skip the live recording (default 1; needs root, ip, conntrack)
#   FUZZ_WORK           scratch directory for corpora (default fuzz/corpus, git-ignored)
#
# Needs: cargo-fuzz (installed here with `cargo install cargo-fuzz --locked` if missing),
# a nightly toolchain (`cargo +nightly`) or, failing that, the stable one with
# RUSTC_BOOTSTRAP=1; python3 (splits recordings into one seed per message); for the live
# seeds: root, iproute2, conntrack (Debian packages iproute2 conntrack).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
FUZZ_DIR="$REPO/fuzz"
FIXTURES="$REPO/tests/fixtures"
FUZZ_TIME=${FUZZ_TIME:-45}
FUZZ_FIXTURE_WAIT=${FUZZ_FIXTURE_WAIT:-60}
FUZZ_LIVE_SEEDS=${FUZZ_LIVE_SEEDS:-1}
WORK=${FUZZ_WORK:-$FUZZ_DIR/corpus}

log() { echo "fuzz.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- toolchain -----------------------------------------------------------------------
CARGO=(cargo)
if cargo +nightly --version >/dev/null 2>&1; then
    CARGO=(cargo +nightly)
else
    log "no nightly toolchain: using the stable one with RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked >&2
fi
log "$("${CARGO[@]}" --version), $(cargo fuzz --version)"

cd "$FUZZ_DIR"
mapfile -t ALL_TARGETS < <("${CARGO[@]}" fuzz list)
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL_TARGETS[@]}")
[[ ${#TARGETS[@]} -gt 0 ]] || die "no fuzz targets found in $FUZZ_DIR"

# --- seeds ---------------------------------------------------------------------------
SEEDS="$WORK/seeds"
rm -rf "$SEEDS"
mkdir -p "$SEEDS/raw"

waited=0
until compgen -G "$FIXTURES/*.bin" >/dev/null; do
    if ((waited >= FUZZ_FIXTURE_WAIT)); then
        log "no recorded fixtures in $FIXTURES after ${waited}s; seeding from the live recording only"
        break
    fi
    sleep 5
    waited=$((waited + 5))
done
# Every recording, also those of subdirectories (tests/fixtures/ipvs/...).
while IFS= read -r -d '' f; do
    rel=${f#"$FIXTURES"/}
    cp "$f" "$SEEDS/raw/fixture-${rel//\//-}"
done < <(find "$FIXTURES" -name '*.bin' -type f -print0)

LIVE_NS=
cleanup_live_ns() {
    if [[ -n $LIVE_NS ]]; then
        ip netns del "$LIVE_NS" 2>/dev/null || true
        LIVE_NS=
    fi
}

record_live_seeds() {
    local ns="ipvsct-fuzz-$$" rec
    if [[ $(id -u) != 0 ]] || ! command -v ip >/dev/null || ! command -v conntrack >/dev/null; then
        log "SKIPPED live seeds: needs root, ip and conntrack"
        return 0
    fi
    log "building record_fixture for the live seeds"
    (cd "$REPO" && cargo build -q --example record_fixture) || {
        log "SKIPPED live seeds: record_fixture does not build"
        return 0
    }
    rec="$REPO/target/debug/examples/record_fixture"
    ip netns add "$ns" || {
        log "SKIPPED live seeds: ip netns add failed"
        return 0
    }
    # Deleted on every exit path of this function and of the script.
    LIVE_NS=$ns
    trap cleanup_live_ns EXIT INT TERM
    ip -n "$ns" link set lo up
    local ct=(ip netns exec "$ns" conntrack)
    "${ct[@]}" -I -p tcp -s 127.0.0.1 -d 127.0.0.1 --sport 41000 --dport 80 \
        --state ESTABLISHED -t 300 -m 7 -u SEEN_REPLY,ASSURED >/dev/null 2>&1 || true
    "${ct[@]}" -I -p tcp -s 127.0.0.1 -d 127.0.0.1 --sport 41001 --dport 80 \
        --state TIME_WAIT -t 60 --zone 3 >/dev/null 2>&1 || true
    "${ct[@]}" -I -p udp -s 127.0.0.1 -d 127.0.0.2 --sport 5353 --dport 53 -t 30 >/dev/null 2>&1 || true
    "${ct[@]}" -I -p icmp -s 127.0.0.1 -d 127.0.0.1 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 30 >/dev/null 2>&1 || true
    "${ct[@]}" -I -p sctp -s 127.0.0.1 -d 127.0.0.1 --sport 3000 --dport 3001 \
        --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -t 100 >/dev/null 2>&1 || true
    "${ct[@]}" -I -p dccp -s 127.0.0.1 -d 127.0.0.1 --sport 3002 --dport 3003 \
        --state OPEN --role CLIENT -t 100 >/dev/null 2>&1 || true
    "${ct[@]}" -I -p gre -s 127.0.0.1 -d 127.0.0.1 --srckey 1 --dstkey 2 -t 100 >/dev/null 2>&1 || true
    "${ct[@]}" -I -p tcp -s ::1 -d ::1 --sport 41002 --dport 443 --state SYN_SENT -t 120 >/dev/null 2>&1 || true
    "${ct[@]}" -I -p icmpv6 -s ::1 -d ::1 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 9 -t 30 >/dev/null 2>&1 || true
    local n
    n=$("${ct[@]}" -C 2>/dev/null || echo 0)
    log "live namespace $ns holds $n entries"
    local r=(timeout 60 "$rec" --netns "$ns")
    "${r[@]}" --out "$SEEDS/raw/live-dump.bin" dump >/dev/null || true
    "${r[@]}" --out "$SEEDS/raw/live-dump6.bin" dump --family ipv6 >/dev/null || true
    "${r[@]}" --out "$SEEDS/raw/live-dump-mark.bin" dump --mark 7/255 >/dev/null || true
    "${r[@]}" --out "$SEEDS/raw/live-count.bin" count >/dev/null || true
    "${r[@]}" --out "$SEEDS/raw/live-cpu.bin" cpu-stats >/dev/null || true
    "${r[@]}" --out "$SEEDS/raw/live-bad-dump.bin" bad-dump >/dev/null || true
    "${r[@]}" --out "$SEEDS/raw/live-get-missing.bin" get tcp 127.0.0.9 1 127.0.0.9 2 >/dev/null || true
    for p in "inet tcp" "inet udp" "inet sctp" "inet dccp" "inet icmp" "inet6 icmpv6" "inet gre" "inet udplite"; do
        # shellcheck disable=SC2086
        "${r[@]}" --out "$SEEDS/raw/live-policy-${p// /-}.bin" policy $p >/dev/null || true
    done
    cleanup_live_ns
    trap - EXIT INT TERM
    log "live seeds: $(find "$SEEDS/raw" -name 'live-*' -size +0 | wc -l) recordings"
}
[[ $FUZZ_LIVE_SEEDS == 0 ]] || record_live_seeds

compgen -G "$SEEDS/raw/*" >/dev/null || die "no seeds: neither fixtures nor a live recording"

# One seed per netlink message too (smaller inputs fuzz faster), and for nl_attrs the
# attribute block of each message behind a control byte of 0.
if command -v python3 >/dev/null; then
    python3 - "$SEEDS" <<'EOF'
import os, struct, sys
seeds = sys.argv[1]
os.makedirs(f"{seeds}/frames", exist_ok=True)
os.makedirs(f"{seeds}/attrs", exist_ok=True)
n = 0
for name in sorted(os.listdir(f"{seeds}/raw")):
    data = open(f"{seeds}/raw/{name}", "rb").read()
    pos = 0
    while pos + 16 <= len(data):
        (length,) = struct.unpack_from("=I", data, pos)
        if length < 16 or pos + length > len(data):
            break
        msg = data[pos:pos + length]
        open(f"{seeds}/frames/{name}-{pos}", "wb").write(msg)
        if len(msg) > 20:
            open(f"{seeds}/attrs/{name}-{pos}", "wb").write(b"\0" + msg[20:])
        n += 1
        pos += (length + 3) & ~3
print(f"fuzz.sh: split into {n} single-message seeds", file=sys.stderr)
EOF
else
    log "python3 missing: seeding with whole recordings only"
fi

# Captures for pcap_replay: `ipvsct capture` recordings (fuzz/seeds/pcap_replay) and the
# tcpdump/editcap nlmon captures.
mkdir -p "$SEEDS/pcap"
cp "$FUZZ_DIR"/seeds/pcap_replay/*.pcap* "$FIXTURES"/nlmon/*.pcap* "$SEEDS/pcap/" 2>/dev/null || true

# Generated seeds for decoders without recordings (IPVS, /proc text, expectations, events);
# make_seeds checks that each of them decodes.
log "generating seeds (fuzz/examples/make_seeds.rs)"
"${CARGO[@]}" run -q --example make_seeds -- "$SEEDS/gen" >&2

# --- build and run -------------------------------------------------------------------
log "building ${#TARGETS[@]} targets"
"${CARGO[@]}" fuzz build >&2
# The targets run as built here (cargo fuzz run would rebuild if the sources changed
# meanwhile, and the run would then test other code than was built).
HOST=$("${CARGO[@]/cargo/rustc}" -vV | sed -n 's/^host: //p')
BIN_DIR="$FUZZ_DIR/target/$HOST/release"

declare -A EXECS RESULT
failed=0
for t in "${TARGETS[@]}"; do
    corpus="$WORK/$t"
    artifacts="$FUZZ_DIR/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    seed_dirs=("$SEEDS/raw" "$SEEDS/gen")
    [[ -d $SEEDS/frames ]] && seed_dirs+=("$SEEDS/frames")
    [[ $t == nl_attrs && -d $SEEDS/attrs ]] && seed_dirs+=("$SEEDS/attrs")
    [[ $t == pcap_replay ]] && seed_dirs+=("$SEEDS/pcap")
    out="$WORK/$t.log"
    log "running $t for ${FUZZ_TIME}s (corpus $corpus)"
    set +e
    "$BIN_DIR/$t" "$corpus" "${seed_dirs[@]}" \
        -max_total_time="$FUZZ_TIME" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$out" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out" | grep -o '[0-9]*$' | tail -1)
    EXECS[$t]=${execs:-?}
    if [[ $rc == 0 ]]; then
        RESULT[$t]=ok
    else
        RESULT[$t]="FAILED (exit $rc)"
        failed=1
        log "$t failed; last lines of $out:"
        tail -40 "$out" >&2
        log "reproduce: cd fuzz && cargo +nightly fuzz run $t $artifacts/$(ls -t "$artifacts" | head -1)"
    fi
done

echo
printf '%-14s %12s  %s\n' target executions result
for t in "${TARGETS[@]}"; do
    printf '%-14s %12s  %s\n' "$t" "${EXECS[$t]}" "${RESULT[$t]}"
done
if ((failed)); then
    echo "fuzz: $(( ${#TARGETS[@]} )) targets, at least one crashed"
    exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets, ${FUZZ_TIME}s each, no crash"

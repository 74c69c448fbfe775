#!/usr/bin/env bash
# The C ABI suite, one entry point:
#   1. builds libipvsct (cargo build -p ipvsct-ffi) and the Rust snapshot example;
#   2. checks include/ipvsct.h against a fresh cbindgen run (tests/c/check-header.sh);
#   3. compiles the header as C (c99 -pedantic) and C++ (g++, and runs it);
#   4. runs tests/c/test_api.c (no privileges) plain, with AddressSanitizer, under
#      valgrind and linked with libipvsct.a, and tests/c/test_ipvs_offline.c (the IPVS
#      structs from the recorded kernel messages in tests/fixtures/ipvs, compared with
#      ipvsadm's output) plain, with ASan and under valgrind;
#   5. installs into a temporary prefix and builds the example agent and the events
#      example with pkg-config;
#   6. as root: makes a network namespace with known traffic, then runs
#      tests/c/test_kernel.c plain, with ASan and under valgrind, each against a fresh
#      snapshot of what the Rust API sees (ffi/examples/ct_snapshot.rs), and
#      tests/c/test_view.c (the lazy view dump against the struct dump, entry by entry)
#      plain, with ASan and under valgrind; then, each variant
#      in a fresh namespace of its own, tests/c/test_control.c (create/update/delete/flush,
#      zeroing, a 10 000-entry batch, timeout policies vs `nfct timeout list`) and
#      tests/c/test_events.c (poll + drain of real traffic's events, overrun, resync);
#      and the two examples in a namespace;
#   7. cargo miri test -p ipvsct-ffi, when a nightly toolchain with miri is installed
#      (IPVSCT_MIRI=0 skips it, IPVSCT_MIRI=1 makes its absence an error).
# Without root (or without `ip netns add`) step 6 prints SKIPPED, unless CI=true: then it fails.
# The IPVS calls against a real ip_vs run in QEMU: tests/c/vm/run.sh (not part of this script).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/c-tests
lib=$target/debug
CC=${CC:-gcc}
CXX=${CXX:-g++}
CARGO=${CARGO:-cargo}
inc=(-I"$root/include" -I"$root/tests/c")
cflags=(-Wall -Wextra -Werror -std=c11 -g "${inc[@]}")
asan=(-fsanitize=address,undefined -fno-omit-frame-pointer)
valgrind=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible
    --error-exitcode=1 --suppressions="$root/tests/c/valgrind.supp")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

step() { printf '\n== c: %s\n' "$*"; }
fail() {
    echo "c: FAILED: $*" >&2
    exit 1
}
skip_or_fail() {
    if [ "${CI:-}" = "true" ]; then
        fail "$1 (CI=true: this must run)"
    fi
    printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
    echo "SKIPPED: C kernel tests: $1" >&2
    printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
}

for tool in "$CC" "$CXX" valgrind pkg-config make; do
    command -v "$tool" >/dev/null ||
        fail "$tool is missing (apt-get install -y gcc g++ valgrind pkg-config make)"
done

step "build libipvsct and the Rust snapshot example"
"$CARGO" build -p ipvsct-ffi --lib --example ct_snapshot
rm -rf "$out"
mkdir -p "$out/lib"
# The in-tree library under its soname, as an installed one would be found.
ln -sf "$lib/libipvsct.so" "$out/lib/libipvsct.so.0"
ln -sf "$lib/libipvsct.so" "$out/lib/libipvsct.so"
soname=$(readelf -d "$lib/libipvsct.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libipvsct.so.0" ] || fail "soname is '$soname', expected libipvsct.so.0"
exported=$(nm -D --defined-only "$lib/libipvsct.so" | awk '$2 == "T" {print $3}')
stray=$(grep -v '^ipvsct_' <<<"$exported" || true)
[ -z "$stray" ] || fail "libipvsct.so exports non-ipvsct_ functions: $stray"
echo "libipvsct.so: soname $soname, $(wc -l <<<"$exported") exported functions, all ipvsct_*"
export LD_LIBRARY_PATH=$out/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
link=(-L"$out/lib" -lipvsct -lpthread)

step "header check"
tests/c/check-header.sh

step "header as C99 and C++"
"$CC" -Wall -Wextra -Werror -std=c99 -pedantic "${inc[@]}" -fsyntax-only -x c include/ipvsct.h
"$CXX" -Wall -Wextra -Werror -std=c++11 -pedantic "${inc[@]}" -o "$out/header_cxx" \
    tests/c/header_cxx.cpp "${link[@]}"
"$out/header_cxx"

step "C API tests (no kernel): plain, ASan+UBSan, valgrind, static"
"$CC" "${cflags[@]}" -o "$out/test_api" tests/c/test_api.c "${link[@]}"
"$CC" "${cflags[@]}" "${asan[@]}" -o "$out/test_api_asan" tests/c/test_api.c "${link[@]}"
"$CC" "${cflags[@]}" -o "$out/test_api_static" tests/c/test_api.c "$lib/libipvsct.a" \
    -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
"$out/test_api"
"$out/test_api_asan"
"${valgrind[@]}" "$out/test_api"
"$out/test_api_static"
"$CC" "${cflags[@]}" -o "$out/test_ipvs_offline" tests/c/test_ipvs_offline.c "${link[@]}"
"$CC" "${cflags[@]}" "${asan[@]}" -o "$out/test_ipvs_offline_asan" tests/c/test_ipvs_offline.c \
    "${link[@]}"
"$out/test_ipvs_offline" --fixtures tests/fixtures/ipvs
"$out/test_ipvs_offline_asan" --fixtures tests/fixtures/ipvs
"${valgrind[@]}" "$out/test_ipvs_offline" --fixtures tests/fixtures/ipvs
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
    # Also as an unprivileged user (the static binary needs no library path), to see
    # the kernel's refusal arrive as IPVSCT_ERR_PERMISSION.
    unpriv=$(mktemp -d)
    cp "$out/test_api_static" "$unpriv/"
    chmod 755 "$unpriv" "$unpriv/test_api_static"
    (cd "$unpriv" && setpriv --reuid=65534 --regid=65534 --clear-groups ./test_api_static)
    rm -rf "$unpriv"
fi

step "install into a temporary prefix; build the example agent with pkg-config"
prefix=$out/prefix
make -s -C ffi install PREFIX="$prefix" PROFILE=dev CARGO="$CARGO" >/dev/null
for f in lib/libipvsct.so lib/libipvsct.so.0 lib/libipvsct.a include/ipvsct.h \
    lib/pkgconfig/ipvsct.pc; do
    [ -e "$prefix/$f" ] || fail "make install did not install $f"
done
pc_flags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs ipvsct)
echo "pkg-config --cflags --libs ipvsct: $pc_flags"
pc_version=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --modversion ipvsct)
# shellcheck disable=SC2086 # pkg-config output is a list of flags
"$CC" -Wall -Wextra -Werror -std=c11 -o "$out/ipvsct-agent" ffi/examples/agent.c $pc_flags
agent_version=$(LD_LIBRARY_PATH=$prefix/lib "$out/ipvsct-agent" --version |
    sed -n 's/^ipvsct-agent: libipvsct //p')
[ "$agent_version" = "$pc_version" ] ||
    fail "the agent linked libipvsct '$agent_version', pkg-config says '$pc_version'"
# shellcheck disable=SC2086 # pkg-config output is a list of flags
"$CC" -Wall -Wextra -Werror -std=c11 -o "$out/ipvsct-events" ffi/examples/events.c $pc_flags
echo "agent and events example built via pkg-config, run against the installed libipvsct $agent_version"

step "C kernel tests in a network namespace"
run_kernel=1
if [ "$(id -u)" -ne 0 ]; then
    skip_or_fail "not root (the tests create a network namespace)"
    run_kernel=0
fi
for tool in ip nft nfct; do
    if [ "$run_kernel" = 1 ] && ! command -v "$tool" >/dev/null; then
        skip_or_fail "$tool is missing (apt-get install -y iproute2 nftables nfct)"
        run_kernel=0
    fi
done
ns=ipvsct-ctest-$$
ns2=ipvsct-cwrite-$$
cleanup() {
    ip netns del "$ns" 2>/dev/null || true
    ip netns del "$ns2" 2>/dev/null || true
}
# A fresh namespace for the write and event tests: loopback up, counters and timestamps on,
# and an nft rule that uses conntrack (conntrack hooks are registered only on demand).
fresh_ns() {
    ip netns del "$ns2" 2>/dev/null || true
    ip netns add "$ns2"
    ip netns exec "$ns2" ip link set lo up
    ip netns exec "$ns2" sysctl -q -w net.netfilter.nf_conntrack_acct=1 \
        net.netfilter.nf_conntrack_timestamp=1
    ip netns exec "$ns2" nft -f - <<EOF
table inet ipvsct_cwrite {
    chain out {
        type filter hook output priority 0; policy accept;
        ct state new counter
    }
}
EOF
}
trap cleanup EXIT
if [ "$run_kernel" = 1 ] && ! ip netns add "$ns" 2>"$out/netns.err"; then
    skip_or_fail "ip netns add failed: $(cat "$out/netns.err")"
    run_kernel=0
fi
if [ "$run_kernel" = 1 ]; then
    tcp_port=18080
    tcp_count=5
    udp_port=15353
    udp_timeout=911
    nsx=(ip netns exec "$ns")
    "${nsx[@]}" ip link set lo up
    # Counters and timestamps on; long timeouts so nothing expires during the run.
    "${nsx[@]}" sysctl -q -w net.netfilter.nf_conntrack_acct=1 \
        net.netfilter.nf_conntrack_timestamp=1 \
        net.netfilter.nf_conntrack_udp_timeout="$udp_timeout" \
        net.netfilter.nf_conntrack_tcp_timeout_time_wait=900
    "${nsx[@]}" nft -f - <<EOF
table inet ipvsct_ctest {
    chain out {
        type filter hook output priority 0; policy accept;
        ct state new counter
        tcp dport $tcp_port ct mark set 42
    }
}
EOF
    "$CC" -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -o "$out/ct_traffic" tests/c/ct_traffic.c
    "$CC" "${cflags[@]}" -o "$out/test_kernel" tests/c/test_kernel.c "${link[@]}"
    "$CC" "${cflags[@]}" "${asan[@]}" -o "$out/test_kernel_asan" tests/c/test_kernel.c \
        "${link[@]}"
    for t in test_control test_events test_view; do
        "$CC" "${cflags[@]}" -o "$out/$t" "tests/c/$t.c" "${link[@]}"
        "$CC" "${cflags[@]}" "${asan[@]}" -o "$out/${t}_asan" "tests/c/$t.c" "${link[@]}"
    done
    "${nsx[@]}" "$out/ct_traffic" "$tcp_port" "$tcp_count" "$udp_port"
    new=$("${nsx[@]}" nft list chain inet ipvsct_ctest out |
        sed -n 's/.*ct state new counter packets \([0-9]*\) .*/\1/p')
    echo "nft 'ct state new' counter: $new new connections"
    [ "$new" = $((tcp_count + 3)) ] ||
        fail "nft counted '$new' new connections, ct_traffic made $((tcp_count + 3))"
    for variant in plain asan valgrind; do
        echo "-- test_kernel ($variant)"
        "$lib/examples/ct_snapshot" --netns "$ns" --capture "$out/capture.bin" \
            >"$out/snapshot.txt"
        args=(--netns "$ns" --snapshot "$out/snapshot.txt" --capture "$out/capture.bin"
            --new "$new" --tcp-port "$tcp_port" --tcp-count "$tcp_count"
            --udp-port "$udp_port" --udp-timeout "$udp_timeout")
        case $variant in
        plain) "$out/test_kernel" "${args[@]}" ;;
        asan) "$out/test_kernel_asan" "${args[@]}" ;;
        valgrind) "${valgrind[@]}" "$out/test_kernel" "${args[@]}" ;;
        esac
    done
    for variant in plain asan valgrind; do
        echo "-- test_view ($variant)"
        case $variant in
        plain) "$out/test_view" --netns "$ns" --min "$new" ;;
        asan) "$out/test_view_asan" --netns "$ns" --min "$new" ;;
        valgrind) "${valgrind[@]}" "$out/test_view" --netns "$ns" --min "$new" ;;
        esac
    done
    for variant in plain asan valgrind; do
        fresh_ns
        nsx2=(ip netns exec "$ns2")
        snap=$lib/examples/ct_snapshot
        case $variant in
        plain) run=() suffix="" ;;
        asan) run=() suffix=_asan ;;
        valgrind) run=("${valgrind[@]}") suffix="" ;;
        esac
        echo "-- test_control ($variant)"
        "${nsx2[@]}" "${run[@]}" "$out/test_control$suffix" --netns "$ns2" --snapshot-bin "$snap"
        echo "-- test_events ($variant)"
        "${nsx2[@]}" "${run[@]}" "$out/test_events$suffix" --netns "$ns2"
    done
    echo "-- example agent in the namespace"
    LD_LIBRARY_PATH=$prefix/lib "${valgrind[@]}" "$out/ipvsct-agent" --netns "$ns" --count 1 |
        tee "$out/agent.txt"
    grep -Eq "^  tcp +TIME_WAIT +$((tcp_count + 1)) +900s" "$out/agent.txt" ||
        fail "the agent did not report $((tcp_count + 1)) TCP entries in TIME_WAIT (900s)"
    grep -Eq "^  (IPVS not available|IPVS service / real server)" "$out/agent.txt" ||
        fail "the agent printed neither IPVS services nor 'IPVS not available'"
    echo "-- events example in a namespace, while ct_traffic makes connections"
    fresh_ns
    LD_LIBRARY_PATH=$prefix/lib "${valgrind[@]}" "$out/ipvsct-events" --netns "$ns2" \
        --count 20 --seconds 20 >"$out/events.txt" &
    events_pid=$!
    for _ in $(seq 100); do
        grep -q "listening" "$out/events.txt" 2>/dev/null && break
        sleep 0.1
    done
    ip netns exec "$ns2" "$out/ct_traffic" "$tcp_port" 2 "$udp_port" >/dev/null
    wait "$events_pid" || fail "the events example failed"
    cat "$out/events.txt"
    grep -Eq "^NEW +tcp 127.0.0.1:[0-9]+ -> 127.0.0.1:$tcp_port SYN_SENT \(120s\)" \
        "$out/events.txt" || fail "the events example printed no NEW event of the TCP traffic"
    grep -Eq "^UPDATE +tcp .* TIME_WAIT" "$out/events.txt" ||
        fail "the events example printed no TIME_WAIT update"
fi

step "miri over the ffi crate's unit tests"
if [ "${IPVSCT_MIRI:-auto}" = "0" ]; then
    echo "miri: disabled (IPVSCT_MIRI=0)"
elif "$CARGO" +nightly miri --version >/dev/null 2>&1; then
    MIRIFLAGS=${MIRIFLAGS:-} "$CARGO" +nightly miri test -p ipvsct-ffi --lib
elif [ "${IPVSCT_MIRI:-auto}" = "1" ]; then
    fail "miri is not installed (rustup toolchain install nightly --component miri rust-src)"
else
    echo "SKIPPED: miri (not installed: rustup toolchain install nightly --component miri rust-src)" >&2
fi

echo
echo "c: all C ABI checks passed"

#!/usr/bin/env bash
# Fetch (once) Debian's stock amd64 kernel and prepare it for the VM harness.
#
# Usage: tests/vm/kernel.sh            prints the cache directory on stdout
#
# The cache directory ${IPVSCT_VM_CACHE:-/var/cache/ipvsct-vm}/<kernel-version>/ holds:
#   vmlinux      uncompressed ELF kernel, booted through its PVH entry (fast under TCG)
#   bzImage      the original vmlinuz (fallback when PVH boot does not work)
#   boot-mode    "pvh" or "bzimage": which of the two booted in the probe
#   modules/     lib/modules/<version>/... with the needed modules (uncompressed)
#                plus a modules.dep made by busybox depmod
#   modules.list modules present;  modules.missing requested but absent in this kernel
#   kver         the kernel version;  deb-version the Debian package version
# Environment:
#   IPVSCT_VM_CACHE   cache root (default /var/cache/ipvsct-vm)
#   IPVSCT_VM_KERNEL  pin a kernel version, e.g. 6.1.0-56-amd64 (default: what
#                     linux-image-amd64 depends on; the last good cache if apt can't tell)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/vm/lib.sh
. "$HERE/lib.sh"

# Modules copied into the cache (with their dependencies). run.sh loads a subset
# at boot; guest scripts may modprobe the rest. Names absent from a kernel
# (ip_vs_twos only exists from 6.5 on) are recorded in modules.missing.
WANTED_MODULES=(
    crc32c_generic libcrc32c
    ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh
    ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_mh ip_vs_twos ip_vs_ftp ip_vs_pe_sip
    nf_conntrack nf_conntrack_netlink nfnetlink nf_conntrack_ftp nf_conntrack_sip
    nf_nat nf_nat_ftp nf_tables nft_ct nft_nat nft_masq nft_chain_nat xt_ipvs
    veth dummy nlmon
)
# Bump when the layout of a cache entry changes, to force a rebuild.
CACHE_FORMAT=1

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) usage >&2; exit 2 ;;
esac

vm_ensure_tools dpkg-deb:dpkg xz:xz-utils zstd:zstd cpio:cpio flock:util-linux \
    qemu-system-x86_64:qemu-system-x86 /bin/busybox:busybox-static

mkdir -p "$IPVSCT_VM_CACHE/debs"
request_sig="format=$CACHE_FORMAT modules=${WANTED_MODULES[*]}"

entry_ok() { # entry_ok DIR
    [[ -f "$1/.complete" ]] && [[ "$(cat "$1/.complete")" == "$request_sig" ]]
}

resolve_kver() {
    if [[ -n "${IPVSCT_VM_KERNEL:-}" ]]; then
        echo "${IPVSCT_VM_KERNEL#linux-image-}"
        return
    fi
    local pkg lists_sig
    # apt-cache takes ~1 s here; remember its answer for as long as the apt lists are unchanged.
    lists_sig="$(stat -c '%n %Y %s' /var/lib/apt/lists /var/lib/apt/lists/*Packages* 2>/dev/null | md5sum)"
    if [[ -f "$IPVSCT_VM_CACHE/resolved" ]] && [[ "$(head -n 1 "$IPVSCT_VM_CACHE/resolved")" == "$lists_sig" ]]; then
        sed -n 2p "$IPVSCT_VM_CACHE/resolved"
        return
    fi
    pkg="$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 ~ /Depends:$/ && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')"
    if [[ -n "$pkg" ]]; then
        printf '%s\n%s\n' "$lists_sig" "${pkg#linux-image-}" >"$IPVSCT_VM_CACHE/resolved"
    else
        vm_log "apt-cache knows no linux-image-amd64; running apt-get update"
        vm_apt update >/dev/null 2>&1 || true
        pkg="$(apt-cache depends linux-image-amd64 2>/dev/null |
            awk '$1 ~ /Depends:$/ && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')"
    fi
    if [[ -z "$pkg" ]]; then
        if [[ -L "$IPVSCT_VM_CACHE/current" ]] && entry_ok "$IPVSCT_VM_CACHE/current"; then
            vm_log "cannot resolve linux-image-amd64; using cached $(readlink "$IPVSCT_VM_CACHE/current")"
            readlink "$IPVSCT_VM_CACHE/current"
            return
        fi
        vm_die "cannot resolve the package linux-image-amd64 depends on"
    fi
    echo "${pkg#linux-image-}"
}

# find_payload FILE — print "offset tool" for each compressed stream magic found.
find_payloads() {
    local f="$1" magic tool off
    for spec in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08' 'lzma:\x5d\x00\x00\x00' \
        'bzip2:BZh' 'lz4:\x02\x21\x4c\x18'; do
        tool="${spec%%:*}"
        magic="${spec#*:}"
        while IFS=: read -r off _; do
            [[ -n "$off" ]] && echo "$off $tool"
        done < <(LC_ALL=C grep -obUaP "$magic" "$f" 2>/dev/null | head -n 8 || true)
    done
}

# extract_vmlinux VMLINUZ OUT — the method of the kernel's scripts/extract-vmlinux:
# find a compressed stream inside the bzImage, decompress it, keep it if it is an ELF.
extract_vmlinux() {
    local in="$1" out="$2" off tool
    while read -r off tool; do
        case "$tool" in
            xz) tail -c "+$((off + 1))" "$in" | xz -dc --single-stream >"$out" 2>/dev/null || true ;;
            zstd) tail -c "+$((off + 1))" "$in" | zstd -dcq >"$out" 2>/dev/null || true ;;
            gzip) tail -c "+$((off + 1))" "$in" | gzip -dc >"$out" 2>/dev/null || true ;;
            lzma) tail -c "+$((off + 1))" "$in" | xz -dc --format=lzma >"$out" 2>/dev/null || true ;;
            bzip2) tail -c "+$((off + 1))" "$in" | bzip2 -dc >"$out" 2>/dev/null || true ;;
            lz4) command -v lz4 >/dev/null || continue
                 tail -c "+$((off + 1))" "$in" | lz4 -dc >"$out" 2>/dev/null || true ;;
        esac
        if [[ -s "$out" ]] && [[ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' \n')" == 7f454c46 ]]; then
            vm_log "vmlinux: $tool stream at offset $off"
            return 0
        fi
    done < <(find_payloads "$in" | sort -n)
    rm -f "$out"
    return 1
}

# probe_boot DIR — boot a trivial initramfs to learn whether PVH (vmlinux) works.
probe_boot() {
    local dir="$1" tmp mode="" k rc
    tmp="$(mktemp -d "$IPVSCT_VM_CACHE/.probe.XXXXXX")"
    mkdir -p "$tmp/root/bin" "$tmp/root/dev" "$tmp/root/proc"
    cp /bin/busybox "$tmp/root/bin/busybox"
    mknod -m 600 "$tmp/root/dev/console" c 5 1
    cat >"$tmp/root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t devtmpfs dev /dev
echo IPVSCT-PROBE-OK >/dev/ttyS0
/bin/busybox printf '\052' | /bin/busybox dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
/bin/busybox poweroff -f
EOF
    chmod 755 "$tmp/root/init"
    vm_cpio "$tmp/root" "$tmp/initrd.cpio"
    for k in vmlinux bzImage; do
        [[ -f "$dir/$k" ]] || continue
        : >"$tmp/console.log"
        rc=0
        vm_qemu 120 "$dir/$k" "$tmp/initrd.cpio" "$VM_CMDLINE_BASE" "$tmp/console.log" /dev/null \
            >"$tmp/qemu.out" 2>&1 || rc=$?
        # isa-debug-exit: status = (42 << 1) | 1 = 85
        if [[ $rc -eq 85 ]] && grep -q IPVSCT-PROBE-OK "$tmp/console.log"; then
            mode="$k"
            break
        fi
        vm_log "probe boot of $k failed (qemu status $rc): $(tail -c 300 "$tmp/qemu.out" "$tmp/console.log" | tr '\n' ' ')"
    done
    rm -rf "$tmp"
    case "$mode" in
        vmlinux) echo pvh >"$dir/boot-mode" ;;
        bzImage) echo bzimage >"$dir/boot-mode" ;;
        *) vm_die "the kernel in $dir boots neither as vmlinux (PVH) nor as bzImage" ;;
    esac
    vm_log "boot mode: $(cat "$dir/boot-mode")"
}

download_deb() { # download_deb KVER -> prints the .deb path
    local kver="$1" pkg="linux-image-$1" deb
    deb="$(find "$IPVSCT_VM_CACHE/debs" -maxdepth 1 -name "${pkg}_*_amd64.deb" | sort | tail -n 1)"
    if [[ -z "$deb" ]]; then
        vm_log "downloading $pkg"
        if ! (cd "$IPVSCT_VM_CACHE/debs" && vm_apt download "$pkg" >/dev/null 2>&1); then
            vm_log "download failed; running apt-get update and retrying"
            vm_apt update >/dev/null 2>&1 || true
            (cd "$IPVSCT_VM_CACHE/debs" && vm_apt download "$pkg" >/dev/null 2>&1) ||
                vm_die "apt-get download $pkg failed"
        fi
        deb="$(find "$IPVSCT_VM_CACHE/debs" -maxdepth 1 -name "${pkg}_*_amd64.deb" | sort | tail -n 1)"
        [[ -n "$deb" ]] || vm_die "downloaded $pkg but cannot find the .deb"
        # Drop .debs of other kernel versions: they are 70 MB each.
        find "$IPVSCT_VM_CACHE/debs" -maxdepth 1 -name 'linux-image-*.deb' ! -name "${pkg}_*" -delete
    fi
    echo "$deb"
}

build_entry() { # build_entry KVER DIR
    local kver="$1" dir="$2" deb stage x mroot sub m path rel deps missing=()
    local t0 t1
    t0="$(vm_now_ms)"
    deb="$(download_deb "$kver")"
    t1="$(vm_now_ms)"
    vm_log "kernel package: $(basename "$deb") ($((t1 - t0)) ms to fetch)"
    stage="$(mktemp -d "$IPVSCT_VM_CACHE/.build.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$stage'" EXIT
    x="$stage/deb"
    dpkg-deb -x "$deb" "$x"
    dpkg-deb -f "$deb" Version >"$stage/deb-version"
    echo "$kver" >"$stage/kver"
    if [[ -d "$x/lib/modules/$kver" ]]; then
        mroot="$x"
    elif [[ -d "$x/usr/lib/modules/$kver" ]]; then
        mroot="$x/usr"
    else
        vm_die "no lib/modules/$kver in $deb"
    fi
    [[ -f "$x/boot/vmlinuz-$kver" ]] || vm_die "no boot/vmlinuz-$kver in $deb"
    cp "$x/boot/vmlinuz-$kver" "$stage/bzImage"
    cp "$x/boot/config-$kver" "$stage/config"
    extract_vmlinux "$stage/bzImage" "$stage/vmlinux" || vm_log "could not extract vmlinux; bzImage only"

    # The .deb has no modules.dep: make one for the whole tree to compute the closure.
    busybox depmod -b "$mroot" "$kver"
    sub="$stage/modules/lib/modules/$kver"
    mkdir -p "$sub"
    : >"$stage/modules.list"
    local -A want_files=()
    for m in "${WANTED_MODULES[@]}"; do
        path="$(awk -F: -v m="$m" '{
                    n = $1; sub(/.*\//, "", n); sub(/\.ko(\.(xz|zst|gz))?$/, "", n); gsub(/-/, "_", n)
                    if (n == m) { print $0; exit }
                }' "$mroot/lib/modules/$kver/modules.dep")"
        if [[ -z "$path" ]]; then
            missing+=("$m")
            continue
        fi
        echo "$m" >>"$stage/modules.list"
        read -ra deps <<<"${path/:/ }"
        for rel in "${deps[@]}"; do want_files["$rel"]=1; done
    done
    printf '%s\n' "${missing[@]}" | sed '/^$/d' >"$stage/modules.missing"
    for rel in "${!want_files[@]}"; do
        mkdir -p "$sub/$(dirname "$rel")"
        case "$rel" in
            *.ko.xz) xz -dc "$mroot/lib/modules/$kver/$rel" >"$sub/${rel%.xz}" ;;
            *.ko.zst) zstd -dcq "$mroot/lib/modules/$kver/$rel" >"$sub/${rel%.zst}" ;;
            *.ko.gz) gzip -dc "$mroot/lib/modules/$kver/$rel" >"$sub/${rel%.gz}" ;;
            *) cp "$mroot/lib/modules/$kver/$rel" "$sub/$rel" ;;
        esac
    done
    cp "$mroot/lib/modules/$kver/modules.builtin" "$mroot/lib/modules/$kver/modules.order" "$sub/" 2>/dev/null || true
    busybox depmod -b "$stage/modules" "$kver"
    rm -rf "$x"
    vm_log "modules: $(wc -l <"$stage/modules.list") requested present, $(find "$sub" -name '*.ko' | wc -l) files;" \
        "missing: ${missing[*]:-none}"

    probe_boot "$stage"
    chmod 755 "$stage"
    echo "$request_sig" >"$stage/.complete"
    rm -rf "$dir"
    mv "$stage" "$dir"
    trap - EXIT
    vm_log "prepared $dir in $(($(vm_now_ms) - t0)) ms"
}

kver="$(resolve_kver)"
dir="$IPVSCT_VM_CACHE/$kver"
if ! entry_ok "$dir"; then
    exec 9>"$IPVSCT_VM_CACHE/.lock"
    flock -w 900 9 || vm_die "timed out waiting for $IPVSCT_VM_CACHE/.lock"
    entry_ok "$dir" || build_entry "$kver" "$dir"
    ln -sfn "$kver" "$IPVSCT_VM_CACHE/current"
    exec 9>&-
fi
echo "$dir"

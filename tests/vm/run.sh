#!/usr/bin/env bash
# Run a guest script inside Debian's stock kernel under QEMU (TCG).
#
# Usage: tests/vm/run.sh [options] SCRIPT
#   --payload DIR    copied to /payload in the guest; ELF binaries in it get their
#                    shared libraries (found with ldd) copied into the initramfs
#   --timeout SECS   wall-clock limit for the whole VM (default 300); the guest
#                    kills the script IPVSCT_VM_GUEST_MARGIN (25) s before that
#   --out DIR        where /results is extracted (default: a new mktemp dir;
#                    an existing DIR is not emptied, only DIR/.vm is replaced)
#   --env NAME=VALUE exported to the script (repeatable)
#   --no-modules     load no modules at boot (the script can modprobe them)
#   --bzimage        boot the compressed bzImage instead of the PVH vmlinux
#   --verbose        stream the guest console to stderr while it runs
#   --keep           keep the work directory (initramfs, logs)
# SCRIPT runs under busybox sh in the guest, with /payload, an empty /results
# and the helpers of guest/env.sh (ip -> real iproute2, $IP, $IPVSADM, retry).
# The results directory also gets .vm/ (console.log, dmesg.txt, lsmod.txt,
# modules.log, timings, exit-code).
#
# Exit status: the guest script's; 124 if the VM or the script timed out;
# 125 if the VM crashed or never reported; 2 for usage errors.
# The results directory is printed on stdout (last line); logs go to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/vm/lib.sh
. "$HERE/lib.sh"

# Loaded at boot, in this order (absent ones are skipped). The rest of the
# cached modules (nf_tables, nft_ct, ip_vs_pe_sip, xt_ipvs, ...) load on demand.
BOOT_MODULES=(
    crc32c_generic libcrc32c nf_conntrack nfnetlink nf_conntrack_netlink
    ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh
    ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_mh ip_vs_twos ip_vs_ftp
    veth dummy nlmon
)
# Host binaries put into the guest (with their libraries) when present.
# ip and ipvsadm are required; the others are conveniences for debugging.
REQUIRED_BINS=(/usr/sbin/ip /usr/sbin/ipvsadm)
OPTIONAL_BINS=(/usr/sbin/conntrack /usr/sbin/nft /usr/bin/ss)

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

payload="" timeout_s=300 out="" no_modules=0 force_bz=0 keep=0
verbose="${IPVSCT_VM_VERBOSE:-0}"
envs=()
while (($#)); do
    case "$1" in
        --payload) payload="${2:?--payload needs a directory}"; shift 2 ;;
        --timeout) timeout_s="${2:?--timeout needs seconds}"; shift 2 ;;
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --env) envs+=("${2:?--env needs NAME=VALUE}"); shift 2 ;;
        --no-modules) no_modules=1; shift ;;
        --bzimage) force_bz=1; shift ;;
        --verbose) verbose=1; shift ;;
        --keep) keep=1; shift ;;
        -h | --help) usage; exit 0 ;;
        --) shift; break ;;
        -*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
        *) break ;;
    esac
done
(($# == 1)) || { usage >&2; exit 2; }
script="$1"
[[ -f "$script" ]] || { echo "no such script: $script" >&2; exit 2; }
if ! [[ "$timeout_s" =~ ^[0-9]+$ ]] || ((timeout_s < 20)); then
    echo "--timeout must be a number >= 20" >&2
    exit 2
fi
[[ -z "$payload" || -d "$payload" ]] || { echo "no such payload directory: $payload" >&2; exit 2; }
for e in "${envs[@]}"; do
    [[ "$e" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || { echo "bad --env $e" >&2; exit 2; }
done

vm_ensure_tools qemu-system-x86_64:qemu-system-x86 /bin/busybox:busybox-static \
    /usr/sbin/ip:iproute2 /usr/sbin/ipvsadm:ipvsadm cpio:cpio ldd:libc-bin gzip:gzip

t_start="$(vm_now_ms)"
kdir="$("$HERE/kernel.sh")"
kver="$(cat "$kdir/kver")"
t_kernel="$(vm_now_ms)"

work="$(mktemp -d /tmp/ipvsct-vm.XXXXXX)"
cleanup() {
    if ((keep)); then vm_log "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,etc,harness,payload,results,root,var} \
    "$root"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64,lib/modules}
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
ln -s ../run "$root/var/run"

# copy_lib PATH — put a shared object at the place the guest's loader looks for it
# (the guest has Debian's merged-/usr layout for libraries: /lib -> usr/lib).
copy_lib() {
    local p="$1" dest
    # Libraries inside the payload itself (found through $ORIGIN) are already there.
    [[ "$p" == "$root"/* ]] && return 0
    case "$p" in
        /lib/* | /usr/lib/*) dest="$root/usr/lib/${p#*/lib/}" ;;
        /lib64/* | /usr/lib64/*) dest="$root/usr/lib64/${p#*/lib64/}" ;;
        *) dest="$root$p" ;;
    esac
    [[ -e "$dest" ]] && return 0
    mkdir -p "$(dirname "$dest")"
    cp -L "$p" "$dest"
}

# copy_deps ELF — copy the shared libraries ldd lists for ELF (none for static ones).
copy_deps() {
    local f="$1" lddout line lib
    if ! lddout="$(ldd "$f" 2>&1)"; then
        grep -q 'not a dynamic executable\|statically linked' <<<"$lddout" && return 0
        vm_die "ldd $f failed: $lddout"
    fi
    if grep -q 'not found' <<<"$lddout"; then
        vm_die "$f needs libraries missing on this host: $(grep 'not found' <<<"$lddout" | tr -s ' \t\n' ' ')"
    fi
    while read -r line; do
        case "$line" in
            *' => '/*) lib="${line#* => }"; lib="${lib%% (*}" ;;
            /*) lib="${line%% (*}" ;;
            *) continue ;;
        esac
        copy_lib "$lib"
    done <<<"$lddout"
}

is_elf() { [[ -f "$1" ]] && [[ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" == 7f454c46 ]]; }

# --- busybox and host tools ----------------------------------------------------
cp /bin/busybox "$root/bin/busybox"
copy_deps /bin/busybox
# One link per applet in /bin. --install links to the binary's host path
# (/usr/bin/busybox on merged-/usr hosts): make that path resolve in the guest too.
/bin/busybox --install -s "$root/bin"
bb_target="$(readlink "$root/bin/sh")"
if [[ "$bb_target" != /bin/busybox ]]; then
    mkdir -p "$root$(dirname "$bb_target")"
    ln -sfn /bin/busybox "$root$bb_target"
fi
ln -s ../bin/busybox "$root/sbin/modprobe" # the kernel's request_module() helper
for b in "${REQUIRED_BINS[@]}" "${OPTIONAL_BINS[@]}"; do
    if [[ ! -x "$b" ]]; then
        [[ " ${REQUIRED_BINS[*]} " == *" $b "* ]] && vm_die "required host binary $b is missing"
        continue
    fi
    mkdir -p "$root$(dirname "$b")"
    cp -L "$b" "$root$b"
    copy_deps "$b"
done

# --- modules -------------------------------------------------------------------
cp -a "$kdir/modules/lib/modules/$kver" "$root/usr/lib/modules/"
: >"$root/harness/modules"
if ((!no_modules)); then
    for m in "${BOOT_MODULES[@]}"; do
        grep -qx "$m" "$kdir/modules.list" && echo "$m" >>"$root/harness/modules"
    done
fi

# --- /etc, harness files, script, payload --------------------------------------
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$root/etc/group"
printf '127.0.0.1\tlocalhost ipvsct-vm\n::1\tlocalhost ip6-localhost\n' >"$root/etc/hosts"
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$root/etc/nsswitch.conf"
echo ipvsct-vm >"$root/etc/hostname"
: >"$root/etc/fstab"
install -m 755 "$HERE/guest/init" "$root/init"
install -m 644 "$HERE/guest/env.sh" "$root/harness/env.sh"
install -m 755 "$script" "$root/harness/script"
margin="${IPVSCT_VM_GUEST_MARGIN:-25}"
guest_timeout=$((timeout_s - margin))
((guest_timeout >= timeout_s / 2)) || guest_timeout=$((timeout_s / 2))
{
    printf 'IPVSCT_VM_GUEST_TIMEOUT=%q\n' "$guest_timeout"
    printf 'IPVSCT_VM_SCRIPT_NAME=%q\n' "$(basename "$script")"
    for e in "${envs[@]}"; do printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"; done
} >"$root/harness/run.env"
if [[ -n "$payload" ]]; then
    cp -a "$payload/." "$root/payload/"
    while IFS= read -r -d '' f; do
        is_elf "$f" && copy_deps "$f"
    done < <(find "$root/payload" -type f -print0)
fi
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3
vm_cpio "$root" "$work/initramfs.cpio"
t_initrd="$(vm_now_ms)"
initrd_size="$(du -k "$work/initramfs.cpio" | cut -f1)"

# --- boot ----------------------------------------------------------------------
mode="$(cat "$kdir/boot-mode" 2>/dev/null || echo bzimage)"
((force_bz)) && mode=bzimage
boot() { # boot MODE -> sets qrc
    local kernel="$kdir/vmlinux"
    [[ "$1" == bzimage ]] && kernel="$kdir/bzImage"
    : >"$work/console.log"
    : >"$work/results.tgz"
    local tpid=""
    if ((verbose)); then
        tail -n +1 -F "$work/console.log" >&2 2>/dev/null &
        tpid=$!
    fi
    qrc=0
    vm_qemu "$timeout_s" "$kernel" "$work/initramfs.cpio" \
        "$VM_CMDLINE_BASE ipvsct.kver=$kver" "$work/console.log" "$work/results.tgz" \
        >"$work/qemu.out" 2>&1 || qrc=$?
    if [[ -n "$tpid" ]]; then
        sleep 0.3
        kill "$tpid" 2>/dev/null || true
        wait "$tpid" 2>/dev/null || true
    fi
}
vm_log "kernel $kver ($mode), initramfs ${initrd_size} KiB, timeout ${timeout_s} s"
boot "$mode"
if [[ "$mode" == pvh ]] && ! grep -q 'IPVSCT-VM: /init started' "$work/console.log" && ((qrc != 124)); then
    vm_log "PVH boot failed (qemu status $qrc: $(head -c 300 "$work/qemu.out")); retrying with bzImage"
    mode=bzimage
    boot "$mode"
fi
t_qemu="$(vm_now_ms)"

# --- results -------------------------------------------------------------------
if [[ -z "$out" ]]; then
    out="$(mktemp -d /tmp/ipvsct-vm-results.XXXXXX)"
else
    mkdir -p "$out"
fi
mkdir -p "$work/x"
tar_ok=0
if [[ -s "$work/results.tgz" ]] && tar -xzf "$work/results.tgz" -C "$work/x" 2>"$work/tar.err"; then
    tar_ok=1
    cp -a "$work/x/results/." "$out/" 2>/dev/null || true
fi
rm -rf "$out/.vm"
mkdir -p "$out/.vm"
[[ -d "$work/x/vmmeta" ]] && cp -a "$work/x/vmmeta/." "$out/.vm/"
# Saved without CRs and the firmware's terminal escape sequences.
sed -e $'s/\x1b\\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g; s/\r$//' "$work/console.log" >"$out/.vm/console.log"

show_console() {
    echo "----- guest console (saved as $out/.vm/console.log) -----" >&2
    tail -n 200 "$out/.vm/console.log" >&2 || true
    if [[ -s "$work/qemu.out" ]]; then
        echo "----- qemu output -----" >&2
        tail -n 50 "$work/qemu.out" >&2
    fi
    echo "----- end -----" >&2
}

code=""
if [[ -f "$out/.vm/exit-code" ]]; then
    code="$(cat "$out/.vm/exit-code")"
elif grep -q 'IPVSCT-VM: script exit code ' "$work/console.log"; then
    code="$(sed -n 's/.*IPVSCT-VM: script exit code \([0-9]*\).*/\1/p' "$work/console.log" | tail -n 1)"
fi

tv() { sed -n "s/^$1=//p" "$out/.vm/timings" 2>/dev/null; }
guest_times=""
if [[ -f "$out/.vm/timings" ]]; then
    guest_times="; guest uptime: /init at $(tv init_start) s, modules loaded at $(tv modules_loaded) s, script done at $(tv script_end) s"
fi
vm_log "timings: kernel cache $((t_kernel - t_start)) ms, initramfs $((t_initrd - t_kernel)) ms," \
    "qemu $((t_qemu - t_initrd)) ms$guest_times"

status=0
if ((qrc == 124)) && [[ -z "$code" ]]; then
    vm_log "FAIL: the VM did not finish within ${timeout_s} s (killed)"
    status=124
elif [[ -z "$code" ]]; then
    vm_log "FAIL: the guest never reported an exit code (kernel panic, /init crash or QEMU error; qemu status $qrc)"
    status=125
elif [[ -f "$out/.vm/timed-out" ]]; then
    vm_log "FAIL: the guest script was killed by the guest watchdog after ${guest_timeout} s"
    status=124
else
    status="$code"
    # isa-debug-exit gives (min(code,127) << 1) | 1; cross-check it.
    local_byte=$((code > 127 ? 127 : code))
    if ((qrc != ((local_byte << 1) | 1))); then
        vm_log "note: qemu status $qrc does not match the reported exit code $code (QEMU did not leave through isa-debug-exit)"
    fi
    if ((!tar_ok)); then
        vm_log "FAIL: results from the guest could not be extracted: $(head -c 300 "$work/tar.err" 2>/dev/null)"
        ((status != 0)) || status=125
    fi
fi
if [[ -s "$out/.vm/modules.failed" ]]; then
    vm_log "warning: modules that failed to load: $(tr '\n' ' ' <"$out/.vm/modules.failed")"
fi
if ((status != 0)); then
    ((verbose)) || show_console
    vm_log "guest script $(basename "$script") failed with status $status"
else
    vm_log "guest script $(basename "$script") passed"
fi
vm_log "results in $out"
echo "$out"
exit "$status"

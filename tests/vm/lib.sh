# shellcheck shell=bash
# Shared helpers for the VM test harness (sourced by kernel.sh and run.sh).
# Host side only; nothing here runs inside the guest.

IPVSCT_VM_CACHE="${IPVSCT_VM_CACHE:-/var/cache/ipvsct-vm}"

vm_log() { printf '[ipvsct-vm] %s\n' "$*" >&2; }
vm_die() { printf '[ipvsct-vm] ERROR: %s\n' "$*" >&2; exit 1; }

# Milliseconds since the epoch (for timings).
vm_now_ms() { date +%s%3N; }

# Run apt-get, waiting (bounded) for a dpkg/apt lock held by another process:
# DPkg::Lock::Timeout covers the dpkg lock; the lists lock of "update" is retried.
vm_apt() {
    local i out rc
    for i in $(seq 1 30); do
        rc=0
        out="$(DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@" 2>&1)" || rc=$?
        if ((rc != 0)) && grep -q 'Could not get lock' <<<"$out" && ((i < 30)); then
            sleep 10
            continue
        fi
        printf '%s\n' "$out"
        return "$rc"
    done
}

# vm_ensure_tools "cmd:package" ... — install the packages whose command is missing.
vm_ensure_tools() {
    local spec cmd pkg missing=()
    for spec in "$@"; do
        cmd="${spec%%:*}"
        pkg="${spec#*:}"
        if [[ "$cmd" == /* ]]; then
            [[ -e "$cmd" ]] || missing+=("$pkg")
        else
            command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
        fi
    done
    ((${#missing[@]})) || return 0
    [[ $(id -u) -eq 0 ]] || vm_die "missing packages (${missing[*]}) and not root to install them"
    vm_log "installing missing packages: ${missing[*]}"
    vm_apt update >/dev/null || vm_die "apt-get update failed"
    vm_apt -y install --no-install-recommends "${missing[@]}" >/dev/null ||
        vm_die "apt-get install ${missing[*]} failed"
}

# Kernel command line used for every boot. "quiet" keeps the (slow, emulated)
# serial console short; mitigations=off / nokaslr save a little early boot work.
VM_CMDLINE_BASE="console=ttyS0 panic=-1 oops=panic quiet loglevel=3 mitigations=off nokaslr tsc=reliable no_timer_check i8042.noaux i8042.nokbd i8042.nopnp 8250.nr_uarts=2"

# vm_cpio SRC_DIR OUT_FILE — pack a directory as an uncompressed newc cpio owned by root.
vm_cpio() {
    (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$2"
}

# vm_qemu TIMEOUT KERNEL INITRD CMDLINE CONSOLE_LOG RESULTS_FILE [extra qemu args...]
# Boots under TCG with two file-backed serial ports and isa-debug-exit, killed
# after TIMEOUT seconds (status 124 then, as timeout(1) reports it).
# No NIC (-nodefaults): the guest has no network to the outside at all.
vm_qemu() {
    local secs="$1" kernel="$2" initrd="$3" cmdline="$4" con="$5" res="$6"
    shift 6
    timeout -k 5 "$secs" qemu-system-x86_64 \
        -accel tcg -machine pc -cpu max -m "${IPVSCT_VM_MEM:-1024}" -smp "${IPVSCT_VM_SMP:-2}" \
        -nographic -nodefaults -no-user-config -no-reboot -monitor none \
        -chardev "file,id=con0,path=$con" -serial chardev:con0 \
        -chardev "file,id=res0,path=$res" -serial chardev:res0 \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
        "$@" </dev/null
}

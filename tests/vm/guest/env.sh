# shellcheck shell=sh
# Sourced by the guest before the test script (same shell), inside the VM.
#
# Debian's busybox runs its own applets in preference to anything on PATH, and
# its "ip" has no netns support. Shell functions win over applets, so route the
# names that have a real binary in the initramfs to that binary. (In a *new*
# shell, e.g. `ip netns exec NS sh -c '...'`, use "$IP" or /usr/sbin/ip.)
IP=/usr/sbin/ip
IPVSADM=/usr/sbin/ipvsadm
export IP IPVSADM
ip() { /usr/sbin/ip "$@"; }
[ -x /usr/bin/ss ] && ss() { /usr/bin/ss "$@"; }

export RESULTS=/results PAYLOAD=/payload

# retry SECS CMD... — run CMD every 0.2 s until it succeeds, at most SECS seconds.
retry() {
    _retry_n=$(($1 * 5))
    shift
    while [ "$_retry_n" -gt 0 ]; do
        "$@" && return 0
        _retry_n=$((_retry_n - 1))
        sleep 0.2
    done
    "$@"
}

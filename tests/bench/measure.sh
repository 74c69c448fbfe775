#!/usr/bin/env bash
# Runs one benchmarked command and records its wall time and peak RSS.
#
#   measure.sh [--null-stdout] PREFIX CMD [ARGS...]
#
# Meant to run inside the benchmark namespace (ip netns exec NS measure.sh ...), so
# that namespace entry is not part of the time. Writes PREFIX.out (stdout, or nothing
# with --null-stdout: output goes to /dev/null as in `conntrack -L > /dev/null`),
# PREFIX.err (stderr), PREFIX.wall (seconds from exec to exit, bash EPOCHREALTIME
# around GNU time) and PREFIX.rss (peak RSS in KiB of CMD alone: GNU time's %M).
# Exits with CMD's status.
set -u
export LC_ALL=C
out_null=0
if [[ "${1:-}" == --null-stdout ]]; then
    out_null=1
    shift
fi
prefix="$1"
shift
out="$prefix.out"
[[ $out_null == 1 ]] && out=/dev/null
start=$EPOCHREALTIME
/usr/bin/time -f %M -o "$prefix.rss" "$@" >"$out" 2>"$prefix.err"
rc=$?
end=$EPOCHREALTIME
# EPOCHREALTIME is seconds.microseconds; subtract as integers of microseconds.
s=$(( 10#${start/[.,]/} ))
e=$(( 10#${end/[.,]/} ))
d=$(( e - s ))
printf '%d.%06d\n' $(( d / 1000000 )) $(( d % 1000000 )) >"$prefix.wall"
exit $rc

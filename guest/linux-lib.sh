# Shared by the Linux guest tests in guest/tests/ (sourced, POSIX sh).
# shellcheck shell=sh
MTS_TOP=${MTS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MTS_TOP/scripts/common.sh"

kernel=$("$TOP/scripts/fetch-guest.sh")
initrd=$("$TOP/guest/build-initramfs.sh")
logs=$BUILD_ROOT/guest/logs
mkdir -p "$logs"
fail=0

# run_linux NAME SUMMARY [run-linux.py options]: boot the guest once and
# print one TAP line, with the report's line matching SUMMARY on success
run_linux() {
    name=$1 summary=$2
    shift 2
    if /usr/bin/python3 "$TOP/guest/run-linux.py" --qemu "$QEMU_BIN" \
           --kernel "$kernel" --initrd "$initrd" \
           --log "$logs/$name.console" --quiet "$@" \
           > "$logs/$name.report" 2>&1; then
        echo "ok linux/$name $(grep "$summary" "$logs/$name.report" |
                               sed 's/^ *//' | tr '\n' ' ')"
    else
        sed 's/^/#   /' "$logs/$name.report"
        echo "not ok linux/$name (console: $logs/$name.console)"
        fail=1
    fi
}

# suite_verdicts NAME: a digest of the MTE suite's verdicts in NAME's run,
# without the tag storage checks, which only some configurations have
suite_verdicts() {
    grep -E '^(ok|not ok) ' "$logs/$1.console" |
        grep -v -E ' (probe-|carveout-)' | sort | md5sum | cut -c1-8
}

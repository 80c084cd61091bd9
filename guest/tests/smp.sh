#!/bin/sh
# SMP: the unmodified Debian 6.1 kernel on 4 vCPUs (-smp 4).
# - The MTE suite and /smp-stress's fork- and thread-heavy tagged workload
#   (mts.smp=work) give the same verdicts with tag-storage=off and with
#   tag-storage=on (binding v1) with the reuse checker off and log, and
#   the workload breaks no reuse rule (nor stops the VM with v3 and stop).
# - The reuse checker's stop policy with all CPUs breaking rule R2 at once
#   (mts.smp=stop,K: K reads of tag storage as data per CPU, from one load
#   instruction): exactly K stops per CPU, each at that instruction, then
#   the guest completes; with check=log, R2 counts exactly 4*K.
# SMP_QEMU=path runs another QEMU binary than build/obj's.
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$MTS_TOP/scripts/common.sh"
QEMU_BIN=${SMP_QEMU:-$QEMU_BIN}

kernel=$("$TOP/scripts/fetch-guest.sh")
initrd=$("$TOP/guest/build-initramfs.sh")
logs=$BUILD_ROOT/guest/logs
mkdir -p "$logs"
fail=0
K=20
v1=tag-storage=on,tag-storage-binding=v1

# tap NAME SUMMARY COMMAND...: run a driver, print one TAP line with the
# report's line matching SUMMARY, or the report and "not ok"
tap() {
    name=$1 summary=$2
    shift 2
    if "$@" > "$logs/smp_$name.report" 2>&1; then
        echo "ok smp/$name $(grep "$summary" "$logs/smp_$name.report" |
                             sed 's/^ *//' | tr '\n' ' ')"
    else
        sed 's/^/#   /' "$logs/smp_$name.report"
        echo "not ok smp/$name (console: $logs/smp_$name.console)"
        fail=1
    fi
}

# suite NAME MACHINE [run-linux.py options]: the MTE suite
suite() {
    name=$1 machine=$2
    shift 2
    tap "$name" '^guest checks' /usr/bin/python3 "$TOP/guest/run-linux.py" \
        --qemu "$QEMU_BIN" --kernel "$kernel" --initrd "$initrd" \
        --machine "$machine" --extra "-smp 4" --timeout 900 \
        --log "$logs/smp_$name.console" --quiet "$@"
}

# stress NAME MACHINE MODE [run-smp.py options]: /smp-stress MODE
stress() {
    name=$1 machine=$2 mode=$3
    shift 3
    tap "$name" '^stops:\|^guest checks\|^work:' /usr/bin/python3 \
        "$TOP/guest/run-smp.py" --qemu "$QEMU_BIN" --kernel "$kernel" \
        --initrd "$initrd" --machine "$machine" --smp 4 --mode "$mode" \
        --log "$logs/smp_$name.console" "$@"
}

# same_verdicts REF NAME...: the ok / not ok lines (without the tag
# storage checks of the suite) are those of REF
same_verdicts() {
    ref=$1
    shift
    if [ ! -s "$logs/smp_$ref.verdicts" ]; then
        echo "not ok smp/$ref-verdicts: no verdicts to compare with"
        fail=1
        return
    fi
    for n in "$@"; do
        if ! verdicts "$n" | cmp -s - "$logs/smp_$ref.verdicts"; then
            echo "not ok smp/$n-verdicts differ from $ref:"
            verdicts "$n" | diff "$logs/smp_$ref.verdicts" - |
                sed 's/^/#   /' || true
            fail=1
        else
            echo "ok smp/$n-verdicts same as $ref"
        fi
    done
}
verdicts() {
    grep -E '^(ok|not ok) ' "$logs/smp_$1.console" 2>/dev/null |
        grep -v -E ' (probe-|carveout-)' | LC_ALL=C sort || true
}

# The reuse probe (v1) breaks R1 4 times and R2 128 times (see linux.sh)
suite suite_off tag-storage=off
suite suite_v1_off "$v1"
suite suite_v1_log "$v1,tag-storage-check=log" --expect-violations 4,128,0
verdicts suite_off > "$logs/smp_suite_off.verdicts"
same_verdicts suite_off suite_v1_off suite_v1_log

stress work_off tag-storage=off work
stress work_v1_off "$v1" work
stress work_v1_log "$v1,tag-storage-check=log" work --expect-violations 0,0,0
# a clean workload never stops the VM
stress work_v3_stop tag-storage=on,tag-storage-binding=v3,tag-storage-check=stop \
    work --expect-violations 0,0,0
verdicts work_off > "$logs/smp_work_off.verdicts"
same_verdicts work_off work_v1_off work_v1_log work_v3_stop

# All 4 CPUs read tag storage as data at once
stress stop_log "$v1,tag-storage-check=log" "stop,$K" --log-reads "$K"
stress stop "$v1,tag-storage-check=stop" "stop,$K" --stop-reads "$K"
exit $fail

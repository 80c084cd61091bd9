#!/bin/sh
# One command for a kernel developer: boot KERNEL_IMAGE (any arm64 kernel;
# Image, Image.gz or Image.xz) with -M virt,mte=on,tag-storage=on and the
# reuse checker, run the project's initramfs (the MTE suite, the same on
# stock mte=on as the baseline, and /reuse-workload), and write
# DIR/report.txt, DIR/report.json and DIR/tag-storage.png:
#
#   scripts/run-kernel.sh KERNEL_IMAGE [--system-map FILE | --vmlinux FILE]
#       [--out DIR] [--smp N] [-m SIZE] [--binding v1|v2|v3]
#       [--check log|stop] [--firmware uefi] [--append "KERNEL ARGS"]
#       [--runs suite,suite-stock,workloads] [--workload MODE]
#
# Exit 0: no violations and everything passes; 1: violations or failures;
# 2: cannot run (bad arguments, missing files, no QEMU build, the kernel
# does not get to /init): one line on standard error.  The work is done
# by scripts/kernel-report.py (its header says what each run is); this
# checks the QEMU build ($MTS_QEMU, else build/obj's) and builds the
# initramfs (guest/build-initramfs.sh, quietly: its log goes to
# $BUILD_ROOT/guest/initramfs.log).
set -eu
. "$(dirname "$0")/common.sh"

if [ ! -x "$QEMU_BIN" ]; then
    echo "run-kernel: error: no QEMU build at $QEMU_BIN (run make build," \
         "or set MTS_QEMU)" >&2
    exit 2
fi
mkdir -p "$BUILD_ROOT/guest"
ilog=$BUILD_ROOT/guest/initramfs.log
# its progress lines go to the log: a failed run prints one line only
if ! initrd=$("$TOP/guest/build-initramfs.sh" 2> "$ilog"); then
    echo "run-kernel: error: cannot build the initramfs: $(tail -n 1 "$ilog")" \
         "(log: $ilog)" >&2
    exit 2
fi
exec /usr/bin/python3 "$TOP/scripts/kernel-report.py" --qemu "$QEMU_BIN" \
    --initrd "$initrd" --program "$BUILD_ROOT/guest/reuse-workload" "$@"

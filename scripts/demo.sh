#!/bin/sh
# The main job: boot Debian's unmodified arm64 kernel with
# -M virt,mte=on,tag-storage=on (RFC v1 binding, so /dev/mem may map the
# carveout) and the reuse checker, run the MTE suite and the reuse probe,
# check the carveout from the host, draw the carveout's owners over time
# (build/guest/demo-tag-storage.png) and print a report ending in PASS or
# FAIL.
# --shell: the same guest, interactive (busybox sh when available).
set -eu
. "$(dirname "$0")/common.sh"

MACHINE=${MACHINE:-tag-storage=on,tag-storage-binding=v1,tag-storage-check=event}
[ -x "$QEMU_BIN" ] || die "no QEMU binary; run 'make build'"
kernel=$("$TOP/scripts/fetch-guest.sh")

if [ "${1:-}" = --shell ]; then
    "$TOP/scripts/fetch-guest.sh" --busybox
    initrd=$("$TOP/guest/build-initramfs.sh")
    say "guest shell on -M virt,mte=on,$MACHINE (Ctrl-a x quits QEMU)"
    exec "$QEMU_BIN" -M "virt,mte=on,$MACHINE" -cpu max,pauth-impdef=on \
        -m 2G -nographic -kernel "$kernel" -initrd "$initrd" \
        -append "console=ttyAMA0 quiet mts.shell"
fi

initrd=$("$TOP/guest/build-initramfs.sh")
log=$BUILD_ROOT/guest/demo.console
say "booting $(basename "$kernel") with -M virt,mte=on,$MACHINE -m 2G"
exec /usr/bin/python3 "$TOP/guest/run-linux.py" --qemu "$QEMU_BIN" \
    --kernel "$kernel" --initrd "$initrd" --machine "$MACHINE" --log "$log" \
    --picture "$BUILD_ROOT/guest/demo-tag-storage.png"

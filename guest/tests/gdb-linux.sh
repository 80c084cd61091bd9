#!/bin/sh
# gdb session against the Linux guest (see guest/gdb-linux.py)
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$MTS_TOP/scripts/common.sh"
kernel=$("$TOP/scripts/fetch-guest.sh")
initrd=$("$TOP/guest/build-initramfs.sh")
mkdir -p "$BUILD_ROOT/guest/logs"
exec /usr/bin/python3 "$TOP/guest/gdb-linux.py" "$QEMU_BIN" "$kernel" \
    "$initrd" "$BUILD_ROOT/guest/logs/gdb-linux.console"

#!/bin/sh
# Build the test guest's initramfs: our static /init (mte-init.c) and,
# when Debian's arm64 busybox-static could be fetched, a busybox /bin/sh.
# Prints the path of the cpio archive.
set -eu
. "$(dirname "$0")/../scripts/common.sh"
need_tools aarch64-linux-gnu-gcc cpio
G=$BUILD_ROOT/guest
out=$G/initramfs.cpio
init=$G/mte-init
mkdir -p "$G"
if [ ! -f "$init" ] || [ "$TOP/guest/mte-init.c" -nt "$init" ]; then
    say "compiling the guest's /init" >&2
    aarch64-linux-gnu-gcc -O2 -static -march=armv8.5-a+memtag -Wall \
        -Wno-unused-parameter -o "$init" "$TOP/guest/mte-init.c"
fi
if [ ! -f "$out" ] || [ "$init" -nt "$out" ] ||
   { [ -f "$G/busybox" ] && [ "$G/busybox" -nt "$out" ]; }; then
    root=$G/rootfs
    rm -rf "$root"
    mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/bin" "$root/tmp"
    cp "$init" "$root/init"
    if [ -f "$G/busybox" ]; then
        cp "$G/busybox" "$root/bin/busybox"
        for c in sh ls cat echo dmesg poweroff hexdump grep mount; do
            ln -s busybox "$root/bin/$c"
        done
    fi
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$out.tmp"
    mv "$out.tmp" "$out"
fi
echo "$out"

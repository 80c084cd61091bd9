#!/bin/sh
# Build the test guest's initramfs: our static /init (mte-init.c), the
# DMA test /virtio-dma (virtio-dma.c) with the kernel's virtio modules
# (from fetch-guest.sh) in /lib/modules, the carveout workers
# /thumb-carveout (AArch32 Thumb-2) and /a64-carveout (thumb-carveout.c),
# the tag storage reuse workload /reuse-workload (reuse-workload.c) and,
# when Debian's arm64 busybox-static could be fetched, a busybox /bin/sh.
# Prints the path of the cpio archive.
# --selftests: also (and print the path of) initramfs-selftests.cpio, the
# same plus the kernel's arm64 MTE selftests in /selftests
# (guest/build-mte-selftests.sh), run by /init for mts.selftests
# (guest/tests/reuse-selftests.sh).
set -eu
. "$(dirname "$0")/../scripts/common.sh"
selftests=
case ${1:-} in
--selftests) selftests=1 ;;
'') ;;
*) die "usage: $0 [--selftests]" ;;
esac
need_tools aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc cpio
G=$BUILD_ROOT/guest
out=$G/initramfs.cpio
init=$G/mte-init
dma=$G/virtio-dma
mkdir -p "$G"
if [ ! -f "$init" ] || [ "$TOP/guest/mte-init.c" -nt "$init" ] ||
   [ "$TOP/guest/carveout.h" -nt "$init" ] ||
   [ "$TOP/guest/mte.h" -nt "$init" ]; then
    say "compiling the guest's /init" >&2
    aarch64-linux-gnu-gcc -O2 -static -march=armv8.5-a+memtag -Wall \
        -Wno-unused-parameter -o "$init" "$TOP/guest/mte-init.c"
fi
# /smp-stress, exec'd by /init for mts.smp=MODE (guest/tests/smp.sh)
stress=$G/smp-stress
if [ ! -f "$stress" ] || [ "$TOP/guest/smp-stress.c" -nt "$stress" ] ||
   [ "$TOP/guest/carveout.h" -nt "$stress" ] ||
   [ "$TOP/guest/mte.h" -nt "$stress" ]; then
    say "compiling the guest's /smp-stress" >&2
    aarch64-linux-gnu-gcc -O2 -static -pthread -march=armv8.5-a+memtag \
        -Wall -Wno-unused-parameter -o "$stress" "$TOP/guest/smp-stress.c"
fi
# /reuse-workload, exec'd by /init for mts.reuse=THREADS
# (guest/tests/reuse-kernel.sh)
reuse=$G/reuse-workload
if [ ! -f "$reuse" ] || [ "$TOP/guest/reuse-workload.c" -nt "$reuse" ] ||
   [ "$TOP/guest/carveout.h" -nt "$reuse" ] ||
   [ "$TOP/guest/mte.h" -nt "$reuse" ]; then
    say "compiling the guest's /reuse-workload" >&2
    aarch64-linux-gnu-gcc -O2 -static -pthread -march=armv8.5-a+memtag \
        -Wall -Wno-unused-parameter -o "$reuse" "$TOP/guest/reuse-workload.c"
fi
# /virtio-dma, exec'd by /init for mts.dma (guest/tests/dma.sh)
if [ ! -f "$dma" ] || [ "$TOP/guest/virtio-dma.c" -nt "$dma" ] ||
   [ "$TOP/guest/carveout.h" -nt "$dma" ] ||
   [ "$TOP/guest/mte.h" -nt "$dma" ]; then
    say "compiling the guest's /virtio-dma" >&2
    aarch64-linux-gnu-gcc -O2 -static -pthread -march=armv8.5-a+memtag \
        -Wall -o "$dma" "$TOP/guest/virtio-dma.c"
fi
# /thumb-carveout and /a64-carveout, exec'd by /init for mts.thumb
# (guest/tests/thumb.sh): one source, a static Thumb-2 program for the
# kernel's AArch32 compat mode and its A64 counterpart
thumb=$G/thumb-carveout
a64=$G/a64-carveout
for bin in "$thumb" "$a64"; do
    if [ ! -f "$bin" ] || [ "$TOP/guest/thumb-carveout.c" -nt "$bin" ] ||
       [ "$TOP/guest/carveout.h" -nt "$bin" ]; then
        say "compiling the guest's /$(basename "$bin")" >&2
        if [ "$bin" = "$thumb" ]; then
            cc="arm-linux-gnueabihf-gcc -mthumb"
        else
            cc=aarch64-linux-gnu-gcc
        fi
        $cc -O2 -static -Wall -o "$bin" "$TOP/guest/thumb-carveout.c"
    fi
done
if [ ! -f "$out" ] || [ "$init" -nt "$out" ] || [ "$stress" -nt "$out" ] ||
   [ "$dma" -nt "$out" ] || [ "$thumb" -nt "$out" ] || [ "$a64" -nt "$out" ] ||
   [ "$reuse" -nt "$out" ] ||
   { [ -f "$G/modules/order" ] && [ "$G/modules/order" -nt "$out" ]; } ||
   { [ -f "$G/busybox" ] && [ "$G/busybox" -nt "$out" ]; }; then
    root=$G/rootfs
    rm -rf "$root"
    mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/bin" "$root/tmp"
    cp "$init" "$root/init"
    cp "$dma" "$root/virtio-dma"
    if [ -f "$G/modules/order" ]; then
        mkdir -p "$root/lib/modules"
        cp "$G"/modules/order "$G"/modules/*.ko "$root/lib/modules/"
    fi
    cp "$stress" "$root/smp-stress"
    cp "$reuse" "$root/reuse-workload"
    cp "$thumb" "$root/thumb-carveout"
    cp "$a64" "$root/a64-carveout"
    if [ -f "$G/busybox" ]; then
        cp "$G/busybox" "$root/bin/busybox"
        for c in sh ls cat echo dmesg poweroff hexdump grep mount; do
            ln -s busybox "$root/bin/$c"
        done
    fi
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$out.tmp"
    mv "$out.tmp" "$out"
fi
if [ -z "$selftests" ]; then
    echo "$out"
    exit 0
fi
bin=$("$TOP/guest/build-mte-selftests.sh")
sout=$G/initramfs-selftests.cpio
if [ ! -f "$sout" ] || [ "$out" -nt "$sout" ] ||
   [ -n "$(find "$bin" -newer "$sout")" ]; then
    sroot=$G/rootfs-selftests
    rm -rf "$sroot"
    mkdir -p "$sroot/selftests"
    cp "$bin"/* "$sroot/selftests/"
    # the kernel unpacks concatenated cpio archives in turn: the default
    # archive, then one with /selftests
    { cat "$out"
      (cd "$sroot" && find selftests | LC_ALL=C sort |
       cpio -o -H newc --quiet); } > "$sout.tmp"
    mv "$sout.tmp" "$sout"
fi
echo "$sout"

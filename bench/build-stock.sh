#!/bin/sh
# Build stock QEMU 10.2.2 for comparison: the same verified source and
# configure flags as our build, with only patches/local (the build fix for
# source tarballs without firmware, no runtime change).  Prints the binary.
set -eu
MTS_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$MTS_TOP/scripts/common.sh"

STOCK=$BUILD_ROOT/stock
bin=$STOCK/obj/qemu-system-aarch64
tarball=$("$TOP/scripts/fetch-qemu.sh")
if [ ! -f "$STOCK/src/.done" ]; then
    say "preparing stock QEMU $QEMU_VERSION in $STOCK/src" >&2
    rm -rf "$STOCK"
    mkdir -p "$STOCK/src" "$STOCK/obj"
    tar -C "$STOCK/src" --strip-components=1 -xf "$tarball"
    for p in $(series_patches local); do
        (cd "$STOCK/src" && patch -s -p1 < "$p")
    done
    touch "$STOCK/src/.done"
fi
if [ ! -f "$STOCK/obj/build.ninja" ]; then
    say "configuring stock QEMU" >&2
    setup_gdb
    # shellcheck disable=SC2086
    (cd "$STOCK/obj" && ../src/configure $CONFIGURE_FLAGS) \
        > "$STOCK/configure.log" 2>&1 || die "configure failed, see $STOCK/configure.log"
fi
say "building stock qemu-system-aarch64" >&2
ninja -C "$STOCK/obj" qemu-system-aarch64 > "$STOCK/build.log" 2>&1 ||
    die "build failed, see $STOCK/build.log"
echo "$bin"

#!/bin/sh
# Build the Linux kernel's arm64 MTE selftests (tools/testing/selftests/
# arm64/mte of Debian's linux-source-6.12, /usr/src/linux-source-6.12.tar.xz
# or MTS_LINUX_SOURCE=TARBALL) as static aarch64 programs and print the
# directory that holds them (check_buffer_fill, check_prctl, ...; progress
# goes to stderr).  They are built by the kernel's own selftest Makefiles
# (arm64/Makefile with ARM64_SUBTARGETS=mte, CROSS_COMPILE=aarch64-linux-
# gnu-, TARGET_ARCH=-static, which lib.mk puts on the link line), from the
# few files extracted from the tarball into
# $BUILD_ROOT/mte-selftests/KEY/src; KEY is the first 16 hex digits of the
# tarball's sha256.  A second run with the same tarball, this script and
# the same compiler only prints the directory (under 0.1 s).  For
# guest/build-initramfs.sh --selftests (guest/tests/reuse-selftests.sh).
set -eu
MTS_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$MTS_TOP/scripts/common.sh"

TARBALL=${MTS_LINUX_SOURCE:-/usr/src/linux-source-6.12.tar.xz}
CROSS=aarch64-linux-gnu-
[ -f "$TARBALL" ] || die "no $TARBALL (Debian's linux-source-6.12:" \
    "scripts/install-deps.sh installs it)"
need_tools ${CROSS}gcc make xz tar

# hashing the 150 MB tarball takes a second or more: the hash is kept
# with its size and modification time and taken again when either changes
mkdir -p "$BUILD_ROOT/mte-selftests"
memo=$BUILD_ROOT/mte-selftests/tarball.sha256
id="$(readlink -f "$TARBALL") $(stat -c '%s %Y' "$TARBALL")"
if [ -f "$memo" ] && [ "$(sed -n 2p "$memo")" = "$id" ]; then
    key=$(sed -n 1p "$memo")
else
    key=$(sha256sum < "$TARBALL" | cut -c1-16)
    printf '%s\n%s\n' "$key" "$id" > "$memo"
fi
dir=$BUILD_ROOT/mte-selftests/$key
out=$dir/bin
# what else decides the binaries: this script and the compiler
stamp=$( { cat "$0"; ${CROSS}gcc --version | head -n1; } | sha256sum |
         cut -c1-16)
if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$stamp" ]; then
    echo "$out"
    exit 0
fi

say "building the kernel's arm64 MTE selftests from $TARBALL" >&2
rm -rf "$dir"
mkdir -p "$dir/src" "$out"
# the top directory's name inside the tarball (linux-source-6.12)
top=$(tar -tJf "$TARBALL" | head -n1 | cut -d/ -f1)
st=$top/tools/testing/selftests
# lib.mk lists kselftest_harness.h as a prerequisite of every program
tar -C "$dir/src" -xJf "$TARBALL" "$st/lib.mk" "$st/kselftest.h" \
    "$st/kselftest_harness.h" "$st/arm64/Makefile" "$st/arm64/mte"
# (the upstream sources have -Wformat warnings: the log is shown only
# when the build fails; arm64/Makefile runs a plain "make", hence no -j)
make -C "$dir/src/$st/arm64" ARCH=arm64 CROSS_COMPILE=$CROSS \
    ARM64_SUBTARGETS=mte OUTPUT="$dir/obj" TARGET_ARCH=-static \
    > "$dir/build.log" 2>&1 || {
    tail -n 30 "$dir/build.log" >&2
    die "the MTE selftests did not build (log: $dir/build.log)"
}
# every check_*.c of the source is a program (the Makefile's PROGS)
n=0
for c in "$dir/src/$st/arm64/mte"/check_*.c; do
    p=$(basename "$c" .c)
    [ -x "$dir/obj/mte/$p" ] || die "selftest $p was not built"
    cp "$dir/obj/mte/$p" "$out/$p"
    n=$((n + 1))
done
[ "$n" -gt 0 ] || die "no check_*.c in $TARBALL's $st/arm64/mte"
echo "$stamp" > "$dir/stamp"
say "$n selftests in $out" >&2
echo "$out"

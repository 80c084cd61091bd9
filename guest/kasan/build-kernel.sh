#!/bin/sh
# Build the arm64 kernel that guest/tests/kasan.sh boots: Debian's
# linux-source-6.1 (version and sha256 pinned in linux-source.sha256),
# `make tinyconfig` plus kasan.config (hardware tag-based KASAN and its
# KUnit suite, built in), with kasan-hw-tags-suppress.patch applied.
# The result is cached in $BUILD_ROOT/kasan/Image-KEY, KEY a hash of this
# script, the fragment, the patch, the pin and the compiler version, so a
# second run only prints the path.  Prints the Image path (the only line
# on stdout); progress goes to stderr.
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$MTS_TOP/scripts/common.sh"

HERE=$TOP/guest/kasan
PIN=$HERE/linux-source.sha256
FRAGMENT=$HERE/kasan.config
PATCHES=$(ls "$HERE"/*.patch)
DEB=$(awk 'NF == 2 { print $2; exit }' "$PIN")  # linux-source-6.1_VER_all.deb
PKG=${DEB%%_*}
VER=${DEB#*_}
VER=${VER%_all.deb}
OUT=$BUILD_ROOT/kasan
KSRC=$OUT/src
KOBJ=$OUT/obj
CROSS=aarch64-linux-gnu-
JOBS=$(nproc 2>/dev/null || echo 2)

need_tools ${CROSS}gcc make bc flex bison patch dpkg-deb xz
mkdir -p "$OUT/download"

# shellcheck disable=SC2086
key=$( { cat "$HERE/build-kernel.sh" "$FRAGMENT" $PATCHES "$PIN"
         ${CROSS}gcc --version | head -n1; } | sha256sum | cut -c1-16)
image=$OUT/Image-$key
[ -f "$image" ] && { echo "$image"; exit 0; }

# One build at a time (tests may call this concurrently)
if command -v flock >/dev/null 2>&1; then
    exec 9> "$OUT/.lock"
    flock 9
    [ -f "$image" ] && { echo "$image"; exit 0; }
fi

# The source package: ../shared/vendor, an earlier download, or Debian's
# archive through a private apt configuration (an `all` package); always
# checked against the pinned sha256.
deb=$OUT/download/$DEB
if [ -f "$VENDOR/$DEB" ]; then
    deb=$VENDOR/$DEB
elif [ ! -f "$deb" ]; then
    say "downloading $PKG=$VER through a private apt configuration" >&2
    private_apt "$DL/apt-debian" \
        "deb http://deb.debian.org/debian bookworm main" \
        "deb http://deb.debian.org/debian bookworm-updates main" \
        "deb http://deb.debian.org/debian-security bookworm-security main"
    # shellcheck disable=SC2086
    apt-get $PRIVATE_APT update -q >&2
    # shellcheck disable=SC2086
    (cd "$OUT/download" && apt-get $PRIVATE_APT download "$PKG=$VER" >&2) ||
        die "cannot download $PKG=$VER (put $DEB in $VENDOR)"
fi
grep -q "^$(sha256sum "$deb" | cut -d' ' -f1)  $DEB\$" "$PIN" ||
    die "$deb is not the pinned source package (see $PIN)"

# Source tree: extracted and patched once per (version, patches)
# shellcheck disable=SC2086
stamp="$VER $(cat $PATCHES | sha256sum | cut -c1-16)"
if [ "$(cat "$KSRC/.mts-stamp" 2>/dev/null)" != "$stamp" ]; then
    say "extracting linux-source $VER" >&2
    rm -rf "$KSRC" "$KOBJ"
    mkdir -p "$KSRC"
    dpkg-deb --fsys-tarfile "$deb" |
        tar -xO "./usr/src/$PKG.tar.xz" |
        tar -xJ -C "$KSRC" --strip-components=1
    for p in $PATCHES; do
        say "applying $(basename "$p")" >&2
        patch -s -p1 -d "$KSRC" < "$p" >&2
    done
    echo "$stamp" > "$KSRC/.mts-stamp"
fi

# Build reproducibly; ccache when installed
export KBUILD_BUILD_USER=mte-tag-storage KBUILD_BUILD_HOST=localhost
export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 1970'
cc=${CROSS}gcc
command -v ccache >/dev/null 2>&1 && [ -z "${MTS_NO_CCACHE:-}" ] &&
    cc="ccache ${CROSS}gcc"
kmake() {
    nice -n 10 make -C "$KSRC" O="$KOBJ" ARCH=arm64 CROSS_COMPILE=$CROSS \
        CC="$cc" "$@"
}

say "configuring: tinyconfig + $(basename "$FRAGMENT")" >&2
mkdir -p "$KOBJ"
log=$OUT/build.log
{
    kmake tinyconfig &&
    "$KSRC/scripts/kconfig/merge_config.sh" -m -O "$KOBJ" \
        "$KOBJ/.config" "$FRAGMENT" &&
    kmake olddefconfig
} > "$log" 2>&1 || { tail -n 30 "$log" >&2; die "configuration failed; log in $log"; }
# Every option the fragment sets must have survived olddefconfig
miss=
# shellcheck disable=SC2013
for l in $(grep -E '^(CONFIG_[A-Z0-9_]+=.*|# CONFIG_[A-Z0-9_]+ is not set)$' "$FRAGMENT" |
           sed 's/^# \(CONFIG_[A-Z0-9_]*\) is not set$/\1=n/'); do
    case $l in
    *=n) grep -q "^${l%=n}=" "$KOBJ/.config" && miss="$miss $l" ;;
    *) grep -qx "$l" "$KOBJ/.config" || miss="$miss $l" ;;
    esac
done
[ -z "$miss" ] || die "kasan.config options not in the final .config:$miss"

say "building Image (nice -n 10, -j$JOBS, log in $log); about 10 minutes on 2 cores" >&2
start=$(date +%s)
rm -f "$KOBJ/.make-rc"
{ kmake -j"$JOBS" Image 2>&1; echo $? > "$KOBJ/.make-rc"; } |
    tee -a "$log" |
    awk '/^  [A-Z]+ +[^ ]/ { n++; if (n % 100 == 0) {
             printf "    %d steps, at %s\n", n, $2; fflush() } }' >&2
rc=$(cat "$KOBJ/.make-rc" 2>/dev/null || echo 1)
if [ "$rc" -ne 0 ]; then
    grep -E 'error|Error' "$log" | tail -n 20 >&2
    die "kernel build failed; log in $log"
fi
say "built in $(( $(date +%s) - start )) s" >&2

rm -f "$OUT"/Image-* "$OUT"/config-*
cp "$KOBJ/.config" "$OUT/config-$key"
cp "$KOBJ/arch/arm64/boot/Image" "$image.tmp"
mv "$image.tmp" "$image"
echo "$image"

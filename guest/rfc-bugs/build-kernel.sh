#!/bin/sh
# build-kernel.sh NAME: build a variant of the vendored reuse kernel
# (../shared/vendor/rfc-kernel: the arm,mte-tag-storage RFC v3 port to
# Debian's linux-source-6.12) and print two lines on stdout, the paths of
# its Image and System.map (progress goes to stderr).  NAME is
#   tag-before-reserve, free-while-tagged, skip-migrate
#             the port plus the planted bug NAME.patch of this folder
#             (each patch's header says what it breaks and what the
#             checker should report; guest/tests-full/rfc-bugs.sh boots them)
#   efi       the port with no bug, plus efi.config (CONFIG_EFI, the EFI
#             stub) to boot through UEFI firmware
#   port      the port alone (a control)
# The steps are those of the vendored build.sh (not called: it builds in
# /tmp and installs packages): the pinned linux-source-6.12 (the port's base,
# 6.12.117), the port patch, `make tinyconfig`, rfc.config (and efi.config)
# merged, olddefconfig, every fragment line verified, `make Image`.
# One shared source tree in $BUILD_ROOT/rfc-bugs/src holds the port and at
# most one bug patch (switching bugs reverses one and applies the other, so
# make rebuilds only the files they touch); one object tree per config
# (obj-port for the port and its bugs, obj-efi).  Results are cached in
# $BUILD_ROOT/rfc-bugs/NAME-KEY/, KEY a sha256 of the port patch, the
# config fragments, the bug patch, this script and the compiler version: a
# second run only prints the paths.  Builds run under nice -n 10, -j2
# (MTS_KERNEL_JOBS), with ccache when installed.
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$MTS_TOP/scripts/common.sh"

NAME=${1:-}
HERE=$TOP/guest/rfc-bugs
RFC=$VENDOR/rfc-kernel
PORT=$RFC/mte-tag-storage-rfc-v3-reduced-6.12.patch
FRAGS=$RFC/rfc.config
# the port's base tree: Debian's source package, pinned
DEB=linux-source-6.12_6.12.117-1~deb12u1_all.deb
DEB_SHA256=e849faf31ca3555757f3a8877cb01af92122f744f75d1f3102734651c4e14703
PKG=linux-source-6.12
VER=6.12.117-1~deb12u1
OUT=$BUILD_ROOT/rfc-bugs
KSRC=$OUT/src
CROSS=aarch64-linux-gnu-
JOBS=${MTS_KERNEL_JOBS:-2}

bug=
case $NAME in
port) cfg=port ;;
efi) cfg=efi FRAGS="$FRAGS $HERE/efi.config" ;;
''|*/*|.*) die "usage: $0 tag-before-reserve|free-while-tagged|skip-migrate|efi|port" ;;
*)  bug=$HERE/$NAME.patch cfg=port
    [ -f "$bug" ] || die "no planted bug $bug" ;;
esac
[ -f "$PORT" ] && [ -f "$RFC/rfc.config" ] ||
    die "no vendored port in $RFC (mte-tag-storage-rfc-v3-reduced-6.12.patch, rfc.config)"
need_tools ${CROSS}gcc make bc flex bison patch dpkg-deb xz
KOBJ=$OUT/obj-$cfg
mkdir -p "$OUT/download"

# shellcheck disable=SC2086
key=$( { cat "$PORT" $FRAGS $bug "$HERE/build-kernel.sh"
         ${CROSS}gcc --version | head -n1; } | sha256sum | cut -c1-16)
res=$OUT/$NAME-$key
done_paths() { echo "$res/Image"; echo "$res/System.map"; exit 0; }
[ -f "$res/Image" ] && [ -f "$res/System.map" ] && done_paths

# one build at a time: the source tree is shared by all variants
if command -v flock >/dev/null 2>&1; then
    exec 9> "$OUT/.lock"
    flock 9
    [ -f "$res/Image" ] && [ -f "$res/System.map" ] && done_paths
fi

# the source package: ../shared/vendor, an earlier download, or Debian's
# archive through a private apt configuration; checked against the pin
deb=$OUT/download/$DEB
if [ -f "$VENDOR/$DEB" ]; then
    deb=$VENDOR/$DEB
elif [ ! -f "$deb" ]; then
    say "downloading $PKG=$VER through a private apt configuration" >&2
    private_apt "$OUT/apt" \
        "deb http://deb.debian.org/debian bookworm main" \
        "deb http://deb.debian.org/debian-security bookworm-security main"
    # shellcheck disable=SC2086
    apt-get $PRIVATE_APT update -q >&2
    # shellcheck disable=SC2086
    (cd "$OUT/download" && apt-get $PRIVATE_APT download "$PKG=$VER" >&2) ||
        die "cannot download $PKG=$VER (put $DEB in $VENDOR)"
fi
[ "$(sha256sum < "$deb" | cut -d' ' -f1)" = "$DEB_SHA256" ] ||
    die "$deb is not the pinned source package ($DEB_SHA256)"

# the source tree: extracted and given the port once per (source, port);
# .mts-bug is a copy of the bug patch applied on top of it (none: empty)
stamp="$VER $(sha256sum < "$PORT" | cut -c1-16)"
if [ "$(cat "$KSRC/.mts-stamp" 2>/dev/null)" != "$stamp" ]; then
    say "extracting $PKG $VER and applying the port" >&2
    rm -rf "$KSRC" "$OUT"/obj-*
    mkdir -p "$KSRC"
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$PKG.tar.xz" |
        nice -n 10 tar -xJ -C "$KSRC" --strip-components=1
    patch -s -p1 -d "$KSRC" < "$PORT" >&2 || die "the port patch does not apply"
    : > "$KSRC/.mts-bug"
    echo "$stamp" > "$KSRC/.mts-stamp"
fi
want=/dev/null
[ -n "$bug" ] && want=$bug
if ! cmp -s "$KSRC/.mts-bug" "$want"; then
    if [ -s "$KSRC/.mts-bug" ]; then
        say "reverting the bug applied before" >&2
        patch -s -R -p1 -d "$KSRC" < "$KSRC/.mts-bug" >&2 ||
            { rm -f "$KSRC/.mts-stamp"; die "cannot revert $KSRC/.mts-bug (tree reset: run again)"; }
        : > "$KSRC/.mts-bug"
    fi
    if [ -n "$bug" ]; then
        say "applying $(basename "$bug")" >&2
        patch -s -p1 -d "$KSRC" < "$bug" >&2 || {
            patch -s -R -p1 -d "$KSRC" < "$bug" >/dev/null 2>&1 || true
            die "$(basename "$bug") does not apply on top of the port"; }
        cp "$bug" "$KSRC/.mts-bug"
    fi
fi

# reproducible builds; ccache when installed
export KBUILD_BUILD_USER=mte-tag-storage KBUILD_BUILD_HOST=localhost
export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 1970'
cc=${CROSS}gcc
command -v ccache >/dev/null 2>&1 && [ -z "${MTS_NO_CCACHE:-}" ] &&
    cc="ccache ${CROSS}gcc"
kmake() {
    nice -n 10 make -C "$KSRC" O="$KOBJ" ARCH=arm64 CROSS_COMPILE=$CROSS \
        CC="$cc" "$@"
}

# configured once per object tree and fragments (a new tinyconfig would
# not change the result, only cost time)
mkdir -p "$KOBJ"
log=$OUT/build-$NAME.log
: > "$log"
# shellcheck disable=SC2086
cstamp=$(cat $FRAGS | sha256sum | cut -c1-16)
if [ "$(cat "$KOBJ/.mts-config" 2>/dev/null)" != "$cstamp" ]; then
    say "configuring $cfg: tinyconfig + $(for f in $FRAGS; do basename "$f"; done | tr '\n' ' ')" >&2
    rm -f "$KOBJ/.mts-config"
    # shellcheck disable=SC2086
    {
        kmake tinyconfig &&
        "$KSRC/scripts/kconfig/merge_config.sh" -m -O "$KOBJ" \
            "$KOBJ/.config" $FRAGS &&
        kmake olddefconfig
    } >> "$log" 2>&1 || { tail -n 30 "$log" >&2; die "configuration failed; log in $log"; }
    # every line of the fragments must have survived olddefconfig
    miss=
    # shellcheck disable=SC2013,SC2086
    for l in $(cat $FRAGS | grep -E '^(CONFIG_[A-Z0-9_]+=.*|# CONFIG_[A-Z0-9_]+ is not set)$' |
               sed 's/^# \(CONFIG_[A-Z0-9_]*\) is not set$/\1=n/'); do
        case $l in
        *=n) grep -q "^${l%=n}=" "$KOBJ/.config" && miss="$miss $l" ;;
        *) grep -qx "$l" "$KOBJ/.config" || miss="$miss $l" ;;
        esac
    done
    [ -z "$miss" ] || die "options not in the final .config:$miss"
    echo "$cstamp" > "$KOBJ/.mts-config"
fi

say "building $NAME (nice -n 10, -j$JOBS, log in $log); a cold build takes about 10 minutes on 2 cores" >&2
start=$(date +%s)
rm -f "$KOBJ/.make-rc"
{ kmake -j"$JOBS" Image 2>&1; echo $? > "$KOBJ/.make-rc"; } |
    tee -a "$log" |
    awk '/^  [A-Z]+ +[^ ]/ { n++; if (n % 200 == 0) {
             printf "    %d steps, at %s\n", n, $2; fflush() } }' >&2
rc=$(cat "$KOBJ/.make-rc" 2>/dev/null || echo 1)
if [ "$rc" -ne 0 ]; then
    grep -E 'error|Error' "$log" | tail -n 20 >&2
    die "kernel build failed; log in $log"
fi
say "built $NAME in $(( $(date +%s) - start )) s" >&2

# the paths are those of this key only: older builds of NAME go
rm -rf "$OUT/$NAME"-*
mkdir -p "$res.tmp"
cp "$KOBJ/arch/arm64/boot/Image" "$KOBJ/System.map" "$KOBJ/.config" "$res.tmp/"
mv "$res.tmp" "$res"
done_paths

#!/bin/sh
# Obtain the pinned QEMU source tarball and verify it.
# Order: $QEMU_TARBALL; ../shared/vendor; Debian's source package via a
# private apt configuration; the upstream release tarball.
# Prints the verified tarball's path on stdout.
set -eu
. "$(dirname "$0")/common.sh"

verify() {
    # $1 = file; accept it only if its sha256 is listed in $HASHES
    sum=$(sha256sum "$1" | cut -d' ' -f1)
    if grep -q "^$sum " "$HASHES"; then
        say "verified $(basename "$1") (sha256 $sum)" >&2
        return 0
    fi
    printf 'error: %s has sha256 %s,\n  which is not one of the pinned hashes in %s\n' \
        "$1" "$sum" "$HASHES" >&2
    return 1
}

mkdir -p "$DL"

if [ -n "${QEMU_TARBALL:-}" ]; then
    [ -f "$QEMU_TARBALL" ] || die "QEMU_TARBALL=$QEMU_TARBALL does not exist"
    verify "$QEMU_TARBALL" || exit 1
    echo "$QEMU_TARBALL"; exit 0
fi

f=$VENDOR/qemu_${QEMU_VERSION}+ds.orig.tar.xz
if [ -f "$f" ]; then
    if [ -f "$VENDOR/SHA256SUMS" ]; then
        (cd "$VENDOR" && grep " qemu_${QEMU_VERSION}+ds.orig.tar.xz\$" SHA256SUMS |
            sha256sum -c --quiet -) >&2 || die "$f does not match $VENDOR/SHA256SUMS"
    fi
    verify "$f" || exit 1
    echo "$f"; exit 0
fi

# Previously downloaded copy
for f in "$DL/qemu_${QEMU_VERSION}+ds.orig.tar.xz" "$DL/qemu-${QEMU_VERSION}.tar.xz"; do
    if [ -f "$f" ] && verify "$f" 2>/dev/null; then
        echo "$f"; exit 0
    fi
done

# Debian source package, through a private apt configuration with deb-src
say "fetching Debian source package qemu=$DEBIAN_VERSION" >&2
private_apt "$DL/apt" \
    "deb-src http://deb.debian.org/debian unstable main" \
    "deb-src http://deb.debian.org/debian testing main" \
    "deb-src http://deb.debian.org/debian stable-backports main"
# shellcheck disable=SC2086
if apt-get $PRIVATE_APT update -q >&2 &&
   (cd "$DL" && apt-get $PRIVATE_APT source --download-only "qemu=$DEBIAN_VERSION" >&2); then
    f=$DL/qemu_${QEMU_VERSION}+ds.orig.tar.xz
    [ -f "$f" ] && verify "$f" && { echo "$f"; exit 0; }
fi

say "fetching upstream release tarball" >&2
f=$DL/qemu-${QEMU_VERSION}.tar.xz
curl -fL --progress-bar -o "$f.part" \
    "https://download.qemu.org/qemu-${QEMU_VERSION}.tar.xz" >&2 ||
    die "could not download QEMU $QEMU_VERSION from any source"
mv "$f.part" "$f"
verify "$f" || { rm -f "$f"; exit 1; }
echo "$f"

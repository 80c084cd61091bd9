#!/bin/sh
# Fetch and verify the guest kernel (Debian's arm64 cloud kernel 6.1):
# from ../shared/vendor when present (checked against its SHA256SUMS and
# our pinned hash), else the same package through a private apt
# configuration for arm64.  Prints the path of the raw Image.
set -eu
. "$(dirname "$0")/common.sh"

KPKG=linux-image-6.1.0-56-cloud-arm64
KVER=6.1.0-56-cloud-arm64
KDEB=${KPKG}_6.1.192-2_arm64.deb
GUEST=$BUILD_ROOT/guest
image=$GUEST/vmlinuz-$KVER
# the virtio modules (the cloud kernel has no built-in virtio) for
# guest/tests/dma.sh, in load order; build-initramfs.sh puts them in
# /lib/modules
MODULES="virtio/virtio_ring virtio/virtio virtio/virtio_pci_modern_dev
 virtio/virtio_pci_legacy_dev virtio/virtio_pci block/virtio_blk"
mods=$GUEST/modules

mkdir -p "$GUEST"

# apt-get options for Debian's arm64 archive, in a private configuration
arm64_apt() {
    private_apt "$DL/apt-arm64" \
        "deb [arch=arm64] http://deb.debian.org/debian bookworm main" \
        "deb [arch=arm64] http://deb.debian.org/debian-security bookworm-security main"
    PRIVATE_APT="$PRIVATE_APT -o APT::Architectures=arm64 -o APT::Architecture=arm64"
}

# --busybox: Debian's arm64 busybox-static for the interactive guest
# (best effort; apt verifies the package against the signed archive)
if [ "${1:-}" = --busybox ]; then
    [ -f "$GUEST/busybox" ] && exit 0
    say "downloading busybox-static (arm64) through a private apt configuration" >&2
    arm64_apt
    # shellcheck disable=SC2086
    if apt-get $PRIVATE_APT update -q >&2 &&
       (cd "$GUEST" && apt-get $PRIVATE_APT download busybox-static:arm64 >&2); then
        rm -rf "$GUEST/bb"
        dpkg-deb -x "$GUEST"/busybox-static_*_arm64.deb "$GUEST/bb"
        cp "$GUEST/bb/bin/busybox" "$GUEST/busybox"
        rm -rf "$GUEST/bb" "$GUEST"/busybox-static_*_arm64.deb
    else
        say "busybox-static unavailable; the guest shell falls back to our init" >&2
    fi
    exit 0
fi

[ -f "$image" ] && [ -f "$mods/order" ] && { echo "$image"; exit 0; }

deb=
if [ -f "$VENDOR/$KDEB" ]; then
    (cd "$VENDOR" && grep " $KDEB\$" SHA256SUMS | sha256sum -c --quiet -) >&2 ||
        die "$VENDOR/$KDEB does not match $VENDOR/SHA256SUMS"
    deb=$VENDOR/$KDEB
else
    say "downloading $KDEB (arm64) through a private apt configuration" >&2
    arm64_apt
    # shellcheck disable=SC2086
    apt-get $PRIVATE_APT update -q >&2
    # shellcheck disable=SC2086
    (cd "$GUEST" && apt-get $PRIVATE_APT download "$KPKG" >&2)
    deb=$(ls "$GUEST"/${KPKG}_*_arm64.deb | head -n1)
fi
grep -q "^$(sha256sum "$deb" | cut -d' ' -f1)  $KDEB" "$TOP/scripts/guest.sha256" ||
    die "$deb is not the pinned kernel package (see scripts/guest.sha256)"
say "extracting $KDEB" >&2
rm -rf "$GUEST/kpkg"
dpkg-deb -x "$deb" "$GUEST/kpkg"
cp "$GUEST/kpkg/boot/vmlinuz-$KVER" "$image.tmp"
rm -rf "$mods"
mkdir -p "$mods"
for m in $MODULES; do
    cp "$GUEST/kpkg/lib/modules/$KVER/kernel/drivers/$m.ko" "$mods/"
    echo "${m#*/}" >> "$mods/order"
done
rm -rf "$GUEST/kpkg"
mv "$image.tmp" "$image"
echo "$image"

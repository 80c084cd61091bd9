#!/bin/sh
# Install the Debian/Ubuntu packages needed to build and test mte-tag-storage.
# Idempotent: does nothing when everything is already present.
# meson (>= 1.5) and python3-pycotap come from bookworm-backports only when
# the distribution's own meson is too old; backports is configured in a
# private apt configuration, the system's sources are never edited.
set -eu

PKGS="ninja-build pkg-config libglib2.0-dev libpixman-1-dev libfdt-dev
libslirp-dev python3-venv flex bison device-tree-compiler
gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu cpio
gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
ccache git xz-utils ca-certificates curl dpkg-dev
libpython3.11 libgmp10 libmpfr6 libexpat1
ipxe-qemu qemu-efi-aarch64
bc patch make gcc libc6-dev python3-matplotlib
linux-source-6.12"
MESON_MIN=1.5

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

missing=
for p in $PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    $SUDO apt-get update -q
    # libpython3.11 and linux-source-6.12 (the kernel's MTE selftests, for
    # guest/tests/reuse-selftests.sh, which fails without it) are Debian
    # bookworm's; elsewhere install what the archive has
    $SUDO apt-get install -y -q --no-install-recommends $missing ||
        $SUDO apt-get install -y -q --no-install-recommends \
            $(echo "$missing" | tr ' ' '\n' |
              grep -v -e '^libpython3' -e '^linux-source-')
fi

meson_ok() {
    v=$(/usr/bin/meson --version 2>/dev/null) || return 1
    [ "$(printf '%s\n%s\n' "$MESON_MIN" "$v" | sort -V | head -n1)" = "$MESON_MIN" ]
}
pycotap_ok() {
    /usr/bin/python3 -c 'import pycotap' 2>/dev/null
}

if meson_ok && pycotap_ok; then
    echo "install-deps: meson $(/usr/bin/meson --version) and pycotap present"
    exit 0
fi

. /etc/os-release
if apt-cache policy meson 2>/dev/null | grep -q 'Candidate: [1-9]' &&
   [ "$(printf '%s\n%s\n' "$MESON_MIN" \
        "$(apt-cache policy meson | sed -n 's/ *Candidate: //p')" |
        sort -V | head -n1)" = "$MESON_MIN" ]; then
    echo "install-deps: installing meson from ${ID} ${VERSION_CODENAME:-}"
    $SUDO apt-get install -y -q meson python3-pycotap
    exit 0
fi

# Private apt configuration: the system's sources plus backports.
PRIV=${XDG_CACHE_HOME:-$HOME/.cache}/mte-tag-storage/apt
mkdir -p "$PRIV/sources.list.d" "$PRIV/lists/partial"
rm -f "$PRIV/sources.list.d/"*
cp /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
    "$PRIV/sources.list.d/" 2>/dev/null || true
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$PRIV/sources.list" ||
    : > "$PRIV/sources.list"
cat > "$PRIV/sources.list.d/zz-backports.list" <<EOB
deb http://deb.debian.org/debian ${VERSION_CODENAME}-backports main
EOB
APT_PRIV="-o Dir::Etc::SourceList=$PRIV/sources.list
-o Dir::Etc::SourceParts=$PRIV/sources.list.d
-o Dir::State::Lists=$PRIV/lists"
echo "install-deps: installing meson and python3-pycotap from ${VERSION_CODENAME}-backports"
# shellcheck disable=SC2086
$SUDO apt-get $APT_PRIV update -q
# shellcheck disable=SC2086
$SUDO apt-get $APT_PRIV install -y -q --no-install-recommends \
    -t "${VERSION_CODENAME}-backports" meson python3-pycotap
meson_ok || { echo "install-deps: meson >= $MESON_MIN still missing" >&2; exit 1; }

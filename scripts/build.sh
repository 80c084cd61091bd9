#!/bin/sh
# Prepare the tree, configure once, and build qemu-system-aarch64 with ninja
# (which rebuilds only what changed; ccache is used when installed).
set -eu
. "$(dirname "$0")/common.sh"
need_tools /usr/bin/python3 ninja pkg-config cc dtc
/usr/bin/python3 -c 'import mesonbuild' 2>/dev/null || command -v meson >/dev/null ||
    die "meson >= 1.5 is missing (run scripts/install-deps.sh)"

"$TOP/scripts/prepare-tree.sh"

configure_once "$OBJ" "$CONFIGURE_FLAGS" "$BUILD_ROOT/configure.log"

say "building qemu-system-aarch64 (ninja -C $OBJ)"
status=$BUILD_ROOT/.ninja-status
# shellcheck disable=SC2086
{ rc=0; ninja -C "$OBJ" qemu-system-aarch64 ${NINJA_TARGETS:-} 2>&1 || rc=$?; echo $rc > "$status"; } |
    "$TOP/scripts/progress.py"
[ "$(cat "$status")" = 0 ] || die "build failed (ninja -C $OBJ)"
# Run from the build tree, QEMU looks for firmware (option ROMs, edk2)
# under qemu-bundle/ + the configured firmware path: point there too.
for d in $(echo "$FIRMWARE_PATH" | tr ':' ' '); do
    if [ -d "$d" ] && [ ! -e "$OBJ/qemu-bundle$d" ]; then
        mkdir -p "$(dirname "$OBJ/qemu-bundle$d")"
        ln -s "$d" "$OBJ/qemu-bundle$d"
    fi
done
say "binary: $QEMU_BIN"

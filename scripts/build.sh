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
link_firmware "$OBJ"
say "binary: $QEMU_BIN"

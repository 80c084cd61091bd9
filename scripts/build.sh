#!/bin/sh
# Prepare the tree, configure once, and build qemu-system-aarch64 with ninja
# (which rebuilds only what changed; ccache is used when installed).
set -eu
. "$(dirname "$0")/common.sh"
need_tools /usr/bin/python3 ninja pkg-config cc dtc
/usr/bin/python3 -c 'import mesonbuild' 2>/dev/null || command -v meson >/dev/null ||
    die "meson >= 1.5 is missing (run scripts/install-deps.sh)"

"$TOP/scripts/prepare-tree.sh"

if [ ! -f "$OBJ/build.ninja" ] || [ ! -f "$OBJ/.configure-flags" ] ||
   [ "$(cat "$OBJ/.configure-flags")" != "$CONFIGURE_FLAGS" ]; then
    say "configuring QEMU in $OBJ"
    rm -rf "$OBJ"
    mkdir -p "$OBJ"
    # shellcheck disable=SC2086
    (cd "$OBJ" && "$SRC/configure" $CONFIGURE_FLAGS) > "$BUILD_ROOT/configure.log" 2>&1 || {
        tail -n 30 "$BUILD_ROOT/configure.log" >&2
        die "configure failed; full log in $BUILD_ROOT/configure.log"
    }
    echo "$CONFIGURE_FLAGS" > "$OBJ/.configure-flags"
fi

say "building qemu-system-aarch64 (ninja -C $OBJ)"
status=$BUILD_ROOT/.ninja-status
# shellcheck disable=SC2086
{ rc=0; ninja -C "$OBJ" qemu-system-aarch64 ${NINJA_TARGETS:-} 2>&1 || rc=$?; echo $rc > "$status"; } |
    "$TOP/scripts/progress.py"
[ "$(cat "$status")" = 0 ] || die "build failed (ninja -C $OBJ)"
say "binary: $QEMU_BIN"

#!/bin/sh
# Build the exported series one patch at a time (incrementally, in
# build/each-patch) and run checkpatch.pl on each patch: every patch of
# the series must build and pass on its own.  Slow: not part of make check.
set -eu
. "$(dirname "$0")/common.sh"
"$TOP/scripts/export-series.sh" >/dev/null
work=$BUILD_ROOT/each-patch
rm -rf "$work"
mkdir -p "$work/obj"
git clone -q --no-checkout "$SRC" "$work/src"
git -C "$work/src" checkout -q -b each "v$QEMU_VERSION"
for p in "$BUILD_ROOT"/export/0*.patch; do
    case "$p" in */0000-cover-letter.patch) continue ;; esac
    name=$(basename "$p")
    git -C "$work/src" am -q --keep-cr "$p" || die "$name does not apply"
    "$SRC/scripts/checkpatch.pl" -q "$p" || die "$name fails checkpatch.pl"
    if [ ! -f "$work/obj/build.ninja" ]; then
        # shellcheck disable=SC2086
        (cd "$work/obj" && ../src/configure $CONFIGURE_FLAGS) \
            > "$work/configure.log" 2>&1 || die "$name: configure failed"
    fi
    targets=qemu-system-aarch64
    [ -f "$work/src/tests/qtest/mte-tag-storage-test.c" ] &&
        targets="$targets tests/qtest/mte-tag-storage/mte-tag-storage-test"
    # shellcheck disable=SC2086
    ninja -C "$work/obj" $targets > "$work/build.log" 2>&1 ||
        { tail -n 30 "$work/build.log"; die "$name does not build"; }
    say "$name: applies, passes checkpatch.pl, builds"
done

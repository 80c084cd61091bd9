#!/bin/sh
# Regenerate patches/ from the commits on top of v10.2.2 in build/src.
set -eu
. "$(dirname "$0")/common.sh"
[ -d "$SRC/.git" ] || die "no prepared tree; run 'make prepare' first"
[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] ||
    die "build/src has uncommitted changes; commit them first"
rm -f "$TOP"/patches/*.patch
git -C "$SRC" format-patch -q --zero-commit --no-signature --no-numbered \
    -o "$TOP/patches" "v$QEMU_VERSION..HEAD"
git -C "$SRC" rev-parse 'HEAD^{tree}' > "$SRC/.applied-tree"
say "patches/: $(ls "$TOP"/patches/*.patch | wc -l) patches"

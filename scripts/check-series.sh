#!/bin/sh
# Check that the exported series (fixes/, then feature/) apply with git am
# to a fresh pristine QEMU 10.2.2 and yield exactly the tree we build
# (patches + overlay), and that import-overlay-steps.sh reads the export
# back into the same overlay files and steps.
set -eu
. "$(dirname "$0")/common.sh"
"$TOP/scripts/export-series.sh" >/dev/null
out=$BUILD_ROOT/export
tmp=$BUILD_ROOT/check-series
rm -rf "$tmp"
mkdir -p "$tmp"
tarball=$("$TOP/scripts/fetch-qemu.sh" 2>/dev/null)
tar -C "$tmp" --strip-components=1 -xf "$tarball"
git -C "$tmp" init -q
git -C "$tmp" config gc.auto 0
git -C "$tmp" add -A -f .
git -C "$tmp" commit -q -m "pristine QEMU $QEMU_VERSION"
# The local packaging patches first (the build has them), then fixes/
# and feature/: each must apply to pristine QEMU plus what came before
apply_local_patches "$tmp"
for p in "$out"/fixes/0*.patch "$out"/feature/0*.patch; do
    case "$p" in */0000-cover-letter.patch) continue ;; esac
    git -C "$tmp" am -q --keep-cr "$p" || die "$(basename "$p") does not apply to pristine $QEMU_VERSION"
done
got=$(git -C "$tmp" rev-parse 'HEAD^{tree}')

# The tree we build: HEAD of build/src plus the overlay files
idx=$BUILD_ROOT/check-series.index
rm -f "$idx"
GIT_INDEX_FILE=$idx git -C "$SRC" read-tree HEAD
overlay_files | while read -r f; do
    h=$(git -C "$SRC" hash-object -w "$TOP/$f")
    mode=100644
    [ -x "$TOP/$f" ] && mode=100755
    GIT_INDEX_FILE=$idx git -C "$SRC" update-index --add --cacheinfo "$mode,$h,$f"
done
want=$(GIT_INDEX_FILE=$idx git -C "$SRC" write-tree)
rm -f "$idx"
rm -rf "$tmp"
[ "$got" = "$want" ] || die "exported series gives tree $got, the build uses $want"

# The way back: importing the fresh export changes no overlay file or step
back=$BUILD_ROOT/check-series-import
rm -rf "$back"
IMPORT_TO=$back "$TOP/scripts/import-overlay-steps.sh" >/dev/null
overlay_files | while read -r f; do
    cmp -s "$TOP/$f" "$back/$f" || die "import-overlay-steps.sh changes $f"
done
diff -r "$TOP/patches/overlay-steps" "$back/patches/overlay-steps" \
    > /dev/null || die "import-overlay-steps.sh changes patches/overlay-steps"
rm -rf "$back"
say "exported series ($(ls "$out"/*/0*.patch | wc -l) files) apply to pristine $QEMU_VERSION and matches the build tree"

#!/bin/sh
# make check-series: is patches/ the series the build uses, in the form
# make patches writes, and fit to send?
#   - git am of patches/local, fixes, feature onto a fresh pristine
#     QEMU 10.2.2 (the tarball, not build/src) gives build/src's tree;
#   - make patches would write the same files (scripts/update-patches.sh
#     run on a copy: no dates, no commit ids, stable names);
#   - each commit is in the series its trailers name, in order; each
#     Fixes: names an upstream commit by a 12-hex-digit id; each series
#     has its cover letter;
#   - every fixes and feature patch passes checkpatch.pl.
set -eu
. "$(dirname "$0")/common.sh"
[ -d "$SRC/.git" ] || die "no prepared tree; run 'make prepare' first"
tmp=$BUILD_ROOT/check-series
rm -rf "$tmp"
mkdir -p "$tmp/src"
tarball=$("$TOP/scripts/fetch-qemu.sh" 2>/dev/null)
tar -C "$tmp/src" --strip-components=1 -xf "$tarball"
git -C "$tmp/src" init -q
git -C "$tmp/src" config gc.auto 0
git -C "$tmp/src" add -A -f .
git -C "$tmp/src" commit -q -m "pristine QEMU $QEMU_VERSION"
git -C "$tmp/src" tag "v$QEMU_VERSION"
for p in $(series_patches); do
    git -C "$tmp/src" am -q --keep-cr "$p" ||
        die "${p#"$TOP"/} does not apply to pristine $QEMU_VERSION and the" \
            "patches before it"
done
got=$(git -C "$tmp/src" rev-parse 'HEAD^{tree}')
want=$(git -C "$SRC" rev-parse 'HEAD^{tree}')
[ "$got" = "$want" ] ||
    die "patches/ gives tree $got, build/src has $want (run make patches)"

# The way back: make patches on the fresh tree writes the same files
mkdir -p "$tmp/top/scripts" "$tmp/top/patches"
cp "$TOP/scripts/common.sh" "$TOP/scripts/update-patches.sh" \
    "$tmp/top/scripts/"
MTS_TOP=$tmp/top BUILD_ROOT=$tmp sh "$tmp/top/scripts/update-patches.sh" \
    > "$tmp/update.log" 2>&1 || { cat "$tmp/update.log"; die "make patches fails"; }
for s in $SERIES; do
    diff -r -x cover-letter.txt "$TOP/patches/$s" "$tmp/top/patches/$s" \
        > "$tmp/diff" 2>&1 ||
        { head -n 20 "$tmp/diff"
          die "patches/$s is not as make patches writes it"; }
    [ -s "$TOP/patches/$s/cover-letter.txt" ] ||
        die "patches/$s has no cover-letter.txt"
done

# Fixes: trailers name upstream commits by id; one whose id is unknown
# here must be named in the cover letter's "Fixes: without an id"
cover=$TOP/patches/fixes/cover-letter.txt
for p in $(series_patches fixes); do
    grep -q '^Fixes: ' "$p" || die "${p#"$TOP"/}: in fixes/ without Fixes:"
    grep '^Fixes: ' "$p" | grep -vE '^Fixes: [0-9a-f]{12,40} \("' |
        sed -n 's/^Fixes: ("\(.*\)")$/\1/p' > "$tmp/noid"
    [ "$(grep -c '^Fixes: ' "$p")" -eq \
      "$(( $(grep -cE '^Fixes: [0-9a-f]{12,40} \("' "$p") +
           $(wc -l < "$tmp/noid") ))" ] ||
        die "${p#"$TOP"/}: a Fixes: that is neither id (\"subject\") nor" \
            "(\"subject\")"
    while read -r subj; do
        tr '\n' ' ' < "$cover" | tr -s ' ' |
            grep -qF "Fixes: without an id" &&
        tr '\n' ' ' < "$cover" | tr -s ' ' | grep -qF "$subj" ||
            die "${p#"$TOP"/}: Fixes: (\"$subj\") has no commit id, and" \
                "patches/fixes/cover-letter.txt does not say why"
    done < "$tmp/noid"
done

# checkpatch.pl, as a maintainer would run it on the series
n=0
for p in $(series_patches fixes feature); do
    "$SRC/scripts/checkpatch.pl" -q "$p" > "$tmp/checkpatch.log" 2>&1 ||
        { cat "$tmp/checkpatch.log"; die "${p#"$TOP"/} fails checkpatch.pl"; }
    n=$((n + 1))
done
say "patches/ ($(series_patches | wc -l) patches) applies to pristine" \
    "$QEMU_VERSION, is the tree we build and what make patches writes;" \
    "$n pass checkpatch.pl"

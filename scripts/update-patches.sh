#!/bin/sh
# make patches: write the commits on top of v10.2.2 in build/src back to
# patches/local, patches/fixes and patches/feature (see SERIES in
# common.sh), as git format-patch files without dates or commit ids, so
# that a diff of patches/ shows what changed and nothing else.  Each
# commit goes to the series its trailers name (commit_series); the
# series must come in that order.  Prints which patches changed (git
# range-diff against the series patches/ held before, in full in
# build/series.range-diff: paste it into the commit message).
set -eu
. "$(dirname "$0")/common.sh"
[ -d "$SRC/.git" ] || die "no prepared tree; run 'make prepare' first"
[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] ||
    die "build/src has uncommitted changes; commit them first"
[ ! -d "$SRC/.git/rebase-merge" ] && [ ! -d "$SRC/.git/rebase-apply" ] ||
    die "build/src is in the middle of a rebase or git am; finish it first"

base=v$QEMU_VERSION
tmp=$BUILD_ROOT/patches.new
rm -rf "$tmp"
order=0
for c in $(git -C "$SRC" rev-list --reverse "$base..HEAD"); do
    s=$(commit_series "$c")
    i=0
    for n in $SERIES; do
        i=$((i + 1))
        [ "$n" = "$s" ] && break
    done
    [ "$i" -ge "$order" ] ||
        die "$(git -C "$SRC" log -1 --format='%h %s' "$c") is a $s patch" \
            "after later series; reorder with git rebase -i"
    order=$i
    mkdir -p "$tmp/$s"
    echo "$c" >> "$tmp/$s.list"
done
for s in $SERIES; do
    mkdir -p "$tmp/$s"
    [ -f "$tmp/$s.list" ] || continue
    first=$(head -n 1 "$tmp/$s.list")
    last=$(tail -n 1 "$tmp/$s.list")
    git -C "$SRC" format-patch -q --zero-commit --no-signature --no-numbered \
        --start-number 1 -o "$tmp/$s" "$first^..$last"
    # no Date: header (git am then dates the commit when it applies it)
    for p in "$tmp/$s"/*.patch; do
        sed -i '1,/^$/{/^Date: /d}' "$p"
    done
done

old=$(cat "$SRC/.applied-commit" 2>/dev/null || true)
for s in $SERIES; do
    rm -f "$TOP/patches/$s"/[0-9]*.patch
    mkdir -p "$TOP/patches/$s"
    for p in "$tmp/$s"/*.patch; do
        [ -f "$p" ] && mv "$p" "$TOP/patches/$s/"
    done
done
rm -rf "$tmp"
git -C "$SRC" rev-parse 'HEAD^{tree}' > "$SRC/.applied-tree"
git -C "$SRC" rev-parse HEAD > "$SRC/.applied-commit"
say "patches/: $(for s in $SERIES; do
    printf '%s %s, ' "$(series_patches "$s" | wc -l)" "$s"
done | sed 's/, $//')"
if [ -n "$old" ] && git -C "$SRC" cat-file -e "$old" 2>/dev/null &&
   [ "$old" != "$(git -C "$SRC" rev-parse HEAD)" ]; then
    git -C "$SRC" range-diff --no-color "$base..$old" "$base..HEAD" \
        > "$BUILD_ROOT/series.range-diff"
    say "changed since the previous series (range-diff; in full in" \
        "build/series.range-diff):"
    grep -E '^ *[0-9-]+: +[0-9a-f-]+ [!<>] ' "$BUILD_ROOT/series.range-diff" ||
        echo "    (only commit ids)"
fi

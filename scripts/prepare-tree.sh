#!/bin/sh
# Build the prepared tree in build/src: a git repository whose first commit
# (tag v10.2.2) is the pristine import, with our overlay files symlinked in
# (git-excluded, so edits go straight to this repo) and patches/ applied as
# commits with git am.  Re-running only does what changed.
set -eu
. "$(dirname "$0")/common.sh"
need_tools git tar xz sha256sum

tarball=$("$TOP/scripts/fetch-qemu.sh")
tarsum=$(sha256sum "$tarball" | cut -d' ' -f1)

git_src() { git -C "$SRC" "$@"; }

if [ ! -f "$SRC/.pristine-sha256" ] || [ "$(cat "$SRC/.pristine-sha256")" != "$tarsum" ]; then
    say "extracting $(basename "$tarball")"
    rm -rf "$SRC" "$SRC.tmp"
    mkdir -p "$SRC.tmp"
    tar -C "$SRC.tmp" --strip-components=1 -xf "$tarball"
    say "importing pristine QEMU $QEMU_VERSION into git"
    git -C "$SRC.tmp" init -q -b mte-tag-storage
    git -C "$SRC.tmp" config core.autocrlf false
    git -C "$SRC.tmp" config gc.auto 0
    git -C "$SRC.tmp" add -A -f .
    GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z" \
        git -C "$SRC.tmp" commit -q -m "Import QEMU $QEMU_VERSION ($(basename "$tarball"))"
    git -C "$SRC.tmp" tag "v$QEMU_VERSION"
    echo "$tarsum" > "$SRC.tmp/.pristine-sha256"
    mv "$SRC.tmp" "$SRC"
fi

# Overlay: symlink every overlay file into the tree and keep git blind to it
exclude=$SRC/.git/info/exclude
{
    echo "/.pristine-sha256"
    echo "/.applied-tree"
    overlay_files | sed 's|^|/|'
} > "$exclude.new"
# remove links whose repo file went away
if [ -f "$exclude" ]; then
    grep '^/' "$exclude" | grep -vxFf "$exclude.new" | while read -r p; do
        if [ -L "$SRC$p" ]; then rm -f "$SRC$p"; fi
    done
fi
mv "$exclude.new" "$exclude"
# shellcheck disable=SC2046
shadowing=$(git_src ls-files -- $(overlay_files))
[ -z "$shadowing" ] ||
    die "overlay files shadow upstream files (change those with patches): $shadowing"
overlay_files | while read -r f; do
    if [ "$(readlink "$SRC/$f" 2>/dev/null)" != "$TOP/$f" ]; then
        mkdir -p "$(dirname "$SRC/$f")"
        ln -sfn "$TOP/$f" "$SRC/$f"
    fi
done

# Patches: compute the tree they produce and compare with HEAD's
want_tree() {
    idx=$(mktemp)
    rm -f "$idx"
    GIT_INDEX_FILE=$idx git_src read-tree "v$QEMU_VERSION"
    for p in "$TOP"/patches/*.patch; do
        [ -f "$p" ] || continue
        GIT_INDEX_FILE=$idx git_src apply --cached "$p" ||
            { rm -f "$idx"; die "patch $(basename "$p") does not apply"; }
    done
    GIT_INDEX_FILE=$idx git_src write-tree
    rm -f "$idx"
}
# .applied-tree records the tree that patches/ last produced (written here
# and by update-patches.sh).  A HEAD with another tree holds work that is
# not in patches/ yet: never throw it away.
applied=$SRC/.applied-tree
want=$(want_tree)
have=$(git_src rev-parse 'HEAD^{tree}')
if [ "$want" = "$have" ]; then
    echo "$have" > "$applied"
    say "prepared tree up to date ($(git_src rev-list --count "v$QEMU_VERSION..HEAD") patches)"
    exit 0
fi
if [ -f "$applied" ] && [ "$(cat "$applied")" != "$have" ]; then
    die "build/src has commits that are not in patches/;
  run 'make patches' to keep them, or 'make reset-tree' to drop them"
fi
if [ -n "$(git_src status --porcelain --untracked-files=no)" ] ||
   [ -d "$SRC/.git/rebase-apply" ]; then
    die "build/src has uncommitted changes or an unfinished git am;
  commit them and run 'make patches', or discard them, then retry"
fi
say "applying $(ls "$TOP"/patches/*.patch 2>/dev/null | wc -l) patches"
git_src reset -q --hard "v$QEMU_VERSION"
for p in "$TOP"/patches/*.patch; do
    [ -f "$p" ] || continue
    git_src am -q --keep-cr --committer-date-is-author-date "$p" ||
        die "git am failed on $(basename "$p")"
done
git_src rev-parse 'HEAD^{tree}' > "$applied"
say "prepared tree at $SRC"

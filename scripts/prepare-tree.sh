#!/bin/sh
# Build the prepared tree in build/src: a git repository whose first commit
# (tag v10.2.2) is the pristine import, and then one commit per patch of
# patches/local, patches/fixes and patches/feature (git am, in that order).
# Change the work there with git (commit --fixup, rebase -i), then write it
# back with make patches (scripts/update-patches.sh).  Re-running only does
# what changed, and never drops commits that patches/ does not have yet.
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

# Trees prepared before the series held our new files had them as
# symlinks into this repository, invisible to git: git am must create them
find "$SRC" -path "$SRC/.git" -prune -o -type l -lname "$TOP/*" -print |
    while read -r link; do rm -f "$link"; done
printf '%s\n' /.pristine-sha256 /.applied-tree /.applied-commit \
    > "$SRC/.git/info/exclude"

# Patches: compute the tree they produce and compare with HEAD's
want_tree() {
    idx=$(mktemp)
    rm -f "$idx"
    GIT_INDEX_FILE=$idx git_src read-tree "v$QEMU_VERSION"
    for p in $(series_patches); do
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
    [ -f "$SRC/.applied-commit" ] || git_src rev-parse HEAD > "$SRC/.applied-commit"
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
say "applying $(series_patches | wc -l) patches"
git_src reset -q --hard "v$QEMU_VERSION"
for p in $(series_patches); do
    git_src am -q --keep-cr "$p" ||
        die "git am failed on ${p#"$TOP"/}"
done
git_src rev-parse 'HEAD^{tree}' > "$applied"
git_src rev-parse HEAD > "$SRC/.applied-commit"
say "prepared tree at $SRC"

#!/bin/sh
# Export the work (overlay files + patches/) as two git format-patch
# series against v10.2.2, ready for git send-email:
#   build/export/fixes/    fixes to upstream code: the patches with a
#                          "Fixes:" trailer; applies to pristine v10.2.2
#   build/export/feature/  the tag storage feature; applies on top of fixes
# Patches named in patches/local.list (packaging of this repository, such
# as building from the +ds tarball) are applied by prepare-tree.sh only,
# and by check-each-patch.sh before the series.
# Each overlay file joins the patch named for it in patches/overlay.map,
# in the version that patch has: the repository holds each file's final
# version, and patches/overlay-steps/*.diff say how later patches change
# it (first line "# <start of the patch's subject>", then a git diff).
# The first versions are the final ones with every step undone.
set -eu
. "$(dirname "$0")/common.sh"
[ -d "$SRC/.git" ] || die "no prepared tree; run 'make prepare' first"

map=$TOP/patches/overlay.map
unmapped=$(overlay_files | while read -r f; do
    grep -q "^$f	" "$map" || echo "$f"
done)
[ -z "$unmapped" ] || die "overlay files missing from $map: $unmapped"

work=$BUILD_ROOT/export-work
out=$BUILD_ROOT/export
stage=$BUILD_ROOT/export-stage
rm -rf "$work" "$out" "$stage"
say "exporting to $out"

# step_of PATCH: the overlay step diff of PATCH, if it has one
steps=$TOP/patches/overlay-steps
step_of() {
    step_for "$(sed -n 's/^Subject: \[PATCH\] //p' "$1")"
}
for s in "$steps"/*.diff; do
    [ -f "$s" ] || continue
    n=0
    for p in "$TOP"/patches/*.patch; do
        [ "$(step_of "$p")" = "$s" ] && n=$((n + 1))
    done
    [ "$n" = 1 ] || die "$(basename "$s") matches $n patches, not one"
done

# The first version of each overlay file: the final one, steps undone
mkdir -p "$stage"
(cd "$TOP" && overlay_files | tar -cf - -T -) | tar -C "$stage" -xf -
git -C "$stage" init -q
for p in $(ls -r "$TOP"/patches/*.patch); do
    s=$(step_of "$p")
    [ -z "$s" ] || (cd "$stage" && git apply -R "$s") ||
        die "$(basename "$s") does not undo from the overlay files"
done

git clone -q --no-checkout "$SRC" "$work"
git -C "$work" config gc.auto 0
git -C "$work" checkout -q -b export "v$QEMU_VERSION"
series=fixes
nfixes=0
nfeature=0
for p in "$TOP"/patches/*.patch; do
    if is_local_patch "$p"; then
        continue
    fi
    if grep -q '^Fixes: ' "$p"; then
        [ "$series" = fixes ] ||
            die "$(basename "$p") has Fixes: but follows feature patches"
        nfixes=$((nfixes + 1))
    else
        [ "$series" = feature ] || git -C "$work" branch fixes
        series=feature
        nfeature=$((nfeature + 1))
    fi
    git -C "$work" am -q --keep-cr --committer-date-is-author-date "$p"
    subject=$(git -C "$work" log -1 --format=%s)
    grep -v '^#' "$map" | while IFS='	' read -r f prefix; do
        case "$subject" in
        "$prefix"*)
            mkdir -p "$work/$(dirname "$f")"
            cp "$stage/$f" "$work/$f"
            git -C "$work" add "$f"
            ;;
        esac
    done
    s=$(step_of "$p")
    [ -z "$s" ] || git -C "$work" apply --index "$s" ||
        die "$(basename "$s") does not apply to $(basename "$p")"
    if ! git -C "$work" diff --cached --quiet; then
        git -C "$work" commit -q --amend --no-edit
    fi
done
[ "$series" = feature ] || git -C "$work" branch fixes

# format_series DIR RANGE COVER: one series with its cover letter
format_series() {
    git -C "$work" format-patch -q --zero-commit --cover-letter \
        --thread=shallow -o "$1" "$2"
    /usr/bin/python3 - "$1/0000-cover-letter.patch" "$3" <<'PY'
import sys
path, body_file = sys.argv[1:]
subj, body = open(body_file).read().split('\n', 1)
text = open(path).read()
text = text.replace('*** SUBJECT HERE ***', subj)
text = text.replace('*** BLURB HERE ***', body.strip('\n'))
open(path, 'w').write(text)
PY
}
format_series "$out/fixes" "v$QEMU_VERSION..fixes" \
    "$TOP/scripts/cover-letter-fixes.txt"
format_series "$out/feature" "fixes..export" "$TOP/scripts/cover-letter.txt"
echo "$(git -C "$work" rev-parse 'HEAD^{tree}')" > "$out/.tree"
say "exported $nfixes fixes to $out/fixes and $nfeature feature patches" \
    "to $out/feature, each with a cover letter"

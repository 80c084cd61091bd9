#!/bin/sh
# Export the whole work (overlay files + patches/) as one git format-patch
# series against v10.2.2, in build/export/, ready for git send-email.
# Each overlay file joins the patch named for it in patches/overlay.map.
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
rm -rf "$work" "$out"
say "exporting to $out"
git clone -q --no-checkout "$SRC" "$work"
git -C "$work" config gc.auto 0
git -C "$work" checkout -q -b export "v$QEMU_VERSION"
for p in "$TOP"/patches/*.patch; do
    git -C "$work" am -q --keep-cr --committer-date-is-author-date "$p"
    subject=$(git -C "$work" log -1 --format=%s)
    added=
    grep -v '^#' "$map" | while IFS='	' read -r f prefix; do
        case "$subject" in
        "$prefix"*)
            mkdir -p "$work/$(dirname "$f")"
            cp "$TOP/$f" "$work/$f"
            git -C "$work" add "$f"
            ;;
        esac
    done
    if ! git -C "$work" diff --cached --quiet; then
        git -C "$work" commit -q --amend --no-edit
    fi
done
n=$(ls "$TOP"/patches/*.patch | wc -l)
git -C "$work" format-patch -q --zero-commit --cover-letter --thread=shallow \
    -o "$out" "v$QEMU_VERSION..export"
# Fill in the cover letter from scripts/cover-letter.txt
cover=$out/0000-cover-letter.patch
subj=$(head -n1 "$TOP/scripts/cover-letter.txt")
/usr/bin/python3 - "$cover" "$subj" "$TOP/scripts/cover-letter.txt" <<'PY'
import sys
path, subj, body_file = sys.argv[1:]
body = open(body_file).read().split('\n', 1)[1].lstrip('\n')
text = open(path).read()
text = text.replace('*** SUBJECT HERE ***', subj)
text = text.replace('*** BLURB HERE ***', body.rstrip('\n'))
open(path, 'w').write(text)
PY
echo "$(git -C "$work" rev-parse 'HEAD^{tree}')" > "$out/.tree"
say "exported $n patches and a cover letter to $out"

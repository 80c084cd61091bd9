#!/bin/sh
# make export: the two series that could be sent, numbered and threaded
# for git send-email, in build/export/fixes (onto pristine v10.2.2) and
# build/export/feature (onto fixes), each with its cover letter
# (patches/SERIES/cover-letter.txt: subject line, blank line, text).
# They are made from build/src, where patches/ is applied (make prepare);
# patches/local is never sent.
set -eu
. "$(dirname "$0")/common.sh"
"$TOP/scripts/prepare-tree.sh" >/dev/null
out=$BUILD_ROOT/export
rm -rf "$out"
for c in $(git -C "$SRC" rev-list --reverse "v$QEMU_VERSION..HEAD"); do
    echo "$c" >> "$out.$(commit_series "$c")"
done
for s in fixes feature; do
    [ -f "$out.$s" ] || continue
    git -C "$SRC" format-patch -q --zero-commit --cover-letter \
        --thread=shallow -o "$out/$s" \
        "$(head -n 1 "$out.$s")^..$(tail -n 1 "$out.$s")"
    /usr/bin/python3 - "$out/$s/0000-cover-letter.patch" \
        "$TOP/patches/$s/cover-letter.txt" <<'PY'
import sys
path, body_file = sys.argv[1:]
subj, body = open(body_file).read().split('\n', 1)
text = open(path).read()
text = text.replace('*** SUBJECT HERE ***', subj)
text = text.replace('*** BLURB HERE ***', body.strip('\n'))
open(path, 'w').write(text)
PY
    say "build/export/$s: $(wc -l < "$out.$s") patches and a cover letter"
done
rm -f "$out".*

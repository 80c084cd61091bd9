#!/bin/sh
# The way back from export-series.sh for the overlay files: read the
# history of build/export-work (after `make export`, perhaps edited
# there with git rebase -i to change what an intermediate patch adds)
# and rewrite from it
#   - the overlay files in this repository (their versions at the tip),
#   - patches/overlay-steps/*.diff (how each later patch changes them).
# patches/overlay.map is checked, not rewritten: each overlay file must
# be added by the patch the map names for it.  Upstream files are not
# imported: change them in build/src and run make patches.  Run
# make check-series afterwards; it proves the round trip.
# IMPORT_TO=DIR writes into DIR instead of this repository (check-series
# uses that to check that an import of a fresh export changes nothing).
set -eu
. "$(dirname "$0")/common.sh"
work=$BUILD_ROOT/export-work
[ -d "$work/.git" ] || die "no $work; run 'make export' first"
map=$TOP/patches/overlay.map
dest=${IMPORT_TO:-$TOP}

base=v$QEMU_VERSION
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -v '^#' "$map" | cut -f1 > "$tmp/files"

# slug PREFIX: file name of a step, as git format-patch makes them
slug() {
    printf '%s' "$1" | tr -c 'A-Za-z0-9.\n' '-' | tr -s '-' | sed 's/-$//'
}

# prefix_of SUBJECT: the start of SUBJECT that names it in the current
# steps (kept, so that regenerated files differ only where content does)
prefix_of() {
    po_step=$(step_for "$1" | head -n 1)
    if [ -n "$po_step" ]; then
        sed -n '1s/^# //p' "$po_step"
    else
        echo "$1"
    fi
}

mkdir "$tmp/steps"
for c in $(git -C "$work" rev-list --reverse "$base..export"); do
    subject=$(git -C "$work" log -1 --format=%s "$c")
    git -C "$work" diff-tree --no-commit-id -r --name-status "$c" > \
        "$tmp/changes"
    changed=
    while read -r status f; do
        grep -qxF "$f" "$tmp/files" || continue
        case "$status" in
        A)
            prefix=$(grep "^$f	" "$map" | cut -f2)
            case "$subject" in
            "$prefix"*) ;;
            *) die "$f is added by '$subject', not by '$prefix' ($map)" ;;
            esac
            ;;
        M) changed="$changed $f" ;;
        *) die "$f: '$status' in '$subject'; only A and M are supported" ;;
        esac
    done < "$tmp/changes"
    [ -n "$changed" ] || continue
    prefix=$(prefix_of "$subject")
    # shellcheck disable=SC2086
    { echo "# $prefix"; git -C "$work" diff --no-color --binary "$c^" "$c" -- $changed
    } > "$tmp/steps/$(slug "$prefix").diff"
done

while read -r f; do
    git -C "$work" cat-file -e "export:$f" 2>/dev/null ||
        die "$f is not in the exported series"
    mkdir -p "$dest/$(dirname "$f")"
    git -C "$work" show "export:$f" > "$dest/$f"
    # keep the mode git has for it (the gdbstub test is executable)
    case $(git -C "$work" ls-tree export -- "$f") in
    100755*) chmod +x "$dest/$f" ;;
    esac
done < "$tmp/files"
mkdir -p "$dest/patches/overlay-steps"
rm -f "$dest/patches/overlay-steps"/*.diff
cp "$tmp/steps"/*.diff "$dest/patches/overlay-steps"/
say "imported $(wc -l < "$tmp/files") overlay files and" \
    "$(ls "$tmp/steps" | wc -l) overlay steps from $work"

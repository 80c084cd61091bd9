#!/bin/sh
# The test command: build, run every suite of ours through QEMU's meson
# test machinery, check the exported series, and print "N passed, N failed".
set -eu
. "$(dirname "$0")/common.sh"

NINJA_TARGETS="qemu-img tests/qtest/mte-tag-storage/mte-tag-storage-test
 tests/qtest/mte-tag-storage/mte-tag-storage-guest.elf" "$TOP/scripts/build.sh"

setup_gdb

results=$BUILD_ROOT/test-results
rm -rf "$results"
mkdir -p "$results"

say "running meson test --suite mte-tag-storage"
(cd "$OBJ" && /usr/bin/python3 -m mesonbuild.mesonmain test --no-rebuild \
    --suite mte-tag-storage --print-errorlogs) > "$results/meson.log" 2>&1 || true
grep -E '^ *[0-9]+/[0-9]+ ' "$results/meson.log" || true
cp "$OBJ/meson-logs/testlog.json" "$results/" 2>/dev/null || true

say "checking the exported series against pristine QEMU $QEMU_VERSION"
if "$TOP/scripts/check-series.sh" > "$results/series.log" 2>&1; then
    echo "ok export-series" >> "$results/extra.tap"
else
    cat "$results/series.log"
    echo "not ok export-series" >> "$results/extra.tap"
fi

for t in "$TOP"/guest/tests/*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    say "running guest test $name"
    if QEMU_BIN=$QEMU_BIN "$t" > "$results/$name.log" 2>&1; then
        grep -E '^(ok|not ok) ' "$results/$name.log" | sed "s/^/    /" || true
        echo "ok guest/$name" >> "$results/extra.tap"
    else
        tail -n 20 "$results/$name.log"
        echo "not ok guest/$name" >> "$results/extra.tap"
    fi
done

say "benchmark smoke run (bench/run.py --smoke)"
if /usr/bin/python3 "$TOP/bench/run.py" --smoke > "$results/bench.log" 2>&1; then
    sed -n '/^case (median/,/^peak/p' "$results/bench.log"
    echo "ok bench-smoke" >> "$results/extra.tap"
else
    tail -n 20 "$results/bench.log"
    echo "not ok bench-smoke" >> "$results/extra.tap"
fi

exec /usr/bin/python3 "$TOP/scripts/summarize.py" "$results"

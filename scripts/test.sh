#!/bin/sh
# The test command: build, run every suite of ours through QEMU's meson
# test machinery, check the series in patches/, and print "N passed, N failed".
set -eu
. "$(dirname "$0")/common.sh"

NINJA_TARGETS="qemu-img tests/qtest/mte-tag-storage/mte-tag-storage-test
 tests/qtest/mte-tag-storage/mte-tag-storage-guest.elf
 tests/qtest/arm-mte-dirty-test tests/qtest/test-hmp test-plugins" \
    "$TOP/scripts/build.sh"

setup_gdb

results=$BUILD_ROOT/test-results
rm -rf "$results"
mkdir -p "$results"

# Our qtests: the mte-tag-storage suite, and the fixes' qtest, which
# lives in qtests_aarch64 (meson cannot mix --suite with test names)
for sel in "--suite mte-tag-storage" "qtest-aarch64/arm-mte-dirty-test"; do
    say "running meson test $sel"
    rm -f "$OBJ/meson-logs/testlog.json"
    # shellcheck disable=SC2086
    (cd "$OBJ" && /usr/bin/python3 -m mesonbuild.mesonmain test --no-rebuild \
        --print-errorlogs $sel) >> "$results/meson.log" 2>&1 || true
    cat "$OBJ/meson-logs/testlog.json" >> "$results/testlog.json" 2>/dev/null ||
        true
done
grep -E '^ *[0-9]+/[0-9]+ ' "$results/meson.log" || true

# The fixes series' monitor tests: test-hmp's cases for the expression
# parser (all of test-hmp visits every machine type, which takes long)
say "running test-hmp (hmp/none+2MB, hmp/expr-depth)"
if (cd "$OBJ" && QTEST_QEMU_BINARY=./qemu-system-aarch64 \
        tests/qtest/test-hmp -p /aarch64/hmp/none+2MB \
        -p /aarch64/hmp/expr-depth) > "$results/test-hmp.log" 2>&1; then
    echo "ok qtest/test-hmp (expression parser)" >> "$results/extra.tap"
else
    tail -n 5 "$results/test-hmp.log"
    echo "not ok qtest/test-hmp (expression parser)" >> "$results/extra.tap"
fi

# QEMU's own aarch64 system-mode tcg tests, with the gdbstub MTE tests
say "running make run-tcg-tests-aarch64-softmmu (tests/tcg)"
if make -k -C "$OBJ" run-tcg-tests-aarch64-softmmu > "$results/tcg.log" 2>&1; then
    echo "ok check-tcg aarch64-softmmu" >> "$results/extra.tap"
else
    grep -E 'Error|FAIL' "$results/tcg.log" | tail -n 20
    echo "not ok check-tcg aarch64-softmmu" >> "$results/extra.tap"
fi
for t in run-gdbstub-mte run-gdbstub-mte-packets; do
    # each must have run, not been skipped for want of a gdb
    if grep -q "^PASS" "$OBJ/tests/tcg/aarch64-softmmu/$t.out" 2>/dev/null &&
       ! grep -q "^FAIL" "$OBJ/tests/tcg/aarch64-softmmu/$t.out"; then
        echo "ok tcg/$t" >> "$results/extra.tap"
    else
        echo "not ok tcg/$t" >> "$results/extra.tap"
    fi
done

say "checking patches/ against pristine QEMU $QEMU_VERSION (make check-series)"
if "$TOP/scripts/check-series.sh" > "$results/series.log" 2>&1; then
    echo "ok series (patches/ applies, is the build's tree and make" \
         "patches' output; checkpatch.pl)" >> "$results/extra.tap"
else
    cat "$results/series.log"
    echo "not ok series" >> "$results/extra.tap"
fi

# MTS_CHECK_FULL=1 (make check-full): the long tests of guest/tests-full/ too
full=
[ -z "${MTS_CHECK_FULL:-}" ] || full="$TOP/guest/tests-full/*.sh"
# shellcheck disable=SC2086
for t in "$TOP"/guest/tests/*.sh $full; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    case $t in */tests-full/*) name=full-$name ;; esac
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

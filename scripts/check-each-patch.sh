#!/bin/sh
# Apply the series of patches/ (local, fixes, then feature) one patch at a
# time to pristine QEMU, in build/each-patch: every patch must apply,
# pass checkpatch.pl (all but the local packaging patches), build
# (incrementally) and pass the tests that exist at that point:
#   - the series' qtests that the tree has (arm-mte-dirty-test, then the
#     mte-tag-storage suite), through meson test;
#   - for a patch that touches target/arm, gdbstub or tests/tcg: the
#     aarch64 system-mode tcg tests (make run-tcg-tests-aarch64-softmmu),
#     which include the gdbstub MTE tests when gdb >= 16 is configured.
# Slow: not part of make check.  Logs in build/each-patch/.
set -eu
. "$(dirname "$0")/common.sh"
setup_gdb
work=$BUILD_ROOT/each-patch
rm -rf "$work"
mkdir -p "$work/obj"
git clone -q --no-checkout "$SRC" "$work/src"
git -C "$work/src" checkout -q -b each "v$QEMU_VERSION"

# run_tests NAME: the tests that exist in the tree at this patch
run_tests() {
    obj=$work/obj
    if [ -f "$work/src/tests/qtest/arm-mte-dirty-test.c" ]; then
        (cd "$obj" && /usr/bin/python3 -m mesonbuild.mesonmain test \
            --no-rebuild qtest-aarch64/arm-mte-dirty-test) \
            > "$work/test.log" 2>&1 ||
            { tail -n 30 "$work/test.log" >&2
              die "$1: arm-mte-dirty-test fails"; }
        echo "arm-mte-dirty-test"
    fi
    if [ -d "$work/src/tests/qtest/mte-tag-storage" ]; then
        (cd "$obj" && /usr/bin/python3 -m mesonbuild.mesonmain test \
            --no-rebuild --suite mte-tag-storage) > "$work/test.log" 2>&1 ||
            { tail -n 30 "$work/test.log" >&2
              die "$1: mte-tag-storage suite fails"; }
        echo "mte-tag-storage suite"
    fi
    if git -C "$work/src" show --stat=200 --format= HEAD |
       grep -qE '^ (target/arm|gdbstub|tests/tcg)/'; then
        make -C "$obj" run-tcg-tests-aarch64-softmmu > "$work/tcg.log" 2>&1 ||
            { tail -n 30 "$work/tcg.log" >&2
              die "$1: tcg tests fail"; }
        grep -q 'gdbstub MTE' "$work/tcg.log" && echo "tcg (with gdbstub)" ||
            echo "tcg"
    fi
}

for p in $(series_patches); do
    name=$(basename "$(dirname "$p")")/$(basename "$p")
    git -C "$work/src" am -q --keep-cr "$p" || die "$name does not apply"
    case $name in
    local/*) ;;
    *) "$SRC/scripts/checkpatch.pl" -q "$p" ||
           die "$name fails checkpatch.pl" ;;
    esac
    if [ ! -f "$work/obj/build.ninja" ]; then
        # shellcheck disable=SC2086
        (cd "$work/obj" && ../src/configure $CONFIGURE_FLAGS) \
            > "$work/configure.log" 2>&1 || die "$name: configure failed"
        link_firmware "$work/obj"
    fi
    targets="qemu-system-aarch64 qemu-img test-plugins"
    [ -f "$work/src/tests/qtest/arm-mte-dirty-test.c" ] &&
        targets="$targets tests/qtest/arm-mte-dirty-test"
    [ -d "$work/src/tests/qtest/mte-tag-storage" ] &&
        targets="$targets tests/qtest/mte-tag-storage/mte-tag-storage-test
 tests/qtest/mte-tag-storage/mte-tag-storage-guest.elf"
    # shellcheck disable=SC2086
    ninja -C "$work/obj" $targets > "$work/build.log" 2>&1 ||
        { tail -n 30 "$work/build.log"; die "$name does not build"; }
    # run_tests dies in a subshell: its status, not a pipeline's, decides
    tests=$(run_tests "$name") || exit 1
    tests=$(echo "$tests" | paste -sd, -)
    say "$name: applies, passes checkpatch.pl, builds${tests:+, passes $tests}"
done

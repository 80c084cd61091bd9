#!/bin/sh
# QEMU built with AddressSanitizer and UndefinedBehaviorSanitizer in
# build/asan (same source and flags as the main build), then every meson
# test of ours run under it (qtests, bare-metal guests, the randomized
# test, gdbstub).  Sanitizer reports go to build/asan-reports/; the run
# fails if there is any.  Leak checking is off: QEMU does not free
# everything at exit, and that is not what this looks for.
#
# "sanitize.sh tsan" instead builds with ThreadSanitizer (clang) in
# build/tsan and runs the checker qtests and the 4-vCPU Linux run where
# every CPU breaks a reuse rule at once under check=stop (guest/tests/
# smp.sh's race); it fails on any TSan report about our code.
set -eu
. "$(dirname "$0")/common.sh"
[ "${1:-}" = tsan ] && exec "$TOP/scripts/sanitize-tsan.sh"
ASAN_OBJ=$BUILD_ROOT/asan
REPORTS=$BUILD_ROOT/asan-reports
flags="$CONFIGURE_FLAGS --enable-asan --enable-ubsan"

"$TOP/scripts/prepare-tree.sh"
configure_once "$ASAN_OBJ" "$flags" "$BUILD_ROOT/asan-configure.log"
start=$(date +%s)
say "building with ASan and UBSan (ninja -C $ASAN_OBJ)"
ninja -C "$ASAN_OBJ" qemu-system-aarch64 qemu-img \
    tests/qtest/mte-tag-storage/mte-tag-storage-test \
    tests/qtest/mte-tag-storage/mte-tag-storage-guest.elf 2>&1 |
    "$TOP/scripts/progress.py"
built=$(date +%s)
link_firmware "$ASAN_OBJ"

setup_gdb
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
export ASAN_OPTIONS="detect_leaks=0:log_path=$REPORTS/asan"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$REPORTS/ubsan"
say "running meson test --suite mte-tag-storage under the sanitizers"
rc=0
(cd "$ASAN_OBJ" && /usr/bin/python3 -m mesonbuild.mesonmain test --no-rebuild \
    --suite mte-tag-storage --timeout-multiplier 4 --print-errorlogs) || rc=$?
done_at=$(date +%s)
# ASan also writes a warning file per process for QEMU's coroutines
# (swapcontext); reports are the files with an error in them
n=0
for f in $(grep -l -E 'ERROR: AddressSanitizer|runtime error:' -r "$REPORTS" || true); do
    n=$((n + 1))
    say "report $f:"
    head -n 30 "$f"
done
say "$(find "$REPORTS" -type f | wc -l) sanitizer output files, $n with errors"
say "build $((built - start)) s, tests $((done_at - built)) s; $n sanitizer reports; meson test exit $rc"
[ "$n" = 0 ] && [ "$rc" = 0 ]

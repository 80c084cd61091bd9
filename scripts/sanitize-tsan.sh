#!/bin/sh
# ThreadSanitizer build (clang) in build/tsan and the runs that exercise
# the reuse checker from several vCPU threads at once: the checker
# qtests, and 4 vCPUs breaking rule R2 together under check=stop and log.
# Reports go to build/tsan-reports/; the run fails if one names our code
# (mte-tag-storage, mte_helper).  QEMU's own code is not what this looks
# for: glib is not built with TSan, so some of its reports are noise.
set -eu
. "$(dirname "$0")/common.sh"
TSAN_OBJ=$BUILD_ROOT/tsan
REPORTS=$BUILD_ROOT/tsan-reports
cc=clang cxx=clang++
[ -x /usr/lib/ccache/clang ] && cc=/usr/lib/ccache/clang cxx=/usr/lib/ccache/clang++
flags=$(echo "$CONFIGURE_FLAGS" | sed -e 's/--cc=[^ ]*//' -e 's/--cxx=[^ ]*//')
flags="$flags --cc=$cc --cxx=$cxx --enable-tsan"

"$TOP/scripts/prepare-tree.sh"
configure_once "$TSAN_OBJ" "$flags" "$BUILD_ROOT/tsan-configure.log"
start=$(date +%s)
say "building with ThreadSanitizer (ninja -C $TSAN_OBJ)"
ninja -C "$TSAN_OBJ" qemu-system-aarch64 \
    tests/qtest/mte-tag-storage/mte-tag-storage-test \
    tests/qtest/mte-tag-storage/mte-tag-storage-guest.elf 2>&1 |
    "$TOP/scripts/progress.py"
built=$(date +%s)
link_firmware "$TSAN_OBJ"

rm -rf "$REPORTS"
mkdir -p "$REPORTS"
# the qtest harness, built with TSan too, forks QEMU from a threaded process
export TSAN_OPTIONS="log_path=$REPORTS/tsan halt_on_error=0 die_after_fork=0"
rc=0
say "checker qtests under TSan"
(cd "$TSAN_OBJ" && QTEST_QEMU_BINARY=./qemu-system-aarch64 \
    MTS_GUEST_ELF=$TSAN_OBJ/tests/qtest/mte-tag-storage/mte-tag-storage-guest.elf \
    ./tests/qtest/mte-tag-storage/mte-tag-storage-test --tap -k \
    -p /aarch64/mte-tag-storage/check) || rc=1
kernel=$("$TOP/scripts/fetch-guest.sh")
initrd=$("$TOP/guest/build-initramfs.sh")
for mode in stop log; do
    say "4 vCPUs breaking R2 at once, check=$mode, under TSan"
    /usr/bin/python3 "$TOP/guest/run-smp.py" --qemu "$TSAN_OBJ/qemu-system-aarch64" \
        --kernel "$kernel" --initrd "$initrd" --smp 4 --mode stop,5 \
        --machine "tag-storage=on,tag-storage-binding=v1,tag-storage-check=$mode" \
        --"$mode"-reads 5 --timeout 1800 \
        --log "$REPORTS/smp-$mode.console" || rc=1
done
done_at=$(date +%s)
n=0
for f in $(grep -l 'WARNING: ThreadSanitizer' -r "$REPORTS" || true); do
    if grep -q 'mte-tag-storage\|mte_tag_storage\|mte_helper' "$f"; then
        n=$((n + 1))
        say "report naming our code in $f:"
        head -n 40 "$f"
    fi
done
say "$(grep -l 'WARNING: ThreadSanitizer' -r "$REPORTS" 2>/dev/null | wc -l) files with TSan reports, $n naming our code"
say "build $((built - start)) s, runs $((done_at - built)) s; exit $rc"
[ "$n" = 0 ] && [ "$rc" = 0 ]

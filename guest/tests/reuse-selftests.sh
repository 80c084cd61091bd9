#!/bin/sh
# The kernel's own arm64 MTE selftests (tools/testing/selftests/arm64/mte
# of Debian's linux-source-6.12, guest/build-mte-selftests.sh) on the
# vendored reuse kernel (../shared/vendor/rfc-kernel, the arm,mte-tag-
# storage RFC v3 port; without it, or if it fails its SHA256SUMS, this
# test fails), booted directly -smp 2 -m 2G by guest/run-reuse.py
# --mode suite with initramfs-selftests.cpio and mts.selftests, /init
# running every program of /selftests (guest/mte-init.c).  Two boots:
# "on", -M virt,mte=on,tag-storage=on,tag-storage-check=log, where the
# kernel manages tag storage, and "stock", mte=on only, where the RFC code
# turns itself off.  TAP lines reuse-selftests/<check>:
#   vendored-kernel  Image.xz and System.map.xz match SHA256SUMS
#   build            the selftests built (every check_*.c of the source)
#   on/guest, stock/guest, on/violations   run-reuse.py's lines: a RESULT
#                    line and at least 20 checks (subtests), whatever
#                    their verdicts; with tag storage the checker counts 0
#                    violations of each rule R1-R4 and never stops the VM
#   on/all-run, stock/all-run   a SELFTEST line for every program built,
#                    the final SELFTESTS line, and no kernel WARNING, BUG
#                    or Oops while they ran (KMSG warnings=0)
#   verdicts         the same verdict of every program and subtest on both
#                    (pass, fail or skip: a program that fails or skips on
#                    both is listed, it is the kernel's or the port's
#                    limit, not tag storage's), and some program passed
#   rfc              "MTE tag storage region management enabled" only in
#                    the boot with tag storage, no RFC line in the other;
#                    the kernel reserved tag storage blocks during the
#                    selftests (tag_storage_reserve_success grew, /init's
#                    VMSTAT lines) with tag storage only
# QEMU_BIN=path runs another QEMU binary than build/obj's.
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
qemu=${QEMU_BIN:-}
. "$MTS_TOP/guest/linux-lib.sh"
QEMU_BIN=${qemu:-$QEMU_BIN}
start=$(date +%s)

out=$logs/reuse-selftests.tap
: > "$out"
tap() { echo "$*" | tee -a "$out"; }

src=$VENDOR/rfc-kernel
rk=$BUILD_ROOT/rfc-kernel
if [ ! -f "$src/Image.xz" ] || [ ! -f "$src/System.map.xz" ] ||
   [ ! -f "$src/SHA256SUMS" ] ||
   [ "$(grep -c -E '  (Image|System\.map)\.xz$' "$src/SHA256SUMS")" != 2 ] ||
   ! (cd "$src" && grep -E '  (Image|System\.map)\.xz$' SHA256SUMS |
      sha256sum -c --quiet - >/dev/null 2>&1); then
    tap "not ok reuse-selftests/vendored-kernel: no Image.xz and" \
        "System.map.xz matching SHA256SUMS in $src"
    exit 1
fi
# uncompressed into build/rfc-kernel as guest/tests/reuse-kernel.sh does
want=$(sed -n 's/^\([0-9a-f]\{64\}\)  Image (uncompressed)$/\1/p' \
       "$src/SHA256SUMS")
mkdir -p "$rk"
image_ok() {
    [ -n "$want" ] && [ -f "$rk/Image" ] &&
        [ "$(sha256sum < "$rk/Image" | cut -d' ' -f1)" = "$want" ]
}
if ! image_ok || [ "$src/Image.xz" -nt "$rk/Image" ] ||
   [ ! -f "$rk/System.map" ] || [ "$src/System.map.xz" -nt "$rk/System.map" ]
then
    xz -dc "$src/Image.xz" > "$rk/Image.tmp"
    xz -dc "$src/System.map.xz" > "$rk/System.map"
    mv "$rk/Image.tmp" "$rk/Image"
fi
if ! image_ok; then
    tap "not ok reuse-selftests/vendored-kernel: $rk/Image is not the" \
        "uncompressed Image of $src/SHA256SUMS"
    exit 1
fi
tap "ok reuse-selftests/vendored-kernel $src/Image.xz"

# the selftests, then the initramfs with them (which finds them cached)
blog=$logs/reuse-selftests_build.log
t=$(date +%s)
if bin=$("$TOP/guest/build-mte-selftests.sh" 2> "$blog") &&
   initrd_st=$("$TOP/guest/build-initramfs.sh" --selftests 2>> "$blog")
then
    names=$(cd "$bin" && ls)
    n=$(echo "$names" | wc -l)
    tap "ok reuse-selftests/build $n selftests in $bin" \
        "($(echo "$names" | tr '\n' ' ' | sed 's/ $//');" \
        "$(($(date +%s) - t)) s), $initrd_st"
else
    sed 's/^/#   /' "$blog"
    tap "not ok reuse-selftests/build (log: $blog)"
    exit 1
fi

# boot NAME MACHINE [run-reuse.py options]: the selftests in one boot,
# judged by run-reuse.py; its TAP lines renamed reuse-selftests/NAME/...
boot() {
    name=$1 machine=$2
    shift 2
    rep=$logs/reuse-selftests_$name.report
    rc=0
    /usr/bin/python3 "$TOP/guest/run-reuse.py" --qemu "$QEMU_BIN" \
        --kernel "$rk/Image" --initrd "$initrd_st" --name "$name" \
        --machine "$machine" --extra "-smp 2" --append mts.selftests \
        --mode suite --timeout 1800 \
        --log "$logs/reuse-selftests_$name.console" \
        --system-map "$rk/System.map" \
        --summary "$logs/reuse-selftests_$name.json" "$@" > "$rep.raw" 2>&1 ||
        rc=$?
    sed 's,^\(ok\|not ok\) reuse-kernel/,\1 reuse-selftests/,' "$rep.raw" \
        > "$rep"
    if [ $rc != 0 ] && ! grep -q '^not ok ' "$rep"; then
        echo "not ok reuse-selftests/$name run-reuse.py exited $rc" >> "$rep"
    fi
    tee -a "$out" < "$rep"
    # the console without carriage returns, for the checks below
    if [ -f "$logs/reuse-selftests_$name.console" ]; then
        tr -d '\r' < "$logs/reuse-selftests_$name.console"
    fi > "$logs/reuse-selftests_$name.txt"
}

boot on tag-storage=on,tag-storage-check=log --expect-violations 0,0,0,0
boot stock ""

# every program ran, in both boots
for run in on stock; do
    con=$logs/reuse-selftests_$run.txt
    missing=
    for t in $names; do
        [ "$(grep -c -E "^SELFTEST $t (pass|fail|skip) " "$con")" = 1 ] ||
            missing="$missing $t"
    done
    sum=$(grep -E "^SELFTESTS run=$n " "$con" | head -n1)
    warned=$(sed -n 's/^KMSG warnings=\([0-9]*\)$/\1/p' "$con")
    if [ -z "$missing" ] && [ -n "$sum" ] && [ "$warned" = 0 ]; then
        tap "ok reuse-selftests/$run/all-run $sum, no kernel warning," \
            "$(sed -n 's/.*"seconds": \([0-9.]*\).*/\1/p' \
               "$logs/reuse-selftests_$run.json") s"
    else
        grep '^# kernel: .*\(WARNING\|BUG\|Oops\)' "$con" | head -n 5 |
            sed 's/^/#   /'
        tap "not ok reuse-selftests/$run/all-run programs without a" \
            "SELFTEST line:${missing:- none}; summary: ${sum:-none};" \
            "kernel warnings: ${warned:-no count} (console: $con)"
    fi
done

# verdicts: every program's and every subtest's, the same on both
verdicts() {
    grep -E '^((ok|not ok|skip) selftest/[^ ]+|SELFTEST [^ ]+ [a-z]+ .*)$' \
        "$logs/reuse-selftests_$1.txt" | LC_ALL=C sort
}
verdicts on > "$logs/reuse-selftests_on.verdicts"
verdicts stock > "$logs/reuse-selftests_stock.verdicts"
con_on=$logs/reuse-selftests_on.txt
# each with its most frequent error message ("# ERR: ..." in kselftest's
# output)
failing=
for t in $(sed -n 's/^SELFTEST \([^ ]*\) fail .*/\1/p' "$con_on"); do
    why=$(sed -n "s/^# $t: # ERR: //p" "$con_on" | LC_ALL=C sort | uniq -c |
          sort -s -rn -k1,1 | head -n1 | sed 's/^ *[0-9]* //')
    failing="${failing:+$failing, }$t${why:+ ($why)}"
done
skipped=$(sed -n 's/^SELFTEST \([^ ]*\) skip .*/\1/p' "$con_on" |
          tr '\n' ' ' | sed 's/ $//')
# the selftests really ran MTE code: some program passed (without MTE
# every one would skip, the same on both)
npass=$(grep -c '^SELFTEST [^ ]* pass ' "$con_on" || :)
subs=$(grep -c -E '^(ok|not ok|skip) selftest/[^/ ]+/' \
       "$logs/reuse-selftests_on.verdicts" || :)
if cmp -s "$logs/reuse-selftests_on.verdicts" \
          "$logs/reuse-selftests_stock.verdicts" &&
   [ "$npass" -gt 0 ]; then
    tap "ok reuse-selftests/verdicts same on tag-storage=on and mte=on" \
        "($(grep -c '^SELFTEST ' "$logs/reuse-selftests_on.verdicts")" \
        "programs, $subs subtests: $(grep -c '^ok selftest/[^/]*/' \
        "$logs/reuse-selftests_on.verdicts") ok; failing on both:" \
        "${failing:-none}; skipped on both: ${skipped:-none})"
else
    tap "not ok reuse-selftests/verdicts differ or prove nothing" \
        "($npass programs passed with tag storage, $subs subtests)"
    diff "$logs/reuse-selftests_on.verdicts" \
         "$logs/reuse-selftests_stock.verdicts" |
        grep -E '^[<>] ' | sed 's/^</#   on:   /; s/^>/#   stock:/' || :
fi
grep '^SELFTEST ' "$con_on" | sed 's/^SELFTEST /#   on:    /'
grep '^SELFTEST ' "$logs/reuse-selftests_stock.txt" |
    sed 's/^SELFTEST /#   stock: /'

# the RFC: on with tag storage only, and it reserved tag storage for the
# pages the selftests tagged (/init's VMSTAT lines)
delta() {
    awk -v c="$2" '$1 == "VMSTAT" && $2 == c && $3 >= 0 {
        print $4 - $3; f = 1 } END { if (!f) print 0 }' \
        "$logs/reuse-selftests_$1.txt"
}
con_stock=$logs/reuse-selftests_stock.txt
res_on=$(delta on tag_storage_reserve_success)
res_stock=$(delta stock tag_storage_reserve_success)
counters=
for c in tag_storage_reserve_success tag_storage_release cma_alloc_success \
         tag_storage_page_migrated pgmigrate_success; do
    counters="$counters $c +$(delta on "$c")"
done
enabled='MTE tag storage region management enabled'
if grep -q "$enabled" "$con_on" && ! grep -q 'MTE tag storage' "$con_stock" &&
   [ "$res_on" -gt 0 ] && [ "$res_stock" = 0 ]; then
    tap "ok reuse-selftests/rfc \"$enabled\" with tag storage only;" \
        "during the selftests:$counters"
else
    tap "not ok reuse-selftests/rfc \"$enabled\" with tag storage:" \
        "$(grep -c "$enabled" "$con_on"), RFC lines without:" \
        "$(grep -c 'MTE tag storage' "$con_stock"); tag blocks reserved" \
        "with tag storage $res_on (must be > 0), without $res_stock"
fi

if grep -q '^not ok ' "$out"; then
    grep '^not ok ' "$out" | sed 's/^/# FAILED: /'
    fail=1
fi
echo "# $(grep -c '^ok ' "$out") ok, $(grep -c '^not ok ' "$out") not ok" \
     "in $(($(date +%s) - start)) s; consoles and reports in" \
     "$logs/reuse-selftests_*"
exit $fail

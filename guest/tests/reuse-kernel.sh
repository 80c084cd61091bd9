#!/bin/sh
# A kernel that reuses tag storage: the vendored arm,mte-tag-storage RFC v3
# core on Linux 6.12 (../shared/vendor/rfc-kernel; without it, or if it
# fails its SHA256SUMS, this test fails), booted directly with
# -M virt,mte=on,tag-storage=on (binding v3) -m 2G.  guest/run-reuse.py
# boots it and prints the TAP lines, reuse-kernel/<run>/<check>:
# - log (-smp 2, check=log), stop (-smp 2, check=stop, 2 threads) and
#   smp4 (-smp 4, check=log, 4 threads): /reuse-workload (mts.reuse=N)
#   fills memory until the kernel puts data in the carveout, mprotects
#   every other page of 32 MiB of it to PROT_MTE, tags fresh PROT_MTE
#   memory, then fills the rest with data again.  guest: the kernel
#   manages tag storage ("MTE tag storage region management enabled",
#   CmaTotal = the carveout), reserves tag blocks and migrates pages
#   (cma_alloc_success, pgmigrate_success, tag_storage_page_migrated grow;
#   no reservation or migration fails, no page is tagged without tag
#   storage, no warning), data and tags survive (pattern and checksum,
#   LDG).  violations: the reuse checker counts 0 of R1-R4 and never
#   stops the VM (else its reports are printed, PCs resolved with the
#   kernel's System.map and the workload's symbols).  owners: the
#   checker's owner map has the carveout pages the guest filled as
#   data-owned, blocks that held data then hold tags later, and every
#   block with tags of a page the guest tagged is tag-owned.  tags: the
#   carveout bytes at those pages' tag addresses are the tags the guest
#   reads with LDG (CRC-32).
# - pair and merge: the same, but mprotect(PROT_MTE) as the port gets it
#   wrong (reuse-workload.c, choose_window()): a carveout page and a page
#   whose tag block it is in one call (the reservation fails with -EBUSY,
#   the tags go to a block that is then given to data: R1); a page at a
#   time next to the PROT_MTE pages before (the port's hook is skipped:
#   carveout pages tagged in place, R3).  These fail until the port is
#   fixed.
# - control: the workload with tag-storage=off, where the kernel has no
#   tag storage: its reuse checks must fail, the others pass.
# - suite_on (tag-storage=on, check=log) and suite_stock (mte=on only,
#   where the RFC code stays off): the MTE suite of /init, same verdicts
#   (suite_verdicts), and no violation with tag storage.
# QEMU_BIN=path runs another QEMU binary than build/obj's.
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
qemu=${QEMU_BIN:-}
. "$MTS_TOP/guest/linux-lib.sh"
QEMU_BIN=${qemu:-$QEMU_BIN}

src=$VENDOR/rfc-kernel
rk=$BUILD_ROOT/rfc-kernel
if [ ! -f "$src/Image.xz" ] || [ ! -f "$src/System.map.xz" ] ||
   [ ! -f "$src/SHA256SUMS" ]; then
    echo "not ok reuse-kernel/vendored-kernel: no Image.xz, System.map.xz" \
         "and SHA256SUMS in $src"
    exit 1
fi
if ! (cd "$src" && grep -E '  (Image|System\.map)\.xz$' SHA256SUMS |
      sha256sum -c --quiet - >/dev/null 2>&1) ||
   [ "$(grep -c -E '  (Image|System\.map)\.xz$' "$src/SHA256SUMS")" != 2 ]
then
    echo "not ok reuse-kernel/vendored-kernel: $src/Image.xz or" \
         "System.map.xz does not match its SHA256SUMS"
    exit 1
fi
# uncompressed once into build/rfc-kernel, checked against SHA256SUMS
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
    echo "not ok reuse-kernel/vendored-kernel: $rk/Image is not the" \
         "uncompressed Image of $src/SHA256SUMS"
    rm -f "$rk/Image"
    exit 1
fi
echo "ok reuse-kernel/vendored-kernel $src/Image.xz, $rk/Image"

out=$logs/reuse-kernel.tap
: > "$out"
# boot NAME MACHINE SMP APPEND [run-reuse.py options]: one boot, judged by
# run-reuse.py (TAP lines, details on # lines)
boot() {
    name=$1 machine=$2 smp=$3 app=$4
    shift 4
    rep=$logs/reuse-kernel_$name.report
    rc=0
    /usr/bin/python3 "$TOP/guest/run-reuse.py" --qemu "$QEMU_BIN" \
        --kernel "$rk/Image" --initrd "$initrd" --name "$name" \
        --machine "$machine" --extra "-smp $smp" --append "$app" \
        --log "$logs/reuse-kernel_$name.console" \
        --system-map "$rk/System.map" \
        --summary "$logs/reuse-kernel_$name.json" "$@" > "$rep" 2>&1 || rc=$?
    if [ $rc != 0 ] && ! grep -q '^not ok ' "$rep"; then
        echo "not ok reuse-kernel/$name run-reuse.py exited $rc" >> "$rep"
    fi
    [ $rc = 0 ] || fail=1
    tee -a "$out" < "$rep"
}

on=tag-storage=on
work="--program $BUILD_ROOT/guest/reuse-workload --expect-violations 0,0,0,0"
# shellcheck disable=SC2086
boot log "$on,tag-storage-check=log" 2 "mts.reuse=1 mts.snapack" $work
# shellcheck disable=SC2086
boot stop "$on,tag-storage-check=stop" 2 "mts.reuse=2 mts.snapack" $work
# shellcheck disable=SC2086
boot smp4 "$on,tag-storage-check=log" 4 "mts.reuse=4 mts.snapack" $work
# Two known bugs of the vendored port, which the checker must catch and
# name (we leave the port alone; if it gets fixed, these runs fail and
# become ordinary workload runs): "pair", one mprotect(PROT_MTE) over a
# carveout page and the page whose tags it holds (the tag block is off the
# LRU, its reservation fails with -EBUSY, the tags are written anyway, and
# the block is later given to data, by clear_page or a user write,
# whichever comes first: R1 when the workload's check_worker reads the
# tags); "merge", page-by-page
# mprotect next to PROT_MTE memory (the vma merges, nothing is reserved:
# mte_clear_page_tags tags a page in the carveout, R3)
bug="--program $BUILD_ROOT/guest/reuse-workload --mode portbug"
# shellcheck disable=SC2086
boot pair "$on,tag-storage-check=log" 2 "mts.reuse=1,pair mts.snapack" $bug \
    --expect-culprit R1:check_worker
# shellcheck disable=SC2086
boot merge "$on,tag-storage-check=log" 2 "mts.reuse=1,merge mts.snapack" \
    $bug --expect-culprit R3:mte_clear_page_tags
boot control tag-storage=off 2 "mts.reuse=1 mts.snapack" --mode control

# The MTE suite: the same verdicts with and without tag storage
init="--program $BUILD_ROOT/guest/mte-init --mode suite"
# shellcheck disable=SC2086
boot suite_on "$on,tag-storage-check=log" 2 "" $init \
    --expect-violations 0,0,0,0
# shellcheck disable=SC2086
boot suite_stock "" 2 "" $init
v_on=$(suite_verdicts reuse-kernel_suite_on)
v_stock=$(suite_verdicts reuse-kernel_suite_stock)
con_on=$logs/reuse-kernel_suite_on.console
con_stock=$logs/reuse-kernel_suite_stock.console
both=$(grep -h '^not ok ' "$con_on" | grep -v -E ' (probe-|carveout-)' |
       sed 's/^not ok //' | tr -d '\r' | tr '\n' ' ' | sed 's/ $//')
enabled='MTE tag storage region management enabled'
if [ "$v_on" = "$v_stock" ] && grep -q "$enabled" "$con_on" &&
   ! grep -q 'MTE tag storage' "$con_stock" &&
   [ "$(grep -c -E '^(ok|not ok) ' "$con_on")" -ge 20 ]; then
    echo "ok reuse-kernel/suite-verdicts same as on mte=on without tag" \
         "storage ($v_on; failing on both: ${both:-none})" | tee -a "$out"
else
    echo "not ok reuse-kernel/suite-verdicts tag-storage=on $v_on," \
         "mte=on $v_stock (RFC enabled with tag storage:" \
         "$(grep -c "$enabled" "$con_on"), RFC lines without:" \
         "$(grep -c 'MTE tag storage' "$con_stock"))" | tee -a "$out"
    diff "$con_on" "$con_stock" | grep -E '^[<>] (ok|not ok) ' |
        sed 's/^/#   /' || true
fi

# for the tail of the log: what failed
if grep -q '^not ok ' "$out"; then
    grep '^not ok ' "$out" | sed 's/^/# FAILED: /'
    fail=1
fi
echo "# $(grep -c '^ok ' "$out") ok, $(grep -c '^not ok ' "$out") not ok;" \
     "consoles and reports in $logs/reuse-kernel_*"
exit $fail

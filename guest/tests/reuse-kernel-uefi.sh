#!/bin/sh
# The reuse kernel booted the way distributions boot: through Debian's UEFI
# firmware (qemu-efi-aarch64, -bios QEMU_EFI.fd) with the device tree
# (acpi=off: under ACPI the carveout is described nowhere).  The vendored
# Image has no EFI stub, so guest/rfc-bugs/build-kernel.sh efi builds the
# same port with CONFIG_EFI and the stub (cached by hash; about 10 minutes
# cold on 2 cores).  guest/run-reuse.py boots it with
# -M virt,mte=on,tag-storage=on,tag-storage-check=log,acpi=off -smp 2 -m 2G
# and the reuse workload (mts.reuse=1).  TAP lines reuse-kernel-uefi/...:
# - build: the kernel was built;
# - uefi: the kernel was started by the firmware (the EFI stub's and the
#   kernel's "efi:" lines on the console) and manages tag storage ("MTE tag
#   storage region management enabled");
# - guest, violations, owners, tags: run-reuse.py's checks of the workload
#   (reuse happened, data and tags intact, the owner map, 0 violations of
#   R1-R4).
# In make check: the kernel build is the slow part (cold, about 10 minutes
# with an empty ccache; a cached build prints its paths at once).
# QEMU_BIN=path runs another QEMU binary; MTS_UEFI another firmware file.
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
qemu=${QEMU_BIN:-}
. "$MTS_TOP/guest/linux-lib.sh"
QEMU_BIN=${qemu:-$QEMU_BIN}

bios=${MTS_UEFI:-/usr/share/qemu-efi-aarch64/QEMU_EFI.fd}
[ -f "$bios" ] || { echo "not ok reuse-kernel-uefi/firmware: no $bios (qemu-efi-aarch64)"; exit 1; }
out=$logs/reuse-kernel-uefi.tap
: > "$out"
tap() { echo "$*" | tee -a "$out"; }

t0=$(date +%s)
if ! paths=$("$TOP/guest/rfc-bugs/build-kernel.sh" efi 2> "$logs/reuse-kernel-uefi.build"); then
    tail -n 5 "$logs/reuse-kernel-uefi.build" | sed 's/^/#   /'
    tap "not ok reuse-kernel-uefi/build (log: $logs/reuse-kernel-uefi.build)"
    exit 1
fi
image=$(echo "$paths" | sed -n 1p)
map=$(echo "$paths" | sed -n 2p)
tap "ok reuse-kernel-uefi/build $image ($(( $(date +%s) - t0 )) s)"

con=$logs/reuse-kernel-uefi.console
rc=0
/usr/bin/python3 "$TOP/guest/run-reuse.py" --qemu "$QEMU_BIN" \
    --kernel "$image" --initrd "$initrd" --name uefi \
    --machine tag-storage=on,tag-storage-check=log,acpi=off \
    --extra "-smp 2 -bios $bios" --append "mts.reuse=1 mts.snapack" \
    --timeout 400 --program "$BUILD_ROOT/guest/reuse-workload" \
    --expect-violations 0,0,0,0 --log "$con" --system-map "$map" \
    --summary "$logs/reuse-kernel-uefi.json" \
    > "$logs/reuse-kernel-uefi.report" 2>&1 || rc=$?
sed 's|reuse-kernel/uefi/|reuse-kernel-uefi/|' "$logs/reuse-kernel-uefi.report" |
    tee -a "$out"
if [ $rc != 0 ]; then
    grep -q '^not ok ' "$logs/reuse-kernel-uefi.report" ||
        tap "not ok reuse-kernel-uefi/run run-reuse.py exited $rc"
    fail=1
fi

# booted by the firmware, not by QEMU's -kernel loader, and reusing
stub=$(grep -c 'EFI stub: ' "$con" || true)
efi=$(grep -c -E '\] efi: (EFI v|UEFI v)' "$con" || true)
enabled=$(grep -c 'MTE tag storage region management enabled' "$con" || true)
if [ "$stub" -gt 0 ] && [ "$efi" -gt 0 ] && [ "$enabled" = 1 ]; then
    tap "ok reuse-kernel-uefi/uefi booted by the firmware ($(grep -m1 -E '\] efi: (EFI|UEFI) v' "$con" |
        tr -d '\r' | sed 's/^.*efi: //')), tag storage management enabled"
else
    tap "not ok reuse-kernel-uefi/uefi EFI stub lines $stub, efi: lines $efi," \
        "\"MTE tag storage region management enabled\" $enabled (want 1)"
    grep -E 'MTE tag storage|efi:|EFI stub' "$con" | head -n 10 | sed 's/^/#   /'
    fail=1
fi

grep '^not ok ' "$out" | sed 's/^/# FAILED: /' || true
echo "# $(grep -c '^ok ' "$out") ok, $(grep -c '^not ok ' "$out") not ok;" \
     "console and report in $logs/reuse-kernel-uefi.*"
exit $fail

#!/bin/sh
# UEFI firmware (Debian's edk2, qemu-efi-aarch64) with ACPI (virt's default
# with firmware) and with the device tree (acpi=off), default NIC included:
# the unmodified kernel runs the MTE suite with the verdicts of stock
# mte=on, tag-storage-check=log sees no violation but the reuse probe's,
# and the kernel never takes the carveout as RAM (MemTotal, /proc/iomem,
# and the host's check that only tags of tagged pages are in it, or with
# tag-storage-init=random changed).  The probe's reports name its stores.
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$MTS_TOP/guest/linux-lib.sh"

bios=${MTS_UEFI:-/usr/share/qemu-efi-aarch64/QEMU_EFI.fd}
[ -f "$bios" ] || { echo "not ok firmware: no $bios (qemu-efi-aarch64)"; exit 1; }
ref=

# acpi binding expected-violations (R1,R2,R3; the v1 reuse probe needs the
# device tree, so it runs, and breaks R1 4 and R2 128 times, only there)
# With the probe, every report must name its store; with init=random the
# kernel must read no tag it did not write (R4), through UEFI too.
for run in "on off -" "on v3 0,0,0" "on v1 0,0,0" \
           "off off -" "off v3 0,0,0" "off v1 4,128,0" \
           "on v3 0,0,0,0 random" "off v1 4,128,0,0 random"; do
    set -- $run
    acpi=$1 binding=$2 expect=$3 init=${4:-}
    if [ "$binding" = off ]; then
        cfg="acpi=$acpi,tag-storage=off"
        set --
    else
        cfg="acpi=$acpi,tag-storage=on,tag-storage-binding=$binding"
        cfg="$cfg,tag-storage-check=log${init:+,tag-storage-init=$init}"
        set -- --expect-violations "$expect"
        case $expect in
        4,128,*) set -- "$@" --expect-culprit test_reuse_probe ;;
        esac
    fi
    name=uefi_acpi-${acpi}_$binding${init:+_$init}
    echo "# -bios $bios -M virt,mte=on,$cfg"
    run_linux "$name" '^guest checks\|checker log\|culprits' --bios "$bios" \
        --machine "$cfg" --timeout 400 "$@"
    v=$(suite_verdicts "$name")
    if [ -z "$ref" ]; then
        ref=$v
    elif [ "$v" != "$ref" ]; then
        echo "not ok linux/$name verdicts differ from stock under UEFI"
        fail=1
    fi
    if [ "$binding" != off ] &&
       ! grep -q '^ok carveout-mem-total' "$logs/$name.console"; then
        echo "not ok linux/$name the kernel's RAM includes the carveout"
        fail=1
    fi
done
exit $fail

#!/bin/sh
# Linux guest matrix: the unmodified Debian 6.1 kernel runs the MTE suite
# with tag-storage=off and with tag-storage=on for each binding and block
# size; every run must PASS, and the suite's verdicts must be the same in
# all of them (only the tag storage checks may be added).
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$MTS_TOP/guest/linux-lib.sh"
ref=

for cfg in tag-storage=off \
           tag-storage=on,tag-storage-binding=v1 \
           tag-storage=on,tag-storage-binding=v2 \
           tag-storage=on,tag-storage-binding=v3 \
           tag-storage=on,tag-storage-binding=v1,tag-storage-block-size=8192 \
           tag-storage=on,tag-storage-binding=v2,tag-storage-block-size=8192 \
           tag-storage=on,tag-storage-binding=v3,tag-storage-block-size=8192; do
    name=$(echo "$cfg" | tr ',=' '__')
    echo "# $cfg"
    run_linux "$name" '^guest checks' --machine "$cfg"
    # verdicts of the suite proper, without the tag storage checks
    v=$(suite_verdicts "$name")
    if [ -z "$ref" ]; then
        ref=$v
    elif [ "$v" != "$ref" ]; then
        echo "not ok linux/$name verdicts differ from tag-storage=off"
        fail=1
    fi
done
# Two NUMA nodes: a carveout per node, each tied to its memory node
numa="-smp 2 -object memory-backend-ram,id=m0,size=1G
 -object memory-backend-ram,id=m1,size=1G
 -numa node,nodeid=0,memdev=m0,cpus=0 -numa node,nodeid=1,memdev=m1,cpus=1"
run_linux numa_v3 '^guest checks' \
    --machine tag-storage=on,tag-storage-binding=v3 --extra "$numa"

# The reuse checker: the unmodified kernel never breaks a rule; the
# reuse probe (v1) breaks R1 4 times (2 LDG, a faulting and a passing
# load after its data write) and R2 128 times (it reads 128 tag bytes),
# and every report names the probe's own store as the culprit.  With
# tag storage full of garbage at reset, the kernel still never reads a
# tag it did not write (R4), and only tags of tagged pages change.
for run in "v3 0,0,0" "v1 4,128,0 --expect-culprit test_reuse_probe" \
           "v3 0,0,0,0 init=random" \
           "v1 4,128,0,0 init=random --expect-culprit test_reuse_probe"; do
    set -- $run
    binding=$1 counts=$2
    shift 2
    init=
    case "${1:-}" in init=*) init=,tag-storage-$1; shift ;; esac
    run_linux "check_log_$binding${init:+_random}" 'checker log\|culprits' \
        --machine "tag-storage=on,tag-storage-binding=$binding,tag-storage-check=log$init" \
        --expect-violations "$counts" "$@"
done
# Interleaved blocks (8 KiB): the reuse probe computes the tag address of
# its page linearly, as a kernel unaware of the interleave would.  Unless
# the page's 128-byte unit is a fixed point of the bit reversal, the probe
# must see wrong tags and its data write must miss its page's tag (the
# next checked load faults unexpectedly, ending the run early), while the
# MTE suite before it still passes.
name=interleave_probe
/usr/bin/python3 "$TOP/guest/run-linux.py" --qemu "$QEMU_BIN" \
    --kernel "$kernel" --initrd "$initrd" --machine \
    tag-storage=on,tag-storage-binding=v1,tag-storage-block-size=8K,tag-storage-interleave=on \
    --log "$logs/$name.console" --quiet > "$logs/$name.report" 2>&1 || true
verdict=$(/usr/bin/python3 - "$logs/$name.console" <<'PY'
import re, sys
con = open(sys.argv[1], errors='replace').read()
m = re.search(r'^# probe: page (0x[0-9a-f]+)', con, re.M)
suite = len(re.findall(r'^ok (?!probe-|carveout-)\S+$', con, re.M))
if not m or suite < 22:
    print('bad: no probe or suite incomplete (%d)' % suite)
    sys.exit()
unit = ((int(m.group(1), 16) - 0x40000000) // 32 // 128) % 64
fixed = int('{:06b}'.format(unit)[::-1], 2) == unit
caught = ('\nnot ok probe-stg-visible-as-data\n' in con and
          '\nnot ok unexpected-segv code=9 ' in con)
if fixed or caught:
    print('ok unit %d%s' % (unit, ' (fixed point)' if fixed else
                             ': wrong tags seen, tag write missed'))
else:
    print('bad: unit %d, the probe did not notice' % unit)
PY
)
case "$verdict" in
ok*) echo "ok linux/$name ${verdict#ok }" ;;
*) echo "not ok linux/$name $verdict (console: $logs/$name.console)"; fail=1 ;;
esac

[ "$(grep -c '^ok probe-' "$logs/tag-storage_on_tag-storage-binding_v1.console")" -ge 6 ] ||
    { echo "not ok linux/reuse-probe did not run with v1"; fail=1; }
exit $fail

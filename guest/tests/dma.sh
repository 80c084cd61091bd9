#!/bin/sh
# Device DMA into and out of the tag storage carveout (binding v1).  The
# guest's /virtio-dma (guest/virtio-dma.c) drives a virtio-mmio disk from
# user space with its virtqueue and 64 KiB buffers in the carveout (8
# requests in flight), and does O_DIRECT from PROT_MTE pages on a
# virtio-blk-pci disk driven by the kernel.  For tag-storage-check=off,
# log and event: the guest's checks pass, QEMU prints nothing but the
# checker's reports, both disk images hold byte for byte what the guest
# wrote over the host's pattern, and the checker counts nothing but the one
# DMA read of a tag-owned byte that mts.dma=stg makes: one R2, from DMA (no
# pc).  While the checked carveout limited DMA to QEMU's 4 KiB bounce
# buffer, the checker runs failed here: "virtio: bogus descriptor or out
# of resources" on stderr, DEVICE_NEEDS_RESET for the 64 KiB requests.
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$MTS_TOP/scripts/common.sh"

kernel=$("$TOP/scripts/fetch-guest.sh")
initrd=$("$TOP/guest/build-initramfs.sh")
logs=$BUILD_ROOT/guest/logs
work=$BUILD_ROOT/guest/dma
mkdir -p "$logs" "$work"
fail=0

# host fill DIR: the 16 MiB images a.img, b.img with the host's pattern
# host check NAME STG CHECK: judge run NAME (images, console, report,
# events); prints the TAP line.  Layout and pattern as in virtio-dma.c.
host() {
    PYTHONPATH="$TOP/guest" /usr/bin/python3 - "$@" <<'PY'
import json, os, re, sys
from array import array

from guestsyms import Functions

MiB, M64 = 1 << 20, (1 << 64) - 1
SEED_A, SEED_W, SEED_B, SEED_K, SEED_S = 0xa1, 0xb2, 0xc3, 0xd4, 0xe5


def pattern(seed, off, length):
    xs = [(((o >> 3) ^ (seed << 40)) * 0x9e3779b97f4a7c15 + seed) & M64
          for o in range(off, off + length, 8)]
    a = array('Q', [x ^ (x >> 31) for x in xs])
    if sys.byteorder != 'little':
        a.byteswap()
    return a.tobytes()


def put(img, off, data):
    img[off:off + len(data)] = data


if sys.argv[1] == 'fill':
    for name, seed in (('a', SEED_A), ('b', SEED_B)):
        open('%s/%s.img' % (sys.argv[2], name), 'wb').write(
            pattern(seed, 0, 16 * MiB))
    sys.exit()

name, stg, check, d = sys.argv[2], sys.argv[3] == 'stg', sys.argv[4], \
    sys.argv[5]
con = open('%s/%s.console' % (sys.argv[6], name), errors='replace').read()
rep = open('%s/%s.report' % (sys.argv[6], name), errors='replace').read()
bad = []
# the disks: what the guest wrote over the host's pattern, nothing else
want0 = bytearray(open(d + '/a.img', 'rb').read())
want1 = bytearray(open(d + '/b.img', 'rb').read())
put(want0, 8 * MiB, pattern(SEED_W, 8 * MiB, 2 * MiB))
if stg:
    put(want0, 12 * MiB, b'\xa5' + pattern(SEED_S, 12 * MiB, 512)[1:])
put(want1, 8 * MiB, pattern(SEED_K, 8 * MiB, 4 * MiB))
for disk, want in (('mmio', want0), ('pci', want1)):
    got = open('%s/%s-%s.img' % (d, name, disk), 'rb').read()
    if got != want:
        at = next((i for i in range(0, len(want), 512)
                   if got[i:i + 512] != want[i:i + 512]), len(want))
        bad.append('%s disk differs from offset 0x%x' % (disk, at))
# QEMU's errors, the checker's reports and events
err = rep.split('qemu stderr: ', 1)[1].split('\nLayout, read back')[0] \
    if 'qemu stderr: ' in rep else ''
# nothing but the checker's reports (virtio: bogus descriptor ... is a bug)
R = r'qemu-system-aarch64: warning: mte-tag-storage: (R\d) '
bad += ['qemu: ' + l for l in err.splitlines() if not re.match(R, l)]
viol = re.findall(R + r'.*?: pa (0x[0-9a-f]+) tag-storage (0x[0-9a-f]+) '
                  r'(.*)$', err, re.M)
if re.search(r'I/O error|blk_update_request', con):
    bad.append('the guest kernel reported I/O errors')
try:
    events = [json.loads(l) for l in open('%s/%s.events' % (sys.argv[6],
                                                           name))]
except OSError:
    events = []
events = [e['data'] for e in events
          if e['event'] == 'MTE_TAG_STORAGE_VIOLATION']
# one R2 for the tag byte of granules 254, 255 of the page the guest
# tagged, the last of the page's 128 in the carveout, at T + (P - M) / 32
page = re.search(r'^# stg: page (0x[0-9a-f]+),', con, re.M)
T = re.search(r'^# carveout (0x[0-9a-f]+)\+', con, re.M)
want_log, want_ev = [], []
if stg and check != 'off':
    if not page or not T:
        bad.append('no "# stg: page" or "# carveout" line from the guest')
    else:
        pa = int(page.group(1), 16) + 254 * 16
        ts = int(T.group(1), 16) + (pa - 0x40000000) // 32
        want_log = [('R2', hex(pa), hex(ts), 'DMA')]
        want_ev = [{'rule': 'data-read-of-tags', 'paddr': pa,
                    'tag-storage-addr': ts, 'accessor': 'dma'}]
# the culprit each report names: the guest's STG, in mmio_stg()
function_at = Functions(os.path.join(os.path.dirname(sys.argv[6]),
                                     'virtio-dma')).at

culprits = []
for i, v in enumerate(viol):
    m = re.match(r'DMA; last written by tag-store cpu \d+ pc (0x[0-9a-f]+)'
                 r'(?: lr 0x[0-9a-f]+)?, write #\d+$', v[3])
    culprits.append(function_at(int(m.group(1), 16)) if m else v[3])
    viol[i] = v[:3] + ('DMA',)
for e in events:
    w = e.pop('writer', {})
    culprits.append(function_at(w.get('pc', 0))
                    if w.get('kind') == 'tag-store' else str(w))
if any(c != 'mmio_stg' for c in culprits):
    bad.append('culprits %s, expected mmio_stg' % culprits)
if viol != want_log:
    bad.append('checker reports %s, expected %s' % (viol, want_log))
if check == 'event' and events != want_ev:
    bad.append('events %s, expected %s' % (events, want_ev))
# the guest's verdicts (run-linux.py judged them, and the counters)
if not re.search(r'^PASS$', rep, re.M):
    bad.append('run-linux.py: FAIL')
bad += ['guest: ' + l for l in re.findall(r'^(not ok .*|# .*)$', con, re.M)
        if bad or l.startswith('not ok')]
counts = re.search(r'(\d+) data reads, (\d+) data writes; violations '
                   r'R1,R2,R3 = (\S+)', rep)
if check != 'off' and (not counts or counts.group(1) == '0'):
    bad.append('the checker saw no DMA data reads')
guest = re.search(r'^guest checks: (\d+) passed, (\d+) failed', rep, re.M)
summary = '%s guest checks passed, images exact%s%s' % (
    guest.group(1) if guest else '?',
    ', violations R1,R2,R3 = %s (%s data reads)' % (counts.group(3),
                                                    counts.group(1))
    if counts else '',
    ', R2 event without pc' if want_ev and events == want_ev else '') + (
    ', culprit mmio_stg' if culprits and not bad else '')
if bad:
    for b in bad:
        print('#   ' + b)
    print('not ok dma/%s (console: %s/%s.console)' % (name, sys.argv[6],
                                                     name))
    sys.exit(1)
print('ok dma/%s %s' % (name, summary))
PY
}

[ -f "$work/b.img" ] && [ "$work/b.img" -nt "$0" ] || host fill "$work"
# NAME CHECK STG R1,R2,R3 (- for no checker)
for run in "off off stg -" "log log clean 0,0,0" "log_stg log stg 0,1,0" \
           "event_stg event stg 0,1,0"; do
    set -- $run
    name=dma_$1 check=$2 stg=$3 expect=$4
    cp "$work/a.img" "$work/$name-mmio.img"
    cp "$work/b.img" "$work/$name-pci.img"
    append=mts.dma
    [ "$stg" = stg ] && append=mts.dma=stg
    set -- --machine tag-storage=on,tag-storage-binding=v1,tag-storage-check=$check
    [ "$expect" = - ] || set -- "$@" --expect-violations "$expect"
    /usr/bin/python3 "$TOP/guest/run-linux.py" --qemu "$QEMU_BIN" \
        --kernel "$kernel" --initrd "$initrd" --append "$append" \
        --log "$logs/$name.console" --events "$logs/$name.events" \
        --extra "-global virtio-mmio.force-legacy=false
                 -drive file=$work/$name-mmio.img,format=raw,if=none,id=d0
                 -device virtio-blk-device,drive=d0
                 -drive file=$work/$name-pci.img,format=raw,if=none,id=d1
                 -device virtio-blk-pci,drive=d1" \
        --quiet "$@" > "$logs/$name.report" 2>&1 || true
    if host check "$name" "$stg" "$check" "$work" "$logs"; then
        rm -f "$work/$name-mmio.img" "$work/$name-pci.img"
    else
        fail=1
    fi
done
exit $fail

#!/bin/sh
# AArch32 next to A64: the unmodified Debian 6.1 kernel, tag storage with
# binding v1, and mts.thumb: /init starts two static Thumb-2 programs (compat
# tasks) and two A64 ones (guest/thumb-carveout.c) that map pages of the
# carveout through /dev/mem and store and load data there in a long
# branchy loop; on -smp 1 they interleave, on -smp 4 they run in parallel.
# With tag-storage-check=off, log, event and stop: every worker prints its
# ok line, all with the same checksum and counts (the workload does not
# depend on the ISA) and the checksum of a run over ordinary memory; no
# worker dies of a signal and the kernel does not panic.  With the checker
# on, data stores to unwritten or data-owned tag storage break no rule:
# query-mte-tag-storage counts 0 violations (no event either), and exactly
# the workers' stores as data writes, their loads as data reads.
# While the checker found a store's PC with cpu_restore_state() and then
# set_pc(get_pc()), which clears PSTATE.T (and leaves the IT state of a
# store in an IT block behind), the Thumb workers died at their first
# carveout store once the checker was on: Thumb code run as A32, SIGSEGV
# at a wild PC here, SIGILL elsewhere.
# QEMU_BIN=path runs another QEMU binary than build/obj's.
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
qemu=${QEMU_BIN:-}
. "$MTS_TOP/guest/linux-lib.sh"
QEMU_BIN=${qemu:-$QEMU_BIN}
v1=tag-storage=on,tag-storage-binding=v1

# judge NAME CHECK: the TAP line for run NAME (console, report, events)
judge() {
    /usr/bin/python3 - "$logs" "$@" <<'PY'
import json, re, sys

logs, name, check = sys.argv[1:]
base = '%s/thumb_%s' % (logs, name)
con = open(base + '.console', errors='replace').read()
rep = open(base + '.report', errors='replace').read()
bad = []
workers = re.findall(r'^(ok|not ok) (thumb|a64)-carveout slot=(\d+) (.*)$',
                     con, re.M)
good = {}
for status, isa, slot, rest in workers:
    m = re.match(r'checksum=(0x[0-9a-f]+) accesses=(\d+) stores=(\d+)$', rest)
    if status != 'ok' or not m:
        bad.append('%s %s-carveout slot=%s %s' % (status, isa, slot, rest))
    else:
        good[int(slot)] = (isa,) + m.groups()
# slots 0 and 2 are Thumb-2, 1 and 3 A64 (mte-init.c)
want = {s: 'thumb' if s % 2 == 0 else 'a64' for s in range(4)}
if {s: v[0] for s, v in good.items()} != want:
    bad.append('ok lines for slots %s, want 2 thumb and 2 a64 workers' %
               sorted('%d:%s' % (s, v[0]) for s, v in good.items()))
if len(set(v[1:] for v in good.values())) > 1:
    bad.append('workers disagree: %s' % sorted(good.items()))
bad += re.findall(r'^# .*(?:killed by signal|exit status).*$', con, re.M)
bad += re.findall(r'^.*(?:Kernel panic|Attempted to kill init).*$', con,
                  re.M)
bad += re.findall(r'^not ok .*$', con, re.M)
if not re.search(r'^PASS$', rep, re.M):
    bad.append('run-linux.py: FAIL')
stores = sum(int(v[3]) for v in good.values())
loads = sum(int(v[2]) - int(v[3]) for v in good.values())
summary = ''
if good:
    v = next(iter(good.values()))
    summary = 'checksum=%s accesses=%s each' % (v[1], v[2])
    if int(v[2]) < 100000:
        bad.append('only %s accesses per worker' % v[2])
if check != 'off':
    m = re.search(r'(\d+) data reads, (\d+) data writes; violations '
                  r'R1,R2,R3 = (\S+)', rep)
    if not m:
        bad.append('no checker counts in the report')
    else:
        # only workers that finished printed their counts
        if len(good) == 4 and (int(m.group(1)),
                               int(m.group(2))) != (loads, stores):
            bad.append('checker: %s data reads, %s data writes; the workers '
                       'made %d loads, %d stores' % (m.group(1), m.group(2),
                                                     loads, stores))
        summary += '; checker: %s data writes, %s data reads, ' \
            'violations %s' % (m.group(2), m.group(1), m.group(3))
try:
    events = [json.loads(line) for line in open(base + '.events')]
except OSError:
    events = []
events = [e for e in events if e['event'] == 'MTE_TAG_STORAGE_VIOLATION']
if events:
    bad.append('%d violation events, first %s' % (len(events), events[0]))
t = re.search(r'boot to result ([0-9.]+ s)', rep)
summary += '; boot to result %s' % (t.group(1) if t else '?')
if bad:
    for b in dict.fromkeys(bad):
        print('#   ' + b)
    print('not ok thumb/%s (console: %s.console)' % (name, base))
    sys.exit(1)
print('ok thumb/%s 2 thumb + 2 a64 workers, %s' % (name, summary))
PY
}

for run in "1 off" "1 log" "1 event" "1 stop" "4 off" "4 log" "4 stop"; do
    set -- $run
    smp=$1 check=$2
    name=smp${smp}_$check
    set -- --machine "$v1,tag-storage-check=$check"
    [ "$check" = off ] || set -- "$@" --expect-violations 0,0,0
    /usr/bin/python3 "$TOP/guest/run-linux.py" --qemu "$QEMU_BIN" \
        --kernel "$kernel" --initrd "$initrd" --append mts.thumb \
        --extra "-smp $smp" --timeout 150 \
        --log "$logs/thumb_$name.console" \
        --events "$logs/thumb_$name.events" --quiet "$@" \
        > "$logs/thumb_$name.report" 2>&1 || true
    judge "$name" "$check" || fail=1
done
exit $fail

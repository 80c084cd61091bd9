#!/bin/sh
# Kernel-mode MTE: a small Linux 6.1 with hardware tag-based KASAN (built
# by guest/kasan/build-kernel.sh) runs the kasan KUnit suite, in
# kasan.mode=sync and kasan.mode=async, on stock mte=on (tag-storage=off)
# and with tag-storage=on for each binding (v1, v2, v3), and once more
# with the reuse checker logging (tag-storage-check=log).  One TAP line per
# configuration; the test fails unless every configuration gives, test by test, the
# same verdicts as stock in the same mode, and the checker sees no
# violation (the kernel never touches the carveout).
#
# Three tests of the suite make an access that lands past the object, in
# the next slab object or page (kmalloc_oob_right, ksize_unpoisons_memory,
# pagealloc_oob_right): that memory has a random tag when it is allocated,
# so the access goes unreported when its tag happens to equal the
# pointer's (1 in 14), with stock mte=on as with tag storage.  Such a miss
# (only that access missed) counts as a tag collision, not a failure; a
# boot with one is repeated (the kernel seeds IRG from CNTVCT_EL0, so tags
# differ every boot and QEMU's -seed cannot fix them), up to MTS_KASAN_TRIES boots, and the test
# counts as passed when it passed in any of them, on stock as everywhere
# else.  All other verdicts must be the same in every boot.
# QEMU exits 0 whatever the guest did: the console alone is judged.
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$MTS_TOP/scripts/common.sh"

[ -x "$QEMU_BIN" ] || die "$QEMU_BIN not built (scripts/build.sh)"
kernel=$("$TOP/guest/kasan/build-kernel.sh")
logs=$BUILD_ROOT/kasan/logs
mkdir -p "$logs"
TRIES=${MTS_KASAN_TRIES:-4}
TIMEOUT=${MTS_KASAN_TIMEOUT:-900}
fail=0

# parse CONSOLE: print "NUMBER NAME VERDICT" for each test of the kasan
# suite, VERDICT pass, skip, fail or collision (failed only in accesses
# past the object whose miss a tag collision explains), or one line
# "error: ..." when the run is incomplete or the kernel crashed
parse() {
    /usr/bin/python3 - "$1" <<'PY'
import re, sys
# the accesses that land in the next object or page, whose tag is random
NEIGHBOUR = {
    'kmalloc_oob_right': 'ptr[0] = ptr[size + KASAN_GRANULE_SIZE + 5]',
    'ksize_unpoisons_memory': '((volatile char *)ptr)[real_size]',
    'pagealloc_oob_right': 'ptr[0] = ptr[size]',
}
con = open(sys.argv[1], errors='replace').read().replace('\r', '')
con = re.sub(r'^\[ *\d+\.\d+\] ', '', con, flags=re.M)
def error(msg):
    print('error: ' + msg)
    sys.exit()
m = re.search(r'^[ \t]*# Subtest: kasan\n[ \t]*1\.\.(\d+)\n', con, re.M)
if not m:
    error('no kasan KUnit suite on the console')
plan = int(m.group(1))
body = con[m.end():]
end = re.search(r'^(ok|not ok) \d+ kasan\b', body, re.M)
if not end:
    error('the suite did not finish')
tests = {}
pos = 0
for r in re.finditer(r'^[ \t]+(ok|not ok) (\d+) (\w+)(.*)$',
                     body[:end.start()], re.M):
    chunk, pos = body[pos:r.start()], r.end()
    st, n, name, rest = r.groups()
    if re.match(r'\s*#\s*SKIP\b', rest):
        v = 'skip'
    elif st == 'ok':
        v = 'pass'
    else:
        failed = len(re.findall(r'EXPECTATION FAILED', chunk))
        missed = re.findall(r'KASAN failure expected in "(.*)", but none '
                            r'occurred', chunk)
        v = 'collision' if failed and len(missed) == failed and \
            all(e == NEIGHBOUR.get(name) for e in missed) else 'fail'
    tests[int(n)] = (name, v)
if sorted(tests) != list(range(1, plan + 1)):
    error('%d of %d test results' % (len(tests), plan))
for bad in ('Kernel panic', 'Internal error:', 'Unable to handle kernel'):
    if bad in con:
        error('"%s" on the console' % bad)
if not re.search(r'^reboot: Power down', con, re.M):
    error('the guest did not power off')
for n in sorted(tests):
    print(n, *tests[n])
PY
}

# boot NAME MACHINE MODE [QEMU options]: one boot; verdicts in
# $logs/NAME.verdicts, or return 1 with the reason in $logs/NAME.verdicts.
# QEMU runs with -no-shutdown: once the guest is off, the host's view of
# the tag storage (query-mte-tag-storage; its counters and violations) is
# written to $logs/NAME.host.
boot() {
    b_name=$1 b_machine=$2 b_mode=$3
    shift 3
    rm -f "$logs/$b_name.console" "$logs/$b_name.host"
    b_rc=0
    MTS_GUEST="$TOP/guest" /usr/bin/python3 - "$TIMEOUT" \
        "$logs/$b_name.host" "$QEMU_BIN" \
        -M "virt,mte=on$b_machine" -cpu max,pauth-impdef=on -m 1G \
        -display none -monitor none -no-reboot "$@" \
        -serial "file:$logs/$b_name.console" -kernel "$kernel" \
        -append "console=ttyAMA0 panic=-1 kasan.mode=$b_mode kasan.fault=report kunit.filter_glob=kasan kunit_shutdown=poweroff" \
        > "$logs/$b_name.stderr" 2>&1 <<'PY' || b_rc=$?
import json, os, subprocess, sys, tempfile, time
sys.path.insert(0, os.environ['MTS_GUEST'])
from qmp_session import ERRORS, Session
timeout, host = int(sys.argv[1]), sys.argv[2]
tmp = tempfile.mkdtemp(prefix='mts-kasan-')
path = os.path.join(tmp, 'qmp.sock')
proc = subprocess.Popen(sys.argv[3:] + [
    '-no-shutdown', '-qmp', 'unix:%s,server=on,wait=off' % path])
deadline = time.time() + timeout
rc = 0
try:
    mon = Session(path, deadline, proc)
    while mon.cmd('query-status')['return']['status'] not in (
            'shutdown', 'guest-panicked', 'internal-error'):
        if time.time() > deadline:
            print('timeout: the guest ran for %d s' % timeout)
            rc = 124
            break
        time.sleep(0.2)
    r = mon.cmd('query-mte-tag-storage')
    with open(host, 'w') as out:
        json.dump(r.get('return', r), out)
    mon.quit()
except ERRORS as e:
    print('qmp: %s' % e)
    rc = 1
try:
    proc.wait(timeout=30)
except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
os.unlink(path) if os.path.exists(path) else None
os.rmdir(tmp)
sys.exit(rc or proc.returncode)
PY
    parse "$logs/$b_name.console" > "$logs/$b_name.verdicts"
    if [ $b_rc -ne 0 ]; then
        { echo "error: QEMU exit status $b_rc$([ $b_rc -eq 124 ] &&
              echo " (timeout ${TIMEOUT}s)")"
          grep '^error: ' "$logs/$b_name.verdicts"; } > "$logs/$b_name.err" || :
        mv "$logs/$b_name.err" "$logs/$b_name.verdicts"
    fi
    ! grep -q '^error: ' "$logs/$b_name.verdicts"
}

# run NAME MACHINE MODE [QEMU options]: boot until no test has a tag
# collision, at most TRIES times; the merged verdicts go to $logs/NAME.final
# ("NUMBER NAME VERDICT" lines); prints the TAP line
run() {
    r_name=$1 r_machine=$2 r_mode=$3
    shift 3
    r_try=0
    r_note=
    while :; do
        r_try=$((r_try + 1))
        r_log=$r_name
        [ $r_try -eq 1 ] || r_log=$r_name.$r_try
        if ! boot "$r_log" "$r_machine" "$r_mode" "$@"; then
            sed 's/^/# /' "$logs/$r_log.verdicts"
            tail -n 5 "$logs/$r_log.stderr" | sed 's/^/#   qemu: /'
            echo "not ok kasan/$r_name (console: $logs/$r_log.console)"
            fail=1
            return 0
        fi
        if [ $r_try -eq 1 ]; then
            cp "$logs/$r_log.verdicts" "$logs/$r_name.final"
        elif ! r_err=$(/usr/bin/python3 - "$logs/$r_name.final" \
                           "$logs/$r_log.verdicts" <<'PY'
# merge a later boot: a collision becomes a pass if the test passed now;
# every other verdict must be the same as in the first boot
import sys
a = [l.split() for l in open(sys.argv[1])]
b = [l.split() for l in open(sys.argv[2])]
if [t for n, t, v in a] != [t for n, t, v in b]:
    print('the list of tests changed')
    sys.exit(1)
out, bad = [], []
for (n, t, va), (_, _, vb) in zip(a, b):
    if 'collision' in (va, vb) and 'pass' in (va, vb):
        va = 'pass'
    elif va != vb:
        bad.append('%s %s then %s' % (t, va, vb))
    out.append('%s %s %s\n' % (n, t, va))
if bad:
    print('verdicts changed between boots: ' + ', '.join(bad))
    sys.exit(1)
open(sys.argv[1], 'w').writelines(out)
PY
); then
            echo "# $r_err"
            echo "not ok kasan/$r_name (boot $r_try, console: $logs/$r_log.console)"
            fail=1
            return 0
        fi
        r_coll=$(awk '$3 == "collision" { printf " %s", $2 }' "$logs/$r_log.verdicts")
        [ -z "$r_coll" ] || r_note="$r_note; boot $r_try: tag collision in$r_coll"
        if ! grep -q ' collision$' "$logs/$r_name.final" ||
           [ $r_try -ge "$TRIES" ]; then
            break
        fi
    done
    r_counts=$(awk '{ c[$3]++ } END {
        printf "%d pass %d skip %d fail", c["pass"], c["skip"], c["fail"]
        if (c["collision"]) printf " %d collision", c["collision"] }' \
        "$logs/$r_name.final")
    r_ok=ok
    if grep -q ' fail$' "$logs/$r_name.final"; then
        r_ok="not ok"
        fail=1
    fi
    echo "$r_ok kasan/$r_name $r_counts ($r_try boot$([ $r_try -gt 1 ] && echo s)$r_note)"
}

# same NAME REF: the verdicts of NAME must be those of REF
same() {
    if [ -f "$logs/$1.final" ] && [ -f "$logs/$2.final" ]; then
        # a collision left after TRIES boots is no difference
        sed 's/ collision$/ pass/' "$logs/$1.final" > "$logs/$1.cmp"
        sed 's/ collision$/ pass/' "$logs/$2.final" > "$logs/$2.cmp"
        if cmp -s "$logs/$1.cmp" "$logs/$2.cmp"; then
            echo "ok kasan/$1-same-as-$2"
        else
            diff "$logs/$2.cmp" "$logs/$1.cmp" | grep '^[<>]' |
                sed 's/^/# /'
            echo "not ok kasan/$1-same-as-$2"
            fail=1
        fi
    else
        echo "not ok kasan/$1-same-as-$2 # no verdicts"
        fail=1
    fi
}

rm -f "$logs"/*
for mode in sync async; do
    echo "# kasan.mode=$mode"
    run "stock-$mode" "" "$mode"
    for b in v1 v2 v3; do
        run "$b-$mode" ",tag-storage=on,tag-storage-binding=$b" "$mode"
        same "$b-$mode" "stock-$mode"
    done
done

# The reuse checker: the kernel never breaks a rule.  Violations are
# warnings on stderr (R3 also a guest error) and counted by the device;
# the checker must have seen KASAN's tag writes.
echo "# tag-storage-check=log"
name=v3-check-log-sync
run "$name" ",tag-storage=on,tag-storage-binding=v3,tag-storage-check=log" \
    sync -d guest_errors
same "$name" stock-sync
counts=$(/usr/bin/python3 - "$logs/$name.host" <<'PY'
import json, sys
try:
    info = json.load(open(sys.argv[1]))
    rs = info['regions']
except (OSError, ValueError, KeyError, TypeError):
    print('no query-mte-tag-storage answer')
    sys.exit()
t = lambda k: sum(r[k] for r in rs)
v = [sum(r['violations'][k] for r in rs)
     for k in ('tag-read-of-data', 'data-read-of-tags',
               'tagged-access-to-tag-storage')]
print('check %s: %d tag reads, %d tag writes, violations R1,R2,R3 = %d,%d,%d'
      % (info['check'], t('tag-reads'), t('tag-writes'), *v))
PY
)
if grep -i 'tag.storage' "$logs/$name.stderr" "$logs/$name".*.stderr \
       2>/dev/null | head -n 5 | sed 's/^/# /' | grep . ||
   ! echo "$counts" | grep -q '^check log: [1-9][0-9]* tag reads, [1-9][0-9]* tag writes, violations R1,R2,R3 = 0,0,0$'; then
    echo "not ok kasan/check-log-no-violations $counts"
    fail=1
else
    echo "ok kasan/check-log-no-violations $counts"
fi
exit $fail

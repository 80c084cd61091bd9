#!/usr/bin/python3
"""Boot the Linux test guest on QEMU and judge it from its console.

Runs QEMU with -no-shutdown and a QMP socket; when the guest powers off
(or the timeout expires, which fails the run and keeps the console log),
it saves the tag storage carveout with pmemsave and checks from the host
that its only non-zero bytes are tags of pages the guest reported as
tagged ("TAGGED <pfn> <count>" lines); with tag-storage-init=random, that
the only bytes that changed since the start are such tags.  Optionally
checks the reuse checker's counts and that its reports name the culprit
(a function of the guest's /init), and records query-mte-tag-storage
snapshots and violation events for scripts/tag-storage-picture.py.
Prints a short report; exit 0 on PASS."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from guestsyms import Functions
from qmp_session import ERRORS, Session

RAM_BASE = 0x40000000
EVENTS = []                                     # QMP events, as received


def check_culprits(err, function, binary):
    """Whether every R1/R2 line in QEMU's @err names a write by @function.

    The PCs are resolved with the symbols of @binary, a static non-PIE
    executable, so they are the guest's virtual addresses."""
    functions = Functions(binary)
    seen = {'R1': 0, 'R2': 0}
    bad = []
    for m in re.finditer(r'mte-tag-storage: (R[12]) .*?; last written by '
                         r'(\S+) cpu \d+ pc (0x[0-9a-f]+)', err):
        rule, kind, pc = m.group(1), m.group(2), int(m.group(3), 16)
        name = functions.at(pc)
        want = 'data-store' if rule == 'R1' else 'tag-store'
        seen[rule] += 1
        if name != function or kind != want:
            bad.append('%s culprit %s pc 0x%x in %s' % (rule, kind, pc, name))
    lines = len(re.findall(r'mte-tag-storage: R[12] ', err))
    good = not bad and seen['R1'] and seen['R2'] and \
        lines == seen['R1'] + seen['R2']
    return ('culprits: %d of %d reports (%d R1, %d R2) name the right '
            'store in %s%s' % (lines - len(bad), lines, seen['R1'],
                               seen['R2'], function,
                               '; ' + ', '.join(bad[:3]) if bad else '')), good


def peak_rss_mib(pid):
    try:
        with open('/proc/%d/status' % pid) as st:
            for line in st:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--qemu', required=True)
    ap.add_argument('--kernel', required=True)
    ap.add_argument('--initrd', required=True)
    ap.add_argument('--machine', default='tag-storage=on')
    ap.add_argument('--ram-mib', type=int, default=2048)
    ap.add_argument('--timeout', type=int, default=180)
    ap.add_argument('--log', required=True, help='console log file')
    ap.add_argument('--quiet', action='store_true')
    ap.add_argument('--bios', help='UEFI firmware: boot through it (the '
                    'kernel is handed over by fw_cfg)')
    ap.add_argument('--extra', default='',
                    help='more QEMU options, e.g. -numa ...')
    ap.add_argument('--append', default='',
                    help='more kernel command line, e.g. mts.dma')
    ap.add_argument('--events', metavar='FILE',
                    help='write the QMP events received, one JSON a line')
    ap.add_argument('--expect-violations', metavar='R1,R2,R3[,R4]',
                    help='with tag-storage-check: exact violation counts '
                    'from query-mte-tag-storage at power-off')
    ap.add_argument('--expect-culprit', metavar='FUNCTION',
                    help='every R1 and R2 report must name a write by '
                    'FUNCTION of the guest /init (next to --initrd), and '
                    'there must be at least one of each')
    ap.add_argument('--picture', metavar='PNG',
                    help='record the tag storage owners every 100 ms and '
                    'draw them with scripts/tag-storage-picture.py')
    a = ap.parse_args()
    random_init = re.search(r'(^|,)tag-storage-init=random', a.machine)

    tmp = tempfile.mkdtemp(prefix='mts-linux-')
    sock = os.path.join(tmp, 'qmp.sock')
    dump = os.path.join(tmp, 'carveout.bin')
    append = 'console=ttyAMA0 panic=-1 quiet ' + a.append
    if re.search(r'(^|,)tag-storage=on', a.machine):
        # where the carveouts are (after all RAM), whether or not the guest
        # is told: under ACPI it must not find them in its memory map
        ram = a.ram_mib << 20
        append += ' mts.carveout=0x%x,0x%x' % (RAM_BASE + ram, ram // 32)
    # default devices (a virtio NIC with its option ROM) on purpose
    cmd = [a.qemu, '-M', 'virt,mte=on,' + a.machine,
           '-cpu', 'max,pauth-impdef=on', '-m', '%dM' % a.ram_mib,
           '-display', 'none', '-no-shutdown',
           '-serial', 'file:' + a.log, '-qmp', 'unix:%s,server=on,wait=off'
           % sock, '-kernel', a.kernel, '-initrd', a.initrd,
           '-append', append.strip()] + a.extra.split()
    if a.bios:
        cmd += ['-bios', a.bios]
    if random_init:
        cmd += ['-S']           # to save the garbage before the guest runs
    record = open(a.picture + '.jsonl', 'w') if a.picture else None
    initial = None
    start = time.time()
    # to a file, not a pipe: the violation lines of a long run would fill
    # a pipe that nobody reads until the end, and QEMU would block on it
    errlog = tempfile.TemporaryFile(mode='w+')
    proc = subprocess.Popen(cmd, stderr=errlog, text=True)
    deadline = start + a.timeout
    ok = True
    rss = 0
    try:
        mon = Session(sock, start + 20, proc)
        if random_init:
            info = mon.cmd('query-mte-tag-storage')['return']
            base = info['regions'][0]['carveout-base']
            size = sum(r['carveout-size'] for r in info['regions'])
            mon.cmd('pmemsave', val=base, size=size, filename=dump)
            initial = open(dump, 'rb').read()
            mon.cmd('cont')
        while True:
            st = mon.cmd('query-status')['return']['status']
            if record:
                info = mon.cmd('query-mte-tag-storage')['return']
                record.write(json.dumps({'t': time.time() - start,
                                         'info': info}) + '\n')
            if st == 'shutdown' or st == 'guest-panicked':
                break
            if time.time() > deadline:
                print('FAIL: guest did not finish in %d s; console in %s'
                      % (a.timeout, a.log))
                ok = False
                break
            time.sleep(0.1)
        elapsed = time.time() - start
        # the run's, before the host's own reads (pmemsave) add theirs
        rss = peak_rss_mib(proc.pid)
        console = open(a.log, errors='replace').read()
        m = re.search(r'^LAYOUT tag-storage \S+ (0x[0-9a-f]+)\+(0x[0-9a-f]+)',
                      console, re.M)
        host = ''
        if a.expect_violations and ok:
            # before pmemsave, whose reads of tags would count as R2
            info = mon.cmd('query-mte-tag-storage')['return']
            r = info['regions'][0]
            v = r['violations']
            rules = ['tag-read-of-data', 'data-read-of-tags',
                     'tagged-access-to-tag-storage', 'tag-read-of-unwritten']
            rules = rules[:len(a.expect_violations.split(','))]
            got = ','.join('%d' % v[k] for k in rules)
            host += ('host: checker %s: %d tag reads, %d tag writes, '
                     '%d data reads, %d data writes; violations %s = '
                     '%s (expected %s)\n'
                     % (info['check'], r['tag-reads'], r['tag-writes'],
                        r['data-reads'], r['data-writes'],
                        ','.join('R%d' % (i + 1) for i in range(len(rules))),
                        got, a.expect_violations))
            if got != a.expect_violations or r['tag-writes'] == 0:
                ok = False
        # the host's view of the carveouts: one per NUMA node, contiguous
        regions = mon.cmd('query-mte-tag-storage').get('return',
                                                       {}).get('regions')
        if m and ok and regions:
            base = regions[0]['carveout-base']
            size = sum(r['carveout-size'] for r in regions)
            mon.cmd('pmemsave', val=base, size=size, filename=dump)
            data = open(dump, 'rb').read()
            allowed = bytearray(size)
            for pfn, n in re.findall(r'^TAGGED ([0-9a-f]+) (\d+)$', console,
                                     re.M):
                first = (int(pfn, 16) * 4096 - RAM_BASE) // 32
                for i in range(first, min(size, first + 128 * int(n))):
                    allowed[i] = 1
            if initial is not None:
                # garbage at the start: look at what changed instead
                written = [i for i in range(size) if data[i] != initial[i]]
                what = 'changed'
            else:
                written = [m.start() for m in re.finditer(rb'[^\x00]', data)]
                what = 'non-zero'
            stray = [i for i in written if not allowed[i]]
            tags = len(written) - len(stray)
            host += ('host: carveout 0x%x+0x%x: %d %s tag bytes of '
                    'tagged pages, %d %s bytes elsewhere'
                    % (base, size, tags, what, len(stray), what))
            if stray:
                host += ' (first at 0x%x)' % (base + stray[0])
                ok = False
            if tags == 0:
                host += ' (no tags landed in the carveout)'
                ok = False
            probe = re.search(r'^# probe: page (0x[0-9a-f]+), its tags at '
                              r'(0x[0-9a-f]+)$', console, re.M)
            if probe:
                at = int(probe.group(2), 16) - base
                host += ('\nhost: carveout bytes at %s (tags of guest page '
                         '%s, set by STG in the guest, then byte 0 written '
                         'through /dev/mem): %s' % (probe.group(2),
                         probe.group(1), data[at:at + 16].hex(' ')))
        EVENTS.extend(mon.events())
        mon.quit()
    except ERRORS as e:
        print('FAIL: %s' % e)
        ok = False
        elapsed = time.time() - start
        console = open(a.log, errors='replace').read() \
            if os.path.exists(a.log) else ''
        host = ''
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        for p in (sock, dump):
            if os.path.exists(p):
                os.unlink(p)
        os.rmdir(tmp)
    errlog.seek(0)
    err = errlog.read()
    errlog.close()
    if record:
        for e in EVENTS:
            if e.get('event') == 'MTE_TAG_STORAGE_VIOLATION':
                ts = e['timestamp']
                t = ts['seconds'] + ts['microseconds'] / 1e6 - start
                record.write(json.dumps({'t': t, 'event': e['data']}) + '\n')
        record.close()
        pic = subprocess.run(['/usr/bin/python3', os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            'scripts', 'tag-storage-picture.py'), a.picture + '.jsonl',
            a.picture], capture_output=True, text=True)
        host += '\nhost: picture: ' + (pic.stdout.strip() or
                                       pic.stderr.strip())
        if pic.returncode:
            ok = False
    if a.expect_culprit:
        verdict, good = check_culprits(err, a.expect_culprit, os.path.join(
            os.path.dirname(os.path.abspath(a.initrd)), 'mte-init'))
        host += '\nhost: ' + verdict
        ok = ok and good
    if a.events:
        with open(a.events, 'w') as ev:
            ev.writelines(json.dumps(e) + '\n' for e in EVENTS)
    if err.strip():
        print('qemu stderr: ' + err.strip())

    checks = re.findall(r'^(ok|not ok) (\S+)$', console, re.M)
    res = re.search(r'^RESULT pass=(\d+) fail=(\d+)$', console, re.M)
    verdict = re.search(r'^(PASS|FAIL)$', console, re.M)
    if not res or not verdict or verdict.group(1) != 'PASS':
        ok = False
    print('Layout, read back in the guest (device tree, /proc/iomem):')
    for line in console.splitlines():
        if line.startswith('LAYOUT') or line.startswith('IOMEM'):
            print('  ' + line.split(' ', 1)[1])
    groups = (('Reuse probe (/dev/mem on the carveout):',
               lambda n: n.startswith('probe-')),
              ('Kernel leaves the carveout alone:',
               lambda n: n.startswith('carveout-')),
              ('MTE suite:', lambda n: not n.startswith(('probe-',
                                                          'carveout-'))))
    for title, member in groups:
        group = [c for c in checks if member(c[1])]
        if not group:
            continue
        bad = [c for c in group if c[0] != 'ok']
        print('%s %d/%d passed' % (title, len(group) - len(bad), len(group)))
        for status, name in group:
            if not a.quiet and status == 'ok' or status != 'ok':
                print('  %s %s' % (status, name))
    if host:
        print('Host check of the carveout (pmemsave after power-off):')
        for line in host.splitlines():
            print('  ' + line.replace('host: ', '', 1))
    print('guest checks: %d passed, %d failed; boot to result %.1f s; '
          'peak RSS %d MiB'
          % (sum(1 for c in checks if c[0] == 'ok'),
             sum(1 for c in checks if c[0] != 'ok'), elapsed, rss))
    print('PASS' if ok else 'FAIL')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

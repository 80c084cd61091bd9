#!/usr/bin/python3
"""Boot a kernel that reuses MTE tag storage and judge the run from both sides.

For guest/tests/reuse-kernel.sh.  Runs QEMU with -no-shutdown, QMP, and the
guest's console on a UNIX socket, logged to --log (QEMU's standard error
next to it, as .stderr).  Each "SNAP <name>" line of the guest
(guest/reuse-workload.c, which waits for an answer when the command line
has mts.snapack) makes it record the reuse checker's owner of every
carveout block (query-mte-tag-storage, all pages of the reply), then
answer.  A debug stop (tag-storage-check=stop) is counted and the VM let
go on.  After power-off it records the owners and counters once more and
saves the carveout (pmemsave).

Prints "ok"/"not ok" lines named "reuse-kernel/<name>/<check>" (the
check's details on "#" lines after it) and exits 1 if one failed:

  guest      the guest's own checks: all ok and a RESULT line; with
             --mode=suite (the MTE suite of /init): a RESULT line and at
             least 20 checks, whatever their verdicts; with --mode=control
             (no tag storage): the reuse checks fail, the others pass
  violations with the checker on: its counts by rule at power-off
             (--expect-violations) and no debug stop; the first log line
             of each rule, PC and culprit PC, the PCs resolved with the
             kernel's System.map or the guest program's symbols
  owners     (workload) the carveout pages that held the guest's data are
             data-owned at SNAP fill; blocks data-owned then hold tags at
             SNAP tagged and at power-off (reuse); every block with tags of
             a page the guest tagged is owned by tags at power-off (mixed
             allowed where not all its pages are tagged pages), and no
             block owned by tags at SNAP tagged is anything else later
  tags       (workload) the carveout holds those pages' tags, as the guest
             read them with LDG: the same CRC-32 as its TAGDIGEST line

With --mode=paths (reuse-workload.c's paths mode: a workload per way a
page becomes tagged or needs its tag storage back) it also remembers at
each SNAP how far QEMU's standard error had got, and prints after
"guest" (its checks and a verdict for every workload of the WORKLOADS
line) and "violations" (with --expect-wl-bug: the counts outside those
workloads' windows) one line per workload, wl-<name>, judged on the
window from the snapshot before its "SNAP wl-<name>" to that one:

  the guest's verdict is pass; with the checker: at least one block that
  was data-owned is tag-owned (pressure: at least one block went to data,
  which needs no new tags), no tag block of its WLPAGES pages is owned by
  anything but tags (mixed allowed), and no violation; the line has its
  vmstat deltas (VMDELTA), the blocks, violations by rule and the
  culprits of the window's log lines (accessor <- caller <- backtrace,
  and the last writer, as symbols)
  not-covered: ok only for a workload in --left-out (what the kernel
  leaves out), said on the line, else not ok
  --expect-wl-bug NAME: ok only if NAME fails (its verdict, or with the
  checker violations in its window), and every culprit's accessor
  resolves to a symbol

--summary FILE writes the numbers as JSON."""
import argparse
import bisect
import json
import os
import queue
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib

from guestsyms import Functions
from qmp_session import ERRORS, Session

RAM_BASE = 0x40000000
PAGE = 4096
RULES = ['tag-read-of-data', 'data-read-of-tags',
         'tagged-access-to-tag-storage', 'tag-read-of-unwritten']
# the workload's checks that only pass when the kernel reuses tag storage
REUSE_CHECKS = ['reuse-dt-tag-storage', 'reuse-enabled', 'reuse-cma-total',
                'reuse-fill-in-carveout', 'reuse-mprotect-left-carveout',
                'reuse-cma-alloc', 'reuse-pgmigrate', 'reuse-page-migrated']
# ... of which this one may pass without tag storage too (compaction)
MAY_PASS = 'reuse-pgmigrate'


class Console(threading.Thread):
    """The guest's console on a UNIX socket: logged, SNAP lines queued."""

    def __init__(self, path, log, deadline, proc):
        super().__init__(daemon=True)
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        self.log = open(log, 'wb')
        self.snaps = queue.Queue()

    def run(self):
        pending = b''
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b''
            if not data:
                break
            self.log.write(data)
            self.log.flush()
            lines = (pending + data).split(b'\n')
            pending = lines.pop()
            for line in lines:
                m = re.match(rb'SNAP (\S+)', line)
                if m:
                    self.snaps.put(m.group(1).decode())
        self.log.close()

    def answer(self):
        try:
            self.sock.sendall(b'\n')
        except OSError:
            pass


class Symbols:
    """Kernel PCs (System.map) and the guest program's (nm)."""

    def __init__(self, system_map, program):
        self.kernel = []
        if system_map:
            with open(system_map) as f:
                for line in f:
                    a, t, name = line.split()[:3]
                    if t in 'tTwW':
                        self.kernel.append((int(a, 16), name))
            self.kernel.sort()
        self.starts = [k[0] for k in self.kernel]
        self.user = Functions(program) if program else None

    def at(self, pc):
        if pc >= 1 << 63:
            i = bisect.bisect_right(self.starts, pc) - 1
            if i < 0:
                return '?'
            return '%s+0x%x' % (self.kernel[i][1], pc - self.kernel[i][0])
        return self.user.at(pc) if self.user else '?'


def query_owners(mon):
    """query-mte-tag-storage, with every block's owner ('owners': a list)"""
    info = mon.cmd('query-mte-tag-storage')['return']
    bs = info['block-size']
    for r in info['regions']:
        base, size = r['carveout-base'], r['carveout-size']
        owners = [None] * (size // bs)
        blocks = list(r.get('blocks', []))
        nxt = r.get('blocks-next')
        while nxt is not None:
            more = mon.cmd('query-mte-tag-storage', base=nxt,
                           size=base + size - nxt)['return']
            rr = [x for x in more['regions'] if x['carveout-base'] == base][0]
            blocks += rr.get('blocks', [])
            nxt = rr.get('blocks-next')
        for b in blocks:
            first = (b['base'] - base) // bs
            for i in range(first, first + b['size'] // bs):
                owners[i] = b['owner']
        r['owners'] = owners
        r.pop('blocks', None)
    return info


def access(r):
    """the access counters of query-mte-tag-storage region @r"""
    return '%d tag reads, %d tag writes, %d data reads, %d data writes' % (
        r['tag-reads'], r['tag-writes'], r['data-reads'], r['data-writes'])


def counts(owners):
    c = {}
    for o in owners:
        c[o] = c.get(o, 0) + 1
    return c


def runs(console, what):
    """[(pfn, n)] of the console's "WHAT <pfn> <n>" lines, in order"""
    return [(int(p, 16), int(n)) for p, n in
            re.findall(r'^%s ([0-9a-f]+) (\d+)$' % what, console, re.M)]


def window(snaps, wl):
    """(previous snapshot, SNAP wl-<wl>): the workload's window, or None"""
    names = list(snaps)     # in the order the guest asked for them
    cur = 'wl-' + wl
    if cur not in names or names.index(cur) == 0:
        return None
    return names[names.index(cur) - 1], cur


def violations(snap):
    v = snap['regions'][0]['violations']
    return [v[k] for k in RULES]


def culprits(lines, syms):
    """{(rule, chain): count} of violation log lines; chain: the
    accessor's function, its caller (lr), its backtrace, then the last
    writer's function, as symbols"""
    out = {}
    for line in lines:
        text = line.split('mte-tag-storage: ', 1)[1]
        acc, _, writer = text.partition('; last written by ')
        m = re.search(r'pc (0x[0-9a-f]+) lr (0x[0-9a-f]+)(?: bt (\S+))?',
                      acc)
        if m:
            pcs = [m.group(1), m.group(2)] + \
                (m.group(3).split(',') if m.group(3) else [])
        else:
            pcs = re.findall(r'pc (0x[0-9a-f]+)', acc)
        chain = []
        for pc in pcs[:12]:
            f = str(syms.at(int(pc, 16))).split('+')[0]
            if not chain or chain[-1] != f:
                chain.append(f)
        w = re.findall(r'pc (0x[0-9a-f]+)', writer)
        key = (text.split(':', 1)[0].split()[0], ' <- '.join(chain) +
               ('; writer %s' % syms.at(int(w[0], 16)) if w else
                '; writer %s' % writer.split()[0] if writer else ''))
        out[key] = out.get(key, 0) + 1
    return out


def window_culprits(snaps, win, stderr, syms):
    """culprits() of the log lines QEMU wrote in window @win"""
    with open(stderr, errors='replace') as f:
        f.seek(snaps[win[0]]['err-offset'])
        chunk = f.read(snaps[win[1]]['err-offset'] -
                       snaps[win[0]]['err-offset'])
    return culprits(re.findall(r'^.*mte-tag-storage: R\d .*$', chunk, re.M),
                    syms)


def race_seen(race, snaps, console, stderr, syms):
    """whether the known race NAME:RULE:FUNCTION showed in NAME's
    window: violations of RULE only, each culprit chain (accessor and its
    callers) through FUNCTION, and a tag storage reservation that failed"""
    wl, rule, func = race
    win = window(snaps, wl)
    if not win:
        return False
    viol = [y - x for x, y in zip(violations(snaps[win[0]]),
                                  violations(snaps[win[1]]))]
    k = int(rule[1:]) - 1
    groups = window_culprits(snaps, win, stderr, syms)
    vm = re.search(r'^VMDELTA %s .*\btag_storage_reserve_fail=\+?(\d+)'
                   % re.escape(wl), console, re.M)
    return viol[k] > 0 and sum(viol) == viol[k] and bool(groups) and \
        all(r == rule and func in chain.split(';')[0].split(' <- ')
            for r, chain in groups) and \
        vm is not None and int(vm.group(1)) > 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--qemu', required=True)
    ap.add_argument('--kernel', required=True)
    ap.add_argument('--initrd', required=True)
    ap.add_argument('--name', required=True)
    ap.add_argument('--machine', default='tag-storage=on')
    ap.add_argument('--ram-mib', type=int, default=2048)
    ap.add_argument('--extra', default='', help='more QEMU options')
    ap.add_argument('--append', default='', help='more kernel command line')
    ap.add_argument('--timeout', type=int, default=150)
    ap.add_argument('--log', required=True, help='console log file')
    ap.add_argument('--mode', choices=['workload', 'control', 'suite',
                                       'portbug', 'paths'],
                    default='workload')
    ap.add_argument('--expect-culprit', action='append', default=[],
                    metavar='RULE:FUNCTION',
                    help='--mode=portbug: a report of RULE (R1-R4) must '
                    'name FUNCTION as the accessor or the last writer')
    ap.add_argument('--expect-violations', metavar='R1,R2,R3,R4',
                    help='exact counts of the checker at power-off (with '
                    '--mode=paths: outside the --expect-wl-bug workloads)')
    ap.add_argument('--expect-wl-bug', action='append', default=[],
                    metavar='NAME', help='--mode=paths: a workload the '
                    'kernel is known to get wrong: it must fail, with '
                    'violations whose culprits resolve to symbols')
    ap.add_argument('--known-race', action='append', default=[],
                    metavar='NAME:RULE:FUNCTION',
                    help='--mode=paths: workload NAME may hit a known, '
                    'intermittent race of the kernel: when its window has '
                    'violations of RULE (R1-R4) only, every culprit chain '
                    'passes through FUNCTION and the kernel counted '
                    'tag_storage_reserve_fail, the workload is ok (and said '
                    'to have raced) and its window is left out of '
                    '--expect-violations; otherwise it is judged as usual')
    ap.add_argument('--left-out', default='', metavar='A,B,...',
                    help='--mode=paths: the workloads the kernel leaves '
                    'out, which may be "not-covered"')
    ap.add_argument('--system-map', help='the kernel\'s, for kernel PCs')
    ap.add_argument('--program', help='the guest program, for user PCs')
    ap.add_argument('--summary', metavar='FILE', help='numbers, as JSON')
    a = ap.parse_args()
    races = {}
    for race in a.known_race:
        f = race.split(':')
        if len(f) != 3 or not re.fullmatch(r'R[1-4]', f[1]) or not all(f):
            ap.error('--known-race %s: want NAME:RULE:FUNCTION, RULE one of '
                     'R1-R4' % race)
        races[f[0]] = tuple(f)
    checker = re.search(r'(^|,)tag-storage-check=(log|event|stop)',
                        a.machine) and \
        re.search(r'(^|,)tag-storage=on', a.machine)

    tmp = tempfile.mkdtemp(prefix='mts-reuse-')
    qmp_sock = os.path.join(tmp, 'qmp.sock')
    con_sock = os.path.join(tmp, 'console.sock')
    dump = os.path.join(tmp, 'carveout.bin')
    append = 'console=ttyAMA0 panic=-1 nokaslr ' + a.append
    machine = 'virt,mte=on' + (',' + a.machine if a.machine else '')
    cmd = [a.qemu, '-M', machine,
           '-cpu', 'max,pauth-impdef=on', '-m', '%dM' % a.ram_mib,
           '-display', 'none', '-no-shutdown', '-nodefaults',
           '-chardev', 'socket,id=con0,path=%s,server=on,wait=on' % con_sock,
           '-serial', 'chardev:con0',
           '-qmp', 'unix:%s,server=on,wait=off' % qmp_sock,
           '-kernel', a.kernel, '-initrd', a.initrd,
           '-append', append.strip()] + a.extra.split()
    start = time.time()
    # a file, not a pipe: QEMU must never block on its violation reports
    stderr = os.path.splitext(a.log)[0] + '.stderr'
    with open(stderr, 'w') as errf:
        proc = subprocess.Popen(cmd, stderr=errf)
    snaps = {}
    stops = []
    final = None
    carveout = None
    problem = None
    try:
        con = Console(con_sock, a.log, start + 20, proc)
        con.start()
        mon = Session(qmp_sock, start + 20, proc)
        deadline = start + a.timeout
        while True:
            try:
                name = con.snaps.get(timeout=0.1)
                if checker:
                    snaps[name] = query_owners(mon)
                    snaps[name]['t'] = time.time() - start
                    # the violation reports so far (QEMU's stderr is
                    # unbuffered): those after it are the next window's
                    snaps[name]['err-offset'] = os.path.getsize(stderr)
                con.answer()
            except queue.Empty:
                pass
            st = mon.cmd('query-status')['return']['status']
            if st == 'debug':
                stops.append(time.time() - start)
                mon.cmd('cont')
            elif st in ('shutdown', 'guest-panicked'):
                break
            if time.time() > deadline:
                problem = 'guest did not finish in %d s' % a.timeout
                break
        elapsed = time.time() - start
        if checker:
            final = query_owners(mon)
            r = final['regions'][0]
            mon.cmd('pmemsave', val=r['carveout-base'],
                    size=r['carveout-size'], filename=dump)
            carveout = open(dump, 'rb').read()
        mon.quit()
    except ERRORS as e:
        problem = 'QEMU: %s' % e
        elapsed = time.time() - start
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for p in (qmp_sock, con_sock, dump):
            if os.path.exists(p):
                os.unlink(p)
        os.rmdir(tmp)
    err = open(stderr, errors='replace').read()
    console = open(a.log, errors='replace').read() \
        if os.path.exists(a.log) else ''
    prefix = 'reuse-kernel/%s/' % a.name
    failed = []
    summary = {'name': a.name, 'seconds': round(elapsed, 1)}

    def tap(check, ok, details, text=''):
        print('%s %s%s%s' % ('ok' if ok else 'not ok', prefix, check,
                             ' ' + text if text else ''))
        for d in details:
            print('#   ' + d)
        if not ok:
            failed.append(check)

    # the guest's checks
    checks = re.findall(r'^(ok|not ok) (\S+)$', console, re.M)
    res = re.search(r'^RESULT pass=(\d+) fail=(\d+)$', console, re.M)
    bad = [n for s, n in checks if s != 'ok']
    details = ['%d checks, %d failed%s; boot to power-off %.1f s'
               % (len(checks), len(bad),
                  ' (%s)' % ' '.join(bad) if bad else '', elapsed)]
    details += ['console: ' + ln for ln in
                re.findall(r'^(?:MEMINFO|# (?:fill|kept|pair|tagged|refill|'
                           r'vmstat|'
                           r'mprotect|dmesg|workload)).*$', console, re.M)]
    details += re.findall(r'^(?!# dmesg).*(?:Kernel panic|Attempted to '
                          r'kill init|unexpected-signal|WARNING|BUG:|Oops)'
                          r'.*$', console, re.M)
    if problem:
        details.append(problem)
    if a.mode == 'workload':
        ok = res is not None and not bad and checks and not problem
    elif a.mode == 'paths':
        # the workloads' verdicts are judged below, one line each
        wls = re.search(r'^WORKLOADS(( \S+)*)$', console, re.M)
        wls = wls.group(1).split() if wls else []
        verdicts = {m[0]: (m[1], m[2]) for m in re.findall(
            r'^WORKLOAD (\S+) (pass|fail|not-covered) (.*)$', console, re.M)}
        missing = [w for w in wls if w not in verdicts]
        ok = res is not None and not bad and checks and not problem and \
            wls and not missing
        details.append('workloads %s%s' % (' '.join(wls) or 'none',
                                           '; no verdict for %s' %
                                           ' '.join(missing)
                                           if missing else ''))
    elif a.mode == 'control':
        names = [n for _, n in checks]
        want_bad = [c for c in REUSE_CHECKS if c in names and c != MAY_PASS]
        ok = res is not None and not problem and \
            sorted(set(bad) - {MAY_PASS}) == sorted(want_bad) and \
            len(want_bad) == len(REUSE_CHECKS) - 1
        details.insert(0, 'without tag storage the reuse checks must fail '
                       '(%s), the others pass' % ' '.join(REUSE_CHECKS))
    elif a.mode == 'portbug':
        # the port's bug corrupts data or tags: the guest may see it
        ok = res is not None and not problem and checks
        details.insert(0, 'a known bug of the port: the guest\'s checks may '
                       'fail, the checker must name the culprit')
    else:
        ok = res is not None and not problem and len(checks) >= 20
    rfc = re.search(r'MTE tag storage: MTE tag storage region management '
                    r'(enabled|disabled)', console)
    summary['rfc'] = rfc.group(1) if rfc else 'silent'
    details.append('kernel log: tag storage management %s'
                   % summary['rfc'])
    summary['guest'] = {'checks': len(checks), 'failed': bad}
    vm = {n: (int(b), int(c)) for n, b, c in
          re.findall(r'^VMSTAT (\S+) (-?\d+) (\d+)$', console, re.M)}
    summary['vmstat-delta'] = {n: c - b for n, (b, c) in vm.items()
                               if b >= 0 and c != b}
    tap('guest', ok, details)

    # the reuse checker
    seen = set()    # the workloads whose known race (--known-race) showed
    if checker:
        r = final['regions'][0] if final else None
        syms = Symbols(a.system_map, a.program)
        lines = re.findall(r'^.*mte-tag-storage: R\d .*$', err, re.M)
        details = []
        got = None
        if r:
            v = r['violations']
            got = ','.join('%d' % v[k] for k in RULES)
            details.append('checker %s: %d tag reads, %d tag writes, %d data '
                           'reads, %d data writes; violations R1,R2,R3,R4 = '
                           '%s' % (final['check'], r['tag-reads'],
                                   r['tag-writes'], r['data-reads'],
                                   r['data-writes'], got))
            summary['checker'] = {k: r[k] for k in
                                  ('tag-reads', 'tag-writes', 'data-reads',
                                   'data-writes', 'violations')}
        # the log lines, the first of each rule, PC and culprit PC
        groups = {}
        for line in lines:
            text = line.split('mte-tag-storage: ', 1)[1]
            key = (text.split(':', 1)[0],
                   tuple(re.findall(r'pc (0x[0-9a-f]+)', text)))
            groups.setdefault(key, [text, 0])[1] += 1
        named = set()
        for (rule, pcs), (text, n) in groups.items():
            names = ', '.join('%s = %s' % (pc, syms.at(int(pc, 16)))
                              for pc in pcs)
            named |= {(rule.split()[0],
                       str(syms.at(int(pc, 16))).split('+')[0])
                      for pc in pcs}
            details.append('%s [%s]%s' % (text, names,
                                          ' (%d log lines like it)' % n
                                          if n > 1 else ''))
        details += re.findall(r'^.*suppressed.*$', err, re.M)
        if stops:
            details.append('%d debug stops (stop policy), first at %.1f s'
                           % (len(stops), stops[0]))
        summary['stops'] = len(stops)
        seen = {wl for wl, race in races.items()
                if race_seen(race, snaps, console, stderr, syms)} \
            if a.mode == 'paths' else set()
        known = a.expect_wl_bug + sorted(seen)
        if a.mode == 'paths' and known and r:
            inside = [0] * len(RULES)
            for wl in known:
                w = window(snaps, wl)
                if w:
                    inside = [i + y - x for i, x, y in
                              zip(inside, violations(snaps[w[0]]),
                                  violations(snaps[w[1]]))]
            got = ','.join('%d' % (r['violations'][k] - i)
                           for k, i in zip(RULES, inside))
            details.append('outside the windows of %s (known port bugs%s): '
                           '%s; inside: %s' % (' '.join(known),
                                               ', races seen' if seen
                                               else '', got, inside))
        ok = got is not None and not stops and \
            (a.expect_violations is None or got == a.expect_violations)
        if a.mode == 'portbug':
            want = {tuple(c.split(':', 1)) for c in a.expect_culprit}
            ok = got is not None and bool(want) and want <= named
            details.insert(0, 'the checker must report %s' % ', '.join(
                '%s naming %s' % w for w in sorted(want)))
        if a.expect_violations:
            details[0:0] = ['expected violations %s, no debug stop'
                            % a.expect_violations]
        tap('violations', ok, details)
    other = [ln for ln in err.strip().splitlines()
             if 'mte-tag-storage: R' not in ln and 'suppressed' not in ln and
             'waiting for connection' not in ln]
    if other:
        print('# qemu stderr: ' + '\n# qemu stderr: '.join(other[:20]))

    if a.mode == 'paths':
        # one line per workload: the guest's verdict, and from the owner
        # map the window from the snapshot before to SNAP wl-<name>
        left_out = a.left_out.split(',') if a.left_out else []
        syms = Symbols(a.system_map, a.program)
        summary['workloads'] = {}
        for wl in wls:
            verdict, text = verdicts.get(wl, ('missing', 'no WORKLOAD line'))
            vm = re.search(r'^VMDELTA %s (.*)$' % re.escape(wl), console,
                           re.M)
            details = ['guest: %s %s' % (verdict, text)]
            if vm:
                details.append('vmstat deltas: ' + vm.group(1))
            info = {'verdict': verdict, 'vmstat-delta': {
                k: int(v) for k, v in re.findall(r'(\S+)=([-+]\d+)',
                                                 vm.group(1))} if vm else {}}
            summary['workloads'][wl] = info
            if verdict == 'not-covered':
                ok = wl in left_out
                tap('wl-' + wl, ok, [] if ok else details + [
                    'not-covered, but the kernel does not leave %s out '
                    '(left out: %s)' % (wl, ' '.join(left_out) or 'none')],
                    'not-covered: ' + text if ok else '')
                continue
            win = window(snaps, wl) if checker else None
            if checker and not win:
                details.append('no SNAP wl-%s (snapshots: %s)'
                               % (wl, ' '.join(snaps)))
                tap('wl-' + wl, False, details)
                continue
            reused = notag = todata = 0
            viol = [0] * len(RULES)
            groups = {}
            if win:
                before, after = snaps[win[0]], snaps[win[1]]
                o0 = before['regions'][0]['owners']
                o1 = after['regions'][0]['owners']
                base = after['regions'][0]['carveout-base']
                bs = after['block-size']
                # reuse: blocks that held data hold tags now
                reused = sum(1 for x, y in zip(o0, o1) if x == 'data' and
                             y in ('tag', 'mixed'))
                # and the other way: blocks given to data
                todata = sum(1 for x, y in zip(o0, o1) if x != 'data' and
                             y == 'data')
                # the tag blocks of the pages it tagged hold tags
                blocks = {(p * PAGE - RAM_BASE) // 32 // bs
                          for pfn, n in runs(console, 'WLPAGES ' +
                                             re.escape(wl))
                          for p in range(pfn, pfn + n)
                          if RAM_BASE <= p * PAGE < base}
                notag = sum(1 for b in blocks if o1[b] not in ('tag',
                                                                'mixed'))
                viol = [y - x for x, y in zip(violations(before),
                                              violations(after))]
                groups = window_culprits(snaps, win, stderr, syms)
                details.append('owner map %s (%.1f s) -> %s (%.1f s): %d '
                               'blocks went from data to tags, %d to data; '
                               '%d tag blocks of the %d pages it tagged, '
                               '%d of them not tag-owned' % (
                                   win[0], before['t'], win[1], after['t'],
                                   reused, todata, len(blocks),
                                   sum(n for _, n in runs(
                                       console, 'WLPAGES ' + re.escape(wl))),
                                   notag))
                details.append('violations R1,R2,R3,R4 = %s' %
                               ','.join('%d' % v for v in viol))
                for (rule, chain), n in sorted(groups.items()):
                    details.append('  %s x%d (log lines) by %s' % (rule, n,
                                                                   chain))
                info.update({'reused-blocks': reused, 'to-data-blocks':
                             todata, 'tag-blocks':
                             len(blocks), 'tag-blocks-not-tag': notag,
                             'violations': dict(zip(RULES, viol)),
                             'culprits': ['%s by %s' % k for k in groups]})
            else:
                details.append('checker off: no owner map, no violations')
            d = info['vmstat-delta']
            short = 'cma_alloc_success %+d, pgmigrate_success %+d; ' % (
                d.get('cma_alloc_success', 0),
                d.get('pgmigrate_success', 0)) + (
                'data->tags %d blocks%s, violations %s' % (
                    reused, ', ->data %d' % todata if wl == 'pressure'
                    else '', ','.join('%d' % v for v in viol))
                if win else 'checker off')
            if wl in a.expect_wl_bug:
                # a known bug of the port: it must show, and say where
                named = groups and all(c.split(' <- ')[0] != '?'
                                       for _, c in groups)
                ok = (verdict == 'fail' or any(viol)) and any(viol) \
                    if checker else verdict == 'fail'
                ok = ok and (named or not checker)
                details.insert(0, 'known bug of the port: must fail, with '
                               'violations named by symbols')
                # the deepest chain: the kernel's, not the reader's
                first = sorted(groups.items(),
                               key=lambda g: -g[0][1].count(' <- '))[:1]
                tap('wl-' + wl, ok, details, 'known port bug, %s: %s%s' % (
                    verdict, short, '; %s by %s' % first[0][0]
                    if first else ''))
                continue
            if wl in seen:
                # the known race, as --known-race describes it: ok, said so
                details.insert(0, 'known race of the port (%s by %s): seen '
                               'here, so the guest\'s verdict and these '
                               'violations are excused' % races[wl][1:])
                info['known-race-seen'] = True
                tap('wl-' + wl, True, details, 'known port race seen, %s: '
                    '%s; %s' % (verdict, short, '; '.join(
                        '%s x%d by %s' % (k[0], n, k[1])
                        for k, n in sorted(groups.items())[:2])))
                continue
            # reuse: blocks that held data hold tags; under pressure (no
            # new tags needed) blocks go to data while every live tag
            # block keeps its tags (its WLPAGES: all tagged pages)
            ok = verdict == 'pass' and (not checker or (
                (todata if wl == 'pressure' else reused) > 0 and
                notag == 0 and not any(viol)))
            tap('wl-' + wl, ok, details, short)

    if checker and a.mode == 'workload' and final:
        r = final['regions'][0]
        base, bs = r['carveout-base'], final['block-size']
        end_owner = r['owners']
        summary['owners'] = {}
        details = []
        for name in ['boot', 'fill', 'tagged', 'refill']:
            if name in snaps:
                sr = snaps[name]['regions'][0]
                c = counts(sr['owners'])
                summary['owners'][name] = c
                details.append('owners at SNAP %-6s (%5.1f s): %s; %s'
                               % (name, snaps[name]['t'], c, access(sr)))
        c = counts(end_owner)
        summary['owners']['power-off'] = c
        details.append('owners at power-off:          %s; %s'
                       % (c, access(r)))
        ok = 'fill' in snaps and 'tagged' in snaps
        if not ok:
            details.append('missing snapshots: got %s' % sorted(snaps))
        else:
            fill = snaps['fill']['regions'][0]['owners']
            # the carveout pages the guest filled are data-owned
            data_pages = [p for pfn, n in runs(console, 'CARVEOUT-DATA')
                          for p in range(pfn, pfn + n)]
            wrong = [p for p in data_pages
                     if fill[(p * PAGE - base) // bs] != 'data']
            details.append('%d carveout pages held guest data at SNAP fill, '
                           '%d of their blocks not data-owned then%s'
                           % (len(data_pages), len(wrong),
                              ' (first pfn 0x%x)' % wrong[0] if wrong else ''))
            # reuse: data then, tags later
            reused = [i for i, o in enumerate(fill) if o == 'data' and
                      end_owner[i] in ('tag', 'mixed')]
            reused_t = [i for i, o in enumerate(fill) if o == 'data' and
                        snaps['tagged']['regions'][0]['owners'][i]
                        in ('tag', 'mixed')]
            details.append('%d blocks data-owned at SNAP fill hold tags at '
                           'SNAP tagged, %d at power-off' %
                           (len(reused_t), len(reused)))
            # every tag block of a tagged page holds tags, only tags if
            # all the pages it is for are tagged
            tagged = [p for pfn, n in runs(console, 'TAGGED')
                      for p in range(pfn, pfn + n)]
            per_block = {}
            outside = [p for p in tagged if not RAM_BASE <= p * PAGE <
                       RAM_BASE + r['tagged-size']]
            for p in tagged:
                if p not in outside:
                    b = (p * PAGE - RAM_BASE) // 32 // bs
                    per_block[b] = per_block.get(b, 0) + 1
            full = bs * 32 // PAGE
            blocks = sorted(per_block)
            untagged = [b for b in blocks
                        if end_owner[b] != 'tag' and
                        (per_block[b] == full or end_owner[b] != 'mixed')]
            details.append('%d pages tagged by the guest, their tags in %d '
                           'blocks (%d for tagged pages only), %d of them '
                           'not tag-owned%s'
                           % (len(tagged), len(blocks),
                              sum(1 for b in blocks if per_block[b] == full),
                              len(untagged),
                              ' (first 0x%x: %s)' % (
                                  base + untagged[0] * bs,
                                  end_owner[untagged[0]])
                              if untagged else ''))
            if outside:
                details.append('%d tagged pages are not tagged RAM (first '
                               'pfn 0x%x)' % (len(outside), outside[0]))
            was_tag = snaps['tagged']['regions'][0]['owners']
            lost = [i for i, o in enumerate(was_tag)
                    if o == 'tag' and end_owner[i] != 'tag']
            details.append('%d blocks tag-owned at SNAP tagged are not at '
                           'power-off%s' % (len(lost), ' (first 0x%x: %s)' % (
                               base + lost[0] * bs, end_owner[lost[0]])
                               if lost else ''))
            summary.update({'data-pages': len(data_pages),
                            'data-pages-not-data': len(wrong),
                            'reused-blocks': len(reused),
                            'reused-blocks-tagged': len(reused_t),
                            'tagged-pages': len(tagged),
                            'tag-blocks': len(blocks),
                            'tag-blocks-not-tag': len(untagged),
                            'tag-blocks-lost': len(lost)})
            ok = data_pages and not wrong and reused and reused_t and \
                tagged and not untagged and not lost and not outside
        tap('owners', ok, details)

        # the tags themselves
        digest = re.search(r'^TAGDIGEST ([0-9a-f]{8}) (\d+)$', console, re.M)
        crc = 0
        tagged = runs(console, 'TAGGED')
        for pfn, n in tagged:
            off = (pfn * PAGE - RAM_BASE) // 32
            if 0 <= off and off + n * PAGE // 32 <= len(carveout):
                crc = zlib.crc32(carveout[off:off + n * PAGE // 32], crc)
            else:       # tags of pages outside tagged RAM: none, LDG sees 0
                crc = zlib.crc32(bytes(n * PAGE // 32), crc)
        npages = sum(n for _, n in tagged)
        ok = digest is not None and int(digest.group(1), 16) == crc and \
            int(digest.group(2)) == npages and npages > 0
        tap('tags', ok, ['CRC-32 of the carveout bytes holding the tags of '
                         'the %d pages: %08x, the guest\'s LDG: %s'
                         % (npages, crc, digest.group(1) if digest
                            else 'none')])

    if a.summary:
        with open(a.summary, 'w') as f:
            json.dump(summary, f, indent=1)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/python3
"""Boot the Linux test guest with /smp-stress (mts.smp=MODE) and judge it.

Runs QEMU with -no-shutdown and a QMP socket until the guest powers off,
then judges the console (TAP lines, RESULT, PASS) and, with the reuse
checker on, the violation counters of query-mte-tag-storage.

--stop-reads K: the run is mts.smp=stop,K with tag-storage-check=stop.
Every MTE_TAG_STORAGE_VIOLATION event is a CPU stopped at its
instruction; at each STOP the driver checks that the VM is in 'debug',
that each CPU that reported a violation has its PC on the load
instruction the guest printed, and sends 'cont'.  At the end: exactly K
stops per CPU, each rule R2 at that CPU's load PC and tag bytes, R2
counter = CPUs * K, no other violation, guest PASS.  A run that stops
more than twice as often as it should is cut short (it would stop
forever).

--log-reads K: the same run with tag-storage-check=log: R2 = CPUs * K,
and every warning line names rule R2, the load PC and tag bytes of the
CPU it names.

Prints a report; exit 0 on PASS."""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from guestsyms import Functions
from qmp_session import ERRORS, Session


def cpu_pcs(q):
    """{cpu index: PC} of all CPUs, from HMP 'info registers -a'"""
    out = q.cmd('human-monitor-command',
                **{'command-line': 'info registers -a'}).get('return', '')
    pcs = {}
    for m in re.finditer(r'^CPU#(\d+)\s*\n\s*PC=([0-9a-f]+)', out, re.M):
        pcs[int(m.group(1))] = int(m.group(2), 16)
    return pcs


# the rules' names in log lines (R1..R4) and in QMP
RULES = {'R1': 'tag-read-of-data', 'R2': 'data-read-of-tags',
         'R3': 'tagged-access-to-tag-storage', 'R4': 'tag-read-of-unwritten'}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--qemu', required=True)
    ap.add_argument('--kernel', required=True)
    ap.add_argument('--initrd', required=True)
    ap.add_argument('--machine', default='tag-storage=on')
    ap.add_argument('--smp', type=int, default=4)
    ap.add_argument('--ram-mib', type=int, default=2048)
    ap.add_argument('--mode', required=True, help='mts.smp=MODE')
    ap.add_argument('--timeout', type=int, default=900)
    ap.add_argument('--log', required=True, help='console log file')
    ap.add_argument('--expect-violations', metavar='R1,R2,R3',
                    help='exact violation counts at power-off')
    ap.add_argument('--stop-reads', type=int, metavar='K')
    ap.add_argument('--log-reads', type=int, metavar='K')
    ap.add_argument('--max-stops', type=int, metavar='N',
                    help='with --stop-reads: cut the run short after N '
                    'stops (default twice the expected number, plus 20)')
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix='mts-smp-')
    sock = os.path.join(tmp, 'qmp.sock')
    errlog = os.path.join(tmp, 'stderr')
    cmd = [a.qemu, '-M', 'virt,mte=on,' + a.machine,
           '-cpu', 'max,pauth-impdef=on', '-smp', str(a.smp),
           '-m', '%dM' % a.ram_mib,
           '-display', 'none', '-no-shutdown',
           '-serial', 'file:' + a.log, '-qmp', 'unix:%s,server=on,wait=off'
           % sock, '-kernel', a.kernel, '-initrd', a.initrd,
           '-append', 'console=ttyAMA0 panic=-1 quiet mts.smp=' + a.mode]
    problems = []
    violations = []         # MTE_TAG_STORAGE_VIOLATION events, in order
    stop_events = conts = 0
    bad_pc_at_stop = []     # (cpu, pc at the stop, pc of its event)
    counters = None
    start = time.time()
    err = open(errlog, 'w+')
    proc = subprocess.Popen(cmd, stderr=err, text=True)
    deadline = start + a.timeout
    limit = None
    if a.stop_reads:
        limit = a.max_stops or 2 * a.smp * a.stop_reads + 20
    try:
        q = Session(sock, start + 30, proc)
        window = []         # violations since the last cont
        done = False
        while not done:
            if time.time() > deadline:
                problems.append('guest did not finish in %d s' % a.timeout)
                break
            ev = q.event(0.2)
            if ev is None:
                # nothing new: poll, in case an event was missed
                st = q.cmd('query-status')['return']['status']
                if st in ('shutdown', 'guest-panicked'):
                    break
                ev = q.event(0)     # one that came with the answer
                if ev is None and st == 'debug':
                    ev = {'event': 'STOP'}
                elif ev is None:
                    continue
            name = ev['event']
            if name == 'MTE_TAG_STORAGE_VIOLATION':
                violations.append(ev['data'])
                window.append(ev['data'])
                if limit and len(violations) > limit:
                    problems.append('runaway: %d stops, more than %d; the '
                                    'VM keeps stopping' % (len(violations),
                                                           limit))
                    break
            elif name == 'SHUTDOWN' or name == 'GUEST_PANICKED':
                done = True
            elif name == 'STOP':
                st = q.cmd('query-status')['return']['status']
                if st != 'debug':
                    if st not in ('shutdown', 'guest-panicked'):
                        problems.append('stopped in state %s' % st)
                    break
                # a CPU that stopped while the VM was stopping can stop
                # it again, without a new violation: count STOPs apart
                stop_events += 1
                pcs = cpu_pcs(q)
                for v in window:
                    if pcs.get(v.get('cpu-index')) != v.get('pc'):
                        bad_pc_at_stop.append((v.get('cpu-index'),
                                               pcs.get(v.get('cpu-index')),
                                               v.get('pc')))
                window = []
                if not a.stop_reads:
                    problems.append('unexpected debug stop')
                    break
                q.cmd('cont')
                conts += 1
        try:
            if a.expect_violations or a.stop_reads or a.log_reads:
                info = q.cmd('query-mte-tag-storage')['return']
                counters = info['regions'][0]['violations']
            q.quit()
        except ERRORS + (KeyError,) as e:
            problems.append('final QMP: %s' % e)
    except ERRORS as e:
        problems.append('QMP: %s' % e)
    finally:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err.seek(0)
        stderr = err.read()
        err.close()
        for p in (sock, errlog):
            if os.path.exists(p):
                os.unlink(p)
        os.rmdir(tmp)
    elapsed = time.time() - start
    console = open(a.log, errors='replace').read() \
        if os.path.exists(a.log) else ''

    checks = re.findall(r'^(ok|not ok) (\S+)', console, re.M)
    res = re.search(r'^RESULT pass=(\d+) fail=(\d+)$', console, re.M)
    verdict = re.search(r'^(PASS|FAIL)$', console, re.M)
    if not res or not verdict or verdict.group(1) != 'PASS':
        problems.append('guest: %s' % (verdict.group(1) if verdict else
                                        'no verdict'))
    got = None
    if counters:
        got = '%d,%d,%d' % (counters['tag-read-of-data'],
                            counters['data-read-of-tags'],
                            counters['tagged-access-to-tag-storage'])
    if a.expect_violations and got != a.expect_violations:
        problems.append('violations R1,R2,R3 = %s, expected %s'
                        % (got, a.expect_violations))

    report = []
    reads = a.stop_reads or a.log_reads
    if reads:
        # what each CPU's thread does: its load PC, data page, tag bytes
        starts = {}
        for m in re.finditer(r'^SMP-STOP-START cpu=(\d+) pc=(0x[0-9a-f]+) '
                             r'page=(0x[0-9a-f]+) tags=(0x[0-9a-f]+)$',
                             console, re.M):
            starts[int(m.group(1))] = tuple(int(g, 16)
                                            for g in m.group(2, 3, 4))
        ends = {int(c): int(n) for c, n in
                re.findall(r'^SMP-STOP cpu=(\d+) pc=0x[0-9a-f]+ reads=(\d+)$',
                           console, re.M)}
        if sorted(starts) != list(range(a.smp)):
            problems.append('guest threads started on CPUs %s, expected '
                            '0..%d' % (sorted(starts), a.smp - 1))
        if ends != {c: reads for c in range(a.smp)}:
            problems.append('guest reads per CPU %s, expected %d each'
                            % (ends, reads))
        want = '0,%d,0' % (a.smp * reads)
        if got != want:
            problems.append('violations R1,R2,R3 = %s, expected %s'
                            % (got, want))

        # the culprit of each: the thread's own STG, in stop_thread()
        binary = os.path.join(os.path.dirname(os.path.abspath(a.initrd)),
                              'smp-stress')
        functions = Functions(binary)

        def wrong_culprit(cpu, kind, wcpu, wpc):
            if kind != 'tag-store' or wcpu != cpu:
                return 'culprit %s on cpu %s' % (kind, wcpu)
            if functions.at(wpc) != 'stop_thread':
                return 'culprit pc 0x%x not in stop_thread' % wpc
            return None

        def wrong(rule, cpu, pc, paddr, ts):
            """Why a reported violation is not one of the expected reads"""
            if rule != 'data-read-of-tags':
                return 'rule %s' % rule
            if cpu not in starts:
                return 'unknown cpu %s' % cpu
            load_pc, page, tags = starts[cpu]
            if pc != load_pc:
                return 'pc 0x%x, not the load at 0x%x' % (pc or 0, load_pc)
            if not tags <= ts < tags + 128:
                return 'tag-storage 0x%x outside 0x%x+128' % (ts, tags)
            if not page <= paddr < page + 4096:
                return 'pa 0x%x outside page 0x%x' % (paddr, page)
            return None

        lines = re.findall(r'mte-tag-storage: (R\d) [^:]*: pa (0x[0-9a-f]+) '
                           r'tag-storage (0x[0-9a-f]+) cpu (\d+) '
                           r'pc (0x[0-9a-f]+)[^;]*; last written by (\S+) '
                           r'cpu (\d+) pc (0x[0-9a-f]+)', stderr)
        bad_lines = [l for l in lines
                     if wrong(RULES[l[0]], int(l[3]), int(l[4], 16),
                              int(l[1], 16), int(l[2], 16)) or
                     wrong_culprit(int(l[3]), l[5], int(l[6]),
                                   int(l[7], 16))]
        if not lines:
            problems.append('no violation warning on stderr')
        if bad_lines:
            problems.append('%d of %d warning lines wrong, first: %s'
                            % (len(bad_lines), len(lines), bad_lines[0]))
        report.append('stderr: %d violation warning lines, each naming '
                      'its culprit' % len(lines))
    if a.stop_reads:
        per_cpu = {}
        unexpected = []
        for v in violations:
            cpu = v.get('cpu-index')
            per_cpu[cpu] = per_cpu.get(cpu, 0) + 1
            w = v.get('writer', {})
            why = wrong(v['rule'], cpu, v.get('pc'), v['paddr'],
                        v['tag-storage-addr']) or \
                wrong_culprit(cpu, w.get('kind'), w.get('cpu-index'),
                              w.get('pc', 0))
            if why:
                unexpected.append('cpu %s: %s' % (cpu, why))
        if len(violations) != a.smp * reads:
            problems.append('%d stops (violation events), expected %d'
                            % (len(violations), a.smp * reads))
        if per_cpu != {c: reads for c in range(a.smp)}:
            problems.append('stops per CPU %s, expected %d each'
                            % (dict(sorted(per_cpu.items())), reads))
        if unexpected:
            problems.append('%d unexpected stops, first: %s'
                            % (len(unexpected), unexpected[0]))
        if bad_pc_at_stop:
            problems.append('%d stops with the CPU elsewhere than the event '
                            'pc, first: cpu %s pc %s, event pc %s'
                            % ((len(bad_pc_at_stop),) + bad_pc_at_stop[0]))
        if len(lines) != len(violations):
            problems.append('%d warning lines for %d stops'
                            % (len(lines), len(violations)))
        report.append('stops: %d violation events (per CPU %s), %d STOP '
                      'events, %d cont' % (len(violations),
                                           dict(sorted(per_cpu.items())),
                                           stop_events, conts))
    for line in re.findall(r'^# (work: .*)$', console, re.M):
        report.append(line)
    for line in stderr.splitlines():
        if 'mte-tag-storage: R' not in line:
            report.append('qemu stderr: ' + line)
    report.append('guest checks: %d passed, %d failed; violations R1,R2,R3 '
                  '= %s; %.1f s' % (sum(1 for c in checks if c[0] == 'ok'),
                                    sum(1 for c in checks if c[0] != 'ok'),
                                    got if got else '-', elapsed))
    for status, name in checks:
        if status != 'ok':
            report.append('guest: %s %s' % (status, name))
    for p in problems:
        report.append('problem: ' + p)
    report.append('PASS' if not problems else 'FAIL')
    print('\n'.join(report))
    return 0 if not problems else 1


if __name__ == '__main__':
    sys.exit(main())

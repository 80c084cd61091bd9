#!/usr/bin/python3
"""Boot an arm64 kernel with MTE tag storage and the reuse checker; report.

Run by scripts/run-kernel.sh, which passes --qemu, --initrd and
--program (the initramfs's /reuse-workload, for user-space PCs); the
other options are the user's:

  KERNEL_IMAGE [--system-map FILE | --vmlinux FILE] [--out DIR] [--smp N]
  [-m SIZE] [--binding v1|v2|v3] [--check log|stop] [--firmware uefi]
  [--append "KERNEL ARGS"] [--runs suite,suite-stock,workloads]
  [--workload MODE] [--timeout S] [--boot-timeout S]

Each run is one boot of KERNEL_IMAGE (xz is unpacked first) with
-M virt,mte=on and the project's initramfs, always with nokaslr (so that
System.map's addresses are the running kernel's):

  suite        tag-storage=on and the checker (tag-storage-check=event for
               --check log, stop for stop): /init's MTE suite
  suite-stock  mte=on without tag storage: the suite's verdicts there are
               the baseline (a check failing on both is not the kernel's
               reuse at fault)
  workloads    tag storage and the checker: /reuse-workload
               (mts.reuse=SMP[,MODE]); its "WORKLOAD <name> <verdict> ..."
               and "VMDELTA <name> key=+N ..." lines where it prints them,
               else one workload judged by its RESULT line

The checker's MTE_TAG_STORAGE_VIOLATION events give the culprits (PCs,
link registers and backtraces resolved with the System.map or vmlinux,
user-space PCs with the workload's symbols); query-mte-tag-storage
snapshots (one a second, and at each SNAP line of the workload, which
waits for them with mts.snapack) give the owner map over time: blocks
that went from data to tags and back, and DIR/tag-storage.png
(scripts/tag-storage-picture.py).

Writes DIR/report.txt (also printed), DIR/report.json, DIR/tag-storage.png
(the workloads run's; the other runs' as tag-storage-RUN.png) and per run
RUN.console, RUN.log (QEMU's output), RUN.jsonl (the recording).
Exit 0: no violations and every workload and the suite pass; 1:
violations or failures; 2: cannot run (bad arguments, missing files, the
kernel does not boot, panics or prints nothing before /init): one line
on standard error."""
import argparse
import gzip
import json
import logging
import lzma
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_ROOT = os.environ.get('BUILD_ROOT', os.path.join(TOP, 'build'))
sys.path.insert(0, os.path.join(TOP, 'guest'))
# QEMU's python (qemu.machine, qemu.qmp) from the prepared tree: the build
# root's, else the repository's build/ (a build root of one's own, as in
# BUILD_ROOT=/elsewhere MTS_QEMU=..., need not hold a tree)
QEMU_PYTHON = [os.path.join(d, 'src', 'python') for d in
               dict.fromkeys([BUILD_ROOT, os.path.join(TOP, 'build')])]
sys.path[1:1] = [d for d in QEMU_PYTHON if os.path.isdir(d)]

RULES = ['tag-read-of-data', 'data-read-of-tags',
         'tagged-access-to-tag-storage', 'tag-read-of-unwritten']
SHORT = {r: 'R%d' % (i + 1) for i, r in enumerate(RULES)}
OWNERS = {'never-written': 0, 'tag': 1, 'data': 2, 'mixed': 3}
RUNS = ['suite', 'suite-stock', 'workloads']
# /init and /reuse-workload start with this line: the kernel reached /init
INIT_MARK = b'MTS guest:'
UEFI_FD = '/usr/share/qemu-efi-aarch64/QEMU_EFI.fd'
# what a QMP exchange raises when QEMU goes away (set once qemu.qmp is in)
QMP_ERRORS = (OSError, EOFError)


class CannotRun(Exception):
    """Exit 2 with this one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CannotRun(message)


def hexs(v):
    return None if v is None else '0x%x' % v


def is_gzip(path):
    with open(path, 'rb') as f:
        return f.read(2) == b'\x1f\x8b'


def check_image(path, out):
    """The image QEMU is to boot: @path, or its unpacked copy in @out."""
    if not os.path.isfile(path):
        raise CannotRun('no kernel image %s' % path)
    with open(path, 'rb') as f:
        head = f.read(64)
    if head.startswith(b'\xfd7zXZ\x00'):
        # QEMU unpacks gzip images itself, not xz
        unpacked = os.path.join(out, 'Image')
        try:
            with lzma.open(path) as src, open(unpacked + '.tmp', 'wb') as d:
                shutil.copyfileobj(src, d)
        except (lzma.LZMAError, OSError) as e:
            raise CannotRun('%s: cannot unpack: %s' % (path, e))
        os.replace(unpacked + '.tmp', unpacked)
        with open(unpacked, 'rb') as f:
            head = f.read(64)
        path = unpacked
    if head[56:60] == b'ARM\x64' or head.startswith(b'\x1f\x8b') or \
            (head[:2] == b'MZ' and head[4:8] == b'zimg'):
        return path
    if head.startswith(b'\x7fELF'):
        raise CannotRun('%s is an ELF file: boot arch/arm64/boot/Image and '
                        'give the vmlinux with --vmlinux' % path)
    raise CannotRun('%s is not an arm64 kernel Image (no ARM\\x64 magic at '
                    'offset 56; not gzip, xz or EFI zboot)' % path)


def parse_args(argv):
    ap = Parser(prog='run-kernel.sh', description='Boot an arm64 kernel '
                'with MTE tag storage and the reuse checker; report.')
    ap.add_argument('image', metavar='KERNEL_IMAGE')
    syms = ap.add_mutually_exclusive_group()
    syms.add_argument('--system-map', metavar='FILE')
    syms.add_argument('--vmlinux', metavar='FILE')
    ap.add_argument('--out', metavar='DIR',
                    default=os.path.join(BUILD_ROOT, 'run-kernel'))
    ap.add_argument('--smp', default='2')
    ap.add_argument('-m', dest='mem', metavar='SIZE', default='2G')
    ap.add_argument('--binding', choices=['v1', 'v2', 'v3'], default='v3')
    ap.add_argument('--check', choices=['log', 'stop'], default='log')
    ap.add_argument('--firmware', choices=['uefi'])
    ap.add_argument('--append', default='', metavar='"KERNEL ARGS"')
    ap.add_argument('--runs', default=','.join(RUNS),
                    help='comma-separated, of %s' % ', '.join(RUNS))
    ap.add_argument('--workload', metavar='MODE',
                    help='reuse-workload mode (paths, where it has it; '
                    'plain; pair; merge)')
    ap.add_argument('--timeout', type=int, default=900,
                    help='seconds for one run')
    ap.add_argument('--boot-timeout', type=int, default=120,
                    help='seconds until the kernel\'s first console output')
    ap.add_argument('--init-timeout', type=int, default=600,
                    help='seconds until /init starts')
    # from run-kernel.sh
    ap.add_argument('--qemu', required=True, help=argparse.SUPPRESS)
    ap.add_argument('--initrd', required=True, help=argparse.SUPPRESS)
    ap.add_argument('--program', help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if not re.fullmatch(r'[1-9][0-9]{0,2}', a.smp):
        raise CannotRun('--smp %s: a number of CPUs from 1 to 512 is needed'
                        % a.smp)
    a.smp = int(a.smp)
    if a.smp > 512:
        raise CannotRun('--smp %d: a number of CPUs from 1 to 512 is needed'
                        % a.smp)
    m = re.fullmatch(r'([1-9][0-9]*)([MG]?)', a.mem)
    mib = int(m.group(1)) * (1024 if m.group(2) == 'G' else 1) if m else 0
    if not m or mib < 256 or mib % 2:
        raise CannotRun('-m %s: a RAM size like 2G or 1984M (at least 256M) '
                        'is needed' % a.mem)
    a.mem = '%dM' % mib
    a.runs = [r for r in a.runs.split(',') if r]
    bad = [r for r in a.runs if r not in RUNS]
    if bad or not a.runs:
        raise CannotRun('--runs %s: choose from %s'
                        % (','.join(bad), ','.join(RUNS)))
    for what, path in (('--system-map', a.system_map),
                       ('--vmlinux', a.vmlinux), ('QEMU', a.qemu),
                       ('initramfs', a.initrd)):
        if path and not os.path.isfile(path):
            raise CannotRun('%s: no file %s' % (what, path))
    if a.firmware == 'uefi' and not os.path.isfile(UEFI_FD):
        raise CannotRun('--firmware uefi: no %s (install qemu-efi-aarch64)'
                        % UEFI_FD)
    if a.workload is None:
        # the paths mode, where this tree's workload has it
        src = os.path.join(TOP, 'guest', 'reuse-workload.c')
        a.workload = 'paths' if os.path.exists(src) and re.search(
            r'[",]paths"', open(src, errors='replace').read()) else 'plain'
    if not re.fullmatch(r'[a-z]+', a.workload):
        raise CannotRun('--workload %s: a mode name is needed' % a.workload)
    return a


class Console(threading.Thread):
    """The guest's serial console: logged to a file, SNAP lines queued."""

    def __init__(self, sock, log):
        super().__init__(daemon=True)
        self.sock = sock
        self.log = open(log, 'wb')
        self.snaps = queue.Queue()
        self.text = bytearray()
        self.first = None       # time of the first byte

    def run(self):
        pending = b''
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b''
            if not data:
                break
            if self.first is None:
                self.first = time.time()
            self.log.write(data)
            self.log.flush()
            self.text += data
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


def snapshot(vm):
    """query-mte-tag-storage with every block run (all pages of it)"""
    info = vm.qmp('query-mte-tag-storage')['return']
    for r in info['regions']:
        base, size = r['carveout-base'], r['carveout-size']
        r['blocks'] = list(r.get('blocks', []))
        nxt = r.pop('blocks-next', None)
        while nxt is not None:
            more = vm.qmp('query-mte-tag-storage', base=nxt,
                          size=base + size - nxt)['return']
            rr = [x for x in more['regions']
                  if x['carveout-base'] == base][0]
            r['blocks'] += rr.get('blocks', [])
            nxt = rr.get('blocks-next')
    return info


def owner_map(info):
    """bytes, one owner code (OWNERS) per block of all carveouts"""
    bs = info['block-size']
    out = bytearray()
    for r in info['regions']:
        own = bytearray(r['carveout-size'] // bs)
        for b in r.get('blocks', []):
            first = (b['base'] - r['carveout-base']) // bs
            code = OWNERS.get(b['owner'], 0)
            for i in range(first, first + b['size'] // bs):
                own[i] = code
        out += own
    return out


def peak_rss_mib(pid):
    try:
        with open('/proc/%d/status' % pid) as st:
            for line in st:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) // 1024
    except (OSError, TypeError):
        pass
    return 0


def take_snapshot(vm, res, record, start, label):
    info = snapshot(vm)
    t = time.time() - start
    res['snapshots'].append((t, label, owner_map(info)))
    record.write(json.dumps({'t': t, 'label': label, 'info': info}) + '\n')
    return info


def violation_events(vm):
    return [e for e in vm.get_qmp_events()
            if e.get('event') == 'MTE_TAG_STORAGE_VIOLATION']


def watch(a, vm, con, res, record, start, checker, poll):
    """Until the guest powers off: snapshots (each second and at each SNAP
    line, answered after it), violation events, debug stops let go on,
    and the boot's milestones (CannotRun when one is missed).  Returns
    the last run state."""
    run = res['name']
    next_snap = start
    while True:
        now = time.time()
        label = None
        try:
            label = con.snaps.get_nowait()
        except queue.Empty:
            pass
        if checker and (label or now >= next_snap):
            take_snapshot(vm, res, record, start, label)
            next_snap = now + 1.0
        if label:
            con.answer()
        res['events'] += violation_events(vm)
        st = vm.qmp('query-status')['return']['status']
        if st == 'debug':
            res['stops'] += 1
            vm.qmp('cont')
            continue
        if st in ('shutdown', 'guest-panicked'):
            return st
        init = INIT_MARK in con.text
        if init and not res['init']:
            res['init'] = time.time() - start
        if not init and re.search(rb'Kernel panic', bytes(con.text)):
            return 'panic'
        if not init and b'UEFI Interactive Shell' in con.text:
            raise CannotRun('UEFI did not start the kernel, it started its '
                            'shell (%s run; console: %s)' % (
                                run, os.path.join(a.out, run + '.console')))
        el = now - start
        if con.first is None and el > a.boot_timeout:
            raise CannotRun('the kernel printed nothing on the serial '
                            'console (ttyAMA0) in %d s (%s run)'
                            % (a.boot_timeout, run))
        if not init and el > a.init_timeout:
            raise CannotRun('the kernel did not start /init in %d s (%s run; '
                            'console: %s)' % (a.init_timeout, run, os.path.join(
                                a.out, run + '.console')))
        if el > a.timeout:
            res['problem'] = 'the guest did not power off in %d s' % a.timeout
            return st
        time.sleep(poll)


def finish(vm, res, record, start, checker, status):
    """The run's time and peak RSS, and the owners and counters at the end"""
    res['seconds'] = round(time.time() - start, 1)
    # the run's own peak, before the final queries add to it
    res['peak_rss_mib'] = peak_rss_mib(vm.get_pid())
    res['status'] = status
    if checker:
        res['final'] = take_snapshot(vm, res, record, start, 'power-off')
    res['events'] += violation_events(vm)


def boot(a, run, image, qemu_machine):
    """One boot; a dict of what happened.  Raises CannotRun when the
    kernel never gets to /init."""
    checker = run != 'suite-stock'
    machine = 'virt,mte=on'
    if checker:
        machine += ',tag-storage=on,tag-storage-binding=%s,' \
            'tag-storage-check=%s' % (a.binding,
                                      'event' if a.check == 'log' else 'stop')
    if a.firmware == 'uefi':
        machine += ',acpi=off'      # reuse needs the device tree
    append = 'console=ttyAMA0 panic=-1 nokaslr'
    if run == 'workloads':
        mode = '' if a.workload == 'plain' else ',' + a.workload
        append += ' mts.reuse=%d%s mts.snapack' % (a.smp, mode)
    append += ' ' + a.append
    args = ['-M', machine, '-cpu', 'max,pauth-impdef=on', '-m', a.mem,
            '-smp', str(a.smp), '-nodefaults', '-no-shutdown', '-no-reboot',
            '-kernel', image, '-initrd', a.initrd, '-append', append.strip()]
    if a.firmware == 'uefi':
        args += ['-bios', UEFI_FD]
    tmp = tempfile.mkdtemp(prefix='mts-run-kernel-')
    for f in ('.log', '.console', '.jsonl'):
        if os.path.exists(os.path.join(a.out, run + f)):
            os.unlink(os.path.join(a.out, run + f))
    vm = qemu_machine(a.qemu, args=args, name=run, log_dir=a.out,
                      base_temp_dir=tmp)
    vm.set_console()
    con = None
    res = {'name': run, 'checker': checker, 'machine': machine,
           'append': append.strip(), 'snapshots': [], 'events': [],
           'stops': 0, 'problem': None, 'init': False}
    record = open(os.path.join(a.out, run + '.jsonl'), 'w') if checker \
        else None
    start = time.time()
    try:
        try:
            vm.launch()
        except Exception as e:  # VMLaunchFailure: QEMU refused
            out = (getattr(e, 'output', None) or '').strip().splitlines()
            err = [ln for ln in out if 'qemu-system' in ln] or out
            raise CannotRun('QEMU did not start (%s run): %s' % (
                run, err[-1] if err else e))
        con = Console(vm.console_socket, os.path.join(a.out,
                                                      run + '.console'))
        con.start()
        stop_poll = 0.02 if checker and a.check == 'stop' else 0.1
        try:
            last_status = watch(a, vm, con, res, record, start, checker,
                                stop_poll)
        except QMP_ERRORS as e:
            # QEMU went away: an error of its own, or a crash
            last_status = 'QEMU exited (%s)' % (str(e) or type(e).__name__)
            res['problem'] = last_status + '; its output: ' + \
                os.path.join(a.out, run + '.log')
            res['seconds'] = round(time.time() - start, 1)
            res['peak_rss_mib'] = 0
            res['status'] = last_status
            if not res['init']:
                raise CannotRun('%s before /init (%s run; %s)' % (
                    last_status, run, os.path.join(a.out, run + '.log')))
        else:
            finish(vm, res, record, start, checker, last_status)
    finally:
        if record:
            for e in res['events']:
                ts = e['timestamp']
                record.write(json.dumps({
                    't': ts['seconds'] + ts['microseconds'] / 1e6 - start,
                    'event': e['data']}) + '\n')
            record.close()
        try:
            vm.shutdown(timeout=10)
        except Exception:   # AbnormalShutdown: it was killed instead
            pass
        shutil.rmtree(tmp, ignore_errors=True)
    res['start'] = start
    con.join(timeout=5)
    res['console'] = bytes(con.text).decode('utf-8', 'replace')
    res.setdefault('status', None)
    if not res['init'] and INIT_MARK in con.text:
        res['init'] = res.get('seconds', 0)     # at the last poll at most
    if not res['init']:
        panic = re.search(r'Kernel panic[^\r\n]*', res['console'])
        if panic:
            raise CannotRun('the kernel panicked before /init (%s run): %s'
                            % (run, panic.group(0).strip()))
        raise CannotRun('the kernel stopped (%s) before /init (%s run; '
                        'console: %s)' % (res['status'], run, os.path.join(
                            a.out, run + '.console')))
    return res


def checks(console):
    """{name: 'ok'|'not ok'} of a console's TAP-like lines"""
    return {n: s for s, n in
            re.findall(r'^(ok|not ok) (\S+)\r?$', console, re.M)}


def workloads_of(res):
    """[{name, verdict, text}] and {workload: {key: delta}} of a run"""
    con = res['console']
    wl = [{'name': n, 'verdict': v, 'text': t.strip()} for n, v, t in
          re.findall(r'^WORKLOAD (\S+) (pass|fail|not-covered)(.*?)\r?$',
                     con, re.M)]
    deltas = {}
    for n, rest in re.findall(r'^VMDELTA (\S+)(.*?)\r?$', con, re.M):
        deltas[n] = {k: int(v) for k, v in
                     re.findall(r'(\S+)=([+-]?\d+)', rest)}
    res_line = re.search(r'^RESULT pass=(\d+) fail=(\d+)', con, re.M)
    if not wl:
        # the workload's plain modes: one verdict, from its RESULT line
        bad = [n for n, s in checks(con).items() if s != 'ok']
        ok = res_line is not None and not bad and not res['problem']
        wl = [{'name': 'reuse-workload' + ('' if res['mode'] == 'plain'
                                           else '-' + res['mode']),
               'verdict': 'pass' if ok else 'fail',
               'text': 'RESULT pass=%s fail=%s%s' % (
                   res_line.group(1), res_line.group(2),
                   ' (%s)' % ' '.join(bad) if bad else '')
               if res_line else 'no RESULT line'}]
    elif res_line is None:
        wl.append({'name': 'reuse-workload', 'verdict': 'fail',
                   'text': 'no RESULT line: the workload did not finish'})
    if res['problem']:
        wl.append({'name': 'run', 'verdict': 'fail', 'text': res['problem']})
    return wl, deltas


def vmstat_delta(console):
    return {n: int(c) - int(b) for n, b, c in
            re.findall(r'^VMSTAT (\S+) (-?\d+) (\d+)\r?$', console, re.M)
            if int(b) >= 0 and int(c) != int(b)}


def reuse_of(res):
    """Blocks that held data and later tags, and tags then data"""
    d2t = t2d = 0
    snaps = [s[2] for s in res['snapshots']]
    if not snaps:
        return {'data_to_tags': 0, 'tags_to_data': 0, 'snapshots': 0}
    n = len(snaps[0])
    was_data = bytearray(n)
    was_tag = bytearray(n)
    got_d2t = bytearray(n)
    got_t2d = bytearray(n)
    for own in snaps:
        for i in range(n):
            o = own[i]
            if o in (1, 3):
                if was_data[i] and not got_d2t[i]:
                    got_d2t[i] = 1
                    d2t += 1
                if o == 1:
                    was_tag[i] = 1
            if o == 2:
                if was_tag[i] and not got_t2d[i]:
                    got_t2d[i] = 1
                    t2d += 1
                was_data[i] = 1
    return {'data_to_tags': d2t, 'tags_to_data': t2d,
            'snapshots': len(snaps)}


def culprits_of(results, syms):
    """One entry per rule and accessor PC, over all runs"""
    groups = {}
    for res in results:
        for e in res['events']:
            d = e['data']
            ts = e['timestamp']
            t = ts['seconds'] + ts['microseconds'] / 1e6 - res['start']
            key = (d['rule'], d.get('pc'), d['accessor'])
            g = groups.get(key)
            if g is None:
                bt = d.get('backtrace') or []
                g = groups[key] = {
                    'rule': SHORT.get(d['rule'], d['rule']),
                    'rule_name': d['rule'], 'count': 0,
                    'first_seen_s': round(t, 2), 'run': res['name'],
                    'first_paddr': hexs(d.get('paddr')),
                    'accessor': {
                        'kind': d['accessor'], 'pc': hexs(d.get('pc')),
                        'symbol': syms.resolve(d.get('pc')),
                        'cpu': d.get('cpu-index'), 'lr': hexs(d.get('lr')),
                        'lr_symbol': syms.resolve(d.get('lr')),
                        'backtrace': [syms.resolve(x) or hexs(x)
                                      for x in bt]},
                    'writer': None}
                w = d.get('writer')
                if w:
                    g['writer'] = {
                        'kind': w['kind'], 'pc': hexs(w.get('pc')),
                        'symbol': syms.resolve(w.get('pc')),
                        'cpu': w.get('cpu-index'), 'lr': hexs(w.get('lr')),
                        'lr_symbol': syms.resolve(w.get('lr')),
                        'seq': w.get('seq')}
            g['count'] += 1
    # per rule: the kernel's first (user-space accesses to the same pages
    # are usually its consequences), then by count and time
    return sorted(groups.values(), key=lambda g: (
        g['rule'], not syms.is_kernel(int(g['accessor']['pc'] or '0', 16)),
        -g['count'], g['first_seen_s']))


def suite_verdict(results):
    """The MTE suite against its baseline on stock mte=on"""
    by = {r['name']: r for r in results}
    if 'suite' not in by:
        return None
    on = {n: s for n, s in checks(by['suite']['console']).items()
          # the tag storage checks, which only some configurations have
          if not n.startswith(('probe-', 'carveout-'))}
    res_line = re.search(r'^RESULT pass=\d+ fail=\d+', by['suite']['console'],
                         re.M)
    failing = sorted(n for n, s in on.items() if s != 'ok')
    if 'suite-stock' in by:
        stock = {n: s for n, s in checks(by['suite-stock']['console']).items()
                 if not n.startswith(('probe-', 'carveout-'))}
        diff = sorted(n for n in set(on) | set(stock)
                      if on.get(n) != stock.get(n))
        ok = not diff and res_line is not None
        text = '%d checks; %s; failing on both: %s' % (
            len(on), 'differ from mte=on without tag storage: ' +
            ' '.join('%s (%s here, %s there)' % (n, on.get(n, 'absent'),
                                                 stock.get(n, 'absent'))
                     for n in diff) if diff else
            'same verdicts as on mte=on without tag storage',
            ' '.join(failing) or 'none')
    else:
        ok = not failing and res_line is not None
        text = '%d checks, failing: %s (no suite-stock baseline run)' % (
            len(on), ' '.join(failing) or 'none')
    if by['suite']['problem']:
        ok, text = False, by['suite']['problem'] + '; ' + text
    return {'name': 'mte-suite', 'verdict': 'pass' if ok else 'fail',
            'text': text}


def violations_of(res):
    total = dict.fromkeys(RULES, 0)
    for r in res.get('final', {}).get('regions', []):
        for k in RULES:
            total[k] += r['violations'].get(k, 0)
    return total


def text_report(rep):
    L = []
    L.append('run-kernel report: %s' % rep['kernel'])
    L.append('  symbols: %s; booted with nokaslr (KASLR off, so the map\'s '
             'addresses are the running kernel\'s)' % (rep['symbols'] or
                                                       'none given'))
    L.append('  -M virt,mte=on,tag-storage=on,tag-storage-binding=%s '
             '-m %s -smp %d, checker %s%s' % (
                 rep['config']['binding'], rep['config']['mem'],
                 rep['config']['smp'], rep['config']['check'],
                 ', UEFI (acpi=off)' if rep['config']['firmware'] else ''))
    L.append('')
    L.append('runs:')
    for r in rep['runs']:
        L.append('  %-12s %6.1f s  peak RSS %5d MiB  /init after %.1f s%s'
                 % (r['name'], r['seconds'], r['peak_rss_mib'],
                    r['init_s'], '  debug stops %d' % r['stops']
                    if r['stops'] else ''))
    L.append('')
    v = rep['violations']
    L.append('violations: ' + ', '.join('%s %s %d' % (SHORT[k], k, v[k])
                                        for k in RULES))
    if rep['culprits']:
        L.append('culprits (events; QEMU reports at most 20 a second, the '
                 'counts above are all):')
    for c in rep['culprits']:
        ac = c['accessor']
        L.append('  %s x%d, first at %.1f s (%s run), pa %s' % (
            c['rule'], c['count'], c['first_seen_s'], c['run'],
            c['first_paddr']))
        if ac['kind'] == 'cpu':
            L.append('    accessor cpu %s pc %s %s' % (
                ac['cpu'], ac['pc'], ac['symbol'] or '?'))
            if ac['lr'] and ac['lr'] != '0x0':
                L.append('      lr %s %s' % (ac['lr'], ac['lr_symbol'] or '?'))
            for i, s in enumerate(ac['backtrace']):
                L.append('      #%d %s' % (i, s))
        else:
            L.append('    accessor %s' % ac['kind'])
        w = c['writer']
        if w:
            if w['pc']:
                L.append('    last written by %s cpu %s pc %s %s%s' % (
                    w['kind'], w['cpu'], w['pc'], w['symbol'] or '?',
                    ' (lr %s %s)' % (w['lr'], w['lr_symbol'] or '?')
                    if w['lr'] else ''))
            else:
                L.append('    last written by %s' % w['kind'])
    L.append('')
    L.append('workloads:')
    for w in rep['workloads']:
        L.append('  %-28s %-11s %s' % (w['name'], w['verdict'],
                                        w.get('text', '')))
    ru = rep['reuse']
    if ru:
        L.append('')
        L.append('reuse (owner map, %d snapshots): %d blocks went from data '
                 'to tags, %d from tags to data' % (
                     ru['snapshots'], ru['data_to_tags'],
                     ru['tags_to_data']))
        keys = [k for k in ('cma_alloc_success', 'pgmigrate_success',
                            'tag_storage_reserve_success',
                            'tag_storage_page_migrated',
                            'tag_storage_late_reserve',
                            'tag_storage_reserve_fail',
                            'tag_storage_missing') if k in ru['vmstat']]
        if keys:
            L.append('  vmstat deltas: ' + ', '.join(
                '%s %+d' % (k, ru['vmstat'][k]) for k in keys))
    L.append('')
    L.append('verdict: %s' % rep['verdict'])
    return '\n'.join(L) + '\n'


def main(argv):
    logging.getLogger('qemu').addHandler(logging.NullHandler())
    logging.getLogger('qemu').propagate = False
    a = parse_args(argv)
    try:
        from qemu.machine import QEMUMachine
    except ImportError as e:
        raise CannotRun('no qemu.machine in %s (run make prepare): %s'
                        % (' or '.join(QEMU_PYTHON), e))
    from guestsyms import KernelSymbols
    from qemu.qmp import QMPError
    global QMP_ERRORS
    QMP_ERRORS = (QMPError, OSError, EOFError, ValueError)
    try:
        os.makedirs(a.out, exist_ok=True)
    except OSError as e:
        raise CannotRun('--out %s: %s' % (a.out, e.strerror))
    image = check_image(a.image, a.out)
    with (gzip.open if is_gzip(image) else open)(image, 'rb') as f:
        if a.firmware == 'uefi' and f.read(2) != b'MZ':
            raise CannotRun('--firmware uefi: %s has no EFI stub (no PE '
                            'header; CONFIG_EFI_STUB=y makes one)' % a.image)
    try:
        syms = KernelSymbols(system_map=a.system_map, vmlinux=a.vmlinux,
                             program=a.program)
    except (OSError, ValueError, EOFError, lzma.LZMAError,
            subprocess.CalledProcessError) as e:
        raise CannotRun('cannot read symbols from %s: %s'
                        % (a.system_map or a.vmlinux, e))
    results = []
    for run in a.runs:
        print('==> %s run: booting %s' % (run, a.image), flush=True)
        res = boot(a, run, image, QEMUMachine)
        res['mode'] = a.workload
        results.append(res)
        print('    %.1f s, peak RSS %d MiB' % (res['seconds'],
                                               res['peak_rss_mib']),
              flush=True)

    violations = dict.fromkeys(RULES, 0)
    for res in results:
        for k, n in violations_of(res).items():
            violations[k] += n
    workloads, reuse = [], None
    sv = suite_verdict(results)
    if sv:
        workloads.append(sv)
    for res in results:
        if res['name'] == 'workloads':
            wl, deltas = workloads_of(res)
            workloads += wl
            reuse = reuse_of(res)
            reuse['vmstat'] = vmstat_delta(res['console'])
            reuse['vmdelta'] = deltas
    culprits = culprits_of(results, syms)
    failed = sum(violations.values()) or \
        any(w['verdict'] == 'fail' for w in workloads) or \
        any(r['stops'] for r in results)
    rep = {
        'kernel': os.path.abspath(a.image),
        'symbols': os.path.abspath(a.system_map or a.vmlinux)
        if (a.system_map or a.vmlinux) else None,
        'kaslr': 'off (booted with nokaslr)',
        'config': {'smp': a.smp, 'mem': a.mem, 'binding': a.binding,
                   'check': a.check, 'firmware': a.firmware,
                   'append': a.append, 'workload': a.workload},
        'violations': violations,
        'culprits': culprits,
        'workloads': [{k: w[k] for k in ('name', 'verdict', 'text')}
                      for w in workloads],
        'reuse': reuse,
        'runs': [{'name': r['name'], 'seconds': r['seconds'],
                  'peak_rss_mib': r['peak_rss_mib'],
                  'init_s': round(r['init'], 1),
                  'machine': r['machine'], 'append': r['append'],
                  'violations': violations_of(r) if r['checker'] else None,
                  'events': len(r['events']), 'stops': r['stops'],
                  'console': os.path.join(a.out, r['name'] + '.console')}
                 for r in results],
        'verdict': 'FAIL' if failed else 'PASS',
    }
    # the picture: the workloads run's, or the first run with the checker
    pictured = [r['name'] for r in results if r['checker']]
    pictured.sort(key=lambda n: n != 'workloads')
    rep['pictures'] = {}
    for i, name in enumerate(pictured):
        png = os.path.join(a.out, 'tag-storage.png' if i == 0
                           else 'tag-storage-%s.png' % name)
        p = subprocess.run(['/usr/bin/python3', os.path.join(
            TOP, 'scripts', 'tag-storage-picture.py'),
            os.path.join(a.out, name + '.jsonl'), png, '--reuse',
            '--title', '%s: %s run' % (os.path.basename(a.image), name)],
            capture_output=True, text=True)
        rep['pictures'][name] = png if p.returncode == 0 else \
            'not drawn: ' + (p.stderr.strip() or p.stdout.strip())
    with open(os.path.join(a.out, 'report.json'), 'w') as f:
        json.dump(rep, f, indent=1)
        f.write('\n')
    txt = text_report(rep)
    with open(os.path.join(a.out, 'report.txt'), 'w') as f:
        f.write(txt)
    print(txt, end='')
    print('report: %s, %s; picture: %s' % (
        os.path.join(a.out, 'report.txt'), os.path.join(a.out, 'report.json'),
        rep['pictures'].get(pictured[0], 'none') if pictured else 'none'))
    return 1 if failed else 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except CannotRun as e:
        print('run-kernel: error: %s' % e, file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print('run-kernel: interrupted', file=sys.stderr)
        sys.exit(2)

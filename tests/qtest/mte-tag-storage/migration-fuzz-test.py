#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Damaged migration streams into the reuse checker's state.

A source with tag-storage-check=log runs the guest program's FLAG_PERSIST
scenario (1 MiB of tags: several owner chunks), stops and migrates to a
file.  The "mte-tag-storage/check" subsection is found by its name and its
fields by the stream's own JSON description (vmdesc), so a change of the
layout moves the cases with it.  Each case loads a cut or mutated copy
into a fresh destination, which must, within CASE_TIMEOUT seconds, either
fail with a message on stderr and a non-zero exit, or complete the load
and answer QMP; never hang, die of a signal, or print a sanitizer error.
One TAP line per group; a case's time runs from migrate-incoming to
QEMU's exit.

Seeds: mutation case i of group g uses random.Random(SEEDS[g] + i), so
every run builds the same streams from the same source stream.

Environment: QTEST_QEMU_BINARY, MTS_GUEST_ELF; MTS_FUZZ_MAX_HANGS (default
4, 0 = no limit): after that many hangs a group runs no more cases, since
each costs CASE_TIMEOUT seconds and the group has failed anyway."""

import concurrent.futures
import json
import logging
import os
import random
import re
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
# the tree's python/qemu: build/src/python seen from build/src/tests/..., or
# from this repo's tests/
for d in (os.path.join(HERE, '../../../python'),
          os.path.join(HERE, '../../../build/src/python')):
    if os.path.isdir(os.path.join(d, 'qemu/machine')):
        sys.path.insert(0, d)
        break
from qemu.machine import QEMUMachine  # noqa: E402

RAM = 0x40000000
RAM_SIZE = 512 << 20
CARVEOUT = RAM + RAM_SIZE
MAILBOX = 0x40400000
MAGIC = 0x4d54532d54450000
FLAG_TAG_STORAGE, FLAG_PERSIST = 1, 64
MACHINE = 'virt,mte=on,tag-storage=on,tag-storage-check=log'
SUBSECTION = b'mte-tag-storage/check'
END = 0xffffffffffffffff
CASE_TIMEOUT = 10
SEEDS = {'flips': 1000, 'words': 2000, 'chunks': 3000}
COUNTS = {'flips': 100, 'words': 120, 'chunks': 80}
SANITIZER = re.compile(r'ERROR: (Address|Leak|Thread)Sanitizer|'
                       r'runtime error:|AddressSanitizer:DEADLYSIGNAL')
results = []


def tap(ok, name, diag=''):
    results.append(ok)
    print('%s %d - %s' % ('ok' if ok else 'not ok', len(results), name))
    for line in diag.splitlines():
        print('# ' + line)
    sys.stdout.flush()


def qemu_args(extra):
    args = ['-accel', 'tcg', '-M', MACHINE, '-cpu', 'max',
            '-m', '%dM' % (RAM_SIZE >> 20), '-nic', 'none',
            '-kernel', os.environ['MTS_GUEST_ELF']]
    # the mailbox, as guest_go() in mte-tag-storage-test.c writes it
    for i, v in enumerate((MAGIC | FLAG_TAG_STORAGE | FLAG_PERSIST, RAM,
                           RAM_SIZE, CARVEOUT)):
        args += ['-device', 'loader,addr=%#x,data=%#x,data-len=8'
                 % (MAILBOX + 8 * i, v)]
    return args + extra


def make_source_stream(tmp):
    """Run the source to stage 20 and migrate it to a file"""
    serial = os.path.join(tmp, 'serial.log')
    path = os.path.join(tmp, 'source.mig')
    vm = QEMUMachine(os.environ['QTEST_QEMU_BINARY'],
                     qemu_args(['-serial', 'file:' + serial]),
                     name='source', base_temp_dir=tmp)
    vm.launch()
    try:
        deadline = time.monotonic() + 120
        while 'STAGE 20\n' not in open(serial).read():
            if time.monotonic() > deadline:
                raise Exception('the guest never reached stage 20: '
                                + open(serial).read())
            time.sleep(0.05)
        vm.cmd('stop')
        vm.cmd('migrate', uri='file:' + path)
        while True:
            st = vm.cmd('query-migrate').get('status')
            if st == 'completed':
                break
            if st == 'failed':
                raise Exception('source migration failed')
            time.sleep(0.02)
    finally:
        vm.shutdown()
    return open(path, 'rb').read()


def be64(data, pos):
    return struct.unpack_from('>Q', data, pos)[0]


def vmdesc(data):
    """The JSON after QEMU_VM_EOF, found as analyze-migration.py does"""
    pos = data.find(b'{', data.rfind(b'\0'))
    if pos < 5 or data[pos - 5] != 0x06:
        raise Exception('no vmdesc at the end of the stream')
    n = struct.unpack_from('>I', data, pos - 4)[0]
    return json.loads(data[pos:pos + n])


def find_vmsd(node, name):
    if isinstance(node, dict):
        if node.get('vmsd_name') == name:
            return node
        node = list(node.values())
    if isinstance(node, list):
        for v in node:
            found = find_vmsd(v, name)
            if found:
                return found
    return None


def parse(data):
    """Where everything of the checker's subsection is in @data"""
    hdr = b'\x05' + bytes([len(SUBSECTION)]) + SUBSECTION
    sub = data.find(hdr)
    if sub < 0:
        raise Exception('no %s subsection in the stream' % SUBSECTION)
    desc = find_vmsd(vmdesc(data), SUBSECTION.decode())
    if not desc:
        raise Exception('no %s in the vmdesc' % SUBSECTION)
    L = {'sub': sub}
    pos = sub + len(hdr) + 4
    # field boundaries, and (position, width) of every word in them
    bounds = [sub, sub + 1, sub + 2, sub + len(hdr), pos]
    words = [(sub + 1, 1), (sub + len(hdr), 4)]
    for f in desc['fields']:
        n = f.get('array_len', 1)
        for _ in range(n):
            if f['name'] != 'owners':
                words.append((pos, f['size']))
                bounds += [pos, pos + f['size']]
            pos += f['size']
        if f['name'] == 'owners':
            L['owners'] = (pos - f['size'], f['size'])
    o, total = L['owners']
    size = be64(data, o)
    L['size'] = size
    # chunk length: the one that parses as increasing offsets ending at END
    for clen in range(16, total, 8):
        if (total - 16) % (8 + clen):
            continue
        offs = [be64(data, p) for p in range(o + 8, o + total - 8,
                                             8 + clen)]
        if (be64(data, o + total - 8) == END and offs and
                all(x % 4096 == 0 and x < size for x in offs) and
                offs == sorted(set(offs))):
            break
    else:
        raise Exception('cannot parse the owner chunks')
    L['clen'] = clen
    L['chunks'] = [(o + 8 + i * (8 + clen), x) for i, x in enumerate(offs)]
    words += [(o, 8), (o + total - 8, 8)] + [(p, 8) for p, _ in L['chunks']]
    bounds += [o, o + 4, o + 8]
    for p, _ in L['chunks']:
        bounds += [p + 4, p + 8]
        bounds += [p + 8 + b for b in range(4096, clen, 4096)]
        bounds += [p + 8 + clen]
    end = o + total
    bounds += [end - 4, end]
    L['end'] = end
    # the parent section's footer: QEMU_VM_SECTION_FOOTER, be32 section id
    sec_end = end + 5 if data[end] == 0x7e else end
    if sec_end > end:
        words.append((end + 1, 4))
        bounds += [end + 1, end + 3, sec_end]
    L['sec_end'] = sec_end
    L['words'] = words
    L['bounds'] = bounds
    return L


def cut_cases(data, L):
    """Streams that end at every KiB and field boundary: their tails"""
    sub = L['sub']
    cuts = set(range(sub, L['sec_end'], 1024)) | set(L['bounds'])
    return [('cut at +%d' % (c - sub), data[sub:c]) for c in sorted(cuts)]


def flip_case(data, L, rnd):
    b = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        p = rnd.randrange(L['sub'], L['sec_end'])
        b[p] ^= rnd.choice((1 << rnd.randrange(8), rnd.randrange(1, 256)))
    return 'flip bytes', bytes(b)


def word_case(data, L, rnd):
    pos, width = rnd.choice(L['words'])
    size, offs = L['size'], [x for _, x in L['chunks']]
    top = (1 << (8 * width)) - 1
    choices = [0, 1, top, top - 1, 1 << (8 * width - 1),
               rnd.randrange(top + 1)]
    if width == 8:
        choices += [size, size - 1, size + 4096, size - 4096, 4095, 4096,
                    rnd.randrange(size // 4096) * 4096, rnd.choice(offs),
                    rnd.choice(offs) + 1]
    v = rnd.choice(choices) & top
    b = bytearray(data)
    b[pos:pos + width] = v.to_bytes(width, 'big')
    return 'word +%d = %#x' % (pos - L['sub'], v), bytes(b)


def chunk_case(data, L, rnd):
    step = 8 + L['clen']
    chunks = [data[p:p + step] for p, _ in L['chunks']]
    first, end = L['chunks'][0][0], L['end'] - 8
    kind = rnd.choice(('dup', 'swap', 'drop', 'shorten', 'extend', 'extra'))
    i, j = rnd.randrange(len(chunks)), rnd.randrange(len(chunks))
    if kind == 'dup':
        chunks.insert(j, chunks[i])
    elif kind == 'swap':
        chunks[i], chunks[j] = chunks[j], chunks[i]
    elif kind == 'drop':
        del chunks[i]
    elif kind == 'shorten':
        p = rnd.randrange(step)
        chunks[i] = chunks[i][:p] + chunks[i][p + rnd.randint(1, 64):]
    elif kind == 'extend':
        p = rnd.randrange(step)
        junk = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 64)))
        chunks[i] = chunks[i][:p] + junk + chunks[i][p:]
    else:
        # one more chunk after the last, at a random offset
        off = rnd.randrange(L['size'] // 4096) * 4096
        chunks.append(off.to_bytes(8, 'big') +
                      bytes(rnd.randrange(256) for _ in range(L['clen'])))
    return ('chunks %s %d %d' % (kind, i, j),
            data[:first] + b''.join(chunks) + data[end:])


class Runner:
    def __init__(self, tmp, max_hangs, prefix):
        # cases change nothing before the subsection: keep only their tails
        self.tmp, self.max_hangs, self.prefix = tmp, max_hangs, prefix
        self.lock = threading.Lock()
        self.n = 0

    def run(self, name, stream, group):
        """One destination: returns (outcome, seconds, detail)"""
        with self.lock:
            if self.max_hangs and group['hang'] >= self.max_hangs:
                return 'not run', 0, ''
            self.n += 1
            n = self.n
        path = os.path.join(self.tmp, 'case%d.mig' % n)
        with open(path, 'wb') as f:
            f.write(self.prefix + stream)
        vm = QEMUMachine(os.environ['QTEST_QEMU_BINARY'],
                         qemu_args(['-serial', 'null', '-incoming', 'defer']),
                         name='case%d' % n, base_temp_dir=self.tmp)
        vm.launch()
        hung = threading.Event()

        def watchdog():
            hung.set()
            try:
                os.kill(vm.get_pid(), signal.SIGKILL)
            except (TypeError, OSError):
                pass    # gone already
        timer = threading.Timer(CASE_TIMEOUT, watchdog)
        t0 = time.monotonic()
        timer.start()
        loaded, bad = False, ''
        try:
            vm.cmd('migrate-incoming', uri='file:' + path)
            while True:
                st = vm.cmd('query-migrate').get('status')
                if st == 'completed':
                    break
                if st == 'failed':
                    raise EOFError
                time.sleep(0.01)
            loaded = True
            # the loaded VM is usable: it runs, stops, and the checker
            # answers for its state
            st = vm.cmd('query-status')['status']
            if st not in ('paused', 'postmigrate', 'prelaunch'):
                bad = 'status %s after the load' % st
            vm.cmd('cont')
            if vm.cmd('query-status')['status'] != 'running':
                bad = 'not running after cont'
            vm.cmd('stop')
            if not vm.cmd('query-mte-tag-storage')['regions']:
                bad = 'query-mte-tag-storage: no regions'
            vm.shutdown()
        except Exception:
            # QEMU exited (as it should after a failed load) or was killed
            pass
        try:
            vm.wait(timeout=max(1, CASE_TIMEOUT - (time.monotonic() - t0)))
        except Exception:
            vm.kill()
        timer.cancel()
        secs = time.monotonic() - t0
        os.unlink(path)
        log, rc = vm.get_log() or '', vm.exitcode()
        last = log.strip().splitlines()[-1:] or ['(no output)']
        if hung.is_set():
            return 'hang', secs, 'still running after %d s: %s' % (
                CASE_TIMEOUT, last[0])
        if SANITIZER.search(log):
            report = log[SANITIZER.search(log).start():].splitlines()
            return 'sanitizer', secs, '\n'.join(report[:6])
        if rc is None or rc < 0:
            return 'crash', secs, 'exit %s: %s' % (rc, log)
        if loaded and rc == 0 and not bad:
            return 'load', secs, ''
        if not loaded and rc > 0 and log.strip():
            return 'error', secs, last[0]
        return 'bad', secs, 'exit %s, loaded %s, %s: %s' % (rc, loaded, bad,
                                                           log)

    def group(self, title, cases, allowed=('error', 'load')):
        """Run @cases two at a time; one TAP line"""
        group = {'hang': 0}
        t0 = time.monotonic()

        def one(case):
            outcome, secs, detail = self.run(case[0], case[1], group)
            with self.lock:
                group['hang'] += outcome == 'hang'
            return case[0], outcome, secs, detail
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            done = list(pool.map(one, cases))
        n = {k: sum(o == k for _, o, _, _ in done) for k in
             ('error', 'load', 'hang', 'crash', 'sanitizer', 'bad', 'not run')}
        counts = ', '.join('%d %s' % (v, k if k in ('sanitizer', 'bad',
                                                    'not run') else k + 's')
                           for k, v in n.items()
                           if v or k in ('error', 'load', 'hang'))
        secs = sorted(s for _, o, s, _ in done if o != 'not run') or [0]
        fails = [(name, o, '\n  '.join(d.splitlines()[-6:]))
                 for name, o, _, d in done if o not in allowed + ('not run',)]
        diag = ''.join('%s: %s: %s\n' % f for f in fails[:10])
        if len(fails) > 10:
            diag += '... and %d more\n' % (len(fails) - 10)
        if n['not run']:
            diag += 'stopped after %d hangs (MTS_FUZZ_MAX_HANGS)\n' \
                % self.max_hangs
        tap(not fails and not n['not run'],
            '%s: %d cases, %s, median %.2f s, max %.2f s, %.0f s in all'
            % (title, len(cases), counts, secs[len(secs) // 2], secs[-1],
               time.monotonic() - t0), diag)


def main():
    if 'MTS_GUEST_ELF' not in os.environ:
        print('1..0 # SKIP no guest program: install an aarch64 cross '
              'compiler (gcc-aarch64-linux-gnu) and reconfigure')
        return 0
    # QEMUMachine warns on stderr about every QEMU we kill or that fails
    logging.getLogger('qemu').setLevel(logging.CRITICAL)
    tmp = tempfile.mkdtemp(prefix='mts-migfuzz-')
    try:
        try:
            data = make_source_stream(tmp)
            L = parse(data)
        except Exception:
            tap(False, 'source stream', traceback.format_exc())
            print('1..%d' % len(results))
            return 1
        tap(len(L['chunks']) > 1,
            'source: %d-byte stream, checker section at %d, %d bytes, %d '
            'owner chunks of %d bytes'
            % (len(data), L['sub'], L['sec_end'] - L['sub'],
               len(L['chunks']), L['clen']))
        sub = L['sub']
        runner = Runner(tmp, int(os.environ.get('MTS_FUZZ_MAX_HANGS', 4)),
                        data[:sub])
        runner.group('intact stream', [('intact', data[sub:])], ('load',))
        runner.group('cuts', cut_cases(data, L))
        for g, make in (('flips', flip_case), ('words', word_case),
                        ('chunks', chunk_case)):
            seeds = range(SEEDS[g], SEEDS[g] + COUNTS[g])
            cases = []
            for seed in seeds:
                name, stream = make(data, L, random.Random(seed))
                cases.append(('seed %d, %s' % (seed, name), stream[sub:]))
            runner.group('%s (seeds %d..%d)' % (g, seeds[0], seeds[-1]),
                         cases)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('1..%d' % len(results))
    return 0 if all(results) else 1


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Bounded random input into everything of the tag storage that parses
input, other than migration streams (migration-fuzz-test.py has those):

- QMP query-mte-tag-storage (base, size, writers) with valid and invalid
  names, types and values, on a guest that ran with tag-storage-check=log,
  one with the check off, a machine without tag storage, and a 2 GiB
  machine whose carveout has more than 4096 runs of owners (blocks-next
  paging, and walks along it);
- HMP "info mte-tag-storage", "mte-tag-fault-stop", "info mte-tag-fault"
  (through human-monitor-command), and QMP mte-tag-fault-stop with any
  type of "enable";
- fixed HMP expression edge cases in the arguments of
  "info mte-tag-storage";
- the gdbstub's qMemTags, QMemTags and qIsAddressTagged packets, raw,
  with random, huge and malformed numbers, types and tag payloads, then
  fixed packets at the limits.

Every case must get a well-formed answer within CASE_TIMEOUT seconds: a
QMP result or a clean QMP error, HMP text, exactly one gdb reply (E<nn>,
OK, m<tags>, 00/01, or the empty "unsupported" reply when the stub cannot
parse the numbers); and QEMU must go on answering (query-status after
each QMP or HMP case, '?' after each packet).  Where the arguments are
well-formed, the answer is also checked against what the command
documents: which errors; which blocks, blocks-next and writers
(query-mte-tag-storage), the same as the QMP command's for plain numbers
(HMP); which error code, how many tags, and that the tags QMemTags set
read back.  A crash or a hang fails the group; its VM is started again
(at most MAX_RESTARTS times) so that the rest of the group still runs.
One TAP line per group, with counts.

Fixed cases that crashed QEMU 10.2.2 (in the monitor's expression parser,
fixed in this series): "info mte-tag-storage 0x8000000000000000/-1" (or
%-1), SIGFPE in expr_prod(); "info mte-tag-storage" followed by 40000
'(' or '~', a stack overflow in expr_unary().

Seeds: case i of group g uses random.Random(SEEDS[g] + i), so every run
feeds the same input (the group's TAP line gives its seed range); a
failure names its seed and input.  About 10 seconds.

Environment: QTEST_QEMU_BINARY, MTS_GUEST_ELF."""

import json
import logging
import os
import random
import re
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import time

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
FLAG_TAG_STORAGE, FLAG_GDB = 1, 4
BUF = RAM + RAM_SIZE // 2 + 6 * 0x10000     # gdb_buf in the guest program
U64 = (1 << 64) - 1
CASE_TIMEOUT = 2
MAX_RESTARTS = 5
BLOCK_RUNS_MAX = 4096                       # mte-tag-storage-info.c
WRITERS_MAX_SIZE = 65536
MEMTAG_MAX_GRANULES = 4096                  # target/arm/gdbstub64.c
SEEDS = {'query-log': 10000, 'query-off': 20000, 'query-none': 30000,
         'query-paged': 40000, 'hmp-info': 50000, 'hmp-fault': 60000,
         'qmp-fault': 70000, 'qMemTags': 80000, 'QMemTags': 90000,
         'qIsAddressTagged': 100000}
COUNTS = {'query-log': 300, 'query-off': 60, 'query-none': 40,
          'query-paged': 100, 'hmp-info': 240, 'hmp-fault': 120,
          'qmp-fault': 80, 'qMemTags': 300, 'QMemTags': 300,
          'qIsAddressTagged': 60}
results = []


def tap(ok, name, diag=''):
    results.append(ok)
    print('%s %d - %s' % ('ok' if ok else 'not ok', len(results), name))
    for line in diag.splitlines():
        print('# ' + line)
    sys.stdout.flush()


def short(x, n=240):
    s = x if isinstance(x, str) else json.dumps(x)
    return s if len(s) <= n else '%s... (%d chars)' % (s[:n], len(s))


class Group:
    """Counts and failures of one TAP line"""

    def __init__(self, name):
        self.name = name
        self.cases = 0
        self.kinds = {}
        self.codes = {}
        self.failures = []

    def count(self, kind):
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def fail(self, seed, what, detail=''):
        self.count('failed')
        self.failures.append('%s: %s%s' % (seed, what,
                                           '\n    ' + detail if detail
                                           else ''))

    def tap(self, kinds):
        text = ', '.join(['%d cases' % self.cases] +
                         ['%d %s' % (self.kinds.get(k, 0), k) for k in kinds] +
                         ['%d %s' % (v, k) for k, v in sorted(
                             self.kinds.items())
                          if k not in kinds and k != 'failed'])
        if self.codes:
            text += ' (%s)' % ', '.join('%s %d' % kv
                                        for kv in sorted(self.codes.items()))
        if self.failures:
            text += ', %d failed' % len(self.failures)
        diag = '\n'.join(self.failures[:25])
        if len(self.failures) > 25:
            diag += '\n... %d more' % (len(self.failures) - 25)
        tap(not self.failures, '%s: %s' % (self.name, text), diag)


def mailbox_args(flags, ram_size=RAM_SIZE):
    args = ['-kernel', os.environ['MTS_GUEST_ELF']]
    for i, v in enumerate((MAGIC | flags, RAM, ram_size, RAM + ram_size)):
        args += ['-device', 'loader,addr=%#x,data=%#x,data-len=8'
                 % (MAILBOX + 8 * i, v)]
    return args


# ---------------------------------------------------------------- QMP


class Vm:
    """A QEMU with QMP that is started again after a crash or a hang"""

    def __init__(self, tmp, name, machine, extra=(), guest=False,
                 mem=RAM_SIZE):
        self.tmp, self.name, self.machine = tmp, name, machine
        self.extra, self.guest, self.mem = list(extra), guest, mem
        self.vm = None
        self.restarts = -1
        self.serial = os.path.join(tmp, name + '-serial.log')

    def start(self):
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            raise Exception('%s: more than %d restarts' % (self.name,
                                                          MAX_RESTARTS))
        args = ['-accel', 'tcg', '-M', self.machine, '-cpu', 'max',
                '-m', '%dM' % (self.mem >> 20), '-nic', 'none'] + self.extra
        if self.guest:
            args += ['-serial', 'file:' + self.serial]
            args += mailbox_args(FLAG_TAG_STORAGE, self.mem)
        self.vm = QEMUMachine(os.environ['QTEST_QEMU_BINARY'], args,
                              name='%s-%d' % (self.name, self.restarts),
                              base_temp_dir=self.tmp)
        self.vm.launch()
        # pylint: disable=protected-access
        self.vm._qmp.settimeout(CASE_TIMEOUT)
        if self.guest:
            # the guest program's own tests fill the carveout with tags,
            # data and both; it idles after END
            deadline = time.monotonic() + 60
            while 'END\n' not in open(self.serial).read():
                if time.monotonic() > deadline:
                    raise Exception('%s: the guest never ended: %s'
                                    % (self.name, open(self.serial).read()))
                time.sleep(0.05)

    def _dead(self, how):
        """After a crash or a hang: what happened, and a fresh QEMU"""
        popen = self.vm._popen              # pylint: disable=protected-access
        deadline = time.monotonic() + 2
        while popen.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        hung = popen.poll() is None
        try:
            self.vm.shutdown(hard=True)
        except Exception:                   # pylint: disable=broad-except
            pass
        log = (self.vm.get_log() or '').strip().splitlines()[-3:]
        if hung:
            what = 'hang (%s), killed' % how
        else:
            what = 'QEMU died (exit %s, %s)' % (popen.returncode, how)
        self.start()
        return what + ('; ' + ' | '.join(log) if log else '')

    def call(self, msg):
        """('reply', response) or ('dead', what happened)"""
        try:
            # pylint: disable=protected-access
            return 'reply', self.vm._qmp.cmd_obj(msg)
        except TimeoutError:
            return 'dead', self._dead('no reply in %d s' % CASE_TIMEOUT)
        except Exception as e:              # pylint: disable=broad-except
            return 'dead', self._dead('%s: %s' % (type(e).__name__, e))

    def hmp(self, line):
        return self.call({'execute': 'human-monitor-command',
                          'arguments': {'command-line': line}})

    def stop(self):
        if self.vm:
            try:
                self.vm.shutdown()
            except Exception:               # pylint: disable=broad-except
                pass


def qmp_error_problem(resp):
    """None if @resp is a clean QMP error"""
    err = resp.get('error')
    if set(resp) != {'error'} or not isinstance(err, dict) or \
            not isinstance(err.get('class'), str) or \
            not isinstance(err.get('desc'), str) or not err['desc'] or \
            set(err) - {'class', 'desc'}:
        return 'malformed error reply'
    return None


def run_qmp_case(group, vm, seed, msg, check):
    """One case, then query-status; @check(resp) -> (kind, problem)"""
    group.cases += 1
    state, resp = vm.call(msg)
    if state == 'dead':
        group.fail(seed, resp, 'input: ' + short(msg))
        return None
    if not isinstance(resp, dict) or len(set(resp) & {'return',
                                                      'error'}) != 1:
        group.fail(seed, 'malformed reply ' + short(resp), short(msg))
        return None
    try:
        kind, problem = check(resp)
    except Exception as e:                  # pylint: disable=broad-except
        kind, problem = 'unchecked', 'checker: %s: %s' % (type(e).__name__, e)
    group.count(kind)
    if problem:
        group.fail(seed, problem, 'input: %s\n    reply: %s'
                   % (short(msg), short(resp, 600)))
    state, st = vm.call({'execute': 'query-status'})
    if state == 'dead':
        group.fail(seed, 'query-status after the case: ' + st,
                   'input: ' + short(msg))
    elif not isinstance(st.get('return'), dict) or \
            'status' not in st['return']:
        group.fail(seed, 'query-status after the case: ' + short(st),
                   'input: ' + short(msg))
    return resp


# query-mte-tag-storage


def u64_arg(v):
    """The uint64 QAPI makes of @v, or None if it rejects it"""
    if type(v) is int and -(1 << 63) <= v <= U64:
        return v & U64
    return None


def query_expect(args, has_storage):
    """None if @args must be accepted, else why they must not be"""
    if not has_storage:
        return 'no tag storage'
    if not isinstance(args, dict) or set(args) - {'base', 'size', 'writers'}:
        return 'bad arguments'
    base = u64_arg(args['base']) if 'base' in args else 0
    size = u64_arg(args['size']) if 'size' in args else 0
    writers = args.get('writers', False)
    if base is None or size is None or type(writers) is not bool:
        return 'bad type'
    if 'size' in args and 'base' not in args:
        return 'size without base'
    if 'size' in args and (size == 0 or base + size > U64):
        return 'empty or wrapping range'
    if writers and ('size' not in args or size > WRITERS_MAX_SIZE):
        return 'writers without a small range'
    return None


def writer_problem(w):
    if not isinstance(w, dict) or \
            w.get('kind') not in ('tag-store', 'data-store', 'dma',
                                  'debugger') or \
            type(w.get('seq')) is not int or \
            set(w) - {'kind', 'cpu-index', 'pc', 'lr',
                       'requester-id', 'seq'}:
        return 'bad writer %s' % short(w)
    return None


def info_problem(info, layout, args):
    """What is wrong with a query-mte-tag-storage result for @args"""
    if set(info) - {'init-seed'} != {'binding', 'block-size', 'check',
                                     'interleave', 'init', 'regions'}:
        return 'members %s' % sorted(info)
    for k in ('binding', 'block-size', 'check', 'interleave', 'init'):
        if info[k] != layout[k]:
            return '%s changed: %r, was %r' % (k, info[k], layout[k])
    regions = info['regions']
    if not isinstance(regions, list) or \
            len(regions) != len(layout['regions']):
        return 'regions %s' % short(regions)
    bs = info['block-size']
    base = u64_arg(args.get('base', 0))
    end = base + u64_arg(args['size']) if 'size' in args else U64
    want_writers = args.get('writers', False)
    budget = BLOCK_RUNS_MAX
    for r, lr in zip(regions, layout['regions']):
        for k in ('tagged-base', 'tagged-size', 'carveout-base',
                  'carveout-size'):
            if r.get(k) != lr[k]:
                return 'region %s changed' % k
        for k in ('tag-reads', 'tag-writes', 'data-reads', 'data-writes'):
            if type(r.get(k)) is not int or not 0 <= r[k] <= U64:
                return 'counter %s: %r' % (k, r.get(k))
        if set(r.get('violations', {})) != {
                'tag-read-of-data', 'data-read-of-tags',
                'tagged-access-to-tag-storage', 'tag-read-of-unwritten'}:
            return 'violations %s' % short(r.get('violations'))
        if set(r) - {'blocks', 'blocks-next', 'writers'} != set(lr) - {
                'blocks', 'blocks-next', 'writers'}:
            return 'region members %s' % sorted(r)
        cb, ce = lr['carveout-base'], lr['carveout-base'] + lr['carveout-size']
        overlap = info['check'] != 'off' and base < ce and end > cb
        blocks, nxt, wr = r.get('blocks'), r.get('blocks-next'), \
            r.get('writers')
        if not overlap:
            if blocks is not None or nxt is not None or wr is not None:
                return 'blocks or writers outside the range, or check off'
            continue
        first = cb + (max(base, cb) - cb) // bs * bs
        last = cb + (min(end, ce) - cb + bs - 1) // bs * bs
        if budget == 0:
            if blocks is not None or nxt != first:
                return 'after 4096 runs: blocks %s, next %r (want %#x)' % (
                    short(blocks), nxt, first)
        else:
            if not isinstance(blocks, list) or not blocks:
                return 'no blocks for a range in the carveout'
            if len(blocks) > budget:
                return 'more than 4096 runs of blocks'
            budget -= len(blocks)
            at, prev = first, None
            for b in blocks:
                if set(b) != {'base', 'size', 'owner'} or \
                        b['owner'] not in ('never-written', 'data', 'tag',
                                           'mixed') or b['base'] != at or \
                        b['size'] <= 0 or b['size'] % bs or \
                        b['owner'] == prev:
                    return 'block run %s at %#x' % (short(b), at)
                at += b['size']
                prev = b['owner']
            if nxt is not None:
                if nxt != at or nxt >= last or budget:
                    return 'blocks-next %#x: runs end %#x, range end %#x, ' \
                        '%d runs left' % (nxt, at, last, budget)
            elif at != last:
                return 'blocks end at %#x, not %#x' % (at, last)
        if not want_writers:
            if wr is not None:
                return 'writers not asked for'
            continue
        at = cb + (max(base, cb) - cb) // 16 * 16
        wend = cb + (min(end, ce) - cb + 15) // 16 * 16
        if not isinstance(wr, list) or not wr:
            return 'no writers'
        for g in wr:
            if set(g) - {'tag-writer', 'data-writer'} != {'base', 'size'} \
                    or g['base'] != at or g['size'] <= 0 or g['size'] % 16:
                return 'writers run %s at %#x' % (short(g), at)
            for k in ('tag-writer', 'data-writer'):
                if k in g and writer_problem(g[k]):
                    return writer_problem(g[k])
            at += g['size']
        if at != wend:
            return 'writers end at %#x, not %#x' % (at, wend)
    return None


def query_checker(args, layout):
    def check(resp):
        why = query_expect(args, layout is not None)
        if 'error' in resp:
            problem = qmp_error_problem(resp)
            if not problem and why is None:
                problem = 'valid arguments rejected'
            return 'errors', problem
        if why is not None:
            return 'results', 'accepted, but: ' + why
        info = resp['return']
        return 'results', (info_problem(info, layout, args)
                           if isinstance(info, dict) else 'not an object')
    return check


NAMES_BAD = ['start', 'count', 'blocks', 'Base', 'SIZE', 'writer', 'base ',
             '', 'base-next', 'blocks-next', 'regions', 'cpu-index', 'Writers',
             'base\u00e9', 'size\x01', 'writers_']


def number(rng, layout):
    """An integer of the kinds the range arguments get"""
    regions = layout['regions'] if layout else [
        {'carveout-base': CARVEOUT, 'carveout-size': RAM_SIZE // 32,
         'tagged-base': RAM}]
    r = rng.choice(regions)
    cb, cs = r['carveout-base'], r['carveout-size']
    return rng.choice([
        0, 1, -1, 15, 16, 4095, 4096, 4097, 65535, 65536, 65537,
        (1 << 63) - 1, 1 << 63, -(1 << 63), -(1 << 63) - 1, U64, U64 + 1,
        1 << 100, cb, cb - 1, cb + cs, cb + cs - 1, cb + cs - 16, cb + cs // 2,
        cb + rng.randrange(cs), cb + rng.randrange(cs // 4096) * 4096,
        r['tagged-base'], rng.randrange(1 << 64), -rng.randrange(1, 1 << 63),
        rng.randrange(1, 1 << 17), rng.randrange(1, 1 << 33),
        rng.randrange(1, 1 << 24), U64 - rng.randrange(1 << 20),
        U64 - cb + 1, U64 - cb])


def hot(rng, layout):
    """An address in or near blocks something wrote, or in the carveout"""
    runs = [b for r in (layout or {}).get('regions', [])
            for b in r.get('blocks', []) if b['owner'] != 'never-written']
    if not runs or rng.random() < 0.2:
        return number(rng, layout)
    b = rng.choice(runs)
    a = b['base'] + rng.randrange(-0x100, b['size'] + 0x100)
    return a // 16 * 16 if rng.random() < 0.5 else a


def junk_value(rng, depth=0):
    """A JSON value of any type"""
    k = rng.randrange(11 if depth < 3 else 8)
    return [lambda: rng.choice([True, False]), lambda: None,
            lambda: rng.choice([0.0, -0.0, 1.5, 1e30, -1e308, 4096.0]),
            lambda: rng.choice(['', '0', '0x1000', '4096', 'true', 'on',
                                'x' * rng.randrange(1, 70000)]),
            lambda: rng.randrange(-(1 << 70), 1 << 70),
            lambda: ''.join(chr(rng.randrange(1, 0x3000))
                            for _ in range(rng.randrange(1, 20))),
            lambda: rng.randrange(1 << 64),
            lambda: str(rng.randrange(1 << 64)),
            lambda: [junk_value(rng, depth + 1)
                     for _ in range(rng.randrange(4))],
            lambda: {rng.choice(['base', 'size', 'a', '']):
                     junk_value(rng, depth + 1)},
            lambda: [[[[[[[[[[1]]]]]]]]]]][k]()


def query_args(rng, layout):
    """Arguments for query-mte-tag-storage: mostly well-formed"""
    kind = rng.random()
    if kind < 0.05:
        # not an object at all
        return rng.choice([[], [1, 2], 'base', 4096, None, True,
                           [{'base': CARVEOUT}]])
    args = {}
    if rng.random() < 0.8:
        args['base'] = (hot if rng.random() < 0.5 else number)(rng, layout)
    if rng.random() < 0.7:
        args['size'] = rng.choice([number(rng, layout),
                                   rng.randrange(1, 1 << 17),
                                   rng.choice([16, 4096, 65536, 65537])])
    if rng.random() < 0.35:
        args['writers'] = rng.random() < 0.75
        if args['writers'] and rng.random() < 0.7:
            args['base'] = hot(rng, layout)
            args['size'] = rng.choice([rng.randrange(1, 0x1000),
                                       rng.randrange(1, WRITERS_MAX_SIZE + 2),
                                       WRITERS_MAX_SIZE])
    if kind < 0.7:
        return args
    for _ in range(rng.randrange(1, 3)):
        if kind < 0.85 and args:
            args[rng.choice(sorted(args))] = junk_value(rng)
        elif kind < 0.93:
            name = rng.choice(NAMES_BAD + ['x' * rng.randrange(1, 5000)])
            args[name] = rng.choice([number(rng, layout), junk_value(rng)])
        else:
            args[rng.choice(['base', 'size', 'writers'])] = junk_value(rng)
    return args


def query_group(vm, name, seed_key, layout):
    g = Group(name)
    seeds = range(SEEDS[seed_key], SEEDS[seed_key] + COUNTS[seed_key])
    for seed in seeds:
        rng = random.Random(seed)
        args = query_args(rng, layout)
        msg = {'execute': 'query-mte-tag-storage'}
        if args != {} or rng.random() < 0.5:
            msg['arguments'] = args
        run_qmp_case(g, vm, seed, msg, query_checker(
            args if 'arguments' in msg else {}, layout))
    g.name += ' (seeds %d..%d)' % (seeds[0], seeds[-1])
    return g


def paged_group(vm, layout):
    """More than 4096 runs of owners: random ranges, and walks along
    blocks-next to the end of the carveout"""
    g = Group('query-mte-tag-storage, 2 GiB, >4096 owner runs')
    seeds = range(SEEDS['query-paged'], SEEDS['query-paged'] +
                  COUNTS['query-paged'])
    r = layout['regions'][0]
    cb, cs = r['carveout-base'], r['carveout-size']
    walked = 0
    for seed in seeds:
        rng = random.Random(seed)
        if seed % 10 == 0:
            # a walk: follow blocks-next; every page must make progress
            base = cb + rng.randrange(0, 4 << 20)
            steps = 0
            while True:
                args = {'base': base}
                if rng.random() < 0.5:
                    args['size'] = cb + cs - base
                resp = run_qmp_case(g, vm, seed, {
                    'execute': 'query-mte-tag-storage', 'arguments': args},
                    query_checker(args, layout))
                nxt = resp and resp.get('return', {}).get('regions', [{}])[
                    0].get('blocks-next')
                if nxt is None:
                    break
                steps += 1
                if nxt <= base or steps > 8:
                    g.fail(seed, 'walk from %#x does not progress: next %#x'
                           % (args['base'], nxt))
                    break
                base = nxt
            walked += steps > 0
            continue
        args = {'base': rng.choice([cb + rng.randrange(0, 20 << 20),
                                    cb + rng.randrange(0, 20 << 20) // 4096
                                    * 4096, number(rng, layout)])}
        if rng.random() < 0.6:
            args['size'] = rng.choice([rng.randrange(1, 40 << 20),
                                       rng.randrange(1, 1 << 17),
                                       number(rng, layout)])
        if rng.random() < 0.2:
            args['writers'] = True
            args['size'] = rng.randrange(1, WRITERS_MAX_SIZE + 1)
        run_qmp_case(g, vm, seed, {'execute': 'query-mte-tag-storage',
                                   'arguments': args},
                     query_checker(args, layout))
    if not walked:
        g.fail('-', 'no walk went past a page (not >4096 runs?)')
    g.name += ' (seeds %d..%d, %d walks of pages)' % (seeds[0], seeds[-1],
                                                      walked)
    return g


# ---------------------------------------------------------------- HMP

HMP_GARBAGE = ['"', "'", '\\', ',', ';', '\t', '\n', '#', '@', '=', '[', ']',
               '{', '}', '\u00e9', '\x01', '\x7f', '  ', ' -- ', '"0x10"',
               "'a'", '$', '?', 'k', 'M', '0x', '..']


def hmp_number(rng):
    cb, cs = CARVEOUT, RAM_SIZE // 32
    if rng.random() < 0.7:
        return rng.choice([
            '0', '1', '16', '4096', '0x1000', '0x10000', '0x10001', '65536',
            '%#x' % cb, '%#x' % (cb + cs), '%#x' % (cb + cs - 16),
            '%#x' % (cb + rng.randrange(cs)), '%d' % (cb + rng.randrange(cs)),
            '%#x' % rng.randrange(1, 0x20000), '%d' % rng.randrange(1, 70000),
            '%#x' % (cb + rng.randrange(cs // 4096) * 4096), '%#x' % RAM])
    return rng.choice([
        '%#x' % rng.randrange(1 << 64), '%d' % rng.randrange(1 << 64),
        '0%o' % rng.randrange(1 << 30), '0x' + 'f' * rng.randrange(15, 20),
        '18446744073709551615', '18446744073709551616', '0xffffffffffffffff',
        '0x7fffffffffffffff', '0x8000000000000000', '-1', '$pc', '$x0',
        '$nosuch', '$', "'a'", "'ab'", '0b101', '1e3', '0x1p4', '65537'])


def hmp_expr(rng):
    def unary():
        n = hmp_number(rng)
        if rng.random() < 0.12:
            n = rng.choice(['-', '~', '+', '- ', '~-', '--']) + n
        if rng.random() < 0.1:
            n = '(' + n + rng.choice([')', ')', ')', '', '))'])
        return n
    e = unary()
    while rng.random() < 0.3:
        # INT64_MIN / -1 and % -1 are among the fixed edge cases
        e += rng.choice(['+', '-', '*', '/', '%', '&', '|', '^', ' + ',
                         ' / ', '<<']) + unary()
    return e


def hmp_info_line(rng):
    cmd = 'info mte-tag-storage'
    if rng.random() < 0.06:
        cmd = rng.choice([
            'info mte-tag-storag', 'info  mte-tag-storage',
            'info mte-tag-storage-x', 'info mte-tag-storage\t',
            'info mte-tag', 'info Mte-tag-storage'])
    parts = [cmd]
    if rng.random() < 0.3:
        parts.append(rng.choice(['-w'] * 6 + ['-W', '-x', '-wx', '-ww', '--',
                                              '-', '-w -w', '-w-w']))
    parts += [hmp_expr(rng) for _ in range(rng.choice([0, 1, 1, 2, 2, 2,
                                                       3]))]
    line = ' '.join(parts)
    if rng.random() < 0.08:
        at = rng.randrange(len(cmd), len(line) + 1)
        line = line[:at] + rng.choice(HMP_GARBAGE) + line[at:]
    if rng.random() < 0.03:
        line += ' ' + 'x' * rng.randrange(1000, 30000)
    return line


HMP_LITERAL = re.compile(r'info mte-tag-storage(?P<w> -w)?'
                         r'(?: (?P<base>0x[0-9a-f]+|[1-9][0-9]*|0)'
                         r'(?: (?P<size>0x[0-9a-f]+|[1-9][0-9]*|0))?)?')
HMP_BLOCK = re.compile(r'  0x[0-9a-f]+-0x[0-9a-f]+ '
                       r'(never-written|data|tag|mixed)$')
HMP_WRITERS = re.compile(r'  0x[0-9a-f]+-0x[0-9a-f]+ tags: .*; data: .*$')
HMP_MORE = re.compile(r'  more blocks from (0x[0-9a-f]+): '
                      r'info mte-tag-storage (0x[0-9a-f]+)$')


def hmp_info_checker(line, vm, has_storage):
    """Any text; and when the arguments are plain numbers, the answer of
    query-mte-tag-storage with the same arguments"""
    def check(resp):
        out = resp.get('return')
        if not isinstance(out, str):
            return 'errors', 'human-monitor-command: ' + short(resp)
        kind = 'results' if out.startswith('binding ') else 'errors'
        if kind == 'errors' and not out.strip():
            return kind, 'empty output'
        if kind == 'results':
            if not has_storage or not re.search(r'^tagged 0x[0-9a-f]+-0x',
                                                out, re.M):
                return kind, 'unexpected info output'
            for m in re.finditer(HMP_MORE, out):
                if m.group(1) != m.group(2):
                    return kind, 'more blocks line: ' + m.group(0)
        m = HMP_LITERAL.fullmatch(line)
        if not m or int(m.group('base') or '0', 0) > U64 or \
                int(m.group('size') or '0', 0) > U64:
            return kind, None
        args = {}
        for k in ('base', 'size'):
            if m.group(k):
                args[k] = int(m.group(k), 0)
        if m.group('w'):
            args['writers'] = True
        state, q = vm.call({'execute': 'query-mte-tag-storage',
                            'arguments': args})
        if state != 'reply':
            return kind, 'query-mte-tag-storage %s: %s' % (args, q)
        if 'error' in q:
            want = 'Error: ' + q['error']['desc']
            return kind, None if out.startswith(want) else \
                'query-mte-tag-storage says %r' % want
        if kind == 'errors':
            return kind, 'query-mte-tag-storage %s accepts them' % args
        lines = out.splitlines()
        regions = q['return']['regions']
        want = (sum(len(r.get('blocks', [])) for r in regions),
                sum(len(r.get('writers', [])) for r in regions),
                sum('blocks-next' in r for r in regions))
        got = (sum(bool(HMP_BLOCK.match(x)) for x in lines),
               sum(bool(HMP_WRITERS.match(x)) for x in lines),
               sum(bool(HMP_MORE.match(x)) for x in lines))
        return kind, None if got == want else \
            '(blocks, writers, more) lines %s, query-mte-tag-storage %s' % (
                got, want)
    return check


def hmp_info_group(vm, vm_none, vm_paged):
    g = Group('info mte-tag-storage (HMP)')
    seeds = range(SEEDS['hmp-info'], SEEDS['hmp-info'] + COUNTS['hmp-info'])
    for seed in seeds:
        rng = random.Random(seed)
        line = hmp_info_line(rng)
        target = {0: vm_none, 4: vm_paged}.get(seed % 8, vm)
        run_qmp_case(g, target, seed, {'execute': 'human-monitor-command',
                                       'arguments': {'command-line': line}},
                     hmp_info_checker(line, target, target is not vm_none))
    g.name += ' (seeds %d..%d; 1 in 8 without tag storage, 1 in 8 with ' \
        '>4096 owner runs)' % (seeds[0], seeds[-1])
    return g


def hmp_fault_line(rng):
    if rng.random() < 0.55:
        arg = rng.choice(['on', 'off', 'ON', 'On', 'true', 'false', '1', '0',
                          'yes', '', ' on', 'on ', 'on off', 'of', 'onn',
                          '"on"', "'off'", '-on', 'on;', 'o\u00f1',
                          'x' * rng.randrange(1, 3000),
                          hmp_number(rng), hmp_expr(rng)])
        return 'mte-tag-fault-stop' + (' ' + arg if arg else ''), arg
    arg = rng.choice(['', '', '', '-w', '0', 'on', hmp_expr(rng),
                      rng.choice(HMP_GARBAGE), 'x' * rng.randrange(1, 3000)])
    return 'info mte-tag-fault' + (' ' + arg if arg else ''), None


def hmp_fault_checker(line, arg, has_mte):
    def check(resp):
        out = resp.get('return')
        if not isinstance(out, str):
            return 'errors', 'human-monitor-command: ' + short(resp)
        if arg is not None:
            # mte-tag-fault-stop: silent when it works
            good = has_mte and arg.strip() in ('on', 'off')
            if not out:
                return 'results', None if good else 'accepted %r' % arg
            return 'errors', 'rejected %r' % arg if good else None
        if line == 'info mte-tag-fault':
            ok = out.startswith('No tag check fault recorded on CPU 0') or \
                out.startswith('CPU 0: tag check fault at 0x')
            return 'results', None if ok else 'unexpected output'
        return 'errors', None if out.strip() else 'empty output'
    return check


def hmp_fault_group(vm, vm_nomte):
    g = Group('mte-tag-fault-stop, info mte-tag-fault (HMP)')
    seeds = range(SEEDS['hmp-fault'], SEEDS['hmp-fault'] +
                  COUNTS['hmp-fault'])
    for seed in seeds:
        rng = random.Random(seed)
        line, arg = hmp_fault_line(rng)
        target = vm_nomte if seed % 6 == 0 else vm
        run_qmp_case(g, target, seed, {'execute': 'human-monitor-command',
                                       'arguments': {'command-line': line}},
                     hmp_fault_checker(line, arg, target is vm))
    vm.hmp('mte-tag-fault-stop off')
    g.name += ' (seeds %d..%d; 1 in 6 without MTE)' % (seeds[0], seeds[-1])
    return g


def qmp_fault_group(vm, vm_nomte):
    g = Group('mte-tag-fault-stop (QMP)')
    seeds = range(SEEDS['qmp-fault'], SEEDS['qmp-fault'] +
                  COUNTS['qmp-fault'])
    for seed in seeds:
        rng = random.Random(seed)
        k = rng.random()
        if k < 0.3:
            args = {'enable': rng.choice([True, False])}
        elif k < 0.75:
            args = {'enable': junk_value(rng)}
        elif k < 0.85:
            args = {}
        elif k < 0.95:
            args = {'enable': rng.choice([True, False, 1]),
                    rng.choice(NAMES_BAD + ['Enable', 'enabled']):
                    junk_value(rng)}
        else:
            args = rng.choice([[True], 'on', None, 1])
        target = vm_nomte if seed % 5 == 0 else vm
        good = target is vm and isinstance(args, dict) and \
            set(args) == {'enable'} and type(args['enable']) is bool

        def check(resp, good=good):
            if 'error' in resp:
                problem = qmp_error_problem(resp)
                return 'errors', problem or ('valid enable rejected'
                                             if good else None)
            if resp['return'] != {}:
                return 'results', 'return %s' % short(resp['return'])
            return 'results', None if good else 'accepted'
        msg = {'execute': 'mte-tag-fault-stop'}
        if args != {}:
            msg['arguments'] = args
        run_qmp_case(g, target, seed, msg, check)
    vm.call({'execute': 'mte-tag-fault-stop', 'arguments': {'enable': False}})
    g.name += ' (seeds %d..%d; 1 in 5 without MTE)' % (seeds[0], seeds[-1])
    return g


# Fixed HMP cases: the expression parser of the arguments (monitor/hmp.c).
# The last four crashed QEMU 10.2.2 (expr_prod() divided INT64_MIN by -1,
# and expr_unary() recursed once per unary operator or parenthesis, with
# no depth limit).
HMP_EDGE = [
    'info mte-tag-storage 1/0',
    'info mte-tag-storage 1%0',
    'info mte-tag-storage 0x10000000000000000',
    'info mte-tag-storage 99999999999999999999999',
    'info mte-tag-storage ' + '(' * 1000 + '1' + ')' * 1000,
    'info mte-tag-storage ' + '~' * 1000 + '0',
    'info mte-tag-storage (((1',
    'info mte-tag-storage )',
    'info mte-tag-storage $nosuchregister',
    'info mte-tag-storage -w %#x 0x10001' % CARVEOUT,
    'info mte-tag-storage -w %#x 0x10000' % CARVEOUT,
    'info mte-tag-storage 0xffffffffffffffff 1',
    'info mte-tag-storage 0x7fffffffffffffff*2',
    'info mte-tag-storage 0x8000000000000000/-1',
    'info mte-tag-storage 0x8000000000000000%-1',
    'info mte-tag-storage ' + '(' * 40000 + '1' + ')' * 40000,
    'info mte-tag-storage ' + '~' * 40000 + '1',
]


def hmp_edge_group(vm):
    g = Group('HMP expression edge cases in info mte-tag-storage')
    for i, line in enumerate(HMP_EDGE):
        run_qmp_case(g, vm, 'edge %d' % i, {
            'execute': 'human-monitor-command',
            'arguments': {'command-line': line}},
            hmp_info_checker(line, vm, True))
    return g


# ---------------------------------------------------------------- gdbstub


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Stub:
    """The gdb VM (stopped on the guest program's tag check fault) and a
    strict remote protocol client"""

    def __init__(self, tmp):
        self.tmp = tmp
        self.proc = None
        self.restarts = -1

    def start(self):
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            raise Exception('gdb VM: more than %d restarts' % MAX_RESTARTS)
        port = free_port()
        self.log = os.path.join(self.tmp, 'gdb-%d.log' % self.restarts)
        cmd = [os.environ['QTEST_QEMU_BINARY'], '-accel', 'tcg',
               '-M', 'virt,mte=on,tag-storage=on,tag-storage-check=log',
               '-cpu', 'max', '-m', '%dM' % (RAM_SIZE >> 20), '-nic', 'none',
               '-display', 'none', '-S', '-gdb', 'tcp:127.0.0.1:%d' % port,
               '-serial', 'file:' + os.path.join(self.tmp, 'gdb-serial.log')
               ] + mailbox_args(FLAG_TAG_STORAGE | FLAG_GDB)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, 'w'))
        deadline = time.time() + 20
        while True:
            try:
                self.s = socket.create_connection(('127.0.0.1', port))
                # '+' and the next packet are separate small writes
                self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)
        self.buf = b''
        for packet, timeout in (('qSupported:multiprocess+;memory-tagging+',
                                 10),
                                ('qRcmd,' + b'mte-tag-fault-stop on'.hex(),
                                 10),
                                ('c', 60)):
            reply = self.cmd(packet, timeout)
            if not isinstance(reply, str):
                raise Exception('gdb VM start: %r -> %r' % (packet, reply))
        if not reply.startswith('T05'):
            raise Exception('gdb VM: no stop on the tag fault: %r' % reply)

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()

    def send(self, payload):
        data = bytearray()
        for c in payload.encode('latin-1'):
            if c in b'#$}*':
                data += bytes([ord('}'), c ^ 0x20])
            else:
                data.append(c)
        self.s.sendall(b'$%s#%02x' % (bytes(data), sum(data) & 0xff))

    def reply(self, timeout):
        """The next packet: a str, or ('timeout'|'eof'|'garbage', data)"""
        deadline = time.monotonic() + timeout
        while True:
            self.buf = self.buf.lstrip(b'+')
            if self.buf and self.buf[:1] != b'$':
                bad, self.buf = self.buf, b''
                return ('garbage', bad[:80])
            m = re.match(rb'\$([^#$]*)#([0-9a-fA-F]{2})', self.buf)
            if m:
                self.buf = self.buf[m.end():]
                self.s.sendall(b'+')
                if sum(m.group(1)) & 0xff != int(m.group(2), 16):
                    return ('garbage', m.group(0)[:80])
                return m.group(1).decode('latin-1')
            if re.match(rb'\$[^#]*\$', self.buf):
                bad, self.buf = self.buf, b''
                return ('garbage', bad[:80])
            left = deadline - time.monotonic()
            if left <= 0:
                return ('timeout', self.buf[:80])
            self.s.settimeout(left)
            try:
                data = self.s.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError as e:
                return ('eof', str(e))
            if not data:
                return ('eof', b'')
            self.buf += data

    def cmd(self, payload, timeout=CASE_TIMEOUT):
        try:
            self.send(payload)
        except OSError as e:
            return ('eof', str(e))
        return self.reply(timeout)

    def alive(self):
        """After a packet without a reply: whether the stub still serves"""
        st = self.cmd('?') if self.proc.poll() is None else None
        return isinstance(st, str) and st.startswith('T05')

    def dead(self, how):
        """What happened after a crash or hang, and a fresh QEMU"""
        deadline = time.monotonic() + 1
        while self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.proc.poll() is None:
            what = 'hang (%s), killed' % how
            self.stop()
        else:
            what = 'QEMU died (exit %s, %s)' % (self.proc.returncode, how)
        err = open(self.log).read().strip().splitlines()[-3:]
        self.s.close()
        self.start()
        return what + ('; ' + ' | '.join(err) if err else '')


REPLY = re.compile(r'E[0-9a-fA-F]{2}|OK|m(?:[0-9a-f]{2})*|0[01]|')
HEXDIGITS = set(string.hexdigits)


def tagged_known(first, count):
    """Whether the guest maps all these granules as Tagged memory: its RAM
    (top byte ignored)"""
    lo = first & ((1 << 56) - 1)
    return first >> 56 == (first + count * 16 - 1) >> 56 and \
        RAM <= lo and lo + count * 16 <= RAM + RAM_SIZE


def untagged_known(first, count):
    """Whether none of these granules is tagged: all in the carveout"""
    lo = first & ((1 << 56) - 1)
    return first >> 56 == 0 and CARVEOUT <= lo and \
        lo + count * 16 <= CARVEOUT + RAM_SIZE // 32


def granules(addr, length):
    """(first, count) as gdb_memtag_range() computes them, or None"""
    if length == 0 or addr + length - 1 > U64:
        return None
    first = addr // 16 * 16
    count = ((addr + length - 1) // 16 * 16 - first) // 16 + 1
    return (first, count) if count <= MEMTAG_MAX_GRANULES else None


def type_is_1(t):
    """The handlers keep the type (an unsigned long) in an int"""
    return t & 0xffffffff == 1


def hexnum(rng, v, clean_only=False):
    """(text, clean): clean text parses to exactly @v"""
    k = rng.random()
    if k < 0.92 or clean_only:
        return rng.choice(['%x', '%X', '%016x', '0x%x', '%04x']) % v, True
    return rng.choice([
        '', 'zz', 'g%x' % v, '-%x' % v, '+%x' % v, ' %x' % v, '%xzz' % v,
        '%x%s' % (v, 'f' * rng.randrange(17, 24)),
        'f' * rng.randrange(17, 40), '0x', '%x.%x' % (v, v), '%x ' % v,
        '\x00%x' % v, '-', '0x-%x' % v, '%x\u00e9' % v]), False


def gdb_addr(rng):
    k = rng.random()
    if k < 0.45:
        a = BUF + rng.randrange(0, 0x10000)
    elif k < 0.6:
        a = RAM + rng.randrange(RAM_SIZE)
    elif k < 0.7:
        a = RAM + RAM_SIZE - rng.randrange(0, 0x200)
    elif k < 0.77:
        a = CARVEOUT + rng.randrange(RAM_SIZE // 32)
    elif k < 0.87:
        a = rng.choice([0, 16, U64, U64 - 15, 1 << 63, 0x80000000 + RAM_SIZE,
                        0xfffffffffffff000, RAM - 16, 0xc0000000])
    else:
        a = rng.randrange(1 << 64)
    if rng.random() < 0.1:
        a = (a & ((1 << 56) - 1)) | rng.randrange(256) << 56
    return a


def gdb_len(rng):
    return rng.choice([0, 1, 0xf, 0x10, 0x11, 0x20, rng.randrange(1, 0x100),
                       rng.randrange(1, 0x100), rng.randrange(1, 0x1000),
                       rng.randrange(1, 0x10011), 0x10000, 0x10001,
                       0x10010, 0xfff1, U64, 1 << 63, rng.randrange(1 << 64)])


def gdb_type(rng):
    if rng.random() < 0.8:
        return 1
    return rng.choice([0, 2, 3, 0xf, U64, 0xffffffff, 0x100000001, 1 << 32,
                       0x7fffffff, -1 & 0xffffffff00000001])


def mangle(rng, text):
    """A structural error in a packet: a dropped, doubled or swapped
    delimiter, or junk"""
    k = rng.randrange(6)
    if k == 0 and ',' in text:
        return text.replace(',', rng.choice([':', ';', '', ',,']), 1)
    if k == 1:
        i = text.rfind(':')
        return text[:i] if i > 8 else text + ':'
    if k == 2:
        return text + rng.choice([':', ':1', ',', ';', '#', '$', '}', '*',
                                  ':zz', ':' + '0' * 100])
    if k == 3:
        return rng.choice(['qMemTags', 'qmemtags:', 'qMemTags::',
                           'QMemTags', 'qMemTag:', 'qIsAddressTagged',
                           'QMemTags::', 'qMemTags:,:']) + text[9:]
    if k == 4:
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice('*}#$\x00\x7f\xff,:;=- ') + text[i:]
    # at least 2 characters: a bare "q" or "Q" is no memory tag packet, and
    # QEMU's gdbstub does not answer one
    return text[:rng.randrange(2, len(text) + 1)]


def tag_payload(rng, count):
    """(hex text, tags or None if it is not a valid payload)"""
    k = rng.random()
    if k < 0.7:
        n = rng.choice([1, 1, 2, 3, min(count, 4), count, count,
                        rng.randrange(1, count + 1), count + 1,
                        MEMTAG_MAX_GRANULES, MEMTAG_MAX_GRANULES + 1])
        tags = [rng.randrange(16) for _ in range(n)]
        return ''.join('%02x' % t for t in tags), tags
    if k < 0.8:
        n = rng.randrange(1, 8)
        return ''.join(rng.choice(['%02x' % rng.randrange(256), '%02X' %
                                   rng.randrange(16), '1f', 'f0', '10'])
                       for _ in range(n)), None
    text = rng.choice([
        '', '0', '010', 'zz', '0g', '  ', '0x01', '-1', '01:02', '01,02',
        '0' * rng.randrange(1, 9000), '0' * (2 * MEMTAG_MAX_GRANULES + 1),
        ''.join(rng.choice('0123456789abcdefABCDEFxg: #$}*')
                for _ in range(rng.randrange(1, 40)))])
    return text, None


def payload_valid(text):
    return text and len(text) % 2 == 0 and \
        len(text) // 2 <= MEMTAG_MAX_GRANULES and \
        all(c in HEXDIGITS for c in text) and \
        all(int(text[i:i + 2], 16) <= 0xf for i in range(0, len(text), 2))


def gdb_case(rng, kind):
    """(packet, expected: a set of reply forms, or None for any, read-back)

    Forms: a literal reply, 'm' (tags for the granules), 'm?' (tags or
    E04), 'OK?' (OK or E04), 'bool'."""
    if kind == 'qIsAddressTagged':
        a = gdb_addr(rng)
        text, clean = hexnum(rng, a)
        pkt = 'qIsAddressTagged:' + text
        if rng.random() < 0.15:
            return mangle(rng, pkt), None, None
        if not clean:
            return pkt, None, None
        lo = a & ((1 << 56) - 1)
        if RAM <= lo < RAM + RAM_SIZE:
            return pkt, {'01'}, None
        if CARVEOUT <= lo < CARVEOUT + RAM_SIZE // 32 and a >> 56 == 0:
            return pkt, {'00'}, None
        return pkt, {'bool'}, None
    addr, length, typ = gdb_addr(rng), gdb_len(rng), gdb_type(rng)
    rng_len = granules(addr, length)
    if rng.random() < 0.7 and rng_len is None:
        # mostly ranges the stub accepts
        length = rng.randrange(1, 0x200)
        rng_len = granules(addr, length)
    ta, ca = hexnum(rng, addr)
    tl, cl = hexnum(rng, length)
    tt, ct = hexnum(rng, typ)
    pkt = '%s:%s,%s:%s' % (kind, ta, tl, tt)
    clean = ca and cl and ct
    payload = None
    if kind == 'QMemTags':
        payload, tags = tag_payload(rng, rng_len[1] if rng_len else 4)
        pkt += ':' + payload
    if rng.random() < 0.1:
        return mangle(rng, pkt), None, None
    if not clean:
        return pkt, None, None
    if kind == 'QMemTags' and not payload:
        # "QMemTags:a,l:t:" has three parameters, not four
        return pkt, {'E01'}, None
    if kind == 'qMemTags':
        if not type_is_1(typ):
            return pkt, {'E03'}, None
        if rng_len is None:
            return pkt, {'E02'}, None
        first, count = rng_len
        if tagged_known(first, count):
            return pkt, {'m'}, (first, count)
        if untagged_known(first, count):
            return pkt, {'E04'}, None
        return pkt, {'m?'}, (first, count)
    if not type_is_1(typ):
        return pkt, {'E02'}, None
    if rng_len is None:
        return pkt, {'E03'}, None
    if not payload_valid(payload):
        return pkt, {'E01'}, None
    first, count = rng_len
    tags = [int(payload[i:i + 2], 16) for i in range(0, len(payload), 2)]
    back = ('%x' % addr, '%x' % length, [tags[i % len(tags)]
                                        for i in range(count)])
    if tagged_known(first, count):
        return pkt, {'OK'}, back
    if untagged_known(first, count):
        return pkt, {'E04'}, None
    return pkt, {'OK?'}, back


def reply_matches(reply, want, count):
    if want is None:
        return True
    for w in want:
        if w == reply:
            return True
        if w in ('m', 'm?') and reply.startswith('m') and \
                len(reply) == 1 + 2 * count and \
                all(int(reply[i:i + 2], 16) <= 0xf
                    for i in range(1, len(reply), 2)):
            return True
        if w == 'm?' and reply == 'E04':
            return True
        if w == 'OK?' and reply in ('OK', 'E04'):
            return True
        if w == 'bool' and reply in ('00', '01'):
            return True
    return False


def gdb_group(stub, kind):
    g = Group('gdbstub ' + kind)
    seeds = range(SEEDS[kind], SEEDS[kind] + COUNTS[kind])
    gdb_cases(stub, g, [(seed,) + gdb_case(random.Random(seed), kind)
                        for seed in seeds], kind)
    g.name += ' (seeds %d..%d)' % (seeds[0], seeds[-1])
    return g


# Fixed packets: the limits of the memory tag packets
def gdb_edge_cases():
    b = BUF
    full = ''.join('%02x' % (i & 0xf) for i in range(MEMTAG_MAX_GRANULES))
    return [
        ('qMemTags:%x,10000:1' % b, {'m'}, (b, MEMTAG_MAX_GRANULES)),
        ('qMemTags:%x,10001:1' % b, {'E02'}, None),
        ('qMemTags:%x,fff1:1' % (b + 0xf), {'m'}, (b, MEMTAG_MAX_GRANULES)),
        ('qMemTags:%x,fff2:1' % (b + 0xf), {'E02'}, None),
        ('qMemTags:1,ffffffffffffffff:1', {'E02'}, None),
        ('qMemTags:0,ffffffffffffffff:1', {'E02'}, None),
        ('qMemTags:ffffffffffffffff,1:1', {'E04'}, None),
        ('QMemTags:%x,10000:1:%s' % (b, full), {'OK'},
         ('%x' % b, '10000', [i & 0xf for i in range(4096)])),
        ('QMemTags:%x,10:1:%s00' % (b, full), {'E01'}, None),
        ('QMemTags:%x,10:1:%s' % (b, '0' * 130000), {'E01'}, None),
        ('QMemTags:%x,10000:1:03' % b, {'OK'},
         ('%x' % b, '10000', [3] * 4096)),
        ('qMemTags', {''}, None),
    ]


def gdb_edge_group(stub):
    g = Group('gdbstub fixed memory tag packets (limits)')
    gdb_cases(stub, g, [('edge %d' % i,) + c
                        for i, c in enumerate(gdb_edge_cases())], 'edge')
    return g


def gdb_cases(stub, g, cases, kind):
    for seed, pkt, want, extra in cases:
        g.cases += 1
        reply = stub.cmd(pkt)
        if not isinstance(reply, str):
            if reply[0] == 'timeout' and stub.alive():
                g.fail(seed, "no reply in %d s (the stub still answers '?')"
                       % CASE_TIMEOUT, 'packet: ' + short(pkt))
                continue
            g.fail(seed, 'no reply: %s %r' % reply, 'packet: ' + short(pkt))
            g.failures[-1] += '\n    ' + stub.dead(reply[0])
            continue
        if not REPLY.fullmatch(reply):
            g.fail(seed, 'malformed reply %r' % short(reply),
                   'packet: ' + short(pkt))
        elif not reply_matches(reply, want,
                               extra[1] if pkt.startswith('qMemTags:') and
                               extra else 0):
            g.fail(seed, 'reply %r, expected %s' % (short(reply),
                                                    sorted(want)),
                   'packet: ' + short(pkt))
        g.count({'E': 'errors', 'm': 'tag replies', 'O': 'OK', '0': 'answers',
                 '': 'empty (unparsed)'}.get(reply[:1], 'other'))
        if reply.startswith('E'):
            g.codes[reply] = g.codes.get(reply, 0) + 1
        if pkt.startswith('QMemTags:') and extra and reply == 'OK':
            # the tags read back as written
            ta, tl, tags = extra
            back = stub.cmd('qMemTags:%s,%s:1' % (ta, tl))
            want_back = 'm' + ''.join('%02x' % t for t in tags)
            if back != want_back:
                g.fail(seed, 'tags read back %r, expected %r'
                       % (short(str(back)), short(want_back)),
                       'packet: ' + short(pkt))
                if not isinstance(back, str):
                    g.failures[-1] += '\n    ' + stub.dead(back[0])
                    continue
        # exactly one reply: the next one must be the answer to '?'
        st = stub.cmd('?')
        if not isinstance(st, str):
            g.fail(seed, "no reply to '?' after the case: %s %r" % st,
                   'packet: ' + short(pkt))
            g.failures[-1] += '\n    ' + stub.dead(st[0])
        elif not st.startswith('T05'):
            g.fail(seed, "reply to '?' after the case: %r (a second reply?)"
                   % short(st), 'packet: ' + short(pkt))
            # resynchronise
            while isinstance(stub.reply(0.3), str):
                pass
    # nothing left over at the end
    left = stub.reply(0.3)
    if left != ('timeout', b''):
        g.fail('-', 'left over after the group: %r' % (left,))


def paged_vm(tmp):
    """2 GiB (carveout 64 MiB, 16384 blocks), stopped, with every other
    block of the first 4402 written as data through the gdbstub: 4400
    runs of owners, more than one reply holds"""
    port = free_port()
    vm = Vm(tmp, 'paged', 'virt,mte=on,tag-storage=on,tag-storage-check=log',
            ['-S', '-gdb', 'tcp:127.0.0.1:%d' % port], mem=2 << 30)
    vm.start()
    s = socket.create_connection(('127.0.0.1', port))
    cb = RAM + (2 << 30)
    # pipelined: one '$M...' per block, then read all the replies
    out = b''.join(b'$%s#%02x' % (p, sum(p) & 0xff) for p in (
        b'M%x,1:5a' % (cb + 2 * k * 4096) for k in range(2200)))
    s.sendall(out)
    got = b''
    deadline = time.monotonic() + 60
    s.settimeout(1)
    while got.count(b'$OK#') < 2200 and time.monotonic() < deadline:
        try:
            data = s.recv(1 << 16)
        except socket.timeout:
            continue
        if not data:
            break
        got += data
    vm.gdb = s          # connected until the VM stops: the VM stays paused
    if got.count(b'$OK#') != 2200:
        raise Exception('paged VM: %d of 2200 writes OK' %
                        got.count(b'$OK#'))
    return vm


# ---------------------------------------------------------------- main


def main():
    if 'MTS_GUEST_ELF' not in os.environ:
        print('1..0 # SKIP no guest program: install an aarch64 cross '
              'compiler (gcc-aarch64-linux-gnu) and reconfigure')
        return 0
    # QEMUMachine warns on stderr about every QEMU we kill or that fails
    logging.getLogger('qemu').setLevel(logging.CRITICAL)
    tmp = tempfile.mkdtemp(prefix='mts-inputfuzz-')
    vms = []

    def vm(*args, **kwargs):
        v = Vm(tmp, *args, **kwargs)
        vms.append(v)
        v.start()
        return v

    def layout_of(v):
        state, resp = v.call({'execute': 'query-mte-tag-storage'})
        if state != 'reply' or 'return' not in resp:
            raise Exception('%s: query-mte-tag-storage: %s' % (v.name, resp))
        return resp['return']

    try:
        log = vm('log', 'virt,mte=on,tag-storage=on,tag-storage-check=log',
                 guest=True)
        log_layout = layout_of(log)
        query_group(log, 'query-mte-tag-storage, check=log, guest ran',
                    'query-log', log_layout).tap(['results', 'errors'])
        off = vm('off', 'virt,mte=on,tag-storage=on', guest=True)
        query_group(off, 'query-mte-tag-storage, check=off', 'query-off',
                    layout_of(off)).tap(['results', 'errors'])
        none = vm('none', 'virt,mte=on', ['-S'])
        query_group(none, 'query-mte-tag-storage, no tag storage',
                    'query-none', None).tap(['results', 'errors'])
        paged = paged_vm(tmp)
        vms.append(paged)
        paged_group(paged, layout_of(paged)).tap(['results', 'errors'])
        hmp_info_group(log, none, paged).tap(['results', 'errors'])
        paged.stop()
        nomte = vm('nomte', 'virt', ['-S'])
        hmp_fault_group(log, nomte).tap(['results', 'errors'])
        qmp_fault_group(log, nomte).tap(['results', 'errors'])
        edge = vm('edge', 'virt,mte=on,tag-storage=on,tag-storage-check=log',
                  ['-S'])
        hmp_edge_group(edge).tap(['results', 'errors'])
        for v in vms:
            v.stop()
        stub = Stub(tmp)
        try:
            stub.start()
            for kind in ('qMemTags', 'QMemTags', 'qIsAddressTagged'):
                gg = gdb_group(stub, kind)
                gg.tap(['tag replies' if kind == 'qMemTags' else
                        'OK' if kind == 'QMemTags' else 'answers', 'errors'])
            gdb_edge_group(stub).tap(['tag replies', 'OK', 'errors'])
            stub.stop()
            tap(stub.proc.returncode == -9 and stub.restarts == 0,
                'gdb VM alive until killed (no crash, %d restarts)'
                % stub.restarts, open(stub.log).read())
        finally:
            stub.stop()
    except Exception:                       # pylint: disable=broad-except
        import traceback
        tap(False, 'harness', traceback.format_exc())
    finally:
        for v in vms:
            v.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print('1..%d' % len(results))
    return 0 if all(results) else 1


if __name__ == '__main__':
    sys.exit(main())

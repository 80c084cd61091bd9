#!/usr/bin/python3
"""Test guest/run-reuse.py's judgement of a known kernel race
(--known-race NAME:RULE:FUNCTION) on synthetic snapshots and QEMU logs.

A workload's window is excused only when it has violations of RULE and
no other, every culprit chain passes through FUNCTION and the kernel
counted tag_storage_reserve_fail; each way of missing one of those must
leave the workload to the usual judgement.  Prints TAP lines; exits 1 on
any failure."""
import importlib.util
import os
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, 'guest'))
spec = importlib.util.spec_from_file_location(
    'run_reuse', os.path.join(TOP, 'guest', 'run-reuse.py'))
run_reuse = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_reuse)

# guest PCs of the synthetic kernel
FUNCS = {0x1000: 'copy_page', 0x2000: 'migrate_folio',
         0x3000: 'mte_migrate_folios', 0x4000: 'arch_fault_prepare_folio',
         0x5000: 'do_page_fault', 0x6000: 'check_pages'}
RACE = ('shared-file', 'R2', 'arch_fault_prepare_folio')
results = []


class Syms:
    def at(self, pc):
        base = pc & ~0xfff
        return '%s+0x%x' % (FUNCS[base], pc - base) if base in FUNCS else '?'


def line(rule, pcs):
    pc, lr, bt = pcs[0], pcs[1], ','.join('0x%x' % p for p in pcs[2:])
    return ('qemu-system-aarch64: warning: mte-tag-storage: R%d %s: pa 0x4 '
            'tag-storage 0x8 cpu 1 pc 0x%x lr 0x%x bt %s; last written by '
            'data-store cpu 0 pc 0x6010 lr 0x6020, write #7\n'
            % (rule, run_reuse.RULES[rule - 1], pc, lr, bt))


def judge(log_lines, viol, reserve_fail):
    """race_seen() on a shmem window, then a shared-file one with @viol
    (R1..R4) and @log_lines, the kernel counting @reserve_fail"""
    with tempfile.NamedTemporaryFile('w', delete=False) as f:
        f.write(line(3, [0x6000, 0x6004]))      # in the window before
        start = f.tell()
        f.writelines(log_lines)
        end = f.tell()
    zero = dict.fromkeys(run_reuse.RULES, 0)
    snaps = {'wl-shmem': {'regions': [{'violations': zero}],
                          'err-offset': start},
             'wl-shared-file': {'regions': [{'violations': dict(
                 zip(run_reuse.RULES, viol))}], 'err-offset': end}}
    console = ('VMDELTA shared-file cma_alloc_success=+3 '
               'pgmigrate_success=+9 tag_storage_reserve_fail=+%d '
               'tag_storage_missing=+0\n' % reserve_fail)
    try:
        return run_reuse.race_seen(RACE, snaps, console, f.name, Syms())
    finally:
        os.unlink(f.name)


def check(name, cond):
    results.append(cond)
    print('%s %d %s' % ('ok' if cond else 'not ok', len(results), name))


chain = [0x1010, 0x2010, 0x3010, 0x4010, 0x5010]
raced = [line(2, chain)] * 3
check('the race: R2 only, through arch_fault_prepare_folio, '
      'reserve_fail > 0', judge(raced, [0, 3, 0, 0], 1))
check('no violation is no race', not judge([], [0, 0, 0, 0], 1))
check('another rule too', not judge(raced + [line(3, chain)],
                                    [0, 3, 1, 0], 1))
check('the rule counted but not logged',
      not judge([], [0, 3, 0, 0], 1))
check('a chain that does not pass through FUNCTION',
      not judge(raced + [line(2, [0x1010, 0x2010, 0x5010])],
                [0, 4, 0, 0], 1))
check('FUNCTION only as the last writer',
      not judge([line(2, [0x1010, 0x5010]).replace('0x6010', '0x4010')],
                [0, 1, 0, 0], 1))
check('no failed reservation', not judge(raced, [0, 3, 0, 0], 0))
check('no window without the snapshots',
      not run_reuse.race_seen(RACE, {}, '', os.devnull, Syms()))
print('1..%d' % len(results))
sys.exit(0 if all(results) else 1)

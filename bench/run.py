#!/usr/bin/python3
"""Compare our QEMU with stock QEMU 10.2.2 on MTE workloads, in one run.

Configurations: stock (-M virt,mte=on), ours with tag-storage=off, ours
with tag-storage=on, and ours with the reuse checker (tag-storage=on,
tag-storage-check=log, which records the last writer of every granule).  Cases: bare-metal tag-heavy loops, Linux boot to
init plus the MTE suite, a tagged-heap workload in Linux, and
linux-reuse: the vendored reuse kernel (../shared/vendor/rfc-kernel,
Image.xz uncompressed into $BUILD_ROOT/bench/rfc-Image and checked
against SHA256SUMS' "Image (uncompressed)" line) running /reuse-workload
(mts.reuse=2 nokaslr, -smp 2), with tag-storage=on only, the checker off
("on") and log ("check"): its data lives in the carveout, which the
checker turns into I/O, and the issue's target is check/on <= 1.5x.  It
has no stock or tag-storage=off run (there the kernel does not reuse),
takes minutes per run and is not in --smoke; --case selects cases (stock
QEMU is built only when a selected case needs it).  Runs are
interleaved (every configuration of a case back to back, repetition after
repetition); each run is timed from process start to exit and its peak
RSS read with wait4().  Medians and minimums both get a table of
ratios.  The bare-metal cases also get a "net" ratio,
with each configuration's start-up and shutdown time (the same program
run with 0 passes) subtracted.  Prints medians, minimums and ratios to stock,
writes results.json and results.csv (and a plot when matplotlib is
installed) to $BUILD_ROOT/bench/ (build/bench/ by default).  Ours is
$MTS_QEMU, else build/obj's."""

import argparse
import csv
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get('BUILD_ROOT') or os.path.join(TOP, 'build')
VENDOR = os.environ.get('VENDOR') or os.path.join(TOP, '..', 'shared',
                                                  'vendor')
MAILBOX = 0x40400000
MAGIC = 0x4d54532d54450000
FLAG_TAG_STORAGE, FLAG_BENCH = 1, 8
MICRO = ['stg', 'st2g', 'stgm', 'dc-gzva', 'setg', 'checked-load',
         'checked-store', 'ldg-scan', 'mixed']
# Passes per --passes, so that every loop runs long enough to be measured
# above start-up: with 8 passes STGM ran 0.04 s and SETG 0.25 s against
# 0.3 s of start-up, and their ratios to stock swung from 0.9x to 1.4x
PASS_SCALE = {'stgm': 16, 'setg': 4, 'st2g': 2, 'dc-gzva': 2}
# Cases run in fewer configurations than all: the reuse kernel reuses
# only with tag storage (on stock and tag-storage=off it is an ordinary
# kernel and /reuse-workload fails its reuse checks)
CASE_CONFIGS = {'linux-reuse': ('on', 'check', 'b-on', 'b-check')}
# ... and the ones --smoke leaves out (minutes per run)
NOT_SMOKE = ('linux-reuse',)


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]


def run(cmd, timeout, verify=None):
    """Time @cmd: (seconds, peak RSS in MiB, CPU seconds, user and system);
    then @verify(), if given, raises if the run went wrong"""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        _, status, ru = os.wait4(p.pid, 0)
    except KeyboardInterrupt:
        p.kill()
        raise
    dt = time.monotonic() - t0
    err = p.stderr.read().decode()
    if status != 0:
        raise RuntimeError('%s failed (%d): %s' % (cmd[0], status, err))
    if dt > timeout:
        raise RuntimeError('run took %.1f s' % dt)
    if verify:
        verify()
    return dt, ru.ru_maxrss / 1024.0, ru.ru_utime + ru.ru_stime


def micro_cmd(qemu, ts, elf, case, passes):
    cmd = [qemu, '-M', 'virt,mte=on' + ts, '-cpu', 'max', '-m', '512M',
           '-nic', 'none', '-display', 'none', '-serial', 'none',
           '-kernel', elf]
    words = [MAGIC | FLAG_BENCH | (FLAG_TAG_STORAGE if ts else 0),
             0x40000000, 512 << 20, 0x40000000 + (512 << 20), case, passes]
    for i, w in enumerate(words):
        cmd += ['-device', 'loader,addr=%#x,data=%#x,data-len=8'
                % (MAILBOX + 8 * i, w)]
    return cmd


def linux_cmd(qemu, ts, kernel, initrd, extra):
    return [qemu, '-M', 'virt,mte=on' + ts, '-cpu', 'max,pauth-impdef=on',
            '-m', '2G', '-nic', 'none', '-display', 'none', '-serial', 'none',
            '-no-reboot', '-kernel', kernel, '-initrd', initrd,
            '-append', 'console=ttyAMA0 panic=-1 quiet ' + extra]


def rfc_image():
    """The vendored reuse kernel, uncompressed once into
    $BUILD_ROOT/bench/rfc-Image; exits if it is not the Image that
    SHA256SUMS names"""
    src = os.path.join(VENDOR, 'rfc-kernel')
    image = os.path.join(BUILD, 'bench', 'rfc-Image')
    try:
        with open(os.path.join(src, 'SHA256SUMS')) as f:
            want = [ln.split()[0] for ln in f
                    if ln.rstrip('\n').endswith('  Image (uncompressed)')]
    except OSError as e:
        sys.exit('linux-reuse: %s' % e)
    if len(want) != 1:
        sys.exit('linux-reuse: no "Image (uncompressed)" line in %s'
                 % os.path.join(src, 'SHA256SUMS'))

    def digest():
        h = hashlib.sha256()
        with open(image, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
        return h.hexdigest()
    if not os.path.exists(image) or digest() != want[0]:
        os.makedirs(os.path.dirname(image), exist_ok=True)
        with open(image + '.tmp', 'wb') as out:
            subprocess.run(['xz', '-dc', os.path.join(src, 'Image.xz')],
                           stdout=out, check=True)
        os.replace(image + '.tmp', image)
        if digest() != want[0]:
            os.unlink(image)
            sys.exit('linux-reuse: %s/Image.xz does not uncompress to the '
                     'Image of its SHA256SUMS' % src)
    return image


def reuse_cmd(qemu, ts, image, initrd, console):
    return [qemu, '-M', 'virt,mte=on' + ts, '-cpu', 'max,pauth-impdef=on',
            '-m', '2G', '-smp', '2', '-nic', 'none', '-display', 'none',
            '-serial', 'file:' + console, '-no-reboot', '-kernel', image,
            '-initrd', initrd,
            '-append', 'console=ttyAMA0 panic=-1 quiet nokaslr mts.reuse=2']


def reuse_verify(console):
    """A run of the reuse workload counts if it passed and the kernel
    reused tag storage (else it timed another workload): its RESULT line
    with fail=0, and its checks that the kernel manages the carveout and
    put data there (the kernel's own line is not printed with quiet)"""
    def verify():
        text = open(console, errors='replace').read()
        res = re.search(r'^RESULT pass=(\d+) fail=(\d+)\r?$', text, re.M)
        if not res or res.group(2) != '0' or not all(
                re.search(r'^ok %s\r?$' % c, text, re.M) for c in
                ('reuse-enabled', 'reuse-fill-in-carveout',
                 'reuse-page-migrated')):
            raise RuntimeError('linux-reuse: the workload did not pass (%s; '
                               'console: %s)' % (res.group(0).strip() if res
                                                 else 'no RESULT line',
                                                 console))
    return verify


def net_time(case, med, start, k):
    """@k's median time for @case without start-up, or None"""
    if k not in start or k not in med:
        return None
    net = med[k] - start[k]
    return net if case in MICRO and net > 0.01 else None


def net_text(case, med, start, k, ref):
    n, r = net_time(case, med, start, k), net_time(case, med, start, ref)
    return '%.2fx' % (n / r) if n and r else '-'


def regressions(cases, res, start, reps):
    """Print "REGRESSION: <case> on is N.NNx of stock" where ours with
    tag-storage=on is slower than stock by more than the noise: half the
    spread (max - min) of each configuration's runs, relative to the
    time compared (net of start-up for the bare-metal loops), and at
    least 5%.  Fewer than 3 repetitions tell nothing of the noise: then
    there is no verdict."""
    print('\n%-18s%10s%10s' % ('case', 'on/stock', 'noise'))
    found = []
    for case, _ in cases:
        if case == 'startup' or 'stock' not in res[case]:
            continue
        runs = res[case]
        med = {k: statistics.median(runs[k]) for k in ('stock', 'on')}
        base = {k: net_time(case, med, start, k) for k in med}
        if not base['stock'] or not base['on']:
            base = med
        ratio = base['on'] / base['stock']
        spread = sum((max(runs[k]) - min(runs[k])) / base[k]
                     for k in med) / 2
        noise = max(0.05, spread / 2)
        print('%-18s%9.2fx%9.0f%%' % (case, ratio, noise * 100))
        if ratio > 1 + noise:
            found.append('REGRESSION: %s on is %.2fx of stock' % (case, ratio))
    if reps < 3:
        print('(%d repetition%s: no regression verdict; make bench runs 5)'
              % (reps, '' if reps == 1 else 's'))
        return
    for line in found:
        print(line)
    if not found:
        print('no regression: tag-storage=on is within the noise of stock '
              'or faster in every case')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--passes', type=int, default=8,
                    help='passes over 32 MiB per micro case')
    ap.add_argument('--smoke', action='store_true',
                    help='one short repetition of every case but '
                    'linux-reuse, to prove it works')
    ap.add_argument('--baseline-micro-only', action='store_true',
                    help='run the baseline on the bare-metal loops only')
    ap.add_argument('--baseline', metavar='QEMU',
                    help='another build of ours (an earlier commit, say): '
                    'also run it with tag-storage=on and with the checker, '
                    'and print its checker cost beside ours')
    all_cases = ['startup'] + MICRO + ['linux-boot+suite',
                                       'linux-tagged-heap', 'linux-reuse']
    ap.add_argument('--case', action='append', choices=all_cases,
                    metavar='CASE', help='run only this case (repeatable; '
                    'one of %s); default: all, with --smoke all but %s'
                    % (', '.join(all_cases), ', '.join(NOT_SMOKE)))
    a = ap.parse_args()
    if a.smoke:
        a.reps, a.passes = 1, 1
    wanted = a.case or [c for c in all_cases
                        if not (a.smoke and c in NOT_SMOKE)]

    ours = os.environ.get('MTS_QEMU') or os.path.join(BUILD, 'obj',
                                                       'qemu-system-aarch64')
    # stock QEMU (built on first use) only for the cases that compare to it
    stock = sh(os.path.join(TOP, 'bench', 'build-stock.sh')) \
        if any('stock' in CASE_CONFIGS.get(c, ('stock',)) for c in wanted) \
        else None
    elf = os.path.join(os.path.dirname(ours), 'tests', 'qtest',
                       'mte-tag-storage', 'mte-tag-storage-guest.elf')
    kernel = sh(os.path.join(TOP, 'scripts', 'fetch-guest.sh')) \
        if {'linux-boot+suite', 'linux-tagged-heap'} & set(wanted) else None
    initrd = sh(os.path.join(TOP, 'guest', 'build-initramfs.sh')) \
        if any(c.startswith('linux-') for c in wanted) else None
    rfc = rfc_image() if 'linux-reuse' in wanted else None
    consoles = os.path.join(BUILD, 'bench')
    os.makedirs(consoles, exist_ok=True)
    configs = [('stock', stock, ''), ('off', ours, ',tag-storage=off'),
               ('on', ours, ',tag-storage=on'),
               ('check', ours, ',tag-storage=on,tag-storage-check=log')]
    if a.baseline:
        configs += [('b-on', a.baseline, ',tag-storage=on'),
                    ('b-check', a.baseline,
                     ',tag-storage=on,tag-storage-check=log')]
    baseline_cases = ('startup',) + tuple(MICRO) + \
        (() if a.baseline_micro_only else ('linux-boot+suite',
                                            'linux-tagged-heap',
                                            'linux-reuse'))
    cases = [('startup', lambda q, ts: micro_cmd(q, ts, elf, 0, 0))]
    cases += [(name, lambda q, ts, i=i, name=name:
               micro_cmd(q, ts, elf, i, a.passes * PASS_SCALE.get(name, 1)))
              for i, name in enumerate(MICRO)]
    cases += [('linux-boot+suite',
               lambda q, ts: linux_cmd(q, ts, kernel, initrd, '')),
              ('linux-tagged-heap',
               lambda q, ts: linux_cmd(q, ts, kernel, initrd,
                                       'mts.bench=heap'))]
    # the console of each run, kept to see that the workload passed
    cases += [('linux-reuse',
               lambda q, ts, name: reuse_cmd(q, ts, rfc, initrd,
                                             os.path.join(
                                                 consoles, 'linux-reuse-%s'
                                                 '.console' % name)))]
    cases = [(c, mk) for c, mk in cases if c in wanted]

    def runs_of(case):
        return [k for k in configs
                if k[0] in CASE_CONFIGS.get(case, [c[0] for c in configs])
                and not (k[0].startswith('b-') and
                         case not in baseline_cases)]

    res = {c: {k[0]: [] for k in runs_of(c)} for c, _ in cases}
    rss = {k[0]: 0.0 for k in configs if any(k in runs_of(c)
                                             for c, _ in cases)}
    cpus = {}
    for rep in range(a.reps):
        print('repetition %d/%d' % (rep + 1, a.reps), flush=True)
        for case, mk in cases:
            order = runs_of(case) if rep % 2 == 0 else runs_of(case)[::-1]
            for name, qemu, ts in order:
                if case == 'linux-reuse':
                    con = os.path.join(consoles,
                                       'linux-reuse-%s.console' % name)
                    dt, mb, cpu = run(mk(qemu, ts, name), 600,
                                      reuse_verify(con))
                else:
                    dt, mb, cpu = run(mk(qemu, ts), 600)
                res[case][name].append(dt)
                cpus.setdefault(case, {}).setdefault(name, []).append(cpu)
                rss[name] = max(rss[name], mb)

    out = os.path.join(BUILD, 'bench')
    os.makedirs(out, exist_ok=True)
    rows = []
    # the baseline's runs are in the checker's table only
    names = [k[0] for k in configs if not k[0].startswith('b-')]
    others = names[1:]
    for c in res:
        for k in [k for k in res[c] if not res[c][k]]:
            del res[c][k]

    def col(fmt, width, d, k, *div):
        """@d[k] (over @div[0] if given) in @fmt, or '-' if either was
        not run"""
        if k not in d or (div and not div[0]):
            return '%*s' % (width, '-')
        return fmt % (d[k] / div[0] if div else d[k])
    print('\n%-18s' % 'case (median s)' + ''.join('%8s' % k for k in names) +
          ''.join('%10s' % (k + '/stk') for k in others) +
          ''.join('%10s' % ('net ' + k) for k in others))
    start = {k: statistics.median(v)
             for k, v in res.get('startup', {}).items()}
    for case, _ in cases:
        med = {k: statistics.median(v) for k, v in res[case].items()
               if k in names}
        mn = {k: min(v) for k, v in res[case].items()}
        stk = med.get('stock')
        line = '%-18s' % case + ''.join(col('%8.3f', 8, med, k)
                                        for k in names)
        line += ''.join(col('%9.2fx', 10, med, k, stk) for k in others)
        net = {}
        if case in MICRO and stk and 'stock' in start and \
                stk - start['stock'] > 0.01:
            net = {k: (med[k] - start[k]) / (stk - start['stock'])
                   for k in others}
            line += ''.join('%9.2fx' % net[k] for k in others)
        print(line)
        for k in med:
            rows.append({'case': case, 'config': k, 'median_s': med[k],
                         'min_s': mn[k], 'runs': res[case][k],
                         'cpu_s': cpus[case][k],
                         'ratio_to_stock': med[k] / stk if stk else None,
                         'net_ratio_to_stock': net.get(k)})
    print('\n%-18s' % 'case (min s)' + ''.join('%8s' % k for k in names) +
          ''.join('%10s' % (k + '/stk') for k in others))
    for case, _ in cases:
        mn = {k: min(v) for k, v in res[case].items()}
        print('%-18s' % case + ''.join(col('%8.3f', 8, mn, k)
                                       for k in names) +
              ''.join(col('%9.2fx', 10, mn, k, mn.get('stock'))
                      for k in others))
    # the checker's own cost, provenance included: its target is 1.5x
    # for the bare-metal loops (net of start-up) and the reuse kernel, and
    # 1.10x for the other Linux cases
    print('\n%-18s%10s%10s%10s' % ('case', 'off/on', 'check/on',
                                   'net') +
          ('%12s%10s' % ('base c/on', 'net') if a.baseline else ''))
    for case, _ in cases:
        med = {k: statistics.median(v) for k, v in res[case].items()}
        line = '%-18s' % case + col('%9.2fx', 10, med, 'off', med['on']) + \
            col('%9.2fx', 10, med, 'check', med['on'])
        line += '%9s ' % net_text(case, med, start, 'check', 'on')
        if 'b-on' in med:
            line += '%11.2fx%9s ' % (med['b-check'] / med['b-on'],
                                     net_text(case, med, start, 'b-check',
                                              'b-on'))
        print(line)
    if 'linux-reuse' in res:
        # also in CPU time (both vCPUs and QEMU's other threads), which
        # other load on the host disturbs less than the time to exit
        med = {k: statistics.median(v) for k, v in res['linux-reuse'].items()}
        cpu = {k: statistics.median(v)
               for k, v in cpus['linux-reuse'].items()}
        r = med['check'] / med['on']
        print('linux-reuse: tag-storage-check=log %.1f s, =off %.1f s '
              '(medians of %d): log/off %.2fx, %s the 1.5x target; CPU '
              'time %.1f s and %.1f s: %.2fx'
              % (med['check'], med['on'], a.reps, r,
                 'within' if r <= 1.5 else 'OVER', cpu['check'], cpu['on'],
                 cpu['check'] / cpu['on']))
    if any('stock' in res[c] for c, _ in cases):
        regressions(cases, res, start, a.reps)
    print('\npeak RSS (MiB): ' + ', '.join('%s %.0f' % (k, v)
                                           for k, v in rss.items()))
    print('(-m 2G for Linux: 1/32 of guest RAM is %d MiB)' % (2048 // 32))
    with open(os.path.join(out, 'results.json'), 'w') as f:
        json.dump({'reps': a.reps, 'passes': a.passes, 'rows': rows,
                   'peak_rss_mib': rss}, f, indent=1)
    with open(os.path.join(out, 'results.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['case', 'config', 'median_s', 'min_s', 'ratio_to_stock',
                    'net_ratio_to_stock'])
        for r in rows:
            net, rat = r['net_ratio_to_stock'], r['ratio_to_stock']
            w.writerow([r['case'], r['config'], '%.4f' % r['median_s'],
                        '%.4f' % r['min_s'],
                        '' if rat is None else '%.3f' % rat,
                        '' if net is None else '%.3f' % net])
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        # ratios to stock: the cases that have a stock run
        cnames = [c for c, _ in cases if 'stock' in res[c]]
        if cnames:
            fig, ax = plt.subplots(figsize=(10, 4))
            for j, k in enumerate(('off', 'on', 'check')):
                ax.bar([i + 0.27 * j for i in range(len(cnames))],
                       [next(r['ratio_to_stock'] for r in rows
                             if r['case'] == c and r['config'] == k)
                        for c in cnames], 0.27, label=k)
            ax.axhline(1.0, color='k', lw=0.8)
            ax.set_xticks([i + 0.27 for i in range(len(cnames))], cnames,
                          rotation=30, ha='right')
            ax.set_ylabel('time / stock')
            ax.legend()
            fig.tight_layout()
            fig.savefig(os.path.join(out, 'results.png'))
            print('plot: %s' % os.path.join(out, 'results.png'))
    except ImportError:
        print('no plot: python3-matplotlib is not installed')
    print('results: %s, %s' % (os.path.join(out, 'results.json'),
                               os.path.join(out, 'results.csv')))
    return 0

if __name__ == '__main__':
    sys.exit(main())

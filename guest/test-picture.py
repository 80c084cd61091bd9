#!/usr/bin/python3
"""Test scripts/tag-storage-picture.py on synthetic recordings.

Runs the script on made-up query-mte-tag-storage snapshots and violation
events, reads the PNG back and checks its pixels and the summary line.
Prints TAP lines; exits 1 on any failure."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import matplotlib
matplotlib.use('Agg')
import matplotlib.image  # noqa: E402
import numpy as np  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(TOP, 'scripts', 'tag-storage-picture.py')
BS = 4096
RGB = {'never-written': '#f0f0f0', 'tag': '#1f77b4', 'data': '#ff7f0e',
       'mixed': '#d62728'}
results = []


def check(name, cond, *diag):
    results.append(cond)
    print(f'{"ok" if cond else "not ok"} {len(results)} {name}')
    if not cond:
        for d in filter(None, diag):
            print(f'# {d}')


def region(cb, nblocks, owners=None):
    """A region whose carveout has nblocks; owners maps index -> owner,
    None leaves out "blocks" (checker off)."""
    r = {'tagged-base': 0x40000000, 'tagged-size': 0x80000000,
         'carveout-base': cb, 'carveout-size': nblocks * BS,
         'violations': {'tag-read-of-data': 1, 'data-read-of-tags': 0,
                        'tagged-access-to-tag-storage': 2,
                        'tag-read-of-unwritten': 0}, 'unknown': 7}
    if owners is not None:
        runs = []
        for i in range(nblocks):
            owner = owners.get(i, 'never-written')
            if runs and runs[-1]['owner'] == owner:
                runs[-1]['size'] += BS
            else:
                runs.append({'base': cb + i * BS, 'size': BS, 'owner': owner})
        r['blocks'] = runs
    return r


def snap(t, *regions):
    return {'t': t, 'info': {'binding': 1, 'block-size': BS, 'check': 'event',
                             'interleave': False, 'init': 'zero',
                             'regions': list(regions)}}


def event(t, rule, addr):
    return {'t': t, 'event': {'rule': rule, 'paddr': 0x40001000,
                              'tag-storage-addr': addr, 'accessor': 'cpu',
                              'cpu-index': 0, 'pc': 0x1234, 'extra': 1}}


def run(tmp, name, lines, *opts):
    """Write a recording, run the script; return (rc, stdout, stderr, img)."""
    rec, png = os.path.join(tmp, name + '.jsonl'), os.path.join(tmp,
                                                                name + '.png')
    with open(rec, 'w') as f:
        for line in lines:
            f.write(json.dumps(line) + '\n\n')
    p = subprocess.run(['/usr/bin/python3', SCRIPT, rec, png, *opts],
                       capture_output=True, text=True)
    img = (matplotlib.image.imread(png)[..., :3]
           if p.returncode == 0 and os.path.exists(png) else None)
    return p.returncode, p.stdout.strip(), p.stderr.strip(), img, png


def mask(img, owner, tol=0.03):
    rgb = np.array([int(RGB[owner][i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return (abs(img - rgb) < tol).all(axis=2)


def plot_box(img):
    """Pixel box of the owner grid: rows/columns with at least half as many
    owner-coloured pixels as the fullest (the legend's patches and
    antialiased frame count far fewer), shrunk past the spines."""
    coloured = sum(mask(img, o) for o in RGB).astype(bool)
    per_row, per_col = coloured.sum(axis=1), coloured.sum(axis=0)
    ys = np.nonzero(per_row > per_row.max() / 2)[0]
    xs = np.nonzero(per_col > per_col.max() / 2)[0]
    return img[ys.min() + 4:ys.max() - 3, xs.min() + 4:xs.max() - 3]


def black(img):
    return int((plot_box(img) < 0.25).all(axis=2).sum())


def centre(m):
    ys, xs = np.nonzero(m)
    return ys.mean(), xs.mean()


def main():
    tmp = tempfile.mkdtemp(prefix='test-picture-')
    cb0, cb1 = 0xC0000000, 0xD0000000
    a, b = 5, 10
    snaps = [snap(2, region(cb0, 64, {a: 'mixed'}),
                  region(cb1, 64, {b: 'data'})),
             snap(0, region(cb0, 64, {}), region(cb1, 64)),
             snap(1, region(cb0, 64, {a: 'tag'}),
                  region(cb1, 64, {b: 'data'}))]
    ev = event(1.5, 'tag-read-of-data', cb0 + a * BS + 100)
    rc, out, err, img, png = run(tmp, 'two', snaps + [ev])
    want = (f'{png}: 3 snapshots over 2 s, 2 blocks shown in 2 rows '
            f'(of 128), 1 violations marked')
    check('two regions: exit 0', rc == 0, err)
    check('two regions: summary', out == want, f'got  {out!r}',
          f'want {want!r}')
    if img is None:
        img = np.ones((600, 1000, 3))
    m = {o: mask(img, o) for o in RGB}
    n = {o: int(m[o].sum()) for o in RGB}
    check('two regions: tag, data, mixed, never-written areas drawn',
          min(n.values()) > 2000, f'pixel counts {n}')
    if min(n.values()) > 2000:
        (ty, tx), (dy, dx), (my, mx) = (centre(m[o]) for o in
                                        ('tag', 'data', 'mixed'))
        check('two regions: tag before mixed, block A above block B',
              tx < mx and ty < dy and abs(ty - my) < 5,
              f'tag at {tx, ty}, data at {dx, dy}, mixed at {mx, my}')
    else:
        check('two regions: tag before mixed, block A above block B', False)
    rc2, out2, err2, img2, _ = run(tmp, 'two-quiet', snaps)
    check('two regions: event marker drawn in the grid',
          rc2 == 0 and black(img) > 20 and black(img2) == 0,
          f'black pixels {black(img)} with the event, '
          f'{black(img2) if img2 is not None else None} without', err2)
    check('two regions without event: 0 violations marked',
          out2.endswith('2 blocks shown in 2 rows (of 128), 0 violations '
                        'marked'), out2)

    rc, out, err, img, png = run(tmp, 'none', [ev])
    check('no snapshot: exit 1 with a message',
          rc == 1 and 'no snapshot' in err and not os.path.exists(png),
          f'rc {rc}, stderr {err!r}')

    many = {i: 'tag' for i in range(1000)}
    rc, out, err, img, png = run(tmp, 'many', [snap(0, region(cb0, 2048,
                                                              many))],
                                 '--max-rows', '50')
    check('1000 tag blocks, --max-rows 50: 50 rows',
          rc == 0 and out == f'{png}: 1 snapshots over 0 s, 1000 blocks '
          'shown in 50 rows (of 2048), 0 violations marked', out, err)
    check('1000 tag blocks: all tag', img is not None and
          mask(img, 'tag').sum() > 10000 and mask(img, 'mixed').sum() < 500)
    mixed = {i: ('tag', 'data')[i % 2] for i in range(1000)}
    rc, out, err, img, png = run(tmp, 'merge', [snap(0, region(cb0, 2048,
                                                               mixed))],
                                 '--max-rows', '50', '--title', 'merge')
    check('tag and data in one bin: mixed',
          rc == 0 and img is not None and mask(img, 'mixed').sum() > 10000
          and mask(img, 'tag').sum() < 500, out, err)

    r3 = 'tagged-access-to-tag-storage'
    rc, out, err, img, png = run(tmp, 'r3', [snap(0, region(cb0, 64, {})),
                                             event(0.05, r3, cb0 + 7 * BS)])
    check('event on a never-written block adds its row',
          rc == 0 and out.endswith('1 blocks shown in 1 rows (of 64), '
                                   '1 violations marked')
          and black(img) > 20, out, err)
    rc, out, err, img, png = run(tmp, 'empty', [snap(0, region(cb0, 64))])
    check('nothing written: empty picture',
          rc == 0 and out.endswith('0 blocks shown in 0 rows (of 64), '
                                   '0 violations marked'), out, err)
    print(f'1..{len(results)}')
    if all(results):
        shutil.rmtree(tmp)
        sys.exit(0)
    print(f'# recordings and pictures kept in {tmp}')
    sys.exit(1)


if __name__ == '__main__':
    main()

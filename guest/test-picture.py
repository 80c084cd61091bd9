#!/usr/bin/python3
"""Test scripts/tag-storage-picture.py on synthetic recordings.

Runs the script on made-up query-mte-tag-storage snapshots and violation
events, reads the PNG back and checks its pixels and the summary line;
with --reuse, blocks with known owner changes: the counts of the summary
(the same as scripts/kernel-report.py's on a random recording) and the
bars of the lower panel, their heights and places.  Prints TAP lines;
exits 1 on any failure."""
import importlib.util
import json
import os
import random
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
# the bars of --reuse
BARS = {'data to tags': '#2ca02c', 'tags to data': '#9467bd'}
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
    colour = RGB.get(owner) or BARS[owner]
    rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
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


def grid_bottom(img):
    """The last pixel row of the owner grid (see plot_box): the end of the
    first run of 20 or more rows with owner colours (the lower panel's
    lines in those colours are 2 or 3 rows thick)"""
    coloured = sum(mask(img, o) for o in RGB).astype(bool)
    per_row = coloured.sum(axis=1)
    full = per_row > per_row.max() / 2
    y = 0
    while y < len(full):
        end = y
        while end < len(full) and full[end]:
            end += 1
        if end - y >= 20:
            return end - 1
        y = end + 1
    return len(full) - 1


def bars(img, what):
    """[(x centre, height)] of the bars of colour @what under the grid, left
    to right: runs of columns with that colour at least 40 px wide (the
    legend's patch is narrower), height that of their middle column"""
    m = mask(img, what)
    m[:grid_bottom(img) + 1] = False
    cols = m.sum(axis=0)
    out, x = [], 0
    while x < len(cols):
        if not cols[x]:
            x += 1
            continue
        end = x
        while end < len(cols) and cols[end]:
            end += 1
        if end - x >= 40:
            out.append(((x + end - 1) / 2, int(cols[(x + end) // 2])))
        x = end
    return out


def reuse_series():
    """Snapshots 0-3 s of blocks with known owner changes: data to tags
    (tag or mixed) 3, 1 and 1 times between snapshots 0-1, 1-2 and 2-3
    (4 blocks: block 3 twice), tags to data 0, 2 and 1 times (3 blocks)"""
    series = {0: 'D D T T', 1: 'D M T D', 2: 'T T D D', 3: 'D T D T',
              4: 'N D D D', 5: 'D D D D', 6: 'D T T T'}
    name = {'N': 'never-written', 'D': 'data', 'T': 'tag', 'M': 'mixed'}
    return [snap(j, region(0xC0000000, 64, {
        b: name[s.split()[j]] for b, s in series.items()}))
        for j in range(4)]


def kernel_report_reuse(snaps):
    """scripts/kernel-report.py's count of blocks from data to tags and
    back, for these snapshots"""
    spec = importlib.util.spec_from_file_location(
        'kernel_report', os.path.join(TOP, 'scripts', 'kernel-report.py'))
    kr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kr)
    res = {'snapshots': []}
    for s in snaps:
        own = bytearray()
        for r in s['info']['regions']:
            for run in r['blocks']:
                own += bytes([kr.OWNERS[run['owner']]]) * (run['size'] // BS)
        res['snapshots'].append((s['t'], None, own))
    r = kr.reuse_of(res)
    return r['data_to_tags'], r['tags_to_data']


def reuse_tests(tmp):
    snaps = reuse_series()
    rc, out, err, img, png = run(tmp, 'reuse', snaps, '--reuse')
    want = (f'{png}: 4 snapshots over 3 s, 7 blocks shown in 7 rows (of 64), '
            f'0 violations marked, 4 blocks from data to tags, 3 from tags '
            f'to data')
    check('reuse: exit 0 and a PNG with the lower panel',
          rc == 0 and img is not None and img.shape[0] >= 800, err,
          f'image {None if img is None else img.shape}')
    check('reuse: summary counts blocks from data to tags and back',
          out == want, f'got  {out!r}', f'want {want!r}')
    if img is None:
        img = np.ones((850, 1000, 3))
    up, down = bars(img, 'data to tags'), bars(img, 'tags to data')
    hu, hd = [h for _, h in up], [h for _, h in down]
    check('reuse: data to tags bars 3, 1, 1 in the 3 intervals',
          len(up) == 3 and up[0][0] < up[1][0] < up[2][0] and
          2.7 < hu[0] / hu[1] < 3.3 and abs(hu[1] - hu[2]) <= 2,
          f'bars (x, height) {up}')
    check('reuse: tags to data bars 2, 1 in the last 2 intervals',
          len(down) == 2 and len(up) == 3 and
          all(abs(d[0] - u[0]) < 5 for d, u in zip(down, up[1:])) and
          1.8 < hd[0] / hd[1] < 2.2 and
          # to the same scale as the bars up
          abs(hd[1] - hu[1]) <= 0.15 * hu[1],
          f'bars (x, height) {down}, up {up}')
    rc, out, err, img2, png = run(tmp, 'reuse-off', snaps)
    check('reuse: without --reuse no counts and no bars',
          rc == 0 and out.endswith('0 violations marked') and
          img2 is not None and not mask(img2, 'data to tags').any() and
          not mask(img2, 'tags to data').any(), out, err)
    same = [snap(j, region(0xC0000000, 64, {1: 'data', 2: 'tag'}))
            for j in range(4)]
    rc, out, err, img3, png = run(tmp, 'reuse-none', same, '--reuse')
    check('reuse: owners unchanged, no bars',
          rc == 0 and out.endswith('0 violations marked, 0 blocks from data '
                                   'to tags, 0 from tags to data') and
          img3 is not None and not bars(img3, 'data to tags') and
          not bars(img3, 'tags to data'), out, err)
    ev = event(1.5, 'data-read-of-tags', 0xC0000000 + 2 * BS + 16)
    rc, out, err, img4, png = run(tmp, 'reuse-event', snaps + [ev],
                                  '--reuse')

    def lower_black(im):
        """black pixels inside the lower panel's frame (its legend and
        title are outside): between the rows under the grid that are dark
        across the grid's width, its spines"""
        coloured = sum(mask(im, o) for o in RGB).astype(bool)
        per_col = coloured[:grid_bottom(im)].sum(axis=0)
        xs = np.nonzero(per_col > per_col.max() / 2)[0]
        below = im[grid_bottom(im) + 5:, xs.min():xs.max() + 1]
        dark = (below < 0.25).all(axis=2)
        spines = np.nonzero(dark.mean(axis=1) > 0.9)[0]
        if len(spines) < 2:
            return 0
        return int(dark[spines[0] + 3:spines[-1] - 2, 3:-3].sum())
    check('reuse: violation marked in the lower panel too',
          rc == 0 and img4 is not None and
          lower_black(img4) - lower_black(img) > 10,
          f'black pixels under the grid {lower_black(img4) if rc == 0 else rc}'
          f' with the event, {lower_black(img)} without', err)
    # the same counts as kernel-report.py's, on a random recording
    rnd = random.Random(26)
    owners = ['never-written', 'data', 'tag', 'mixed']
    cur = {b: 'never-written' for b in range(40)}
    series = []
    for j in range(15):
        for b in cur:
            if rnd.random() < 0.3:
                cur[b] = rnd.choice(owners[1:])
        series.append(snap(j, region(0xC0000000, 64, dict(cur))))
    d, g = kernel_report_reuse(series)
    rc, out, err, _, png = run(tmp, 'reuse-random', series, '--reuse')
    check('reuse: random recording, the counts of kernel-report.py',
          rc == 0 and d > 0 and g > 0 and
          out.endswith(f', {d} blocks from data to tags, {g} from tags to '
                       f'data'), out, f'kernel-report: {d}, {g}', err)


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
    reuse_tests(tmp)
    print(f'1..{len(results)}')
    if all(results):
        shutil.rmtree(tmp)
        sys.exit(0)
    print(f'# recordings and pictures kept in {tmp}')
    sys.exit(1)


if __name__ == '__main__':
    main()

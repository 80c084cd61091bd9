#!/usr/bin/python3
"""Draw who owns each MTE tag storage block over time.

Usage: tag-storage-picture.py RECORDING.jsonl OUT.png [--title TEXT]
                              [--max-rows N]

RECORDING holds JSON lines: snapshots {"t": s, "info": <return value of
query-mte-tag-storage>} and violation events {"t": s, "event": {...}}.
The picture has time on x and the carveout blocks that were ever written
(or hit by a violation) on y, lowest address at the top, coloured by owner;
violations are black markers, one shape per rule.  More rows than
--max-rows are merged into that many bins of consecutive rows.  Prints
"OUT.png: S snapshots over T s, B blocks shown in R rows (of TOTAL),
V violations marked"; exits 1 if the recording has no snapshot."""
import argparse
import json
import sys

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

OWNERS = ['never-written', 'tag', 'data', 'mixed']
COLOURS = ['#f0f0f0', '#1f77b4', '#ff7f0e', '#d62728']
# the rules in order (R1 to R4), with their markers
MARKERS = {'tag-read-of-data': 'x', 'data-read-of-tags': '+',
           'tagged-access-to-tag-storage': '^', 'tag-read-of-unwritten': 'o'}
SHORT = {r: 'R%d' % (i + 1) for i, r in enumerate(MARKERS)}


def load(path):
    """Return (snapshots, events) as lists of (t, dict), sorted by t."""
    snapshots, events = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                sys.exit(f'{path}:{n}: {e}')
            if 'info' in rec:
                snapshots.append((float(rec['t']), rec['info']))
            elif 'event' in rec:
                events.append((float(rec['t']), rec['event']))
    return (sorted(snapshots, key=lambda s: s[0]),
            sorted(events, key=lambda e: e[0]))


def written(info):
    """Map block base -> owner index for the blocks not never-written."""
    bs, owners = info['block-size'], {}
    for region in info['regions']:
        for run in region.get('blocks', []):
            code = OWNERS.index(run['owner']) if run['owner'] in OWNERS else 0
            if code:
                for base in range(run['base'], run['base'] + run['size'], bs):
                    owners[base] = code
    return owners


def block_of(addr, info):
    """Base of the carveout block holding addr, or None."""
    bs = info['block-size']
    for r in info['regions']:
        base = r['carveout-base']
        if base <= addr < base + r['carveout-size']:
            return base + (addr - base) // bs * bs
    return None


def rows(snapshots, events, max_rows):
    """Return (row bases, bins, grid[bin, snapshot], marks (t, bin, rule))."""
    grids = [written(info) for _, info in snapshots]
    bases, placed = set().union(*grids), []
    for t, ev in events:
        base = block_of(ev.get('tag-storage-addr', -1), snapshots[-1][1])
        if base is not None:
            bases.add(base)
            placed.append((t, base, ev.get('rule')))
    order = sorted(bases)
    if not order:
        return order, [], np.zeros((0, len(snapshots)), np.int8), []
    index = {b: i for i, b in enumerate(order)}
    full = np.zeros((len(order), len(snapshots)), np.int8)
    for j, owners in enumerate(grids):
        for base, code in owners.items():
            full[index[base], j] = code
    bins = np.array_split(np.arange(len(order)), min(len(order), max_rows))
    grid = np.zeros((len(bins), len(snapshots)), np.int8)
    bin_of = np.empty(len(order), int)
    for k, members in enumerate(bins):
        bin_of[members] = k
        has = [(full[members] == c).any(axis=0) for c in range(4)]
        grid[k] = np.select([has[3] | (has[1] & has[2]), has[1], has[2]],
                            [3, 1, 2], 0)
    marks = [(t, bin_of[index[b]], rule) for t, b, rule in placed]
    return order, bins, grid, marks


def render(out, title, snapshots, order, bins, grid, marks):
    """Draw the picture into out (PNG)."""
    ts = [t for t, _ in snapshots]
    width = float(np.median(np.diff(ts))) if len(ts) > 1 else 0.1
    edges = ts + [ts[-1] + (width or 0.1)]
    fig, ax = plt.subplots(figsize=(10, 6), dpi=100)
    if len(bins):
        ax.pcolormesh(edges, np.arange(len(bins) + 1), grid, vmin=-0.5,
                      vmax=3.5, cmap=ListedColormap(COLOURS), shading='flat')
        ax.set_ylim(len(bins), 0)
        ticks = sorted({int(round(k)) for k in
                        np.linspace(0, len(bins) - 1, min(len(bins), 12))})
        ax.set_yticks([k + 0.5 for k in ticks])
        ax.set_yticklabels([hex(order[bins[k][0]]) for k in ticks])
    else:
        ax.set_yticks([])
        ax.text(0.5, 0.5, 'no block written', ha='center',
                transform=ax.transAxes)
    ax.set_xlim(edges[0], edges[-1])
    handles = [Patch(facecolor=c, edgecolor='grey', label=o)
               for o, c in zip(OWNERS, COLOURS)]
    for rule in sorted({r for _, _, r in marks}, key=str):
        pts = [(t, k + 0.5) for t, k, r in marks if r == rule]
        style = dict(marker=MARKERS.get(rule, 'd'), linestyle='none',
                     color='black', markersize=8,
                     label=SHORT.get(rule, str(rule)),
                     markerfacecolor='none'
                     if rule == 'tag-read-of-unwritten' else 'black')
        ax.plot(*zip(*pts), **style)
        handles.append(Line2D([], [], **style))
    ax.legend(handles=handles, loc='upper left', bbox_to_anchor=(1.01, 1),
              fontsize='small')
    counts = {r: 0 for r in MARKERS}
    for region in snapshots[-1][1]['regions']:
        for r, n in region.get('violations', {}).items():
            counts[r] = counts.get(r, 0) + n
    ax.set_title(title + '\n' + ', '.join(f'{SHORT[r]} {counts[r]}'
                                          for r in MARKERS))
    ax.set_xlabel('time (s)')
    ax.set_ylabel('tag storage block (guest physical)')
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('recording')
    p.add_argument('out')
    p.add_argument('--title', default='MTE tag storage owners over time')
    p.add_argument('--max-rows', type=int, default=400)
    args = p.parse_args()
    if args.max_rows < 1:
        p.error('--max-rows must be at least 1')
    snapshots, events = load(args.recording)
    if not snapshots:
        sys.exit(f'{args.recording}: no snapshot (no line with "info")')
    order, bins, grid, marks = rows(snapshots, events, args.max_rows)
    render(args.out, args.title, snapshots, order, bins, grid, marks)
    last = snapshots[-1][1]
    total = sum(r['carveout-size'] // last['block-size']
                for r in last['regions'])
    print(f'{args.out}: {len(snapshots)} snapshots over '
          f'{snapshots[-1][0] - snapshots[0][0]:g} s, {len(order)} blocks '
          f'shown in {len(bins)} rows (of {total}), {len(marks)} violations '
          f'marked')


if __name__ == '__main__':
    main()

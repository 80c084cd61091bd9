#!/usr/bin/python3
"""Draw who owns each MTE tag storage block over time.

Usage: tag-storage-picture.py RECORDING.jsonl OUT.png [--title TEXT]
                              [--max-rows N] [--reuse]

RECORDING holds JSON lines: snapshots {"t": s, "info": <return value of
query-mte-tag-storage>} and violation events {"t": s, "event": {...}}.
The picture has time on x and the carveout blocks that were ever written
(or hit by a violation) on y, lowest address at the top, coloured by owner;
violations are black markers, one shape per rule.  More rows than
--max-rows are merged into that many bins of consecutive rows.

--reuse adds a lower panel on the same time axis: per snapshot, how many
blocks the tags own (tag), the data own (data) and both (mixed), as lines
(right axis); per snapshot interval, as bars (left axis), the blocks that
went from data to tags (data-owned in the snapshot before, tag or mixed
in this one: up) and from tags to data (tag-owned before, data-owned
now: down); violations as in the grid, along its top.  It counts every
block, whatever --max-rows merges.

Prints "OUT.png: S snapshots over T s, B blocks shown in R rows (of
TOTAL), V violations marked", with --reuse followed by ", D blocks from
data to tags, G from tags to data": the blocks data-owned in some
snapshot and tag or mixed in a later one, and tag-owned in some snapshot
and data-owned in a later one, each block counted once (as in the
"reuse" of scripts/kernel-report.py).  Exits 1 if the recording has no
snapshot."""
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
# --reuse: the bars of blocks changing owner
D2T_COLOUR, T2D_COLOUR = '#2ca02c', '#9467bd'
TAG, DATA, MIXED = (OWNERS.index(o) for o in ('tag', 'data', 'mixed'))


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
    """Return (row bases, bins, grid[bin, snapshot], marks (t, bin, rule),
    full[row, snapshot]: each row's owner code, before the bins)."""
    grids = [written(info) for _, info in snapshots]
    bases, placed = set().union(*grids), []
    for t, ev in events:
        base = block_of(ev.get('tag-storage-addr', -1), snapshots[-1][1])
        if base is not None:
            bases.add(base)
            placed.append((t, base, ev.get('rule')))
    order = sorted(bases)
    if not order:
        empty = np.zeros((0, len(snapshots)), np.int8)
        return order, [], empty, [], empty
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
    return order, bins, grid, marks, full


def reuse(full):
    """From full[block, snapshot]: (tag, data, mixed per snapshot; data to
    tags and tags to data per interval, [j] from snapshot j-1 to j, [0]
    is 0; blocks that went from data to tags and from tags to data at
    some time, each counted once)"""
    per = [(full == c).sum(axis=0) for c in (TAG, DATA, MIXED)]
    d2t, t2d = np.zeros(full.shape[1], int), np.zeros(full.shape[1], int)
    if full.shape[1] > 1:
        prev, cur = full[:, :-1], full[:, 1:]
        d2t[1:] = ((prev == DATA) & ((cur == TAG) | (cur == MIXED))).sum(0)
        t2d[1:] = ((prev == TAG) & (cur == DATA)).sum(0)
    # once per block: data (tags) in a snapshot before the one with tags
    # (data), not only the one just before
    was_data = np.maximum.accumulate(full == DATA, axis=1)
    was_tag = np.maximum.accumulate(full == TAG, axis=1)
    ever_d2t = (was_data[:, :-1] & np.isin(full[:, 1:], (TAG, MIXED))).any(1)
    ever_t2d = (was_tag[:, :-1] & (full[:, 1:] == DATA)).any(1)
    return per, d2t, t2d, int(ever_d2t.sum()), int(ever_t2d.sum())


def marker_style(rule):
    return dict(marker=MARKERS.get(rule, 'd'), linestyle='none',
                color='black', markersize=8, label=SHORT.get(rule, str(rule)),
                markerfacecolor='none'
                if rule == 'tag-read-of-unwritten' else 'black')


def render(out, title, snapshots, order, bins, grid, marks, reused=None):
    """Draw the picture into out (PNG); reused: reuse()'s, for the lower
    panel."""
    ts = [t for t, _ in snapshots]
    width = float(np.median(np.diff(ts))) if len(ts) > 1 else 0.1
    edges = ts + [ts[-1] + (width or 0.1)]
    if reused is None:
        fig, ax = plt.subplots(figsize=(10, 6), dpi=100)
    else:
        fig, (ax, low) = plt.subplots(
            2, 1, figsize=(10, 8.5), dpi=100, sharex=True,
            gridspec_kw={'height_ratios': [3, 1.4]})
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
        style = marker_style(rule)
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
    ax.set_ylabel('tag storage block (guest physical)')
    if reused is None:
        ax.set_xlabel('time (s)')
    else:
        render_reuse(low, edges, reused, marks)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def render_reuse(low, edges, reused, marks):
    """The lower panel: owners per snapshot, changes per interval"""
    (tag, data, mixed), d2t, t2d, ever_d2t, ever_t2d = reused
    mid = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    bar_w = [0.7 * (b - a) for a, b in zip(edges[:-1], edges[1:])]
    low.bar(mid, d2t, bar_w, color=D2T_COLOUR, label='data to tags')
    low.bar(mid, -t2d, bar_w, color=T2D_COLOUR, label='tags to data')
    low.axhline(0, color='grey', lw=0.6)
    top = max(1, int(d2t.max(initial=0)))
    bottom = int(t2d.max(initial=0))
    # up and down to the same scale; no room below 0 if nothing went down
    low.set_ylim(-1.15 * bottom if bottom else -0.05 * top,
                 1.15 * max(top, bottom))
    low.set_ylabel('blocks changed\nsince the snapshot before')
    low.yaxis.set_major_formatter(plt.FuncFormatter(
        lambda v, _: '%d' % abs(v)))
    low.set_xlabel('time (s)')
    own = low.twinx()
    for n, o in ((tag, 'tag'), (data, 'data'), (mixed, 'mixed')):
        own.stairs(n, edges, color=COLOURS[OWNERS.index(o)], lw=1.8,
                   label='blocks %s-owned' % o if o != 'mixed'
                   else 'blocks mixed')
    # the lines stay below the violation markers
    own.set_ylim(0, 1.25 * max(1, int(max(tag.max(), data.max(),
                                           mixed.max()))))
    own.set_ylabel('blocks owned')
    handles = low.get_legend_handles_labels()[0] + \
        own.get_legend_handles_labels()[0]
    # violations along the top, at their times
    for rule in sorted({r for _, _, r in marks}, key=str):
        style = marker_style(rule)
        low.plot([t for t, _, r in marks if r == rule],
                 [0.93] * sum(1 for _, _, r in marks if r == rule),
                 transform=low.get_xaxis_transform(), clip_on=False,
                 **style)
        handles.append(Line2D([], [], **style))
    # under the panel: beside it, with the right axis, the panels would
    # narrow
    low.legend(handles=handles, loc='upper center', fontsize='small',
               bbox_to_anchor=(0.5, -0.28), ncol=min(len(handles), 4))
    low.set_title('reuse: %d blocks from data to tags, %d from tags to data'
                  % (ever_d2t, ever_t2d), fontsize='medium')


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('recording')
    p.add_argument('out')
    p.add_argument('--title', default='MTE tag storage owners over time')
    p.add_argument('--max-rows', type=int, default=400)
    p.add_argument('--reuse', action='store_true',
                   help='add the panel of blocks changing owner')
    args = p.parse_args()
    if args.max_rows < 1:
        p.error('--max-rows must be at least 1')
    snapshots, events = load(args.recording)
    if not snapshots:
        sys.exit(f'{args.recording}: no snapshot (no line with "info")')
    order, bins, grid, marks, full = rows(snapshots, events, args.max_rows)
    reused = reuse(full) if args.reuse else None
    render(args.out, args.title, snapshots, order, bins, grid, marks, reused)
    last = snapshots[-1][1]
    total = sum(r['carveout-size'] // last['block-size']
                for r in last['regions'])
    print(f'{args.out}: {len(snapshots)} snapshots over '
          f'{snapshots[-1][0] - snapshots[0][0]:g} s, {len(order)} blocks '
          f'shown in {len(bins)} rows (of {total}), {len(marks)} violations '
          f'marked' + (f', {reused[3]} blocks from data to tags, '
                       f'{reused[4]} from tags to data' if reused else ''))


if __name__ == '__main__':
    main()

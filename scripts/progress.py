#!/usr/bin/python3
"""Condense ninja's output to a progress line every 5% plus every error."""
import re
import sys

last = -1
step = re.compile(r'^\[(\d+)/(\d+)\] ')
for line in sys.stdin:
    m = step.match(line)
    if not m:
        sys.stdout.write(line)
        continue
    done, total = int(m.group(1)), int(m.group(2))
    pct = done * 100 // total
    if pct // 5 != last // 5 or done == total:
        print(f'    [{done}/{total}] {pct}%', flush=True)
        last = pct

#!/usr/bin/python3
"""Count TAP results of meson's testlog.json and our extra checks.

Prints failing names, then one line "N passed, N failed"; exits 1 on any
failure or when nothing ran."""
import json
import os
import re
import sys

results = sys.argv[1]
passed, failed = 0, []
tap = re.compile(r'^(not ok|ok)\b\s*\d*\s*-?\s*(.*)$')

log = os.path.join(results, 'testlog.json')
if os.path.exists(log):
    for line in open(log):
        test = json.loads(line)
        sub = 0
        for out in test.get('stdout', '').splitlines():
            m = tap.match(out)
            if not m or out.startswith('ok') and '# SKIP' in out:
                if m:
                    failed.append(test['name'] + ': skipped ' + m.group(2))
                continue
            sub += 1
            if m.group(1) == 'ok':
                passed += 1
            else:
                failed.append(test['name'] + ': ' + m.group(2))
        if test.get('result') != 'OK':
            failed.append('%s: %s' % (test['name'], test.get('result')))
        elif sub == 0:
            failed.append(test['name'] + ': no TAP results')
else:
    failed.append('meson test did not run')

extra = os.path.join(results, 'extra.tap')
if os.path.exists(extra):
    for out in open(extra):
        m = tap.match(out.strip())
        if m and m.group(1) == 'ok':
            passed += 1
        elif m:
            failed.append(m.group(2))

for f in failed:
    print('FAILED: ' + f)
print('%d passed, %d failed' % (passed, len(failed)))
sys.exit(1 if failed or not passed else 0)

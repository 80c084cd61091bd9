#!/bin/sh
# How guest/run-reuse.py excuses a known, intermittent race of a reuse
# kernel (--known-race, used by reuse-kernel.sh at -smp 4): on synthetic
# snapshots and QEMU logs, only the exact shape of the race is excused
# (see guest/test-run-reuse.py)
set -eu
exec /usr/bin/python3 "$(dirname "$0")/../test-run-reuse.py"

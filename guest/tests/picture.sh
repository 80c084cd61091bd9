#!/bin/sh
# Tag storage picture (scripts/tag-storage-picture.py) drawn from synthetic
# recordings, checked pixel by pixel, with --reuse too: blocks with known
# owner changes give the summary's counts (the same as
# scripts/kernel-report.py's) and the lower panel's bars (see
# guest/test-picture.py)
set -eu
exec /usr/bin/python3 "$(dirname "$0")/../test-picture.py"

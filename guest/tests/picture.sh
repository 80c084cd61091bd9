#!/bin/sh
# Tag storage picture (scripts/tag-storage-picture.py) drawn from synthetic
# recordings, checked pixel by pixel (see guest/test-picture.py)
set -eu
exec /usr/bin/python3 "$(dirname "$0")/../test-picture.py"

#!/bin/sh
# scripts/run-kernel.sh, as a kernel developer uses it (TAP lines
# run-kernel/<case>):
# - bad input: a missing image, --smp 0, --binding v4, -m 12Q, an unknown
#   option, a file that is not a kernel, an "Image" that prints nothing
#   (the arm64 header and zeros, --boot-timeout 5) and the vendored reuse
#   kernel panicking before /init (rdinit=/nonexistent): each exits 2
#   with exactly one line on standard error, "run-kernel: error: ...",
#   and it is the line for that input;
# - plain: the vendored RFC v3 port (../shared/vendor/rfc-kernel, checked
#   against its SHA256SUMS; without it this test fails), Image.xz and
#   System.map.xz as they are, -smp 1 -m 1G (half the time of 2G), the
#   workloads run with the plain
#   reuse workload: exit 0, report.json counts 0 violations of every rule
#   and no culprit, the owner map saw blocks go from data to tags
#   (reuse.data_to_tags > 0), the kernel's vmstat counters moved
#   (cma_alloc_success), every workload passes, the run has a peak RSS;
#   report.txt says PASS and nokaslr, tag-storage.png is a PNG;
# - merge: the port's known merge bug (mts.reuse=1,merge, see
#   reuse-kernel.sh): exit 1 and a culprit R3 whose accessor symbol is
#   mte_clear_page_tags+0x..., with its backtrace resolved where QEMU
#   gives one.
# QEMU_BIN=path runs another QEMU binary than build/obj's.
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
qemu=${QEMU_BIN:-}
. "$MTS_TOP/scripts/common.sh"
QEMU_BIN=${qemu:-$QEMU_BIN}
export MTS_QEMU="$QEMU_BIN"

out=$BUILD_ROOT/guest/logs/run-kernel
rm -rf "$out"
mkdir -p "$out"
fail=0
t0=$(date +%s)
rk() { "$TOP/scripts/run-kernel.sh" "$@"; }

# bad NAME PATTERN ARGS...: exit 2, one stderr line, matching PATTERN
bad() {
    name=$1 pat=$2
    shift 2
    rc=0
    rk "$@" --out "$out/$name" > "$out/$name.stdout" 2> "$out/$name.stderr" ||
        rc=$?
    lines=$(wc -l < "$out/$name.stderr")
    if [ $rc = 2 ] && [ "$lines" = 1 ] &&
       grep -q "^run-kernel: error: .*$pat" "$out/$name.stderr"; then
        echo "ok run-kernel/bad-$name exit 2: $(cat "$out/$name.stderr")"
    else
        echo "not ok run-kernel/bad-$name exit $rc, $lines stderr lines" \
             "(want 2, 1 matching '$pat'):"
        sed 's/^/#   /' "$out/$name.stderr" | head -n 10
        fail=1
    fi
}

src=$VENDOR/rfc-kernel
if ! (cd "$src" 2>/dev/null &&
      [ "$(grep -c -E '  (Image|System\.map)\.xz$' SHA256SUMS)" = 2 ] &&
      grep -E '  (Image|System\.map)\.xz$' SHA256SUMS |
      sha256sum -c --quiet - > /dev/null 2>&1); then
    echo "not ok run-kernel/vendored-kernel: no Image.xz and System.map.xz" \
         "matching SHA256SUMS in $src"
    exit 1
fi
image=$src/Image.xz
map=$src/System.map.xz

bad missing-image 'no kernel image' "$out/no-such-Image"
bad smp '--smp 0' "$image" --smp 0
bad binding "--binding: invalid choice: 'v4'" "$image" --binding v4
bad mem '-m 12Q' "$image" -m 12Q
bad option 'unrecognized arguments: --frobnicate' "$image" --frobnicate
printf 'this is not a kernel\n' > "$out/not-a-kernel.txt"
bad not-a-kernel 'is not an arm64 kernel Image' "$out/not-a-kernel.txt"
# the arm64 Image header (magic "ARM\x64" at 56) and nothing else
/usr/bin/python3 -c 'import sys; sys.stdout.buffer.write(
    bytes(56) + b"ARM\x64" + bytes(65536 - 60))' > "$out/silent-Image"
bad silent 'printed nothing on the serial console' "$out/silent-Image" \
    --boot-timeout 5 --runs suite-stock
bad panic 'panicked before /init.*Kernel panic' "$image" --smp 1 \
    --runs suite-stock --append rdinit=/nonexistent
t1=$(date +%s)
echo "# bad input cases: $((t1 - t0)) s"

# run NAME WANT-RC ARGS...: one report in $out/NAME
run() {
    name=$1 want=$2
    shift 2
    rc=0
    rk "$image" --system-map "$map" --smp 1 -m 1G --runs workloads \
        --out "$out/$name" "$@" > "$out/$name.stdout" \
        2> "$out/$name.stderr" || rc=$?
    if [ $rc != "$want" ]; then
        echo "not ok run-kernel/$name exit $rc, want $want"
        tail -n 30 "$out/$name.stdout" | sed 's/^/#   /'
        sed 's/^/#   stderr: /' "$out/$name.stderr" | head -n 5
        fail=1
        return 1
    fi
}

# judge NAME PYTHON-CONDITIONS: report.json of NAME (as r) meets each
# condition (one a line); prints the ones that fail
judge() {
    /usr/bin/python3 - "$out/$1/report.json" "$2" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
bad = [c for c in sys.argv[2].strip().splitlines() if not eval(c.strip())]
for c in bad:
    print('#   failed: ' + c.strip())
sys.exit(1 if bad else 0)
EOF
}

if run plain 0 --workload plain; then
    conds="
    r['violations'] == dict.fromkeys(['tag-read-of-data', 'data-read-of-tags', 'tagged-access-to-tag-storage', 'tag-read-of-unwritten'], 0)
    r['culprits'] == []
    r['reuse']['data_to_tags'] > 0
    r['reuse']['vmstat'].get('cma_alloc_success', 0) > 0
    r['workloads'] and all(w['verdict'] == 'pass' for w in r['workloads'])
    [x['name'] for x in r['runs']] == ['workloads'] and r['runs'][0]['peak_rss_mib'] > 0
    r['verdict'] == 'PASS'"
    if judge plain "$conds" > "$out/plain.judge" &&
       grep -q '^verdict: PASS' "$out/plain/report.txt" &&
       grep -q 'nokaslr' "$out/plain/report.txt" &&
       [ "$(head -c 4 "$out/plain/tag-storage.png" | od -An -c | tr -d ' ')" = \
         '211PNG' ]; then
        echo "ok run-kernel/plain exit 0, 0 violations," \
             "$(grep -E '^reuse ' "$out/plain/report.txt")," \
             "$(sed -n '/^workloads:/{n;p;}' "$out/plain/report.txt" |
                sed 's/  */ /g')"
    else
        echo "not ok run-kernel/plain (report: $out/plain/report.txt)"
        cat "$out/plain.judge"
        fail=1
    fi
fi
t2=$(date +%s)

if run merge 1 --workload merge; then
    conds="
    r['violations']['tagged-access-to-tag-storage'] > 0
    any(c['rule'] == 'R3' and (c['accessor']['symbol'] or '').startswith('mte_clear_page_tags+0x') for c in r['culprits'])
    all(c['accessor']['kind'] != 'cpu' or c['accessor']['symbol'] for c in r['culprits'])
    r['verdict'] == 'FAIL'"
    if judge merge "$conds" > "$out/merge.judge"; then
        echo "ok run-kernel/merge exit 1, $(grep -E '^violations' \
            "$out/merge/report.txt"); culprit:" \
            "$(grep -A1 -E '^  R3 ' "$out/merge/report.txt" | head -n 2 |
               sed 's/  */ /g' | tr '\n' ' ')"
    else
        echo "not ok run-kernel/merge (report: $out/merge/report.txt)"
        cat "$out/merge.judge"
        fail=1
    fi
fi
t3=$(date +%s)
echo "# times: bad input $((t1 - t0)) s, plain $((t2 - t1)) s," \
     "merge $((t3 - t2)) s; reports in $out"
exit $fail

#!/bin/sh
# Planted bugs prove the checker's report (issue 26, item 4): each patch of
# guest/rfc-bugs/ breaks the vendored reuse kernel (../shared/vendor/
# rfc-kernel) in one way; guest/rfc-bugs/build-kernel.sh builds it (cached
# by hash; a cold build takes about 10 minutes on 2 cores, switching bugs
# about 15 s) and guest/run-reuse.py --mode portbug boots it with
# -M virt,mte=on,tag-storage=on,tag-storage-check=log -smp 2 -m 2G and the
# reuse workload (mts.reuse=1).  TAP lines rfc-bugs/<bug>/<check>:
# - build: the kernel was built (paths of Image and System.map);
# - guest, violations: run-reuse.py's (a report of the rule names the
#   function, as accessor or last writer, --expect-culprit);
# - rules: the checker counted violations of the bug's rule and of no
#   other rule (R1-R4 at power-off);
# - warning (tag-before-reserve): the port's own WARN in
#   set_page_mte_tagged() (a page tagged without tag storage) printed;
# - corrupted (skip-migrate): the fill pages the guest found corrupted are
#   as many as the blocks reserved without cma_alloc_range()
#   (tag_storage_reserve_success - cma_alloc_success);
# - run-kernel (when scripts/run-kernel.sh exists): it exits 1 on the bug
#   kernel and its report.txt names the same function.
# Expected, per bug (the function names are what the runs showed):
#   tag-before-reserve  R2 only: copy_page (the reservation's migration)
#                       reads the tags mte_clear_page_tags wrote over data
#   free-while-tagged   R1 only; the release makes no access, so the
#                       report names the user-space reader of the tags
#                       (check_worker) and the data writer (main, refill)
#   skip-migrate        R2 only: the data's owner (check_pages) reads the
#                       tags written over its data (STG in main)
# A slow test (2.5 to 6 minutes a boot): run by make check-full, not make
# check.  QEMU_BIN=path runs another QEMU binary than build/obj's.
set -eu
MTS_TOP=$(cd "$(dirname "$0")/../.." && pwd)
qemu=${QEMU_BIN:-}
. "$MTS_TOP/guest/linux-lib.sh"
QEMU_BIN=${qemu:-$QEMU_BIN}

[ -d "$VENDOR/rfc-kernel" ] || {
    echo "not ok rfc-bugs/vendored-port: no $VENDOR/rfc-kernel"; exit 1; }
out=$logs/rfc-bugs.tap
: > "$out"
RULES="tag-read-of-data data-read-of-tags tagged-access-to-tag-storage tag-read-of-unwritten"

tap() { echo "$*" | tee -a "$out"; }

# vstat JSON NAME: the workload's /proc/vmstat delta NAME (0 if unchanged)
vstat() {
    /usr/bin/python3 -c 'import json, sys
print(json.load(open(sys.argv[1])).get("vmstat-delta", {}).get(sys.argv[2], 0))' "$1" "$2"
}

# bug NAME RULE FUNCTION...: build, boot, and judge one planted bug
bug() {
    name=$1 rule=$2
    shift 2
    t0=$(date +%s)
    if ! paths=$("$TOP/guest/rfc-bugs/build-kernel.sh" "$name" 2> "$logs/rfc-bugs_$name.build"); then
        tail -n 5 "$logs/rfc-bugs_$name.build" | sed 's/^/#   /' | tee -a "$out"
        tap "not ok rfc-bugs/$name/build (log: $logs/rfc-bugs_$name.build)"
        fail=1
        return
    fi
    image=$(echo "$paths" | sed -n 1p)
    map=$(echo "$paths" | sed -n 2p)
    tap "ok rfc-bugs/$name/build $image ($(( $(date +%s) - t0 )) s)"

    culprits=
    for f in "$@"; do culprits="$culprits --expect-culprit $rule:$f"; done
    json=$logs/rfc-bugs_$name.json
    con=$logs/rfc-bugs_$name.console
    rm -f "$json"
    rc=0
    # shellcheck disable=SC2086
    /usr/bin/python3 "$TOP/guest/run-reuse.py" --qemu "$QEMU_BIN" \
        --kernel "$image" --initrd "$initrd" --name "$name" \
        --machine tag-storage=on,tag-storage-check=log --extra "-smp 2" \
        --append "mts.reuse=1 mts.snapack" --timeout 900 \
        --program "$BUILD_ROOT/guest/reuse-workload" --mode portbug \
        --log "$con" --system-map "$map" --summary "$json" $culprits \
        > "$logs/rfc-bugs_$name.report" 2>&1 || rc=$?
    sed "s|reuse-kernel/$name/|rfc-bugs/$name/|" "$logs/rfc-bugs_$name.report" |
        tee -a "$out"
    if [ $rc != 0 ]; then
        grep -q '^not ok ' "$logs/rfc-bugs_$name.report" ||
            tap "not ok rfc-bugs/$name/run run-reuse.py exited $rc"
        fail=1
    fi

    # only the bug's rule
    counts=$( [ -f "$json" ] && /usr/bin/python3 -c 'import json, sys
v = json.load(open(sys.argv[1])).get("checker", {}).get("violations", {})
print(" ".join("%s=%d" % (r, v.get(r, -1)) for r in sys.argv[2:]))' "$json" $RULES)
    want=$(echo "$RULES" | tr ' ' '\n' | sed -n "${rule#R}p")
    others=$(echo "$counts" | tr ' ' '\n' | grep -v "^$want=" | grep -v '=0$' || true)
    if [ -n "$counts" ] && ! echo "$counts" | grep -q -E "(^| )$want=(0|-1)( |$)" &&
       [ -z "$others" ]; then
        tap "ok rfc-bugs/$name/rules $rule only: $counts"
    else
        tap "not ok rfc-bugs/$name/rules want $rule ($want) only, got: ${counts:-no summary}"
        fail=1
    fi

    case $name in
    tag-before-reserve)
        if grep -q 'WARNING: .*asm/mte\.h' "$con"; then
            tap "ok rfc-bugs/$name/warning the port's WARN (tagged without tag storage) printed"
        else
            tap "not ok rfc-bugs/$name/warning no WARN from set_page_mte_tagged() on the console"
            fail=1
        fi ;;
    skip-migrate)
        reserved=$(vstat "$json" tag_storage_reserve_success)
        moved=$(vstat "$json" cma_alloc_success)
        differ=$(sed -n 's/^# fill data checksum .* \([0-9][0-9]*\) pages differ from the pattern.*/\1/p' "$con" | tr -d '\r')
        if [ -n "$differ" ] && [ "$differ" -gt 0 ] &&
           [ "$differ" = $((reserved - moved)) ]; then
            tap "ok rfc-bugs/$name/corrupted $differ fill pages corrupted =" \
                "tag_storage_reserve_success $reserved - cma_alloc_success $moved"
        else
            tap "not ok rfc-bugs/$name/corrupted ${differ:-no} fill pages corrupted," \
                "tag_storage_reserve_success $reserved - cma_alloc_success $moved"
            fail=1
        fi ;;
    esac

    # the kernel developer's command (scripts/run-kernel.sh, when there)
    rk=$TOP/scripts/run-kernel.sh
    if [ -x "$rk" ]; then
        dir=$logs/rfc-bugs_$name.run-kernel
        rm -rf "$dir"
        rc=0
        "$rk" "$image" --system-map "$map" --out "$dir" \
            > "$logs/rfc-bugs_$name.run-kernel.log" 2>&1 || rc=$?
        hit=
        for f in "$@"; do
            grep -q -w "$f" "$dir/report.txt" 2>/dev/null && hit="$hit $f"
        done
        if [ $rc = 1 ] && [ -n "$hit" ]; then
            tap "ok rfc-bugs/$name/run-kernel exit 1, report.txt names$hit"
        else
            tail -n 5 "$logs/rfc-bugs_$name.run-kernel.log" | sed 's/^/#   /' | tee -a "$out"
            tap "not ok rfc-bugs/$name/run-kernel exit $rc (want 1), report.txt" \
                "names ${hit:-none} of: $* ($dir)"
            fail=1
        fi
    else
        tap "# rfc-bugs/$name/run-kernel: no $rk yet"
    fi
}

bug tag-before-reserve R2 copy_page mte_clear_page_tags
bug free-while-tagged R1 check_worker main
bug skip-migrate R2 check_pages main

grep '^not ok ' "$out" | sed 's/^/# FAILED: /' || true
echo "# $(grep -c '^ok ' "$out") ok, $(grep -c '^not ok ' "$out") not ok;" \
     "consoles and reports in $logs/rfc-bugs_*"
exit $fail

# Thin wrapper: the work is done by scripts/.
.PHONY: all deps prepare build demo shell check patches export check-series \
        check-each-patch \
        reset-tree bench sanitize sanitize-tsan clean

all: demo

deps:
	scripts/install-deps.sh

prepare:
	scripts/prepare-tree.sh

build: deps
	scripts/build.sh

# The main job: boot Linux with tag-storage=on and show tags in the carveout
demo: deps
	scripts/build.sh
	scripts/demo.sh

# Interactive guest shell with tag-storage=on
shell: deps
	scripts/build.sh
	scripts/demo.sh --shell

# Every test; .ci/run runs this
check: deps
	scripts/test.sh

# Regenerate patches/ from the commits in build/src
patches:
	scripts/update-patches.sh

# Two git format-patch series (overlay + patches) in build/export:
# fixes/ (for stable) and feature/ (on top of fixes)
export:
	scripts/export-series.sh

check-series:
	scripts/check-series.sh

# Each patch of both series: checkpatch, build, tests present (slow)
check-each-patch:
	scripts/check-each-patch.sh

# Drop commits in build/src that are not in patches/
reset-tree:
	rm -f build/src/.applied-tree
	git -C build/src reset -q --hard v10.2.2
	scripts/prepare-tree.sh

# QEMU with ASan and UBSan in build/asan, and our tests under it
sanitize: deps
	scripts/sanitize.sh

# QEMU with ThreadSanitizer in build/tsan, and the multi-vCPU checker runs
sanitize-tsan: deps
	scripts/sanitize.sh tsan

# Compare with stock QEMU 10.2.2 (builds it once in build/stock)
bench: deps
	NINJA_TARGETS=tests/qtest/mte-tag-storage/mte-tag-storage-guest.elf scripts/build.sh
	bench/run.py

clean:
	rm -rf build

# Thin wrapper: the work is done by scripts/.
.PHONY: all deps prepare build demo shell check check-full run-kernel \
        patches export check-series check-each-patch \
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

# Every test, and the long ones of guest/tests-full/ too
check-full: deps
	MTS_CHECK_FULL=1 scripts/test.sh

# A kernel developer's report on KERNEL (any arm64 Image, .gz or .xz):
#   make run-kernel KERNEL=Image [SYSTEM_MAP=System.map] [ARGS="--smp 4 ..."]
# (scripts/run-kernel.sh says what ARGS can hold; exit 2: cannot run)
run-kernel:
	@test -n "$(KERNEL)" || { echo "run-kernel: error: give KERNEL=IMAGE" \
	    "[SYSTEM_MAP=FILE] [ARGS=\"...\"]" >&2; exit 2; }
	scripts/install-deps.sh
	scripts/build.sh
	scripts/run-kernel.sh "$(KERNEL)" \
	    $(if $(SYSTEM_MAP),--system-map "$(SYSTEM_MAP)") $(ARGS)

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

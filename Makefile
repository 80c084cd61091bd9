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

# Write the commits of build/src back to patches/{local,fixes,feature}
patches:
	scripts/update-patches.sh

# The two series numbered for git send-email, with cover letters, in
# build/export/fixes and build/export/feature
export:
	scripts/export-series.sh

# patches/ is the tree we build, in make patches' form, checkpatch-clean
check-series:
	scripts/check-series.sh

# Each patch: applies, checkpatch, builds, passes the tests it has (slow)
check-each-patch:
	scripts/check-each-patch.sh

# Drop commits in build/src that are not in patches/
reset-tree:
	rm -f build/src/.applied-tree build/src/.applied-commit
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

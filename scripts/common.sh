# Shared settings for the mte-tag-storage scripts (sourced, POSIX sh).
# shellcheck shell=sh

QEMU_VERSION=10.2.2
DEBIAN_VERSION=1:10.2.2+ds-1

TOP=${MTS_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD_ROOT=${BUILD_ROOT:-$TOP/build}
SRC=$BUILD_ROOT/src             # prepared tree: pristine import + patches
OBJ=$BUILD_ROOT/obj             # meson build directory
DL=$BUILD_ROOT/download
VENDOR=${VENDOR:-$TOP/../shared/vendor}
HASHES=$TOP/scripts/qemu-source.sha256

# Top-level directories of this repo that hold overlay files at QEMU paths
OVERLAY_DIRS="hw include target tests docs"

QEMU_BIN=${MTS_QEMU:-$OBJ/qemu-system-aarch64}

# ccache: share hits between clones by hashing paths relative to the build
export CCACHE_BASEDIR="$BUILD_ROOT"
export CCACHE_NOHASHDIR=1
# depend mode: a miss costs one compiler run, not a preprocessor run too
export CCACHE_DEPEND=1

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Deterministic identity for the commits we create in the prepared tree
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-mte-tag-storage}"
export GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-mte-tag-storage@localhost}"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME"
export GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"

# Set PRIVATE_APT to apt-get options for a private configuration in $1
# whose sources.list has the remaining arguments, one line each; the
# system's sources are never edited.
private_apt() {
    pa_dir=$1
    shift
    mkdir -p "$pa_dir/lists/partial" "$pa_dir/sources.list.d"
    printf '%s\n' "$@" > "$pa_dir/sources.list"
    PRIVATE_APT="-o Dir::Etc::SourceList=$pa_dir/sources.list
 -o Dir::Etc::SourceParts=$pa_dir/sources.list.d
 -o Dir::State::Lists=$pa_dir/lists
 -o Debug::NoLocking=1 -o APT::Sandbox::User=root"
}

# is_local_patch PATCH: is PATCH one that patches/local.list keeps out of
# the exported series?  (The list holds the start of each subject.)
is_local_patch() {
    ilp_subject=$(sed -n 's/^Subject: \[PATCH\] //p' "$1")
    grep -v '^#' "$TOP/patches/local.list" | while read -r ilp_prefix; do
        case "$ilp_subject" in "$ilp_prefix"*) echo yes ;; esac
    done | grep -q yes
}

# apply_local_patches DIR: git am the patches of patches/local.list in DIR
apply_local_patches() {
    for alp in "$TOP"/patches/*.patch; do
        if is_local_patch "$alp"; then
            git -C "$1" am -q --keep-cr "$alp" ||
                die "local patch $(basename "$alp") does not apply"
        fi
    done
}

# List overlay files (paths relative to $TOP), one per line
overlay_files() {
    (cd "$TOP" && for d in $OVERLAY_DIRS; do
        [ -d "$d" ] && find "$d" -name __pycache__ -prune -o \
                            -type f ! -name '*~' ! -name '.*' -print
    done) | LC_ALL=C sort
}

# step_for SUBJECT: the patches/overlay-steps/*.diff whose first line,
# "# <prefix>", names the patch with SUBJECT (nothing if none does)
step_for() {
    for sf_step in "$TOP"/patches/overlay-steps/*.diff; do
        [ -f "$sf_step" ] || continue
        sf_prefix=$(sed -n '1s/^# //p' "$sf_step")
        case "$1" in "$sf_prefix"*) echo "$sf_step" ;; esac
    done
}

# Make sure the tools a build needs are present; explain what is missing.
need_tools() {
    miss=
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || miss="$miss $t"
    done
    [ -z "$miss" ] || die "missing tools:$miss (run scripts/install-deps.sh)"
}

# configure flags, shared by our build and the pristine build used in bench/
# The +ds source has no option ROMs or edk2 builds: the built QEMU finds
# Debian's (ipxe-qemu, qemu-efi-aarch64) through its firmware path.
FIRMWARE_PATH=/usr/lib/ipxe/qemu:/usr/share/qemu-efi-aarch64:/usr/share/qemu
CONFIGURE_FLAGS="--target-list=aarch64-softmmu --disable-docs
 --python=/usr/bin/python3 --enable-fdt=system --enable-slirp
 --firmwarepath=$FIRMWARE_PATH"
# The gdb that make check-tcg runs the gdbstub tests with (system-mode MTE
# needs gdb >= 16): MTS_GDB, else the vendored one (setup_gdb unpacks it)
if [ -n "${MTS_GDB:-}" ]; then
    CONFIGURE_FLAGS="$CONFIGURE_FLAGS --gdb=$MTS_GDB"
elif [ -f "$VENDOR/gdb-16.3-aarch64-elf.tar.xz" ]; then
    CONFIGURE_FLAGS="$CONFIGURE_FLAGS
 --gdb=$BUILD_ROOT/gdb-16.3/bin/aarch64-none-elf-gdb"
fi
# QEMU's configure names the compiler itself, so meson does not add ccache:
# use ccache's compiler links when they are installed.
if [ -x /usr/lib/ccache/gcc ] && [ -z "${MTS_NO_CCACHE:-}" ]; then
    CONFIGURE_FLAGS="$CONFIGURE_FLAGS --cc=/usr/lib/ccache/gcc
 --cxx=/usr/lib/ccache/g++"
fi

# link_firmware OBJ: run from a build tree, QEMU looks for firmware (option
# ROMs, edk2) under OBJ/qemu-bundle/ + the configured firmware path, so
# link the firmware path's directories there
link_firmware() {
    for lf_dir in $(echo "$FIRMWARE_PATH" | tr ':' ' '); do
        if [ -d "$lf_dir" ] && [ ! -e "$1/qemu-bundle$lf_dir" ]; then
            mkdir -p "$(dirname "$1/qemu-bundle$lf_dir")"
            ln -s "$lf_dir" "$1/qemu-bundle$lf_dir"
        fi
    done
}

# gdb >= 16 for the gdbstub tests: MTS_GDB, else the vendored gdb 16.3
setup_gdb() {
    if [ -z "${MTS_GDB:-}" ] && [ -f "$VENDOR/gdb-16.3-aarch64-elf.tar.xz" ]; then
        if [ ! -x "$BUILD_ROOT/gdb-16.3/bin/aarch64-none-elf-gdb" ]; then
            (cd "$VENDOR" && grep ' gdb-16.3-aarch64-elf.tar.xz$' SHA256SUMS |
                sha256sum -c --quiet -) || die "vendored gdb fails its checksum"
            tar -C "$BUILD_ROOT" -xf "$VENDOR/gdb-16.3-aarch64-elf.tar.xz"
        fi
        export MTS_GDB="$BUILD_ROOT/gdb-16.3/bin/aarch64-none-elf-gdb"
        export MTS_GDB_DATA_DIR="$BUILD_ROOT/gdb-16.3/share/gdb"
    fi
}

# configure_once OBJ FLAGS LOG: configure QEMU from $SRC in OBJ, unless it
# was already configured there with exactly FLAGS
configure_once() {
    setup_gdb
    if [ ! -f "$1/build.ninja" ] || [ ! -f "$1/.configure-flags" ] ||
       [ "$(cat "$1/.configure-flags")" != "$2" ]; then
        say "configuring QEMU in $1"
        rm -rf "$1"
        mkdir -p "$1"
        # shellcheck disable=SC2086
        (cd "$1" && "$SRC/configure" $2) > "$3" 2>&1 || {
            tail -n 30 "$3" >&2
            die "configure failed; full log in $3"
        }
        echo "$2" > "$1/.configure-flags"
    fi
}

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

# The series, in the order git am applies them: patches/local/ (packaging
# of this repository only: never sent), patches/fixes/ (fixes to upstream
# code), patches/feature/ (tag storage).  Each holds git format-patch files
# NNNN-*.patch and its cover letter, cover-letter.txt (subject line, blank
# line, text).  scripts/update-patches.sh writes them from build/src.
SERIES="local fixes feature"

# series_patches [SERIES...]: the patch files of SERIES (default: all), in
# order, one per line
series_patches() {
    for sp_series in ${*:-$SERIES}; do
        for sp_patch in "$TOP/patches/$sp_series"/[0-9]*.patch; do
            [ -f "$sp_patch" ] && echo "$sp_patch"
        done
    done
}

# commit_series COMMIT (in build/src): which series COMMIT belongs to, by
# its trailers: "Series: local", else any "Fixes:" (fixes), else feature
commit_series() {
    cs_trailers=$(git -C "$SRC" log -1 --format=%B "$1" |
                  git interpret-trailers --parse)
    if printf '%s\n' "$cs_trailers" | grep -qx 'Series: local'; then
        echo local
    elif printf '%s\n' "$cs_trailers" | grep -q '^Fixes: '; then
        echo fixes
    else
        echo feature
    fi
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

# Shared by bench/compare.sh and bench/scale.sh (sourced, not run): the
# binaries, the four systems under test, timing, medians, ratios and
# verdicts. The caller sets `root` (the package root), `mnt` (the mount
# point), `img` (the squashfs image) and `plain` (the plain directory)
# before mounting anything.
# shellcheck shell=bash
# shellcheck disable=SC2154 # root, mnt, img, plain: set by the caller
# shellcheck disable=SC2034 # bin, pkgctl, packagefs, index_cache: used by the caller

say() { printf 'bench: %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null || { say "installing $2"; apt-get install -y "$2" >&2; }; }

# pkgctl and packagefs: $BIN_DIR's when set (nothing is built), else this
# checkout's release build.
binaries() {
    if [ -n "${BIN_DIR:-}" ]; then
        bin=$BIN_DIR
    else
        say "building pkgctl and packagefs (release)"
        cargo build --release -p pkgctl -p packagefs >&2
        bin=${CARGO_TARGET_DIR:-target}/release
    fi
    pkgctl=$bin/pkgctl
    packagefs=$bin/packagefs
    if [ ! -x "$pkgctl" ] || [ ! -x "$packagefs" ]; then
        echo "bench: no pkgctl/packagefs in $bin" >&2
        exit 1
    fi
    # The index cache (ROOT/system/state/index/*.idx) exists where `packagefs
    # mount` knows --no-index-cache.
    if "$packagefs" mount --help 2>/dev/null | grep -q no-index-cache; then index_cache=1; else index_cache=0; fi
}

# Empties packagefs's index cache (package index images and union images),
# so that the next mount parses and merges every package.
clear_index() { rm -f "$root"/*/state/index/*.idx "$root"/*/state/index/*.tree; }

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", (b - a) / 1e6 }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# A / B with two decimals, n/a when either is missing.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 <= 0) print "n/a"; else printf "%.2f\n", a / b }'; }
# ok when VALUE <= TARGET, MISSED when above, n/a when VALUE is.
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { if (v == "n/a") print "n/a"; else if (v + 0 <= t + 0) print "ok"; else print "MISSED" }'; }
# One row of the targets block: LABEL VALUE "<= TARGET UNIT" (TARGET numeric).
target_row() { # LABEL VALUE TARGET UNIT
    printf '%-44s %9s   <= %-6s %-3s %s\n' "$1" "$2" "$3" "$4" "$(verdict "$2" "$3")"
}

mount_fs() { # SYSTEM [packagefs mount options...]
    local sys=$1
    shift
    case $sys in
        packagefs) "$packagefs" mount "$root" "$mnt" "$@" ;;
        squashfuse_ll) squashfuse_ll "$img" "$mnt" ;;
        squashfs) mount -t squashfs -o loop,ro "$img" "$mnt" ;;
        plain) mount --bind "$plain" "$mnt" ;;
    esac
}
unmount_fs() {
    case $1 in
        packagefs | squashfuse_ll) fusermount3 -u "$mnt" ;;
        *) umount "$mnt" ;;
    esac
}
# Times one mount: prints its milliseconds.
timed_mount() { # SYSTEM [options...]
    local t0 t1
    t0=$(now)
    mount_fs "$@"
    t1=$(now)
    ms "$t0" "$t1"
}
daemon_pid() {
    case $1 in
        packagefs) pgrep -n -f "packagefs mount $root $mnt" || true ;;
        squashfuse_ll) pgrep -n -f "squashfuse_ll $img" || true ;;
        *) true ;;
    esac
}
# The daemon's peak resident set in KiB (0 for in-kernel file systems).
peak_kib() {
    local pid
    pid=$(daemon_pid "$1")
    if [ -n "$pid" ]; then
        awk '/VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0
    else
        echo 0
    fi
}
# packagefs's FUSE request counts so far: "total N: lookup N, ...".
# Mount SYSTEM after drop_caches (packagefs: with its index cache emptied),
# then a cold and a warm find: appends the times to $work/SYSTEM.mount,
# .find and .wfind, keeps the listing in $work/SYSTEM.list and packagefs's
# request counts (mount and cold find) in $work/packagefs.requests, and
# leaves it mounted.
mount_and_find() { # SYSTEM
    local sys=$1 t0 t1
    [ "$sys" != packagefs ] || clear_index
    drop
    timed_mount "$sys" >>"$work/$sys.mount"
    t0=$(now); find "$mnt" -printf '%p %s %m %y\n' >"$work/$sys.list"; t1=$(now)
    ms "$t0" "$t1" >>"$work/$sys.find"
    if [ "$sys" = packagefs ]; then
        requests >"$work/packagefs.requests"
    fi
    t0=$(now); find "$mnt" -printf '%p %s %m %y\n' >/dev/null; t1=$(now)
    ms "$t0" "$t1" >>"$work/$sys.wfind"
}

requests() { getfattr --only-values -n user.packagefs.requests "$mnt" 2>/dev/null || true; }

# Unmounts whatever is left at $mnt (an interrupted run).
cleanup_mnt() {
    local _
    for _ in 1 2 3; do
        mountpoint -q "$mnt" 2>/dev/null || return 0
        fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
    done
}

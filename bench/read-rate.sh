#!/usr/bin/env bash
# Sequential read rate of large files through packagefs against one core's
# zstd decode rate of the same bytes in the same 64 KiB blocks: does one
# reader keep the decoding ahead of it on both cores (target >= 0.8x one
# core), and do two readers (target >= 1.6x one core)?
#
# The content is real machine code and data: this machine's /usr/lib and
# /usr/bin files concatenated into two files of SIZE_MIB each, packaged with
# `pkgctl create` (zstd, 64 KiB chunks, pkgctl's default level) in one
# package. One core's rate is `zstd -b<level> -B65536` on the first file:
# single-threaded decompression of independent 64 KiB blocks, as the heap
# stores them. Before each timed read the caches are dropped and the package
# file is read back into the page cache, so that the figure is decoding and
# FUSE, not the disk (which `cold read` rows of compare.sh include).
#
# Usage: bench/read-rate.sh [WORKDIR]   (default /var/tmp/packagefs-read-rate)
# Env:   RUNS (default 3), SIZE_MIB (default 256),
#        BIN_DIR (packagefs and pkgctl to use; default: build them in release)
# Needs root (drop_caches), fuse3 and zstd. Takes about a minute; disk: about
# 3 x SIZE_MIB x 2.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/var/tmp/packagefs-read-rate}
runs=${RUNS:-3}
size_mib=${SIZE_MIB:-256}
mkdir -p "$work"

command -v zstd >/dev/null || apt-get install -y zstd >&2
command -v fusermount3 >/dev/null || apt-get install -y fuse3 >&2

if [ -n "${BIN_DIR:-}" ]; then
    bin=$BIN_DIR
else
    cargo build --release -p pkgctl -p packagefs >&2
    bin=${CARGO_TARGET_DIR:-target}/release
fi

# pkgctl's default level on Haiku's 0-9 scale, as zstd's (level x 22 / 9).
haiku_level=5
zstd_level=$((haiku_level * 22 / 9))

src=$work/src
root=$work/root
if [ ! -f "$work/.built-$size_mib" ]; then
    echo "bench: making two files of $size_mib MiB from /usr/lib and /usr/bin" >&2
    rm -rf "$src" "$root"
    mkdir -p "$src/big" "$root/system/packages"
    for name in a b; do
        # Different orders, so the two files share no chunk.
        if [ "$name" = a ]; then order=(/usr/lib /usr/bin); else order=(/usr/bin /usr/lib); fi
        find "${order[@]}" -type f -size +16k -print0 2>/dev/null |
            xargs -0 cat 2>/dev/null | head -c $((size_mib << 20)) >"$src/big/$name.bin" || true
        if [ "$(stat -c %s "$src/big/$name.bin")" -lt $((size_mib << 20)) ]; then
            echo "bench: not enough bytes under /usr for $size_mib MiB; set SIZE_MIB lower" >&2
            exit 1
        fi
    done
    cat >"$work/info" <<INFO
name bigfiles
version 1-1
architecture x86_64
summary "Two large files"
description "Machine code and data for the read-rate benchmark."
packager "bench <bench@example.com>"
vendor "bench"
copyrights "various"
licenses "various"
provides {
	bigfiles = 1-1
}
INFO
    "$bin/pkgctl" create "$src" -o "$root/system/packages/bigfiles.hpkg" \
        --info "$work/info" --level "$haiku_level" >&2
    touch "$work/.built-$size_mib"
fi

mnt=$work/mnt
mkdir -p "$mnt"
cleanup() { fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true; }
trap cleanup EXIT

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# Drop every cache, then bring the package file (not the mount's pages) back.
drop_but_package() { drop; cat "$root/system/packages/bigfiles.hpkg" >/dev/null; }
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# MiB/s of `bytes` read in `ns` nanoseconds.
rate() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.0f\n", b / 1048576 / (ns / 1e9) }'; }

echo "bench: one core's zstd decode rate (zstd -b$zstd_level -B65536)" >&2
# zstd prints "... -> ... MB/s, <decode> MB/s" (MB = 10^6 bytes) on its last line.
core=$(zstd -b"$zstd_level" -B65536 -i3 "$src/big/a.bin" 2>&1 | tr '\r' '\n' |
    grep -Eo '[0-9.]+ MB/s' | tail -n1 | awk '{ printf "%.0f", $1 * 1e6 / 1048576 }')

bytes=$((size_mib << 20))
: >"$work/one" ; : >"$work/two"
for _ in $(seq "$runs"); do
    "$bin/packagefs" mount "$root" "$mnt"
    drop_but_package
    t0=$(now); cat "$mnt/big/a.bin" >/dev/null; t1=$(now)
    rate "$bytes" $((t1 - t0)) >>"$work/one"
    fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"

    "$bin/packagefs" mount "$root" "$mnt"
    drop_but_package
    t0=$(now)
    cat "$mnt/big/a.bin" >/dev/null &
    cat "$mnt/big/b.bin" >/dev/null &
    wait
    t1=$(now)
    rate $((2 * bytes)) $((t1 - t0)) >>"$work/two"
    fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"
done
one=$(median <"$work/one")
two=$(median <"$work/two")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t) ? "ok" : "MISSED" }'; }

printf '\nsequential reads of %s MiB files (package file cached, mount cold), %s runs, medians, MiB/s (%s cores)\n\n' \
    "$size_mib" "$runs" "$(nproc)"
printf '%-40s %8s\n' "one core's zstd decode (64 KiB blocks)" "$core"
printf '%-40s %8s\n' "packagefs, one reader" "$one"
printf '%-40s %8s\n' "packagefs, two readers (sum)" "$two"
r1=$(ratio "$one" "$core")
r2=$(ratio "$two" "$core")
printf '\nratios to one core                 value   target  verdict\n'
printf 'one reader                         %5s   >= 0.8  %s\n' "$r1" "$(verdict "$r1" 0.8)"
printf 'two readers                        %5s   >= 1.6  %s\n' "$r2" "$(verdict "$r2" 1.6)"

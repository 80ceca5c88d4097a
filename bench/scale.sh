#!/usr/bin/env bash
# packagefs at the scale of a large distribution: 2,300 synthetic packages of
# about 474 entries each (1.09 M packaged entries, about 1.06 M in the merged
# tree of which ~106 k directories, shared directories such as usr/lib and
# usr/share/doc merging across packages; files of a few KB and some
# symlinks), against kernel squashfs, squashfuse_ll and the plain directory
# on the very same tree, with each target of issue #11 (value, target,
# verdict ok/MISSED).
#
# Steps (the first three only once; their results are reused):
#   1. bench/scale-gen.py makes the packages with `pkgctl create` into
#      WORKDIR/root/system/packages, two at a time (xargs -P2);
#   2. the merged tree is copied out of a packagefs mount to WORKDIR/plain;
#   3. `mksquashfs -no-duplicates` (-comp gzip -b 65536, as compare.sh) makes
#      WORKDIR/image.sqfs (without -no-duplicates its duplicate search of a
#      million small files runs for hours);
#   4. ROUNDS rounds, each system in turn: mount (page cache dropped,
#      packagefs's index cache emptied), cold find, warm find, the daemon's
#      peak RSS, packagefs's FUSE requests; then a remount right after
#      (packagefs: index cache warm) and one after drop_caches.
#
# Usage: bench/scale.sh [WORKDIR]   (default /var/tmp/packagefs-scale)
# Env:   ROUNDS (default 3), PKGS (packages, default 2300), BIN_DIR (take
#        pkgctl and packagefs from there instead of building), TMPDIR (where
#        the generator writes each package's tree: /dev/shm by default)
# Needs root (drop_caches, loop mounts), python3, fuse3, squashfs-tools,
# squashfuse, attr, and about 8.5 GiB free in WORKDIR (packages 1.1 GiB,
# plain copy 5.2 GiB, image 1.2 GiB, find listings 0.4 GiB). On 2 loaded
# cores: generation ~5 min, copy ~15 min, image ~1 min, then ~5 min a round.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
work=${1:-/var/tmp/packagefs-scale}
rounds=${ROUNDS:-3}
npkgs=${PKGS:-2300}
gen_tmp=${TMPDIR:-/dev/shm}
[ -d "$gen_tmp" ] || gen_tmp=$work
if [ "$(id -u)" -ne 0 ]; then
    echo "bench/scale.sh needs root (drop_caches, loop mounts)" >&2
    exit 1
fi
mkdir -p "$work"

need python3 python3
need mksquashfs squashfs-tools
need squashfuse_ll squashfuse
need fusermount3 fuse3
need getfattr attr
binaries

root=$work/root
mnt=$work/mnt
plain=$work/plain
img=$work/image.sqfs
pkgdir=$root/system/packages

# --- disk space -----------------------------------------------------------------
# What is still to be made, in KiB, scaled from 2,300 packages.
need_kib=0
# A run of 2,300: packages 1,093 MiB, plain copy 5,238 MiB, image 1,150 MiB,
# the four find listings 345 MiB; with a margin.
[ -f "$root/.built" ] || [ -f "$work/.built" ] || need_kib=$((need_kib + 1200 * 1024 * npkgs / 2300))
[ -f "$work/.copied" ] || need_kib=$((need_kib + (5600 + 1250) * 1024 * npkgs / 2300))
need_kib=$((need_kib + 400 * 1024 * npkgs / 2300))
avail_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
say "disk: $((need_kib >> 10)) MiB more needed in $work (packages, plain copy, image, listings), $((avail_kib >> 10)) MiB free"
if [ "$avail_kib" -lt "$need_kib" ]; then
    echo "bench/scale.sh: not enough space in $work: $((need_kib >> 10)) MiB needed, $((avail_kib >> 10)) MiB free" >&2
    exit 1
fi

mkdir -p "$mnt"
trap cleanup_mnt EXIT
cleanup_mnt

# --- 1. packages ------------------------------------------------------------------
# The marker lives beside the root: a package root holds nothing else.
[ -f "$root/.built" ] && mv "$root/.built" "$work/.built"
if [ "$(cat "$work/.built" 2>/dev/null || true)" != "$npkgs" ]; then
    mkdir -p "$pkgdir" "$root/common/packages" "$root/user/packages"
    # Packages beyond PKGS (an earlier, larger run) would be mounted too.
    find "$pkgdir" -name 's*.hpkg' | awk -v n="$npkgs" '{ f = $0; sub(/.*\/s/, ""); sub(/\.hpkg$/, ""); if ($0 + 0 >= n) print f }' |
        xargs -r rm -f
    rm -f "$pkgdir"/*.partial # pkgctl create's temporary files, from an interrupted run
    have=$(find "$pkgdir" -name 's*.hpkg' | wc -l)
    say "generating $((npkgs - have)) of $npkgs packages in $pkgdir (two at a time; progress every 50)"
    batch=50
    t0=$(now)
    seq 0 "$batch" $((npkgs - 1)) |
        xargs -P2 -I{} python3 bench/scale-gen.py "$pkgctl" "$pkgdir" "$gen_tmp" "$npkgs" "$batch" {}
    t1=$(now)
    rm -rf "$root/system/state" # a new generation of the new set, below
    echo "$npkgs" >"$work/.built"
    rm -f "$work/.copied"
    say "packages made in $(ms "$t0" "$t1") ms"
fi

# A root with state, as a system has: generation 1 activates every package,
# and the mount is live and keyed by the packages' hashes (index cache).
if [ ! -f "$root/system/state/active.list" ]; then
    say "pkgctl init: generation 1 of the $npkgs packages (hashes every package)"
    "$pkgctl" init "$root" >&2
fi

# --- 2. and 3. the same tree as a plain directory and a squashfs image -------------
if [ ! -f "$work/.copied" ]; then
    say "copying the merged tree out of a packagefs mount to $plain"
    mount_fs packagefs
    rm -rf "$plain"
    mkdir -p "$plain"
    (cd "$mnt" && tar cf - .) | (cd "$plain" && tar xf -)
    unmount_fs packagefs
    say "mksquashfs -no-duplicates $plain $img"
    rm -f "$img"
    mksquashfs "$plain" "$img" -comp gzip -b 65536 -noappend -no-duplicates -quiet -no-progress >/dev/null
    touch "$work/.copied"
fi

# --- 4. rounds ----------------------------------------------------------------------
declare -A result entries rss
systems=(packagefs squashfs squashfuse_ll plain)
measures=(mount find wfind remount mount_idx)
for sys in "${systems[@]}"; do
    for m in "${measures[@]}"; do : >"$work/$sys.$m"; done
    rss[$sys]=0
done
for round in $(seq "$rounds"); do
    for sys in "${systems[@]}"; do
        say "round $round/$rounds: $sys: mount, cold find, warm find"
        mount_and_find "$sys"
        entries[$sys]=$(wc -l <"$work/$sys.list")
        r=$(peak_kib "$sys")
        if [ "${r:-0}" -gt "${rss[$sys]}" ]; then rss[$sys]=$r; fi
        unmount_fs "$sys"
        say "round $round/$rounds: $sys: remounts"
        timed_mount "$sys" >>"$work/$sys.remount"
        unmount_fs "$sys"
        drop
        timed_mount "$sys" >>"$work/$sys.mount_idx"
        unmount_fs "$sys"
    done
done
for sys in "${systems[@]}"; do
    for m in "${measures[@]}"; do
        result[$sys.$m]=$(median <"$work/$sys.$m")
    done
    case $sys in
        packagefs | squashfuse_ll)
            result[$sys.rss]=$(awk -v k="${rss[$sys]}" 'BEGIN { printf "%.1f", k / 1024 }')
            result[$sys.bpe]=$(ratio $((rss[$sys] * 1024)) "${entries[$sys]}")
            ;;
        *) result[$sys.rss]=n/a result[$sys.bpe]=n/a ;;
    esac
done
# Without an index cache a remount is just another mount: the table shows
# it, the target rows say n/a.
target_remount=${result[packagefs.remount]} target_mount_idx=${result[packagefs.mount_idx]}
if [ "$index_cache" = 0 ]; then target_remount=n/a target_mount_idx=n/a; fi
for sys in "${systems[@]}"; do
    if [ "${entries[$sys]}" != "${entries[plain]}" ]; then
        say "WARNING: $sys shows ${entries[$sys]} entries, the plain directory ${entries[plain]}"
    fi
done

# --- report ----------------------------------------------------------------------
dirs=$(grep -c ' d$' "$work/plain.list" || true)
links=$(grep -c ' l$' "$work/plain.list" || true)
pkgs=$(find "$pkgdir" -name '*.hpkg' | wc -l)
pkg_mib=$(du -sm "$pkgdir" | cut -f1)
plain_mib=$(du -sm "$plain" | cut -f1)
img_mib=$(($(stat -c %s "$img") >> 20))
printf '\nscale: %s packages (%s MiB), %s entries in the merged tree (%s directories, %s symlinks);\n' \
    "$pkgs" "$pkg_mib" "${entries[plain]}" "$dirs" "$links"
printf 'plain copy %s MiB on disk, squashfs image %s MiB; %s rounds, medians in ms\n' "$plain_mib" "$img_mib" "$rounds"
if [ "$index_cache" = 0 ]; then printf '(this packagefs has no index cache: its targets with the cache are n/a)\n'; fi
printf '\n%-14s %9s %9s %9s %10s %10s %9s %9s\n' system mount remount mount-dc cold-find warm-find peak-MiB B/entry
for sys in "${systems[@]}"; do
    printf '%-14s %9s %9s %9s %10s %10s %9s %9s\n' "$sys" "${result[$sys.mount]}" "${result[$sys.remount]}" \
        "${result[$sys.mount_idx]}" "${result[$sys.find]}" "${result[$sys.wfind]}" "${result[$sys.rss]}" "${result[$sys.bpe]}"
done
printf '(mount: page cache dropped, index cache emptied; remount: right after an unmount, index cache warm;\n'
printf ' mount-dc: index cache warm, page cache dropped; B/entry: daemon peak RSS per merged entry)\n'
p=packagefs
printf '\n%-44s %9s   %-13s %s\n' "targets (issue #11; packagefs / peer, or ms)" value target verdict
target_row "mount, $pkgs packages, cold" "${result[$p.mount]}" 300 ms
target_row "mount with the index cache, drop_caches" "$target_mount_idx" 100 ms
target_row "remount with the index cache" "$target_remount" 100 ms
target_row "daemon peak RSS, MiB (names included)" "${result[$p.rss]}" 64 MiB
target_row "cold find vs kernel squashfs" "$(ratio "${result[$p.find]}" "${result[squashfs.find]}")" 1.5 x
printf '\nfor reference: cold find vs squashfuse_ll %s, vs plain %s; warm find vs plain %s\n' \
    "$(ratio "${result[$p.find]}" "${result[squashfuse_ll.find]}")" \
    "$(ratio "${result[$p.find]}" "${result[plain.find]}")" \
    "$(ratio "${result[$p.wfind]}" "${result[plain.wfind]}")"
printf 'packagefs daemon peak RSS: %s bytes per entry (%s entries)\n' "${result[$p.bpe]}" "${entries[$p]}"
if [ -s "$work/packagefs.requests" ]; then
    total=$(sed -n 's/^total \([0-9]*\).*/\1/p' "$work/packagefs.requests")
    printf 'packagefs FUSE requests, mount + one cold find: %s\n' "$(cat "$work/packagefs.requests")"
    printf 'requests per directory: %s (%s directories)\n' "$(ratio "${total:-n/a}" "$dirs")" "$dirs"
fi

#!/usr/bin/env bash
# Side-by-side benchmark: packagefs against kernel squashfs (-comp gzip -b
# 65536, loop mount), squashfuse_ll (its FUSE peer) and the plain directory,
# on the very same content, with medians, ratios and each target of issue #11
# (value, target, verdict ok/MISSED).
#
# Corpus: `debootstrap --variant=minbase --include=python3 bookworm` from
# apt's configured mirror (bench/debian-corpus.sh); one .hpkg per Debian
# package (dpkg-deb -x of each .deb, then `pkgctl create`), all in
# ROOT/system/packages. The squashfs image and the plain directory are copies
# of what the packagefs mount shows, so all four serve identical trees.
#
# Each run, for each system (runs outside, systems inside, so that a drifting
# machine load hits every system alike):
#   mount       page cache dropped, packagefs's index cache emptied
#   cold find   `find -printf '%p %s %m %y'` right after that mount
#   warm find   the same find again
#   remount     a second mount right after unmounting the first (packagefs:
#               its index cache warm), and once more after drop_caches
#   cold read   `tar cf - .` of a fresh mount after drop_caches; warm read: again
#   python      `chroot MNT /usr/bin/python3 -c pass`, fresh mount, page cache dropped
#
# Usage: bench/compare.sh [WORKDIR]   (default /var/tmp/packagefs-bench)
# Env:   RUNS (default 5), CORPUS (an existing dir with debs/ to reuse),
#        BIN_DIR (take pkgctl and packagefs from there instead of building),
#        MIRROR (see bench/debian-corpus.sh)
# Needs root (drop_caches, loop mounts, chroot), fuse3, squashfs-tools,
# squashfuse, attr; missing tools are installed with apt-get. About 600 MiB of
# disk in WORKDIR; a run takes about 15 s once the corpus and packages exist.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
work=${1:-/var/tmp/packagefs-bench}
runs=${RUNS:-5}
corpus=${CORPUS:-$work/corpus}
if [ "$(id -u)" -ne 0 ]; then
    echo "bench/compare.sh needs root (drop_caches, loop mounts, chroot)" >&2
    exit 1
fi
mkdir -p "$work"

need mksquashfs squashfs-tools
need squashfuse_ll squashfuse
need fusermount3 fuse3
need dpkg-deb dpkg
need getfattr attr
binaries

debs=$(bash bench/debian-corpus.sh "$corpus")

# --- packages -----------------------------------------------------------------
root=$work/root
# The marker lives beside the root: a package root holds nothing else.
[ -f "$root/.built" ] && mv "$root/.built" "$work/.built"
if [ ! -f "$work/.built" ]; then
    rm -rf "$root"
    mkdir -p "$root/system/packages" "$root/common/packages" "$root/user/packages"
    say "pkgctl create: one package per .deb of $debs"
    n=0
    for deb in "$debs"/*.deb; do
        tmp=$(mktemp -d "$work/x.XXXX")
        dpkg-deb -x "$deb" "$tmp"
        name=$(dpkg-deb -f "$deb" Package | tr -c 'A-Za-z0-9_.\n' '_')
        ver=$(dpkg-deb -f "$deb" Version | sed 's/^[0-9]*://' | tr -c 'A-Za-z0-9.\n' '_')
        cat > "$work/info" <<INFO
name $name
version $ver-1
architecture x86_64
summary "Debian package $name"
description "Imported from $(basename "$deb") for the benchmark."
packager "bench <bench@example.com>"
vendor "Debian"
copyrights "see /usr/share/doc"
licenses "various"
provides {
	$name = $ver-1
}
INFO
        # Its "wrote ..." line only when it fails.
        if ! log=$("$pkgctl" create "$tmp" -o "$root/system/packages/$name.hpkg" --info "$work/info" 2>&1 >/dev/null); then
            echo "$log" >&2
            exit 1
        fi
        rm -rf "$tmp"
        n=$((n + 1))
    done
    say "made $n packages"
    touch "$work/.built"
    rm -f "$work/.copied" # the copies below are of the old packages
fi

# A root with state, as a system has: generation 1 activates every package,
# and the mount is live and keyed by the packages' hashes (index cache).
if [ ! -f "$root/system/state/active.list" ]; then
    "$pkgctl" init "$root" >&2
fi

mnt=$work/mnt
plain=$work/plain
img=$work/image.sqfs
mkdir -p "$mnt"
trap cleanup_mnt EXIT
cleanup_mnt

# --- the same content as a plain directory and a squashfs image -------------
if [ ! -f "$work/.copied" ]; then
    say "copying the mounted tree to $plain and $img"
    mount_fs packagefs
    rm -rf "$plain"
    mkdir -p "$plain"
    (cd "$mnt" && tar cf - .) | (cd "$plain" && tar xf -)
    unmount_fs packagefs
    rm -f "$img"
    mksquashfs "$plain" "$img" -comp gzip -b 65536 -noappend -quiet -no-progress >/dev/null
    touch "$work/.copied"
fi

# --- runs -----------------------------------------------------------------------
python_ok=1
declare -A result entries rss rss_index
systems=(packagefs squashfuse_ll squashfs plain)
measures=(mount find wfind remount remount_cold cold warm python)
for sys in "${systems[@]}"; do
    for m in "${measures[@]}"; do : >"$work/$sys.$m"; done
    rss[$sys]=0 rss_index[$sys]=0
done
keep_peak() { # SYSTEM ARRAY
    local r
    local -n peak=$2
    r=$(peak_kib "$1")
    if [ "${r:-0}" -gt "${peak[$1]}" ]; then peak[$1]=$r; fi
}
for run in $(seq "$runs"); do
    for sys in "${systems[@]}"; do
        say "run $run/$runs: $sys"
        # Mount (packagefs: index cache emptied), cold find, warm find.
        mount_and_find "$sys"
        entries[$sys]=$(wc -l <"$work/$sys.list")
        # The peak so far is the index and the tree, before any file is read.
        keep_peak "$sys" rss_index
        keep_peak "$sys" rss
        unmount_fs "$sys"
        # Remount: the index cache the first mount built is warm; then
        # the same with the page cache dropped.
        timed_mount "$sys" >>"$work/$sys.remount"
        unmount_fs "$sys"
        drop
        timed_mount "$sys" >>"$work/$sys.remount_cold"
        unmount_fs "$sys"
        # Cold and warm read of every file.
        drop
        mount_fs "$sys"
        t0=$(now); (cd "$mnt" && tar cf - . | cat >/dev/null); t1=$(now)
        ms "$t0" "$t1" >>"$work/$sys.cold"
        t0=$(now); (cd "$mnt" && tar cf - . | cat >/dev/null); t1=$(now)
        ms "$t0" "$t1" >>"$work/$sys.warm"
        keep_peak "$sys" rss
        unmount_fs "$sys"
        # Python start-up in a chroot, cold: fresh mount, page cache dropped.
        mount_fs "$sys"
        drop
        t0=$(now)
        if chroot "$mnt" /usr/bin/python3 -c pass; then
            t1=$(now)
            ms "$t0" "$t1" >>"$work/$sys.python"
        else
            python_ok=0
            say "WARNING: chroot $mnt /usr/bin/python3 -c pass failed on $sys"
        fi
        unmount_fs "$sys"
    done
done
for sys in "${systems[@]}"; do
    for m in "${measures[@]}"; do
        result[$sys.$m]=$(median <"$work/$sys.$m")
    done
    # In-kernel file systems have no daemon: their memory is the kernel's.
    case $sys in
        packagefs | squashfuse_ll) result[$sys.rss]=$(awk -v k="${rss[$sys]}" 'BEGIN { printf "%.1f", k / 1024 }') ;;
        *) result[$sys.rss]=n/a ;;
    esac
done
# Without an index cache a remount is just another mount: the table shows
# it, the target rows say n/a.
target_remount=${result[packagefs.remount]} target_remount_cold=${result[packagefs.remount_cold]}
if [ "$index_cache" = 0 ]; then target_remount=n/a target_remount_cold=n/a; fi
for sys in "${systems[@]}"; do
    if [ "${entries[$sys]}" != "${entries[plain]}" ]; then
        say "WARNING: $sys shows ${entries[$sys]} entries, the plain directory ${entries[plain]}"
    fi
done

# --- report ---------------------------------------------------------------------
files=$(find "$plain" -type f | wc -l)
dirs=$(find "$plain" -type d | wc -l)
bytes=$(du -sb "$plain" | cut -f1)
pkgs=$(find "$root/system/packages" -name '*.hpkg' | wc -l)
printf '\ncorpus: %s packages, %s entries (%s files, %s directories), %s MiB; %s runs, medians in ms\n' \
    "$pkgs" "${entries[plain]}" "$files" "$dirs" $((bytes >> 20)) "$runs"
if [ "$index_cache" = 0 ]; then printf '(this packagefs has no index cache: its remount targets are n/a)\n'; fi
printf '\n%-14s %8s %8s %9s %9s %9s %9s %9s %9s %8s\n' system mount remount remount-dc cold-find warm-find cold-read warm-read py-cold peak-MiB
for sys in "${systems[@]}"; do
    printf '%-14s %8s %8s %9s %9s %9s %9s %9s %9s %8s\n' "$sys" "${result[$sys.mount]}" "${result[$sys.remount]}" \
        "${result[$sys.remount_cold]}" "${result[$sys.find]}" "${result[$sys.wfind]}" "${result[$sys.cold]}" \
        "${result[$sys.warm]}" "${result[$sys.python]}" "${result[$sys.rss]}"
done
printf '(remount: right after an unmount; remount-dc: the same after drop_caches; py-cold: chroot python3 -c pass)\n'
p=packagefs
printf '\n%-44s %9s   %-13s %s\n' "targets (issue #11; packagefs / peer, or ms)" value target verdict
target_row "mount, $pkgs packages, vs kernel squashfs" "$(ratio "${result[$p.mount]}" "${result[squashfs.mount]}")" 1.5 x
target_row "remount, index cache warm" "$target_remount" 5 ms
target_row "remount, index cache warm, drop_caches" "$target_remount_cold" 5 ms
target_row "cold find vs kernel squashfs" "$(ratio "${result[$p.find]}" "${result[squashfs.find]}")" 1.2 x
target_row "cold read-all vs kernel squashfs" "$(ratio "${result[$p.cold]}" "${result[squashfs.cold]}")" 1.0 x
target_row "warm find vs plain directory" "$(ratio "${result[$p.wfind]}" "${result[plain.wfind]}")" 1.05 x
target_row "warm read vs plain directory" "$(ratio "${result[$p.warm]}" "${result[plain.warm]}")" 1.05 x
target_row "chroot python3 start-up, cold, vs kernel" "$(ratio "${result[$p.python]}" "${result[squashfs.python]}")" 1.0 x
printf '\nfor reference (packagefs / squashfuse_ll): cold find %s, cold read %s, peak RSS %s\n' \
    "$(ratio "${result[$p.find]}" "${result[squashfuse_ll.find]}")" \
    "$(ratio "${result[$p.cold]}" "${result[squashfuse_ll.cold]}")" \
    "$(ratio "${result[$p.rss]}" "${result[squashfuse_ll.rss]}")"
if [ -s "$work/packagefs.requests" ]; then
    total=$(sed -n 's/^total \([0-9]*\).*/\1/p' "$work/packagefs.requests")
    printf '\npackagefs FUSE requests, mount + one cold find (%s entries, %s directories): %s\n' \
        "${entries[packagefs]}" "$dirs" "$(cat "$work/packagefs.requests")"
    printf 'requests per directory: %s\n' "$(ratio "${total:-n/a}" "$dirs")"
fi
printf 'packagefs daemon peak RSS after mount and find: %s MiB, %s bytes per entry\n' \
    "$(awk -v k="${rss_index[$p]}" 'BEGIN { printf "%.1f", k / 1024 }')" "$(ratio $((rss_index[$p] * 1024)) "${entries[$p]}")"
[ "$python_ok" = 1 ] || say "WARNING: python3 did not start in some chroot (see above)"

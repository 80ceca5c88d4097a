#!/usr/bin/env bash
# Side-by-side benchmark: packagefs against squashfuse_ll (FUSE peer), kernel
# squashfs (-comp gzip -b 65536, loop mount) and the plain directory, on the
# very same content, with medians and ratios from one run.
#
# Corpus: `debootstrap --variant=minbase --include=python3 bookworm`; one .hpkg
# per Debian package (dpkg-deb -x of each .deb, then `pkgctl create`), all in
# ROOT/system/packages. The squashfs image and the plain directory are copies
# of what the packagefs mount shows, so all four serve identical trees.
#
# Usage: bench/compare.sh [WORKDIR]   (default /var/tmp/packagefs-bench)
# Env:   RUNS (default 5), CORPUS (an existing dir with debs/ to reuse)
# Needs root (drop_caches, loop mounts), fuse3, squashfs-tools, squashfuse.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/var/tmp/packagefs-bench}
runs=${RUNS:-5}
corpus=${CORPUS:-$work/corpus}
mkdir -p "$work"

need() { command -v "$1" >/dev/null || { echo "bench: installing $2" >&2; apt-get install -y "$2" >&2; }; }
need mksquashfs squashfs-tools
need squashfuse_ll squashfuse
need fusermount3 fuse3
need dpkg-deb dpkg

cargo build --release -p pkgctl -p packagefs >&2
bin=${CARGO_TARGET_DIR:-target}/release
pkgctl=$bin/pkgctl
packagefs=$bin/packagefs

debs=$(bash bench/debian-corpus.sh "$corpus")

# --- packages -----------------------------------------------------------------
root=$work/root
if [ ! -f "$root/.built" ]; then
    rm -rf "$root"
    mkdir -p "$root/system/packages" "$root/common/packages" "$root/user/packages"
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
        "$pkgctl" create "$tmp" -o "$root/system/packages/$name.hpkg" --info "$work/info" >/dev/null
        rm -rf "$tmp"
        n=$((n + 1))
    done
    echo "bench: made $n packages" >&2
    touch "$root/.built"
    rm -f "$work/.copied" # the copies below are of the old packages
fi

mnt=$work/mnt
mkdir -p "$mnt"
cleanup() {
    fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true
}
trap cleanup EXIT

# --- the same content as a plain directory and a squashfs image -------------
plain=$work/plain
img=$work/image.sqfs
if [ ! -f "$work/.copied" ]; then
    "$packagefs" mount "$root" "$mnt"
    rm -rf "$plain"
    mkdir -p "$plain"
    (cd "$mnt" && tar cf - .) | (cd "$plain" && tar xf -)
    fusermount3 -u "$mnt"
    rm -f "$img"
    mksquashfs "$plain" "$img" -comp gzip -b 65536 -noappend -quiet -no-progress >/dev/null
    touch "$work/.copied"
fi

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s%N; }
mount_fs() {
    case $1 in
        packagefs) "$packagefs" mount "$root" "$mnt" ;;
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
daemon_pid() {
    case $1 in
        packagefs) pgrep -n -f "packagefs mount $root $mnt" || true ;;
        squashfuse_ll) pgrep -n -f "squashfuse_ll $img" || true ;;
        *) true ;;
    esac
}
ms() { echo $((($2 - $1) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A result entries rss
systems=(packagefs squashfuse_ll squashfs plain)
for sys in "${systems[@]}"; do
    : >"$work/$sys.mount" ; : >"$work/$sys.find" ; : >"$work/$sys.cold" ; : >"$work/$sys.warm"
    rss[$sys]=0
done
# Runs outside, systems inside: on a machine whose load drifts, each run of
# every system sees about the same load, so the ratios stay fair.
for _ in $(seq "$runs"); do
    for sys in "${systems[@]}"; do
        drop
        t0=$(now); mount_fs "$sys"; t1=$(now)
        ms "$t0" "$t1" >>"$work/$sys.mount"
        t0=$(now); find "$mnt" -printf '%p %s %m %y\n' >"$work/$sys.list"; t1=$(now)
        ms "$t0" "$t1" >>"$work/$sys.find"
        if [ "$sys" = packagefs ]; then
            # The FUSE requests the mount and the cold find cost, by kind.
            getfattr --only-values -n user.packagefs.requests "$mnt" \
                >"$work/packagefs.requests" 2>/dev/null || true
        fi
        entries[$sys]=$(wc -l <"$work/$sys.list")
        unmount_fs "$sys"; drop; mount_fs "$sys"
        t0=$(now); (cd "$mnt" && tar cf - . | cat >/dev/null); t1=$(now)
        ms "$t0" "$t1" >>"$work/$sys.cold"
        t0=$(now); (cd "$mnt" && tar cf - . | cat >/dev/null); t1=$(now)
        ms "$t0" "$t1" >>"$work/$sys.warm"
        pid=$(daemon_pid "$sys")
        if [ -n "$pid" ]; then
            r=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
            if [ "${r:-0}" -gt "${rss[$sys]}" ]; then rss[$sys]=$r; fi
        fi
        unmount_fs "$sys"
    done
done
for sys in "${systems[@]}"; do
    for m in mount find cold warm; do
        result[$sys.$m]=$(median <"$work/$sys.$m")
    done
    # In-kernel file systems have no daemon: their memory is the kernel's.
    case $sys in
        packagefs | squashfuse_ll) result[$sys.rss]=$(awk -v k="${rss[$sys]}" 'BEGIN { printf "%.1f", k / 1024 }') ;;
        *) result[$sys.rss]=n/a ;;
    esac
done
for sys in "${systems[@]}"; do
    if [ "${entries[$sys]}" != "${entries[plain]}" ]; then
        echo "bench: WARNING: $sys shows ${entries[$sys]} entries, the plain directory ${entries[plain]}" >&2
    fi
done

files=$(find "$plain" -type f | wc -l)
bytes=$(du -sb "$plain" | cut -f1)
pkgs=$(ls "$root"/system/packages/*.hpkg | wc -l)
printf '\ncorpus: %s packages, %s files, %s MiB; %s runs, medians in ms\n\n' "$pkgs" "$files" $((bytes >> 20)) "$runs"
printf '%-14s %9s %9s %9s %9s %9s\n' system mount cold-find cold-read warm-read peak-RSS-MiB
for sys in "${systems[@]}"; do
    printf '%-14s %9s %9s %9s %9s %9s\n' "$sys" "${result[$sys.mount]}" "${result[$sys.find]}" "${result[$sys.cold]}" "${result[$sys.warm]}" "${result[$sys.rss]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
p=packagefs
printf '\nratios (packagefs / peer; lower is better)       value   target\n'
printf 'cold find  vs squashfuse_ll                      %5s   <= 0.5\n' "$(ratio "${result[$p.find]}" "${result[squashfuse_ll.find]}")"
printf 'cold find  vs kernel squashfs                    %5s   <= 1.5\n' "$(ratio "${result[$p.find]}" "${result[squashfs.find]}")"
printf 'cold read  vs squashfuse_ll                      %5s   <= 0.8\n' "$(ratio "${result[$p.cold]}" "${result[squashfuse_ll.cold]}")"
printf 'cold read  vs kernel squashfs                    %5s   <= 1.3\n' "$(ratio "${result[$p.cold]}" "${result[squashfs.cold]}")"
printf 'warm read  vs plain directory                    %5s   <= 1.1\n' "$(ratio "${result[$p.warm]}" "${result[plain.warm]}")"
printf 'mount of %s packages                            %5s ms <= 50\n' "$pkgs" "${result[$p.mount]}"
printf 'peak RSS   vs squashfuse_ll                      %5s   (reported)\n' "$(ratio "${result[$p.rss]}" "${result[squashfuse_ll.rss]}")"
if [ -s "$work/packagefs.requests" ]; then
    printf '\npackagefs FUSE requests, mount + one cold find (%s entries): %s\n' \
        "${entries[packagefs]}" "$(cat "$work/packagefs.requests")"
fi

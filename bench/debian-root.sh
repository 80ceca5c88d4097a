#!/usr/bin/env bash
# A real Debian userland booted (chrooted) from packagefs, timed against the
# same tree on kernel squashfs and on a plain directory.
#
#   1. `debootstrap --variant=minbase --include=python3 bookworm` (once; the
#      .deb files are kept, see bench/debian-corpus.sh);
#   2. `pkgctl import-deb --merge-usr` every .deb of that set (the merged-/usr
#      layout of a real bookworm system: /bin -> usr/bin ...);
#   3. `pkgctl init` a fresh root and `pkgctl add` them all to system/packages
#      (no --force: every dependency must resolve);
#   4. `packagefs mount ROOT MNT --shine-through var,tmp,run,home,root`;
#   5. `chroot MNT /usr/bin/python3 -c 'import json, sqlite3; print(42)'` and
#      `chroot MNT /bin/bash -c 'ls /usr/bin | wc -l'`, both checked: the
#      count against `find` outside the chroot, and the names against
#      debootstrap's own tree (CORPUS/root) when it is there, where only
#      update-alternatives links (made by maintainer scripts, never run
#      here) may be missing;
#   6. python3 start-up (`import json, sqlite3`) in the chroot, warm and cold
#      (a fresh mount and the page cache dropped before every run, so the
#      daemon's own chunk cache is gone too), with hyperfine, on packagefs,
#      kernel squashfs (the same tree, -comp zstd -b 65536) and a plain
#      directory; prints the ratios.
#
# Usage: bench/debian-root.sh [WORKDIR]    (default /var/tmp/packagefs-debian-root)
# Env:   RUNS (hyperfine runs, default 20), CORPUS (a dir with debs/ to reuse),
#        CHECK_ONLY=1 (steps 1-5 only: what the opt-in slow test runs)
# Needs root, debootstrap, squashfs-tools, hyperfine and Debian's registry;
# missing tools are installed with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --remount ]; then
    # hyperfine's --prepare for cold runs: a fresh mount of system $2 (so no
    # daemon or file system keeps a cache of its own), /proc and /dev bound
    # again, then the page cache dropped.
    sys=$2 work=$3
    bin=${CARGO_TARGET_DIR:-target}/release
    case $sys in
        packagefs)
            "$bin/packagefs" unmount "$work/mnt"
            "$bin/packagefs" mount "$work/root" "$work/mnt" --shine-through var,tmp,run,home,root
            dir=$work/mnt ;;
        squashfs)
            umount "$work/squashfs-mnt/proc" "$work/squashfs-mnt/dev" "$work/squashfs-mnt"
            mount -t squashfs -o loop,ro "$work/root.sqfs" "$work/squashfs-mnt"
            dir=$work/squashfs-mnt ;;
        plain) dir=$work/plain ;;
    esac
    mountpoint -q "$dir/proc" || mount -t proc proc "$dir/proc"
    mountpoint -q "$dir/dev" || mount --bind /dev "$dir/dev"
    sync
    echo 3 >/proc/sys/vm/drop_caches
    exit 0
fi
work=${1:-/var/tmp/packagefs-debian-root}
runs=${RUNS:-20}
corpus=${CORPUS:-$work/corpus}
check_only=${CHECK_ONLY:-0}
mkdir -p "$work"

say() { printf '==> %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null || { say "installing $2"; apt-get install -y "$2" >&2; }; }
if [ "$(id -u)" -ne 0 ]; then
    echo "bench/debian-root.sh needs root (chroot, mounts, drop_caches)" >&2
    exit 1
fi
need fusermount3 fuse3
need debootstrap debootstrap
if [ "$check_only" != 1 ]; then
    need mksquashfs squashfs-tools
    need hyperfine hyperfine
fi

say "building pkgctl and packagefs (release)"
cargo build --release -p pkgctl -p packagefs >&2
bin=${CARGO_TARGET_DIR:-target}/release
pkgctl=$bin/pkgctl
packagefs=$bin/packagefs

debs=$(bash bench/debian-corpus.sh "$corpus")

# --- 2. import --------------------------------------------------------------
hpkgs=$work/hpkg
rm -rf "$hpkgs"
mkdir -p "$hpkgs"
say "pkgctl import-deb --merge-usr $(ls "$debs"/*.deb | wc -l) packages"
t0=$(date +%s%N)
"$pkgctl" import-deb --merge-usr "$debs"/*.deb -o "$hpkgs"
t1=$(date +%s%N)
import_ms=$(((t1 - t0) / 1000000))

# --- 3. a fresh root with every package, no --force --------------------------
root=$work/root
mnt=$work/mnt
sq=$work/squashfs-mnt
plain=$work/plain
img=$work/root.sqfs
cleanup() {
    for m in "$mnt/proc" "$mnt/dev" "$sq/proc" "$sq/dev" "$plain/proc" "$plain/dev"; do
        mountpoint -q "$m" 2>/dev/null && umount "$m"
    done
    mountpoint -q "$mnt" 2>/dev/null && "$packagefs" unmount "$mnt"
    mountpoint -q "$sq" 2>/dev/null && umount "$sq"
    true
}
trap cleanup EXIT
cleanup
rm -rf "$root"
"$pkgctl" init "$root" >&2
say "pkgctl add: every imported package to system/packages"
"$pkgctl" -R "$root" add --layer system "$hpkgs"/*.hpkg >&2
npkgs=$("$pkgctl" -R "$root" list --json | grep -c '"name"' || true)

# --- 4. mount with shine-through ---------------------------------------------
mkdir -p "$mnt"
say "packagefs mount $root $mnt --shine-through var,tmp,run,home,root"
t0=$(date +%s%N)
"$packagefs" mount "$root" "$mnt" --shine-through var,tmp,run,home,root
t1=$(date +%s%N)
mount_ms=$(((t1 - t0) / 1000000))

# /proc and /dev for programs that want them (base-files ships both dirs).
enter() { # DIR: bind /proc and /dev into a tree that has the directories
    mountpoint -q "$1/proc" || mount -t proc proc "$1/proc"
    mountpoint -q "$1/dev" || mount --bind /dev "$1/dev"
}
leave() {
    umount "$1/proc" "$1/dev"
}
enter "$mnt"

# --- 5. run programs from it --------------------------------------------------
py=$(chroot "$mnt" /usr/bin/python3 -c 'import json, sqlite3; print(42)')
say "chroot $mnt /usr/bin/python3 -c 'import json, sqlite3; print(42)' -> $py"
[ "$py" = 42 ] || { echo "FAIL: python3 printed '$py', not 42" >&2; exit 1; }
nbin=$(chroot "$mnt" /bin/bash -c 'ls /usr/bin | wc -l')
say "chroot $mnt /bin/bash -c 'ls /usr/bin | wc -l' -> $nbin"
expected=$(find "$mnt/usr/bin" -mindepth 1 -maxdepth 1 | wc -l)
[ "$nbin" = "$expected" ] || { echo "FAIL: ls in the chroot counts $nbin, find outside $expected" >&2; exit 1; }
[ "$(readlink "$mnt/bin")" = usr/bin ] || { echo "FAIL: /bin is not a link to usr/bin (merged /usr)" >&2; exit 1; }
chroot "$mnt" /bin/bash -c 'ls /usr/bin' | grep -qx bash || { echo "FAIL: ls /usr/bin in the chroot does not list bash" >&2; exit 1; }
# Against debootstrap's tree: every name there but update-alternatives links.
ref=$corpus/root/usr/bin
if [ -d "$ref" ]; then
    nref=$(ls "$ref" | wc -l)
    extra=$(comm -23 <(chroot "$mnt" /bin/bash -c 'ls /usr/bin' | sort) <(ls "$ref" | sort) | tr '\n' ' ')
    missing=$(comm -13 <(chroot "$mnt" /bin/bash -c 'ls /usr/bin' | sort) <(ls "$ref" | sort))
    unexplained=""
    for m in $missing; do
        case $(readlink "$ref/$m") in /etc/alternatives/*) ;; *) unexplained="$unexplained $m" ;; esac
    done
    say "/usr/bin: $nbin entries here, $nref in debootstrap's tree; missing update-alternatives links: $(echo $missing)"
    [ -z "$extra" ] || { echo "FAIL: /usr/bin has entries debootstrap's tree lacks: $extra" >&2; exit 1; }
    [ -z "$unexplained" ] || { echo "FAIL: /usr/bin lacks entries of debootstrap's tree:$unexplained" >&2; exit 1; }
fi
echo "runtime data is writable: $(chroot "$mnt" /bin/sh -c 'echo ok > /var/tmp/bench-probe && cat /var/tmp/bench-probe')" >&2
[ -f "$root/data/var/tmp/bench-probe" ] || { echo "FAIL: /var/tmp/bench-probe did not land in $root/data/var" >&2; exit 1; }
rm -f "$root/data/var/tmp/bench-probe"
if [ "$check_only" = 1 ]; then
    leave "$mnt"
    "$packagefs" unmount "$mnt"
    printf 'debian-root: %s packages imported in %s ms, added without --force, mounted in %s ms; python3 printed %s; /usr/bin has %s entries\n' \
        "$npkgs" "$import_ms" "$mount_ms" "$py" "$nbin"
    exit 0
fi
leave "$mnt"

# --- 6. the same tree on kernel squashfs and as a plain directory -------------
if [ ! -f "$work/.copied" ] || [ "$work/.copied" -ot "$root/system/state/active.list" ]; then
    say "copying the mounted tree to $plain and $img"
    "$packagefs" unmount "$mnt"
    "$packagefs" mount "$root" "$mnt"
    rm -rf "$plain"
    mkdir -p "$plain"
    (cd "$mnt" && tar cf - .) | (cd "$plain" && tar xf -)
    "$packagefs" unmount "$mnt"
    rm -f "$img"
    mksquashfs "$plain" "$img" -comp zstd -b 65536 -noappend -quiet -no-progress >/dev/null
    touch "$work/.copied"
    "$packagefs" mount "$root" "$mnt" --shine-through var,tmp,run,home,root
fi
nplain=$(chroot "$plain" /bin/bash -c 'ls /usr/bin | wc -l')
say "chroot $plain /bin/bash -c 'ls /usr/bin | wc -l' -> $nplain (packagefs: $nbin)"
[ "$nplain" = "$nbin" ] || { echo "FAIL: /usr/bin counts $nbin on packagefs, $nplain in the plain copy" >&2; exit 1; }
mkdir -p "$sq"
mount -t squashfs -o loop,ro "$img" "$sq"
for d in "$mnt" "$sq" "$plain"; do enter "$d"; done

cmd="/usr/bin/python3 -c 'import json, sqlite3'"
declare -A warm cold
for sys in packagefs squashfs plain; do
    case $sys in packagefs) dir=$mnt ;; squashfs) dir=$sq ;; plain) dir=$plain ;; esac
    say "python3 start-up on $sys (warm)"
    hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/$sys.warm.json" \
        "chroot $dir $cmd" >&2
    say "python3 start-up on $sys (cold: fresh mount and page cache dropped before each run)"
    hyperfine -N --runs "$(((runs + 1) / 2))" --prepare "bash $0 --remount $sys $work" \
        --export-json "$work/$sys.cold.json" "chroot $dir $cmd" >&2
    warm[$sys]=$(python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$work/$sys.warm.json")
    cold[$sys]=$(python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$work/$sys.cold.json")
done
for d in "$mnt" "$sq" "$plain"; do leave "$d"; done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
files=$(find "$plain" -type f | wc -l)
bytes=$(du -sb "$plain" | cut -f1)
printf '\ndebian-root: %s packages (%s files, %s MiB) imported in %s ms, mounted in %s ms\n' \
    "$npkgs" "$files" $((bytes >> 20)) "$import_ms" "$mount_ms"
printf "python3 -c 'import json, sqlite3' in a chroot, median ms of %s runs\n\n" "$runs"
printf '%-10s %9s %9s\n' system warm cold
for sys in packagefs squashfs plain; do
    printf '%-10s %9s %9s\n' "$sys" "${warm[$sys]}" "${cold[$sys]}"
done
printf '\nratios (packagefs / peer; lower is better)   warm   cold   target\n'
printf 'vs kernel squashfs                          %5s  %5s   warm <= 1.1\n' \
    "$(ratio "${warm[packagefs]}" "${warm[squashfs]}")" "$(ratio "${cold[packagefs]}" "${cold[squashfs]}")"
printf 'vs plain directory                          %5s  %5s\n' \
    "$(ratio "${warm[packagefs]}" "${warm[plain]}")" "$(ratio "${cold[packagefs]}" "${cold[plain]}")"

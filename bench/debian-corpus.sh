#!/usr/bin/env bash
# Builds the Debian benchmark corpus once: a `debootstrap --variant=minbase
# --include=python3 bookworm` tree, whose downloaded .deb files are kept.
# Usage: bench/debian-corpus.sh DIR   (prints DIR/debs when done)
# Needs root, debootstrap and Debian's package registry.
set -euo pipefail
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
if [ -n "$(ls "$dir"/debs/*.deb 2>/dev/null | head -n1)" ]; then
    echo "$dir/debs"
    exit 0
fi
command -v debootstrap >/dev/null || apt-get install -y debootstrap >&2
rm -rf "$dir/root"
echo "bench: debootstrap --variant=minbase --include=python3 bookworm (a few minutes)" >&2
debootstrap --variant=minbase --include=python3 bookworm "$dir/root" http://deb.debian.org/debian >&2
mkdir -p "$dir/debs"
cp "$dir"/root/var/cache/apt/archives/*.deb "$dir/debs/"
echo "$dir/debs"

#!/usr/bin/env bash
# System packages the tests need, in one place for .ci/run and the Makefile.
#
#   .ci/deps.sh          install what is missing when root on Debian/Ubuntu;
#                        otherwise print the apt-get command to run, and go on
#   .ci/deps.sh --ci     CI: apt-get update once, then apt-get install -y all
#                        of them (and make, which .ci/run needs); fail on error
#
# fuse3: fusermount3, which mounts and unmounts FUSE file systems.
# attr:  getfattr/setfattr, to look at extended attributes by hand and in scripts.
# nginx-light: the real HTTP server the repository tests serve a repository with.
# minisign: checks pkgctl's signatures with the reference tool.
set -euo pipefail

PACKAGES=(fuse3 attr nginx-light minisign)
CI_EXTRA=(make)

say() { printf '==> %s\n' "$*"; }

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    say "apt-get update"
    apt-get update
    say "apt-get install -y $*"
    apt-get install -y "$@"
}

if [ "${1:-}" = "--ci" ]; then
    apt_install "${PACKAGES[@]}" "${CI_EXTRA[@]}"
    exit 0
fi
if [ $# -gt 0 ]; then
    echo "usage: $0 [--ci]" >&2
    exit 2
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian/Ubuntu system: make sure these are installed: ${PACKAGES[*]} (fusermount3, getfattr)"
    exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    say "system packages present: ${PACKAGES[*]}"
    exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing missing system packages: ${missing[*]}"
    apt_install "${missing[@]}"
else
    say "missing system packages: ${missing[*]}; FUSE tests will fail or skip without them. Install with:"
    echo "    sudo apt-get install -y ${missing[*]}"
fi

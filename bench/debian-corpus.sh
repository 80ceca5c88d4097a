#!/usr/bin/env bash
# Builds the Debian benchmark corpus once: a `debootstrap --variant=minbase
# --include=python3 bookworm` tree, whose downloaded .deb files are kept.
#
# Usage: bench/debian-corpus.sh DIR   (prints DIR/debs when done)
# Env:   MIRROR (a Debian mirror URL; default: apt's configured one for
#        bookworm, from /etc/apt/sources.list and /etc/apt/sources.list.d/
#        *.list (one-line `deb URL suite ...`) or *.sources (deb822 `URIs:`),
#        else http://deb.debian.org/debian)
# Needs root, debootstrap and Debian's package registry.
set -euo pipefail
dir=${1:?usage: $0 DIR}
suite=bookworm
mkdir -p "$dir"
if [ -n "$(find "$dir/debs" -maxdepth 1 -name '*.deb' 2>/dev/null | head -n1)" ]; then
    echo "$dir/debs"
    exit 0
fi

# The first http(s)/ftp/file URI apt is configured with for SUITE, as apt
# reads its sources: sources.list, then sources.list.d/*.list (one-line form)
# and *.sources (deb822) in name order; deb-src entries and deb822 stanzas
# with `Enabled: no` are skipped.
apt_mirror() { # SUITE
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        case $f in
            *.sources)
                awk -v suite="$1" '
                    function flush(  n, s, k, u, ok) {
                        if (enabled != "no" && (" " types " ") ~ /[ \t]deb[ \t]/) {
                            n = split(suites, s, /[ \t]+/)
                            ok = 0
                            for (k = 1; k <= n; k++) if (s[k] == suite) ok = 1
                            n = split(uris, u, /[ \t]+/)
                            for (k = 1; ok && k <= n; k++)
                                if (u[k] ~ /^(https?|ftp|file):/) { print u[k]; break }
                        }
                        types = suites = uris = enabled = field = ""
                    }
                    /^#/ { next }
                    /^[ \t]*$/ { flush(); next }
                    /^[ \t]/ {  # a continuation line of the last field
                        v = $0; sub(/^[ \t]+/, "", v)
                        if (field == "types") types = types " " v
                        else if (field == "suites") suites = suites " " v
                        else if (field == "uris") uris = uris " " v
                        next
                    }
                    {
                        i = index($0, ":"); if (i == 0) next
                        field = tolower(substr($0, 1, i - 1))
                        v = substr($0, i + 1); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
                        if (field == "types") types = v
                        else if (field == "suites") suites = v
                        else if (field == "uris") uris = v
                        else if (field == "enabled") enabled = tolower(v)
                    }
                    END { flush() }' "$f"
                ;;
            *)
                awk -v suite="$1" '
                    {
                        sub(/#.*/, "")
                        gsub(/\[[^]]*\]/, " ")  # [arch=amd64 signed-by=...]
                        if ($1 == "deb" && $3 == suite && $2 ~ /^(https?|ftp|file):/) print $2
                    }' "$f"
                ;;
        esac
    done | awk 'NR == 1'
}
mirror=${MIRROR:-$(apt_mirror "$suite")}
if [ -z "$mirror" ]; then
    mirror=http://deb.debian.org/debian
    echo "bench: no apt source for $suite configured; using $mirror" >&2
fi
command -v debootstrap >/dev/null || apt-get install -y debootstrap >&2
rm -rf "$dir/root"
echo "bench: debootstrap --variant=minbase --include=python3 $suite from $mirror (a few minutes)" >&2
debootstrap --variant=minbase --include=python3 "$suite" "$dir/root" "$mirror" >&2
mkdir -p "$dir/debs"
cp "$dir"/root/var/cache/apt/archives/*.deb "$dir/debs/"
echo "$dir/debs"

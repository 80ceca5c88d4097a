#!/usr/bin/env bash
# Run the inflate benchmark once per flate2 backend (zlib-ng needs cmake).
#   bench/zlib-backends/run.sh [BACKEND...]   (default: zlib-rs miniz zlib-ng)
set -uo pipefail
cd "$(dirname "$0")"
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(zlib-rs miniz zlib-ng)
for b in "${backends[@]}"; do
    echo "== $b"
    cargo bench --no-default-features --features "$b" 2>&1 |
        grep -E '^(inflate/|error)|time:|thrpt:|zlib chunks' || echo "   $b: failed to build or run"
done

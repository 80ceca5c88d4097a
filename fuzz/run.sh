#!/usr/bin/env bash
# Run every fuzz target of hpkg-format for SECONDS each (default 180).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Builds with -O plus the
# assertions and overflow checks of fuzz/Cargo.toml, with AddressSanitizer; on
# a stable toolchain the sanitizer flags are allowed through RUSTC_BOOTSTRAP=1.
# Seeds: fuzz/seeds/ (small golden packages, and the TOC and attribute sections
# of golden packages made by make_section_seeds.py; checked in) plus the larger
# golden packages straight
# from the fixtures dir ($PACKAGEFS_FIXTURES, default ../shared/fixtures beside
# the checkout). The growing corpus is kept in fuzz/corpus/TARGET, crashes in
# fuzz/artifacts/TARGET, the log of each run in fuzz/artifacts/TARGET.log.
# Exits non-zero if any target found a crash.
set -euo pipefail

secs=${1:-180}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(package section heap)

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
fixtures=${PACKAGEFS_FIXTURES:-$root/../shared/fixtures}
if [ ! -d "$fixtures" ]; then
    echo "golden fixtures not found at $fixtures; set PACKAGEFS_FIXTURES" >&2
    exit 2
fi
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi
# cargo-fuzz keeps its own target dir under fuzz/target.
unset CARGO_TARGET_DIR

# Golden packages too large to check in (>= 64 KiB), linked into a temp dir so
# that libFuzzer reads only packages (not the listings beside them).
large=$(mktemp -d)
trap 'rm -rf "$large"' EXIT
max_len=4096
while IFS= read -r -d '' f; do
    size=$(stat -c %s "$f")
    [ "$size" -gt "$max_len" ] && max_len=$size
    [ "$size" -ge 65536 ] && ln -s "$f" "$large/$(basename "$f")"
done < <(find "$fixtures" -name '*.hpkg' -print0)

cd "$root"
status=0
for t in "${targets[@]}"; do
    case $t in
        package | heap) seeds=("$here/seeds/package" "$large") ;;
        section) seeds=("$here/seeds/section") ;;
        *) seeds=("$here/seeds/$t") ;;
    esac
    mkdir -p "$here/corpus/$t" "$here/artifacts/$t"
    log="$here/artifacts/$t.log"
    echo "== $t: ${secs}s"
    if cargo fuzz run -O "$t" "$here/corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -max_len="$max_len" -rss_limit_mb=2048 \
        -malloc_limit_mb=1024 -timeout=20 -print_final_stats=1 \
        -artifact_prefix="$here/artifacts/$t/" >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log)"
        status=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "   $t: ${runs:-?} executions, $cov, corpus $(ls "$here/corpus/$t" | wc -l) inputs: $result"
done
exit $status

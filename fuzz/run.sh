#!/usr/bin/env bash
# Run every fuzz target of hpkg-format for SECONDS each (default 180).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Builds with -O plus the
# assertions and overflow checks of fuzz/Cargo.toml, with AddressSanitizer; on
# a stable toolchain the sanitizer flags are allowed through RUSTC_BOOTSTRAP=1.
#
# Seeds: fuzz/seeds/ (checked in: golden packages under 64 KiB, and the TOC
# and attribute sections of golden packages made by make_section_seeds.py),
# plus the larger golden packages straight from the fixtures dir
# ($PACKAGEFS_FIXTURES, default ../shared/fixtures beside the checkout).
# Mutating multi-megabyte inputs is slow, so `package` and `heap` spend a third
# of their time on the large packages (corpus fuzz/corpus/TARGET-large, no
# length limit) and the rest on inputs of at most 64 KiB (fuzz/corpus/TARGET).
# Crashes go to fuzz/artifacts/TARGET/, each run's log to
# fuzz/artifacts/TARGET[-large].log. Exits non-zero if any target crashed.
set -euo pipefail

secs=${1:-180}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(package section heap index_image)

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

# fuzz NAME TARGET SECONDS MAX_LEN CORPUS SEEDS...: one libFuzzer run, summarised.
fuzz() {
    local name=$1 t=$2 time=$3 len=$4 corpus=$5
    shift 5
    local log="$here/artifacts/$name.log" result runs cov
    mkdir -p "$corpus" "$here/artifacts/$t"
    if cargo fuzz run -O "$t" "$corpus" "$@" -- \
        -max_total_time="$time" -max_len="$len" -rss_limit_mb=2048 \
        -malloc_limit_mb=1024 -timeout=20 -print_final_stats=1 \
        -artifact_prefix="$here/artifacts/$t/" >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log)"
        status=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "   $name: ${runs:-?} executions in ${time}s, $cov, corpus $(ls "$corpus" | wc -l) inputs: $result"
}

for t in "${targets[@]}"; do
    echo "== $t: ${secs}s"
    case $t in
        package | heap)
            fuzz "$t-large" "$t" $((secs / 3)) "$max_len" "$here/corpus/$t-large" "$large"
            fuzz "$t" "$t" $((secs - secs / 3)) 65536 "$here/corpus/$t" "$here/seeds/package"
            ;;
        section) fuzz "$t" "$t" "$secs" 65536 "$here/corpus/$t" "$here/seeds/section" ;;
        index_image) fuzz "$t" "$t" "$secs" 65536 "$here/corpus/$t" "$here/seeds/index_image" ;;
        *) fuzz "$t" "$t" "$secs" 65536 "$here/corpus/$t" "$here/seeds/$t" ;;
    esac
done
exit $status

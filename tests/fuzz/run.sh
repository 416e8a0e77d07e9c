#!/usr/bin/env bash
# tests/fuzz/run.sh [seconds]: builds the decode fuzz target with clang
# (libFuzzer, ASan, UBSan) in its own build directory and runs it for the
# given time (default 60 s) on a copy of the seed corpus. Exits non-zero on
# any crash, sanitizer report, leak or disagreement between decode paths;
# the failing input is left in the build directory (crash-*, leak-*, ...).
#
# Environment: HUB_FUZZ_BUILD_DIR (default build/fuzz); HUB_FUZZ_JOBS (default 1:
# one process, output here; more runs that many workers logging to fuzz-N.log).
set -euo pipefail

seconds=${1:-60}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${HUB_FUZZ_BUILD_DIR:-$src/build/fuzz}
seeds=$src/tests/fuzz/corpus/decode

CC=clang cmake -S "$src" -B "$build" -DHUB_FUZZ=ON -DHUB_SANITIZE=ON -DBUILD_TESTING=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz_decode -j2 >/dev/null

# New inputs go to a scratch corpus, so the committed seeds stay small and reviewed.
work=$(mktemp -d "${TMPDIR:-/tmp}/hub-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"

echo "fuzzing hub_codec_decode for ${seconds}s (seeds: $seeds)"
cd "$build"
jobs=()
if [[ "${HUB_FUZZ_JOBS:-1}" -gt 1 ]]; then
    jobs=(-jobs="$HUB_FUZZ_JOBS" -workers="$HUB_FUZZ_JOBS")
fi
HUB_DATA_DIR=$src ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    "$build/tests/fuzz/fuzz_decode" -max_len=4096 -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 "${jobs[@]}" \
    -artifact_prefix="$build/" "$work/corpus" "$seeds"

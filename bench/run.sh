#!/usr/bin/env bash
# bench/run.sh [events per run] [runs]: builds the hub in Release in
# build/bench (no sanitizers) and runs the codec benchmark, printing the
# machine, the command and the results on stdout. Not a test: nothing fails
# on a slow machine.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${HUB_BENCH_BUILD_DIR:-$src/build/bench}

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DHUB_SANITIZE=OFF \
    >/dev/null
cmake --build "$build" --target bench_codec -j2 >/dev/null

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "compiler: $(${CC:-cc} --version | head -1)"
echo "command: HUB_DATA_DIR=$src $build/bench/bench_codec ${*:-1000000 5}"
HUB_DATA_DIR=$src "$build/bench/bench_codec" "$@"

#!/usr/bin/env bash
# bench/projector/run.sh [EVENTS] [RATE] [SECONDS] [APPLY_MODE_EVENTS]
#
# hub-projector's benchmarks (not tests; nothing fails on a slow machine):
#   1. apply modes: pipeline mode + prepared statements vs COPY into a staging
#      table, APPLY_MODE_EVENTS (default 50000) YoungPersonFlagged, no Kafka;
#   2. throughput: EVENTS (default 1000000) mixed events already in Kafka,
#      projected by hub-projector, beside COPY loading the same rows into the
#      same tables (three rounds of each, taking turns; the medians count);
#      the projector's RSS at start, after 100k and at the end of each round;
#   3. latency: produce -> visible in transitions_view at RATE events/s
#      (default 2000) for SECONDS (default 30), p50 and p99.
# Builds Release (no sanitizers) in build/bench-projector. Uses the running
# infrastructure when HUB_KAFKA_BOOTSTRAP and HUB_PG_CONNINFO are set, and
# starts its own through scripts/infra.sh otherwise.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${HUB_BENCH_BUILD_DIR:-$src/build/bench-projector}
events=${1:-1000000}
rate=${2:-2000}
seconds=${3:-30}
mode_events=${4:-50000}

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DHUB_SANITIZE=OFF \
    -DHUB_WERROR=ON >/dev/null
cmake --build "$build" --target hub-projector -j2 >/dev/null
mkdir -p "$build/bench"
# Compiled here rather than by CMake: it reuses the tests' support code, which
# a BUILD_TESTING=OFF tree does not build.
# shellcheck disable=SC2046  # pkg-config output is meant to split
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter -D_POSIX_C_SOURCE=200809L \
    -D_DEFAULT_SOURCE -I"$src/lib/include" -I"$src/tests" \
    "$src/bench/projector/bench_projector.c" "$src/tests/support.c" \
    -L"$build/lib" -Wl,-rpath,"$build/lib" -lhub \
    $(pkg-config --cflags --libs rdkafka libpq jansson avro-c libcurl) -lpthread \
    -o "$build/bench/bench_projector"

if [[ -z "${HUB_KAFKA_BOOTSTRAP:-}" || -z "${HUB_PG_CONNINFO:-}" ]]; then
    # shellcheck source=../../scripts/infra.sh
    source "$src/scripts/infra.sh"
    hub_infra_trap
    hub_infra_start postgres kafka >&2
fi

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "postgres: $(psql --version | head -1); kafka: single local broker (scripts/infra.sh)"
echo "command: bench/projector/run.sh $events $rate $seconds $mode_events"
export HUB_DATA_DIR=$src
"$build/bench/bench_projector" apply-modes "$mode_events"
"$build/bench/bench_projector" throughput "$events" "$rate" "$seconds"

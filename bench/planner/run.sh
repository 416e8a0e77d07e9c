#!/usr/bin/env bash
# bench/planner/run.sh [FLAGS] [RUNS] [BATCH_MAX]
#
# hub-planner's throughput (flags in, alerts out, Kafka transactions on) side
# by side with kcat piping the same topic into another topic, in the same run
# against the same broker (not a test; nothing fails on a slow machine).
# FLAGS (default 200000) YoungPersonFlagged per run, RUNS (default 3) runs on
# fresh topics, BATCH_MAX (default: the planner's default, 10000) flags per
# transaction. Builds Release (no sanitizers) in build/bench-planner. Uses the
# running broker when HUB_KAFKA_BOOTSTRAP is set, and starts its own through
# scripts/infra.sh otherwise.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${HUB_BENCH_BUILD_DIR:-$src/build/bench-planner}
flags=${1:-200000}
runs=${2:-3}
batch_max=${3:-10000}

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DHUB_SANITIZE=OFF \
    -DHUB_WERROR=ON >/dev/null
cmake --build "$build" --target hub-planner bench-planner -j2 >/dev/null

if [[ -z "${HUB_KAFKA_BOOTSTRAP:-}" ]]; then
    # shellcheck source=../../scripts/infra.sh
    source "$src/scripts/infra.sh"
    hub_infra_trap
    hub_infra_start kafka >&2
fi

kafka_version=$(sed -n 's:.*<kafka.version>\([^<]*\)</kafka.version>.*:\1:p' \
    "$src/scripts/infra/kafka-pom.xml" | head -n 1)
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GiB; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kafka: $kafka_version, one local broker (scripts/infra.sh); librdkafka $(pkg-config --modversion rdkafka); kcat $(kcat -V 2>&1 | sed -n 's/^Version \([0-9.]*\).*/\1/p')"
echo "command: bench/planner/run.sh $flags $runs $batch_max"
HUB_DATA_DIR=$src "$build/bench/planner/bench-planner" --planner "$build/services/planner/hub-planner" \
    --flags "$flags" --runs "$runs" --batch-max "$batch_max"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

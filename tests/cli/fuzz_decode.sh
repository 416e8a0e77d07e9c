#!/usr/bin/env bash
# cli_fuzz_decode: runs the decode fuzz target (libFuzzer, ASan, UBSan) for a
# bounded time, HUB_FUZZ_SECONDS (default 60), in a clang build inside this
# build directory, so parallel builds do not share one. Fails on any finding.
set -euo pipefail
: "${HUB_SOURCE_DIR:?run through ctest}" "${HUB_BUILD_DIR:?run through ctest}"
HUB_FUZZ_BUILD_DIR=$HUB_BUILD_DIR/fuzz exec bash "$HUB_SOURCE_DIR/tests/fuzz/run.sh" \
    "${HUB_FUZZ_SECONDS:-60}"

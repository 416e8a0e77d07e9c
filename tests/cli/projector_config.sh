#!/usr/bin/env bash
# hub-projector's command line: configuration errors are reported as
# file:line and exit 2; an unreachable database at start exits 1 with a clear
# message (no password in it); --help and --migrate-only behave.
set -euo pipefail

bin="${HUB_BUILD_DIR:?}/services/projector/hub-projector"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0

check() { # check <description> <expected status> <text the output must contain> -- command...
    local what=$1 want=$2 text=$3 status=0
    shift 4
    "$@" >"$dir/out" 2>&1 || status=$?
    if [[ $status -ne $want ]] || ! grep -qF -- "$text" "$dir/out"; then
        echo "FAIL: $what: status $status (want $want), output:" >&2
        cat "$dir/out" >&2
        failures=$((failures + 1))
    else
        echo "ok: $what"
    fi
}

printf 'projector = { batch_max_events = 0; };\n' >"$dir/range.conf"
check "out-of-range batch size" 2 "range.conf:1" -- "$bin" --config "$dir/range.conf"

printf 'log = { level = "info"; };\nprojector = {\n  batch_max_ms = "fast";\n};\n' >"$dir/type.conf"
check "wrong type" 2 "type.conf:3" -- "$bin" --config "$dir/type.conf"

printf 'projector = { no_such_setting = 1; };\n' >"$dir/unknown.conf"
check "unknown setting" 2 "no_such_setting" -- "$bin" --config "$dir/unknown.conf"

printf 'projector = { topics = [ ]; };\n' >"$dir/topics.conf"
check "empty topic list" 2 "at least one topic" -- "$bin" --config "$dir/topics.conf"

check "missing file" 2 "cannot open" -- "$bin" --config "$dir/absent.conf"

cat >"$dir/nodb.conf" <<CONF
postgres = { conninfo = "host=127.0.0.1 port=1 dbname=hub user=nobody connect_timeout=1";
             password = "never-printed"; };
projector = { startup_wait_ms = 0; };
CONF
check "unreachable database" 1 "cannot connect to PostgreSQL" -- "$bin" --config "$dir/nodb.conf"
if grep -q never-printed "$dir/out"; then
    echo "FAIL: the password appeared in the output" >&2
    failures=$((failures + 1))
fi

check "help" 0 "--migrate-only" -- "$bin" --help
check "help-config" 0 "projector.batch_max_events" -- "$bin" --help-config

if [[ $failures -ne 0 ]]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi

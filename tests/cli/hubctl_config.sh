#!/usr/bin/env bash
# Configuration errors through a real program (hubctl): a missing file, a
# syntax error, an unknown key and a wrong type each exit with status 2 and
# name the file (and, where there is one, the line) on stderr; --help,
# --help-config and --version work without a configuration.
set -euo pipefail
source "$(dirname "$0")/hubctl_lib.bash"

# check_config <what> <file> <text stderr must contain>: hubctl must exit 2, stdout empty.
check_config() {
    local what=$1 file=$2 text=$3 status=0
    "$hubctl" --config "$file" schemas list >"$dir/out" 2>"$dir/err" || status=$?
    if [[ $status -ne 2 ]] || ! grep -qF -- "$text" "$dir/err" || [[ -s "$dir/out" ]]; then
        fail "$what: status $status (want 2), stderr should contain '$text'; got:"
        sed 's/^/    out: /' "$dir/out" >&2
        sed 's/^/    err: /' "$dir/err" >&2
    else
        echo "ok: $what: $(head -1 "$dir/err")"
    fi
}

check_config "missing file" "$dir/absent.conf" "$dir/absent.conf: cannot open"

printf 'log = { level = "info"; };\ntopics = {\n  risk_flags = "x";\n  dead_letters = ;\n};\n' \
    >"$dir/syntax.conf"
check_config "syntax error" "$dir/syntax.conf" "$dir/syntax.conf:4:"

printf 'log = { level = "info"; };\n\nno_such_setting = 1;\n' >"$dir/unknown.conf"
check_config "unknown top-level key" "$dir/unknown.conf" "$dir/unknown.conf:3:"
grep -qF no_such_setting "$dir/err" || fail "the unknown key is not named: $(cat "$dir/err")"

printf 'hubctl = {\n  flush_timeout_ms = 1000;\n  replay_grp = "x";\n};\n' >"$dir/unknown2.conf"
check_config "unknown key in hubctl's own group" "$dir/unknown2.conf" "$dir/unknown2.conf:3:"

printf 'topics = {\n  risk_flags = 42;\n};\n' >"$dir/type.conf"
check_config "wrong type (number for a string)" "$dir/type.conf" "$dir/type.conf:2:"

printf 'hubctl = {\n\n  flush_timeout_ms = "soon";\n};\n' >"$dir/type2.conf"
check_config "wrong type (string for a number)" "$dir/type2.conf" "$dir/type2.conf:3:"

printf 'hubctl = { flush_timeout_ms = 5; };\n' >"$dir/range.conf"
check_config "out of range" "$dir/range.conf" "$dir/range.conf:1:"

printf 'agencies = [ "LEICESTER_CS", "lower" ];\n' >"$dir/agency.conf"
check_config "bad agency code" "$dir/agency.conf" "$dir/agency.conf:1:"

# HUB_CONFIG is used when --config is not given.
status=0
HUB_CONFIG="$dir/type.conf" "$hubctl" schemas list >"$dir/out" 2>"$dir/err" || status=$?
assert_eq "HUB_CONFIG with an error: exit status" 2 "$status"
grep -qF "$dir/type.conf:2:" "$dir/err" || fail "HUB_CONFIG error not located: $(cat "$dir/err")"

# Other services' groups are theirs to check; a good file works.
printf 'planner = { anything = 1; };\nhubctl = { flush_timeout_ms = 1000; };\n' >"$dir/good.conf"
check "a good file with another service's group" 0 "YoungPersonFlagged" -- \
    "$hubctl" --config "$dir/good.conf" schemas list

check "unknown option" 2 "see 'hubctl --help'" -- "$hubctl" --no-such-option
check "no command" 2 "a command is needed" -- "$hubctl"
check "unknown command" 2 "unknown command 'frobnicate'" -- "$hubctl" frobnicate
check "--help" 0 "dead-letters list|replay" -- "$hubctl" --help
check "--help-config" 0 "hubctl.replay_group" -- "$hubctl" --help-config
check "--version" 0 "hubctl " -- "$hubctl" --version

finish

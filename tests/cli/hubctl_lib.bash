# Shared by the tests/cli/hubctl_*.sh tests (sourced; not a test itself).
# Each test gets its own scratch directory, its own topics and a config file
# pointing hubctl at them, so tests never disturb one another.

: "${HUB_BUILD_DIR:?run through ctest}" "${HUB_SOURCE_DIR:?run through ctest}"
hubctl="$HUB_BUILD_DIR/services/hubctl/hubctl"
python=${HUB_PYTHON:-/usr/bin/python3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0
export HUB_DATA_DIR=${HUB_DATA_DIR:-$HUB_SOURCE_DIR}
unset HUB_CONFIG

# The infrastructure is required: a test without it fails, it never skips.
need_env() {
    local v
    for v in "$@"; do
        if [[ -z "${!v:-}" ]]; then
            echo "FAIL: $v is not set: run the tests through scripts/test" >&2
            exit 1
        fi
    done
}

# kafka_settings: the libconfig settings to put inside a config file's kafka = { } group:
# the test broker's address and, when it is the secured one, the TLS/SASL settings of
# HUB_KAFKA_EXTRA_PROPS (k=v,...; dots become underscores, a key.file stays key_file).
kafka_settings() {
    local kv key out="bootstrap_servers = \"$HUB_KAFKA_BOOTSTRAP\";"
    local -a pairs=()
    [[ -n "${HUB_KAFKA_EXTRA_PROPS:-}" ]] && IFS=, read -r -a pairs <<<"$HUB_KAFKA_EXTRA_PROPS"
    for kv in "${pairs[@]}"; do
        key=${kv%%=*}
        out+=" ${key//./_} = \"${kv#*=}\";"
    done
    printf '%s' "$out"
}

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run <status var> <out file> <err file> -- command...: runs, capturing both streams and the status.
run() {
    local -n _status=$1
    local out=$2 err=$3
    shift 4
    _status=0
    "$@" >"$out" 2>"$err" || _status=$?
}

# check <what> <expected status> <text stdout+stderr must contain> -- command...
check() {
    local what=$1 want=$2 text=$3 status=0
    shift 4
    "$@" >"$dir/out" 2>"$dir/err" || status=$?
    if [[ $status -ne $want ]] || ! cat "$dir/out" "$dir/err" | grep -qF -- "$text"; then
        fail "$what: status $status (want $want), output should contain '$text'; got:"
        sed 's/^/    out: /' "$dir/out" >&2
        sed 's/^/    err: /' "$dir/err" >&2
    else
        echo "ok: $what"
    fi
}

# assert_eq <what> <expected> <actual>
assert_eq() {
    if [[ "$2" != "$3" ]]; then
        fail "$1: expected '$2', got '$3'"
    else
        echo "ok: $1"
    fi
}

# new_topics <var prefix> <name>...: creates one fresh topic per name, sets ${prefix}_<name>.
new_topics() {
    need_env HUB_KAFKA_BOOTSTRAP HUB_INFRA_CLI HUB_SCRATCH
    local prefix=$1 name topics=()
    shift
    for name in "$@"; do
        printf -v "${prefix}_${name}" '%s' "test.hubctl.$name.$$.$RANDOM$RANDOM"
        local v="${prefix}_${name}"
        topics+=("${!v}")
    done
    bash "$HUB_INFRA_CLI" create-topics "${topics[@]}" >"$dir/create.log" 2>&1 || {
        cat "$dir/create.log" >&2
        echo "FAIL: cannot create topics" >&2
        exit 1
    }
}

finish() {
    if [[ $failures -ne 0 ]]; then
        echo "$failures check(s) failed" >&2
        exit 1
    fi
    echo "all checks passed"
}

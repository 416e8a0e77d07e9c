#!/usr/bin/env bash
# scripts/infra.sh -- throw-away test infrastructure for the LLR Transitions Hub.
#
# Starts real peers as plain processes on 127.0.0.1, each inside one scratch
# directory: PostgreSQL 15, an Apache Kafka broker (KRaft, single node), the
# Apicurio Registry (Confluent-compatible API) and a Maildir-backed SMTP server.
#
# As a library (source it, then call the functions):
#     source scripts/infra.sh
#     trap hub_infra_stop EXIT INT TERM
#     hub_infra_start postgres kafka registry smtp
#     hub_kafka_create_topics
#     ... run tests; they read HUB_KAFKA_BOOTSTRAP, HUB_PG_CONNINFO, ...
#
# As a command (for tests that stop/restart a peer mid-stream, and for humans):
#     scripts/infra.sh pg-stop | pg-start | kafka-stop | kafka-start | selftest | ...
# The command reads $HUB_SCRATCH/env.sh, so HUB_SCRATCH must be in the environment
# (hub_infra_start exports it; the path of this script is exported as HUB_INFRA_CLI).
# `scripts/infra.sh --help` lists the commands and variables; docs/infrastructure.md
# has the details.
#
# Functions are written to work whether or not the caller uses `set -e`: every
# step checks its own result and the functions return non-zero on failure.

# ---------------------------------------------------------------------------
# Locations and defaults (read when a function runs, so callers may change them
# after sourcing).
# ---------------------------------------------------------------------------
_HUB_INFRA_SELF=$(readlink -f "${BASH_SOURCE[0]}")
_HUB_INFRA_DIR=$(dirname "$_HUB_INFRA_SELF")/infra # kafka-pom.xml, smtp_server.py, ...

HUB_TOPICS_DEFAULT="llr.children.risk-flags llr.adults.transition-alerts llr.adults.transition-plans llr.meetings.actions llr.groups.notifications llr.hub.dead-letters"
_HUB_APICURIO_VERSION_DEFAULT=3.3.3

# Variables written to $HUB_SCRATCH/env.sh (when set).
_HUB_ENV_VARS=(
    HUB_SCRATCH HUB_CACHE_DIR HUB_INFRA_CLI
    HUB_PG_BIN HUB_PG_PORT HUB_PG_CONNINFO
    HUB_KAFKA_PORT HUB_KAFKA_CONTROLLER_PORT HUB_KAFKA_BOOTSTRAP
    HUB_REGISTRY_PORT HUB_REGISTRY_MGMT_PORT HUB_REGISTRY_URL
    HUB_SMTP_PORT HUB_SMTP_URL HUB_MAILDIR HUB_SMTP_TLS_CERT
    HUB_TLS_CA HUB_TLS_OTHER_CA HUB_PG_SSLROOTCERT
    HUB_KAFKA_SECURITY HUB_KAFKA_INTERNAL_PORT HUB_KAFKA_CLIENTS HUB_KAFKA_EXTRA_PROPS KCAT_CONFIG
)

export HUB_INFRA_CLI="$_HUB_INFRA_SELF"

# The secured mode (TLS certificates, SASL_SSL broker with ACLs): docs/security.md.
# shellcheck source=scripts/infra/secure.sh
source "$_HUB_INFRA_DIR/secure.sh"

_hub_log() { printf '[infra %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
_hub_err() {
    _hub_log "ERROR: $*"
    return 1
}
_hub_python() { printf '%s' "${HUB_PYTHON:-/usr/bin/python3}"; }
_hub_cache_dir() { printf '%s' "${HUB_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/llr-hub}"; }

# Microseconds since the epoch, and "12.3s" since a given start.
_hub_now_us() { printf '%s' "${EPOCHREALTIME/./}"; }
_hub_since() {
    local us=$(($(_hub_now_us) - $1))
    printf '%d.%02ds' $((us / 1000000)) $((us % 1000000 / 10000))
}

# Start timings of this shell, component -> seconds (filled by the *_start functions).
declare -gA HUB_START_TIMES=()
_hub_record_time() { HUB_START_TIMES[$1]=$(_hub_since "$2"); }

# Print the last lines of a log file to stderr (for failure reports).
_hub_tail() {
    local file=$1 lines=${2:-40}
    [[ -f "$file" ]] || return 0
    _hub_log "---- last $lines lines of $file ----"
    tail -n "$lines" "$file" >&2 || true
    _hub_log "---- end of $file ----"
}

# ---------------------------------------------------------------------------
# Scratch directory, ports and env.sh
# ---------------------------------------------------------------------------

# Create (or adopt) $HUB_SCRATCH. A directory we create, or an empty one we are
# given, gets a marker file: only a marked directory is ever removed.
hub_scratch_init() {
    if [[ -z "${HUB_SCRATCH:-}" ]]; then
        HUB_SCRATCH=$(mktemp -d /tmp/llr-hub.XXXXXX) || return 1
    elif [[ ! -d "$HUB_SCRATCH" ]]; then
        mkdir -p "$HUB_SCRATCH" || return 1
    fi
    HUB_SCRATCH=$(readlink -f "$HUB_SCRATCH")
    export HUB_SCRATCH
    if [[ ! -e "$HUB_SCRATCH/.llr-hub-scratch" ]] && [[ -z "$(ls -A "$HUB_SCRATCH")" ]]; then
        : >"$HUB_SCRATCH/.llr-hub-scratch"
        _hub_log "scratch directory $HUB_SCRATCH"
    fi
    # mktemp makes 0700; PostgreSQL runs as user postgres and must traverse it.
    chmod go+x "$HUB_SCRATCH" || return 1
}

# Pick a free TCP port on 127.0.0.1 for variable $1 unless it is already set.
# Ports are drawn at random below the kernel's ephemeral range (20000-32767),
# so an outgoing connection cannot grab a port while its server is restarting.
_hub_pick_port() {
    local var=$1 name taken=()
    if [[ -n "${!var:-}" ]]; then
        # A given (or remembered) port must not have a listener already.
        "$(_hub_python)" - "${!var}" <<'PY' || { _hub_err "port ${!var} ($var) is already in use"; return 1; }
import socket, sys
with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
PY
        export "${var?}"
        return 0
    fi
    for name in "${_HUB_ENV_VARS[@]}"; do
        [[ "$name" == *_PORT && -n "${!name:-}" ]] && taken+=("${!name}")
    done
    local port
    port=$("$(_hub_python)" - "${taken[@]}" <<'PY'
import random, socket, sys
taken = {int(a) for a in sys.argv[1:]}
for _ in range(500):
    port = random.randint(20000, 32767)
    if port in taken:
        continue
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    sys.exit(0)
sys.exit("no free port found")
PY
    ) || return 1
    printf -v "$var" '%s' "$port"
    export "${var?}"
}

# (Re)write $HUB_SCRATCH/env.sh with every HUB_* variable that is set.
_hub_write_env() {
    [[ -n "${HUB_SCRATCH:-}" && -d "$HUB_SCRATCH" ]] || return 0
    local name tmp="$HUB_SCRATCH/env.sh.tmp"
    {
        echo "# Written by scripts/infra.sh: source it to reach this test infrastructure."
        for name in "${_HUB_ENV_VARS[@]}"; do
            if [[ -n "${!name:-}" ]]; then printf 'export %s=%q\n' "$name" "${!name}"; fi
        done
    } >"$tmp" && mv -f "$tmp" "$HUB_SCRATCH/env.sh"
}

# ---------------------------------------------------------------------------
# Background processes: started detached, tracked by pid file, stopped by pid.
# ---------------------------------------------------------------------------

# _hub_spawn <pidfile> <logfile> <workdir> <command...>
# Runs the command in its own session (Ctrl-C in the terminal does not reach it;
# hub_infra_stop does), reparented away from this shell, with stdin from
# /dev/null and stdout/stderr to <logfile>. Waits until <pidfile> holds its pid.
_hub_spawn() {
    local pidfile=$1 logfile=$2 workdir=$3
    shift 3
    rm -f "$pidfile"
    (
        cd "$workdir" || exit 1
        # shellcheck disable=SC2016  # $$ and "$@" expand in the inner bash
        setsid bash -c 'echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" && exec "$@"' \
            "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 &
    ) || return 1
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s "$pidfile" ]] && return 0
        sleep 0.05
    done
    _hub_err "process did not start: $*"
}

# True when pid $1 is alive (not a zombie) and its command line mentions $2.
_hub_pid_alive() {
    local pid=$1 needle=${2:-} state
    [[ -n "$pid" && -r "/proc/$pid/stat" ]] || return 1
    state=$(sed -n 's/^[0-9]* (.*) \(.\) .*/\1/p' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]] || return 1
    [[ -z "$needle" ]] && return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$needle"
}

# _hub_stop_pidfile <name> <pidfile> [timeout-seconds] [signal]
# TERM (or the given signal), wait up to the timeout, then KILL. Removes the pid file.
_hub_stop_pidfile() {
    local name=$1 pidfile=$2 timeout=${3:-${HUB_STOP_TIMEOUT:-30}} sig=${4:-TERM}
    [[ -s "$pidfile" ]] || return 0
    local pid start
    pid=$(<"$pidfile")
    if ! _hub_pid_alive "$pid" "$HUB_SCRATCH"; then
        rm -f "$pidfile"
        return 0
    fi
    start=$(_hub_now_us)
    kill -s "$sig" "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + timeout))
    while _hub_pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if _hub_pid_alive "$pid"; then
        _hub_log "$name (pid $pid) still running after ${timeout}s: sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 10))
        while _hub_pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    fi
    if _hub_pid_alive "$pid"; then
        _hub_err "$name (pid $pid) would not die"
        return 1
    fi
    rm -f "$pidfile"
    _hub_log "$name stopped (pid $pid, $(_hub_since "$start"))"
}

# _hub_wait_until <what> <timeout-s> <pid-or-empty> <logfile> <command...>
# Polls the command until it succeeds; fails early when the pid dies, and on
# failure prints the tail of the log file.
_hub_wait_until() {
    local what=$1 timeout=$2 pid=$3 logfile=$4
    shift 4
    local deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        if [[ -n "$pid" ]] && ! _hub_pid_alive "$pid"; then
            _hub_tail "$logfile"
            _hub_err "$what: process $pid exited during start-up"
            return 1
        fi
        sleep 0.1
    done
    _hub_tail "$logfile"
    _hub_err "$what: not ready after ${timeout}s"
}

# ---------------------------------------------------------------------------
# PostgreSQL 15
# ---------------------------------------------------------------------------
_hub_pg_dir() { printf '%s' "$HUB_SCRATCH/pg"; }

# Run a PostgreSQL server binary as the owner of the data directory
# (initdb and pg_ctl refuse to run as root).
_hub_pg_as() {
    local bin=$1
    shift
    # From "/": the caller's directory may not be readable by user postgres.
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$HUB_PG_BIN/$bin" "$@")
    else
        "$HUB_PG_BIN/$bin" "$@"
    fi
}

_hub_pg_running() {
    [[ -f "$(_hub_pg_dir)/data/postmaster.pid" ]] &&
        _hub_pg_as pg_ctl status -D "$(_hub_pg_dir)/data" >/dev/null 2>&1
}

_hub_pg_conninfo() {
    local password
    password=$(<"$HUB_SCRATCH/pg.password") || return 1
    # TLS with the server's certificate checked against the test CA and 127.0.0.1.
    HUB_PG_SSLROOTCERT=$HUB_TLS_CA
    HUB_PG_CONNINFO="host=127.0.0.1 port=$HUB_PG_PORT dbname=hub user=hub_admin password=$password sslmode=verify-full sslrootcert=$HUB_PG_SSLROOTCERT"
    export HUB_PG_CONNINFO HUB_PG_SSLROOTCERT
}

# First start: initdb (superuser hub_admin, scram password auth only),
# configuration, and the `hub` database (created by hub_pg_start).
_hub_pg_init() {
    local pgdir data password
    pgdir=$(_hub_pg_dir)
    data=$pgdir/data
    mkdir -p "$pgdir/run" || return 1
    password=$(openssl rand -hex 24) || return 1
    (umask 077 && printf '%s\n' "$password" >"$HUB_SCRATCH/pg.password") || return 1
    (umask 077 && printf '%s\n' "$password" >"$pgdir/initdb.pw") || return 1
    if ((EUID == 0)); then
        id postgres >/dev/null 2>&1 || { _hub_err "user postgres does not exist (is postgresql-15 installed?)"; return 1; }
        chown -R postgres:postgres "$pgdir" || return 1
        runuser -u postgres -- test -x "$pgdir" ||
            { _hub_err "user postgres cannot reach $pgdir (scratch directory must be world-traversable)"; return 1; }
    fi
    if ! _hub_pg_as initdb -D "$data" -U hub_admin --pwfile="$pgdir/initdb.pw" \
        --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-sync --no-instructions \
        >"$pgdir/initdb.log" 2>&1; then
        _hub_tail "$pgdir/initdb.log"
        rm -f "$pgdir/initdb.pw"
        _hub_err "initdb failed"
        return 1
    fi
    rm -f "$pgdir/initdb.pw"
    # TLS: the server certificate of the scratch CA (secure.sh); TCP clients must use
    # it (hostssl), the Unix socket inside the scratch directory stays as it is.
    cp "$(_hub_tls_dir)/postgres.crt" "$(_hub_tls_dir)/postgres.key" "$data/" &&
        chmod 600 "$data/postgres.key" || return 1
    sed -i 's/^host\([[:space:]]\)/hostssl\1/' "$data/pg_hba.conf" || return 1
    if ((EUID == 0)); then
        chown postgres:postgres "$data/postgres.crt" "$data/postgres.key" "$data/pg_hba.conf" || return 1
    fi
    cat >>"$data/postgresql.conf" <<EOF || return 1

# ---- scripts/infra.sh (test instance) ----
ssl = on
ssl_cert_file = 'postgres.crt'
ssl_key_file = 'postgres.key'
ssl_min_protocol_version = 'TLSv1.2'
listen_addresses = '127.0.0.1'
port = $HUB_PG_PORT
unix_socket_directories = '$pgdir/run'
unix_socket_permissions = 0700
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 256MB
logging_collector = off
log_min_messages = warning
log_connections = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

# Start PostgreSQL; initialises it on first use. Restarts reuse data dir and port.
hub_pg_start() {
    local start pgdir data first=0
    start=$(_hub_now_us)
    hub_scratch_init || return 1
    HUB_PG_BIN=${HUB_PG_BIN:-/usr/lib/postgresql/15/bin}
    export HUB_PG_BIN
    [[ -x "$HUB_PG_BIN/pg_ctl" ]] || { _hub_err "no PostgreSQL in $HUB_PG_BIN (run scripts/bootstrap)"; return 1; }
    hub_tls_init || return 1
    _hub_pick_port HUB_PG_PORT || return 1
    pgdir=$(_hub_pg_dir)
    data=$pgdir/data
    if [[ ! -f "$data/PG_VERSION" ]]; then
        _hub_pg_init || return 1
        first=1
    fi
    if _hub_pg_running; then
        _hub_log "postgres already running on 127.0.0.1:$HUB_PG_PORT"
    else
        _hub_pg_as pg_ctl start -D "$data" -l "$pgdir/postgres.log" -W -s >/dev/null ||
            { _hub_tail "$pgdir/postgres.log"; _hub_err "pg_ctl start failed"; return 1; }
        # pg_ctl -W returns at once; the postmaster writes postmaster.pid a moment
        # later. It counts as dead when that file vanished again, or never came.
        local deadline=$((SECONDS + ${HUB_PG_START_TIMEOUT:-60})) seen_pid=0 grace=$((SECONDS + 10))
        until "$HUB_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$HUB_PG_PORT" -t 1; do
            [[ -f "$data/postmaster.pid" ]] && seen_pid=1
            if { ((seen_pid)) || ((SECONDS >= grace)); } && ! _hub_pg_running &&
                ! "$HUB_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$HUB_PG_PORT" -t 1; then
                _hub_tail "$pgdir/postgres.log"
                _hub_err "postgres exited during start-up"
                return 1
            fi
            if ((SECONDS >= deadline)); then
                _hub_tail "$pgdir/postgres.log"
                _hub_err "postgres not ready after ${HUB_PG_START_TIMEOUT:-60}s"
                return 1
            fi
            sleep 0.1
        done
    fi
    _hub_pg_conninfo || return 1
    if ((first)); then
        PGCONNECT_TIMEOUT=10 "$HUB_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
            "${HUB_PG_CONNINFO/dbname=hub/dbname=postgres}" -c 'CREATE DATABASE hub' ||
            { _hub_err "CREATE DATABASE hub failed"; return 1; }
    fi
    _hub_write_env
    _hub_record_time postgres "$start"
    _hub_log "postgres ready on 127.0.0.1:$HUB_PG_PORT ($(_hub_since "$start"))"
}

# Stop PostgreSQL (fast shutdown). Data dir and port stay for hub_pg_start.
hub_pg_stop() {
    [[ -n "${HUB_SCRATCH:-}" && -f "$(_hub_pg_dir)/data/PG_VERSION" ]] || return 0
    HUB_PG_BIN=${HUB_PG_BIN:-/usr/lib/postgresql/15/bin}
    _hub_pg_running || return 0
    local start
    start=$(_hub_now_us)
    _hub_pg_as pg_ctl stop -D "$(_hub_pg_dir)/data" -m fast -w -s -t "${HUB_STOP_TIMEOUT:-30}" ||
        { _hub_err "pg_ctl stop failed"; return 1; }
    _hub_log "postgres stopped ($(_hub_since "$start"))"
}

# ---------------------------------------------------------------------------
# Apache Kafka (KRaft, combined broker+controller, one node)
# ---------------------------------------------------------------------------
# The secured broker (HUB_KAFKA_SECURITY=sasl_ssl) has its own data directory.
_hub_kafka_dir() {
    if _hub_kafka_secure; then printf '%s' "$HUB_SCRATCH/kafka-sasl_ssl"; else printf '%s' "$HUB_SCRATCH/kafka"; fi
}
_hub_kafka_pom() { printf '%s' "$_HUB_INFRA_DIR/kafka-pom.xml"; }
# HUB_KAFKA_VERSION, else the secured broker's version (secure.sh says why), else the pom's.
_hub_kafka_version() {
    if [[ -n "${HUB_KAFKA_VERSION:-}" ]]; then
        printf '%s' "$HUB_KAFKA_VERSION"
    elif _hub_kafka_secure; then
        printf '%s' "${HUB_KAFKA_SECURE_VERSION:-$_HUB_KAFKA_SECURE_VERSION_DEFAULT}"
    else
        sed -n 's:.*<kafka.version>\([^<]*\)</kafka.version>.*:\1:p' "$(_hub_kafka_pom)" | head -n 1
    fi
}

# Make sure the broker's runtime classpath is in the cache; print its libs dir.
# Copied with Maven once; a marker file written after success makes a half-done
# copy be redone. Concurrent runs serialise on a lock file.
hub_kafka_libs() {
    local version cache libs marker
    version=$(_hub_kafka_version)
    [[ -n "$version" ]] || { _hub_err "no <kafka.version> in $(_hub_kafka_pom)"; return 1; }
    cache=$(_hub_cache_dir)/kafka-$version
    libs=$cache/libs
    marker=$cache/.complete
    if [[ ! -f "$marker" ]]; then
        mkdir -p "$cache" || return 1
        (
            flock 9 || exit 1
            [[ -f "$marker" ]] && exit 0
            _hub_log "kafka $version: copying the broker classpath into $libs (once)"
            rm -rf "$libs"
            mvn -B -q -f "$(_hub_kafka_pom)" -Dkafka.version="$version" dependency:copy-dependencies \
                -DincludeScope=runtime -Dmdep.prependGroupId=true \
                -DoutputDirectory="$libs" >"$cache/mvn.log" 2>&1 ||
                { _hub_tail "$cache/mvn.log"; _hub_err "mvn copy-dependencies failed"; exit 1; }
            # Every org.apache.kafka artifact must be on one version.
            local jar bad=()
            for jar in "$libs"/org.apache.kafka.*.jar; do
                [[ "$jar" == *-"$version".jar ]] || bad+=("${jar##*/}")
            done
            compgen -G "$libs/org.apache.kafka.kafka_2.13-$version.jar" >/dev/null ||
                { _hub_err "kafka_2.13-$version.jar missing from $libs"; exit 1; }
            ((${#bad[@]} == 0)) || { _hub_err "mixed Kafka versions in $libs: ${bad[*]}"; exit 1; }
            echo "$version" >"$marker"
        ) 9>"$cache/.lock" || return 1
    fi
    printf '%s' "$libs"
}

_hub_kafka_java() { printf '%s' "${HUB_KAFKA_JAVA:-java}"; }

_hub_kafka_plain_listeners() {
    cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$HUB_KAFKA_PORT,CONTROLLER://127.0.0.1:$HUB_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$HUB_KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
EOF
}

_hub_kafka_write_config() {
    local kdir=$1
    # mode 600: the secured broker's file holds its keystore password
    (umask 077 && cat >"$kdir/server.properties") <<EOF
# Single-node KRaft broker for tests, written by scripts/infra.sh.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$HUB_KAFKA_CONTROLLER_PORT
$(if _hub_kafka_secure; then _hub_kafka_secure_config; else _hub_kafka_plain_listeners; fi)
log.dirs=$kdir/data

num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true

offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

# After a crash (hub_kafka_kill) the restarted broker cannot register until the
# old registration's session expires: 4 s instead of the default 9 s.
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=500

num.network.threads=2
num.io.threads=4
log.retention.hours=24
EOF
}

# Start the broker; formats storage on first use. Restarts reuse data dir and ports.
hub_kafka_start() {
    local start kdir libs java pid
    start=$(_hub_now_us)
    hub_scratch_init || return 1
    command -v kcat >/dev/null || { _hub_err "kcat not found (run scripts/bootstrap)"; return 1; }
    libs=$(hub_kafka_libs) || return 1
    java=$(_hub_kafka_java)
    _hub_pick_port HUB_KAFKA_PORT || return 1
    _hub_pick_port HUB_KAFKA_CONTROLLER_PORT || return 1
    HUB_KAFKA_BOOTSTRAP=127.0.0.1:$HUB_KAFKA_PORT
    export HUB_KAFKA_BOOTSTRAP
    kdir=$(_hub_kafka_dir)
    mkdir -p "$kdir/data" "$kdir/logs" || return 1
    local secured=0
    if _hub_kafka_secure; then
        secured=1
        _hub_pick_port HUB_KAFKA_INTERNAL_PORT || return 1
        hub_tls_init || return 1
        _hub_kafka_secure_env
        # SCRAM users are created by the storage format, from an @argfile (mode 600).
        _hub_kafka_secure_prepare "$kdir/scram.args" || return 1
    else
        _hub_kafka_secure_env
    fi
    if [[ -s "$kdir/kafka.pid" ]] && _hub_pid_alive "$(<"$kdir/kafka.pid")" "$HUB_SCRATCH"; then
        _hub_log "kafka already running on $HUB_KAFKA_BOOTSTRAP"
        _hub_write_env
        return 0
    fi
    _hub_kafka_write_config "$kdir" || return 1
    if [[ ! -f "$kdir/data/meta.properties" ]]; then
        local cluster_id
        cluster_id=$("$java" -XX:TieredStopAtLevel=1 -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>>"$kdir/format.log") ||
            { _hub_tail "$kdir/format.log"; _hub_err "kafka random-uuid failed"; return 1; }
        # java expands @argfiles only before the main class: the whole command goes in.
        if ((secured)); then
            printf '%s\n' -cp "$libs/*" kafka.tools.StorageTool format -t "$cluster_id" \
                -c "$kdir/server.properties" >"$kdir/format.args" &&
                cat "$kdir/scram.args" >>"$kdir/format.args" || return 1
        fi
        if ((secured)); then
            "$java" -XX:TieredStopAtLevel=1 \
                -Dlog4j2.configurationFile="$_HUB_INFRA_DIR/kafka-log4j2.properties" \
                -Dkafka.logs.dir="$kdir/logs" "@$kdir/format.args" >>"$kdir/format.log" 2>&1
        else
            "$java" -XX:TieredStopAtLevel=1 -cp "$libs/*" \
                -Dlog4j2.configurationFile="$_HUB_INFRA_DIR/kafka-log4j2.properties" \
                -Dkafka.logs.dir="$kdir/logs" kafka.tools.StorageTool format \
                -t "$cluster_id" -c "$kdir/server.properties" >>"$kdir/format.log" 2>&1
        fi || { rm -f "$kdir/format.args" "$kdir/scram.args"; _hub_tail "$kdir/format.log"; _hub_err "kafka storage format failed"; return 1; }
    fi
    rm -f "$kdir/format.args" "$kdir/scram.args"
    # C1 only (TieredStopAtLevel=1): ~0.5 s faster start, plenty for test traffic;
    # HUB_KAFKA_JAVA_OPTS=-XX:TieredStopAtLevel=4 restores the full JIT.
    # shellcheck disable=SC2206  # HUB_KAFKA_JAVA_OPTS is a word list
    local opts=(-Xms256m -Xmx512m -XX:TieredStopAtLevel=1 -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -XX:+ExitOnOutOfMemoryError
        -Djava.awt.headless=true -Djava.io.tmpdir="$kdir"
        -Dlog4j2.configurationFile="$_HUB_INFRA_DIR/kafka-log4j2.properties"
        -Dkafka.logs.dir="$kdir/logs" ${HUB_KAFKA_JAVA_OPTS:-})
    _hub_spawn "$kdir/kafka.pid" "$kdir/kafka.out" "$kdir" \
        "$java" "${opts[@]}" -cp "$libs/*" kafka.Kafka "$kdir/server.properties" || return 1
    pid=$(<"$kdir/kafka.pid")
    _hub_write_env
    if ! _hub_wait_until "kafka" "${HUB_KAFKA_START_TIMEOUT:-90}" "$pid" "$kdir/logs/server.log" \
        _hub_kafka_probe; then
        _hub_tail "$kdir/kafka.out" 20
        return 1
    fi
    if ((secured)); then _hub_kafka_secure_ready "$kdir" || return 1; fi
    _hub_record_time kafka "$start"
    _hub_log "kafka ready on $HUB_KAFKA_BOOTSTRAP (pid $pid, $(_hub_since "$start"))"
}

# Ready = the listener accepts connections (a cheap check first) and answers a
# metadata request (for a topic that does not exist, so the answer is small).
_hub_kafka_probe() {
    (: <>"/dev/tcp/127.0.0.1/$HUB_KAFKA_PORT") 2>/dev/null &&
        kcat -b "$HUB_KAFKA_BOOTSTRAP" -L -t __hub_readiness_probe -m 2 >/dev/null 2>&1
}

# Stop the broker (TERM = controlled shutdown, KILL after HUB_STOP_TIMEOUT).
hub_kafka_stop() {
    [[ -n "${HUB_SCRATCH:-}" ]] || return 0
    _hub_stop_pidfile kafka "$(_hub_kafka_dir)/kafka.pid"
}

# Crash the broker (SIGKILL, no controlled shutdown); hub_kafka_start recovers it.
hub_kafka_kill() {
    [[ -n "${HUB_SCRATCH:-}" ]] || return 0
    _hub_stop_pidfile kafka "$(_hub_kafka_dir)/kafka.pid" 10 KILL
}

# hub_kafka_create_topics [topic...]: create topics (default: the hub's topics)
# with HUB_KAFKA_TOPIC_PARTITIONS (3) partitions, replication factor 1.
# Existing topics are left alone. Uses one AdminClient call, no JVM.
hub_kafka_create_topics() {
    local topics=("$@")
    ((${#topics[@]})) || read -r -a topics <<<"${HUB_KAFKA_TOPICS:-$HUB_TOPICS_DEFAULT}"
    [[ -n "${HUB_KAFKA_BOOTSTRAP:-}" ]] || { _hub_err "kafka is not started"; return 1; }
    "$(_hub_python)" - "$HUB_KAFKA_BOOTSTRAP" "${HUB_KAFKA_TOPIC_PARTITIONS:-3}" "${topics[@]}" <<'PY' ||
import os, sys
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, partitions, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
conf = {}
if os.environ.get("KCAT_CONFIG"):  # the secured broker: the admin's client properties
    with open(os.environ["KCAT_CONFIG"]) as f:
        conf = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
conf["bootstrap.servers"] = bootstrap
admin = AdminClient(conf)
futures = admin.create_topics(
    [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names],
    operation_timeout=30, request_timeout=30)
failed = 0
for name, future in futures.items():
    try:
        future.result()
        print(f"created topic {name} ({partitions} partitions)", file=sys.stderr)
    except Exception as exc:  # KafkaException wrapping a KafkaError
        err = exc.args[0] if exc.args else None
        if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            print(f"topic {name} already exists", file=sys.stderr)
        else:
            print(f"creating topic {name} failed: {exc}", file=sys.stderr)
            failed += 1
sys.exit(1 if failed else 0)
PY
        { _hub_err "topic creation failed"; return 1; }
}

# ---------------------------------------------------------------------------
# Apicurio Registry (Confluent-compatible API at /apis/ccompat/v7)
# ---------------------------------------------------------------------------
_hub_registry_dir() { printf '%s' "$HUB_SCRATCH/registry"; }

# Java 21+ for the registry: HUB_REGISTRY_JAVA, else the newest suitable JDK
# under /usr/lib/jvm (Temurin 25 on the project's machines).
_hub_registry_java() {
    if [[ -n "${HUB_REGISTRY_JAVA:-}" ]]; then
        printf '%s' "$HUB_REGISTRY_JAVA"
        return 0
    fi
    local candidate major
    for candidate in /usr/lib/jvm/temurin-25-jdk-amd64/bin/java $(printf '%s\n' /usr/lib/jvm/*/bin/java | sort -rV); do
        [[ -x "$candidate" ]] || continue
        major=$("$candidate" -XshowSettings:properties -version 2>&1 |
            sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p')
        if [[ -n "$major" ]] && ((major >= 21)); then
            printf '%s' "$candidate"
            return 0
        fi
    done
    _hub_err "no Java 21+ found for Apicurio Registry; set HUB_REGISTRY_JAVA"
}

# Make sure the registry is unpacked in the cache; print its directory.
hub_registry_home() {
    local version=${HUB_APICURIO_VERSION:-$_HUB_APICURIO_VERSION_DEFAULT}
    local cache home marker m2 tarball
    cache=$(_hub_cache_dir)
    home=$cache/apicurio-registry-$version
    marker=$home/.complete
    if [[ ! -f "$marker" ]]; then
        mkdir -p "$cache" || return 1
        (
            flock 9 || exit 1
            [[ -f "$marker" ]] && exit 0
            m2=${HUB_M2_REPO:-${HOME:-/root}/.m2/repository}
            tarball=$m2/io/apicurio/apicurio-registry-app/$version/apicurio-registry-app-$version-all.tar.gz
            if [[ ! -f "$tarball" ]]; then
                _hub_log "apicurio $version: downloading with Maven (once, ~160 MB)"
                mvn -B -q dependency:get -Dartifact="io.apicurio:apicurio-registry-app:$version:tar.gz:all" \
                    -Dtransitive=false -Dmaven.repo.local="$m2" >"$cache/apicurio-mvn.log" 2>&1 ||
                    { _hub_tail "$cache/apicurio-mvn.log"; _hub_err "mvn dependency:get failed"; exit 1; }
            fi
            _hub_log "apicurio $version: unpacking into $home (once)"
            rm -rf "$home"
            mkdir -p "$home" && tar -xzf "$tarball" -C "$home" ||
                { _hub_err "cannot unpack $tarball"; exit 1; }
            local jar
            jar=$(find "$home" -maxdepth 3 -name quarkus-run.jar -print -quit)
            [[ -n "$jar" ]] || { _hub_err "no quarkus-run.jar in $tarball"; exit 1; }
            printf '%s\n' "${jar#"$home"/}" >"$marker"
        ) 9>"$cache/.apicurio-$version.lock" || return 1
    fi
    printf '%s' "$home"
}

hub_registry_start() {
    local start rdir home jar java pid
    start=$(_hub_now_us)
    hub_scratch_init || return 1
    home=$(hub_registry_home) || return 1
    jar=$home/$(<"$home/.complete")
    java=$(_hub_registry_java) || return 1
    _hub_pick_port HUB_REGISTRY_PORT || return 1
    _hub_pick_port HUB_REGISTRY_MGMT_PORT || return 1
    HUB_REGISTRY_URL=http://127.0.0.1:$HUB_REGISTRY_PORT/apis/ccompat/v7
    export HUB_REGISTRY_URL
    rdir=$(_hub_registry_dir)
    mkdir -p "$rdir/tmp" || return 1
    if [[ -s "$rdir/registry.pid" ]] && _hub_pid_alive "$(<"$rdir/registry.pid")" "$HUB_SCRATCH"; then
        _hub_log "registry already running at $HUB_REGISTRY_URL"
        _hub_write_env
        return 0
    fi
    # In-memory H2 storage (the default); HTTP and management interface bound to
    # loopback; no OpenTelemetry export, no usage tracking; deletes enabled as in
    # Confluent's registry. One access-log line per request goes to registry.log.
    # C1 only: ~1 s faster start (HUB_REGISTRY_JAVA_OPTS=-XX:TieredStopAtLevel=4 undoes it).
    # shellcheck disable=SC2206  # HUB_REGISTRY_JAVA_OPTS is a word list
    local opts=(-Xms128m -Xmx512m -XX:+ExitOnOutOfMemoryError -XX:TieredStopAtLevel=1
        -Djava.io.tmpdir="$rdir/tmp"
        -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$HUB_REGISTRY_PORT"
        -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$HUB_REGISTRY_MGMT_PORT"
        -Dquarkus.otel.sdk.disabled=true -Dquarkus.banner.enabled=false
        -Dquarkus.log.console.format='%d{yyyy-MM-dd HH:mm:ss,SSS} %p [%c{3.}] (%t) %s%e%n'
        -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=h2
        -Dapicurio.usage.telemetry.enabled=false
        -Dapicurio.storage.snapshot.location="$rdir/tmp" -Dapicurio.import.work-dir="$rdir/tmp"
        -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2
        -Dapicurio.rest.deletion.group.enabled=true -Dapicurio.rest.deletion.artifact.enabled=true
        -Dapicurio.rest.deletion.artifact-version.enabled=true
        ${HUB_REGISTRY_JAVA_OPTS:-})
    _hub_spawn "$rdir/registry.pid" "$rdir/registry.log" "$rdir" \
        "$java" "${opts[@]}" -jar "$jar" || return 1
    pid=$(<"$rdir/registry.pid")
    _hub_write_env
    _hub_wait_until "registry" "${HUB_REGISTRY_START_TIMEOUT:-90}" "$pid" "$rdir/registry.log" \
        curl -sf -o /dev/null --max-time 2 "$HUB_REGISTRY_URL/subjects" || return 1
    # Compatibility is not enforced until set: make it BACKWARD and check it stuck.
    curl -sf --max-time 10 -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
        --data '{"compatibility":"BACKWARD"}' "$HUB_REGISTRY_URL/config" >/dev/null ||
        { _hub_err "registry: PUT /config failed"; return 1; }
    local config
    config=$(curl -sf --max-time 10 "$HUB_REGISTRY_URL/config") || { _hub_err "registry: GET /config failed"; return 1; }
    [[ "$config" == *'"BACKWARD"'* ]] || { _hub_err "registry: compatibility not BACKWARD: $config"; return 1; }
    _hub_record_time registry "$start"
    _hub_log "registry ready at $HUB_REGISTRY_URL (pid $pid, $(_hub_since "$start"))"
}

hub_registry_stop() {
    [[ -n "${HUB_SCRATCH:-}" ]] || return 0
    _hub_stop_pidfile registry "$(_hub_registry_dir)/registry.pid"
}

# ---------------------------------------------------------------------------
# SMTP (aiosmtpd, delivering into a Maildir)
# ---------------------------------------------------------------------------
_hub_smtp_dir() { printf '%s' "$HUB_SCRATCH/smtp"; }

hub_smtp_start() {
    local start sdir pid args=()
    start=$(_hub_now_us)
    hub_scratch_init || return 1
    _hub_pick_port HUB_SMTP_PORT || return 1
    HUB_SMTP_URL=smtp://127.0.0.1:$HUB_SMTP_PORT
    HUB_MAILDIR=$HUB_SCRATCH/mail
    export HUB_SMTP_URL HUB_MAILDIR
    sdir=$(_hub_smtp_dir)
    mkdir -p "$sdir" "$HUB_MAILDIR"/{cur,new,tmp} || return 1
    if [[ -s "$sdir/smtp.pid" ]] && _hub_pid_alive "$(<"$sdir/smtp.pid")" "$HUB_SCRATCH"; then
        _hub_log "smtp already running at $HUB_SMTP_URL"
        _hub_write_env
        return 0
    fi
    if [[ "${HUB_SMTP_STARTTLS:-0}" == 1 ]]; then
        if [[ ! -f "$sdir/tls.crt" ]]; then
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
                -addext subjectAltName=IP:127.0.0.1 -keyout "$sdir/tls.key" -out "$sdir/tls.crt" \
                >"$sdir/openssl.log" 2>&1 || { _hub_tail "$sdir/openssl.log"; _hub_err "openssl req failed"; return 1; }
        fi
        HUB_SMTP_TLS_CERT=$sdir/tls.crt
        export HUB_SMTP_TLS_CERT
        args+=(--tls-cert "$sdir/tls.crt" --tls-key "$sdir/tls.key")
    fi
    rm -f "$sdir/ready"
    _hub_spawn "$sdir/smtp.pid" "$sdir/smtp.out" "$sdir" \
        "$(_hub_python)" "$_HUB_INFRA_DIR/smtp_server.py" --host 127.0.0.1 --port "$HUB_SMTP_PORT" \
        --maildir "$HUB_MAILDIR" --log "$sdir/smtp.log" --ready-file "$sdir/ready" "${args[@]}" || return 1
    pid=$(<"$sdir/smtp.pid")
    _hub_write_env
    _hub_wait_until "smtp" "${HUB_SMTP_START_TIMEOUT:-20}" "$pid" "$sdir/smtp.out" test -s "$sdir/ready" || return 1
    _hub_record_time smtp "$start"
    _hub_log "smtp ready at $HUB_SMTP_URL, maildir $HUB_MAILDIR (pid $pid, $(_hub_since "$start"))"
}

hub_smtp_stop() {
    [[ -n "${HUB_SCRATCH:-}" ]] || return 0
    _hub_stop_pidfile smtp "$(_hub_smtp_dir)/smtp.pid" 10
}

# ---------------------------------------------------------------------------
# All together
# ---------------------------------------------------------------------------

# hub_infra_start <component>...   components: postgres kafka registry smtp (or all)
hub_infra_start() {
    local start component components=("$@")
    start=$(_hub_now_us)
    ((${#components[@]})) || { _hub_err "usage: hub_infra_start postgres|kafka|registry|smtp|all..."; return 1; }
    [[ "${components[*]}" == all ]] && components=(postgres kafka registry smtp)
    for component in "${components[@]}"; do
        case "$component" in
            postgres | kafka | registry | smtp) ;;
            *) _hub_err "unknown component '$component' (postgres kafka registry smtp)"; return 1 ;;
        esac
    done
    hub_scratch_init || return 1
    for component in "${components[@]}"; do
        case "$component" in
            postgres) hub_pg_start || return 1 ;;
            kafka) hub_kafka_start || return 1 ;;
            registry) hub_registry_start || return 1 ;;
            smtp) hub_smtp_start || return 1 ;;
        esac
    done
    _hub_write_env
    _hub_record_time total "$start"
    _hub_log "infrastructure ready (${components[*]}) in $(_hub_since "$start"); env in $HUB_SCRATCH/env.sh"
}

# Stop everything that was started and remove the scratch directory
# (kept when HUB_KEEP_SCRATCH=1). Safe to call more than once.
hub_infra_stop() {
    local rc=0
    [[ -n "${HUB_SCRATCH:-}" && -d "$HUB_SCRATCH" ]] || return 0
    hub_smtp_stop || rc=1
    hub_registry_stop || rc=1
    hub_kafka_stop || rc=1
    hub_pg_stop || rc=1
    if [[ "${HUB_KEEP_SCRATCH:-0}" == 1 ]]; then
        _hub_log "keeping scratch directory $HUB_SCRATCH (HUB_KEEP_SCRATCH=1)"
    elif ((rc != 0)); then
        _hub_log "keeping scratch directory $HUB_SCRATCH (a process did not stop)"
    elif [[ -e "$HUB_SCRATCH/.llr-hub-scratch" ]]; then
        rm -rf "$HUB_SCRATCH" && _hub_log "removed scratch directory $HUB_SCRATCH"
    else
        _hub_log "not removing $HUB_SCRATCH (it was not created by scripts/infra.sh)"
    fi
    return $rc
}

# Install the traps a caller wants: stop everything on exit, and on INT/TERM
# stop and exit (a bare `trap hub_infra_stop INT` would let the script go on).
hub_infra_trap() {
    trap hub_infra_stop EXIT
    trap 'hub_infra_stop; trap - EXIT; exit 130' INT
    trap 'hub_infra_stop; trap - EXIT; exit 143' TERM
}

# One line per component: running or not.
hub_infra_status() {
    [[ -n "${HUB_SCRATCH:-}" && -d "$HUB_SCRATCH" ]] || { echo "no scratch directory (HUB_SCRATCH unset or gone)"; return 1; }
    local name pidfile
    echo "scratch:  $HUB_SCRATCH"
    if [[ -f "$(_hub_pg_dir)/data/PG_VERSION" ]]; then
        HUB_PG_BIN=${HUB_PG_BIN:-/usr/lib/postgresql/15/bin}
        if _hub_pg_running; then echo "postgres: running on 127.0.0.1:$HUB_PG_PORT"; else echo "postgres: stopped"; fi
    fi
    for name in kafka registry smtp; do
        pidfile=$HUB_SCRATCH/$name/$name.pid
        [[ $name == kafka ]] && pidfile=$(_hub_kafka_dir)/kafka.pid
        [[ -d "${pidfile%/*}" ]] || continue
        if [[ -s "$pidfile" ]] && _hub_pid_alive "$(<"$pidfile")" "$HUB_SCRATCH"; then
            printf '%-9s running (pid %s)\n' "$name:" "$(<"$pidfile")"
        else
            printf '%-9s stopped\n' "$name:"
        fi
    done
}

# ---------------------------------------------------------------------------
# Self-test: start all four, exercise each the way the hub will, stop, check.
# ---------------------------------------------------------------------------
# The checks run in `bash -c '...'` with variables expanded there, not here.
# shellcheck disable=SC2016
hub_infra_selftest() {
    local passed=0 failed=0 scratch topic=hub.selftest tx_in=hub.selftest.tx-in tx_out=hub.selftest.tx-out
    _hub_check() { # _hub_check <description> <command...>
        local what=$1
        shift
        if "$@"; then
            passed=$((passed + 1))
            _hub_log "PASS $what"
        else
            failed=$((failed + 1))
            _hub_log "FAIL $what"
        fi
    }
    unset HUB_SCRATCH HUB_PG_CONNINFO HUB_KAFKA_BOOTSTRAP HUB_REGISTRY_URL HUB_SMTP_URL HUB_MAILDIR
    hub_infra_start postgres kafka registry smtp || return 1
    scratch=$HUB_SCRATCH

    _hub_check "postgres: select 1" \
        bash -c '[[ "$("$HUB_PG_BIN/psql" -X -At "$HUB_PG_CONNINFO" -c "select 1")" == 1 ]]'
    _hub_check "postgres: wrong password refused" \
        bash -c '! "$HUB_PG_BIN/psql" -X -At "host=127.0.0.1 port=$HUB_PG_PORT dbname=hub user=hub_admin password=wrong" -c "select 1" 2>/dev/null'

    local t0 hub_topics
    read -r -a hub_topics <<<"$HUB_TOPICS_DEFAULT"
    t0=$(_hub_now_us)
    _hub_check "kafka: create hub topics + selftest topics" \
        hub_kafka_create_topics "${hub_topics[@]}" "$topic" "$tx_in" "$tx_out"
    HUB_START_TIMES[create-topics]=$(_hub_since "$t0")
    _hub_check "kafka: topics listed with 3 partitions" bash -c \
        'kcat -b "$HUB_KAFKA_BOOTSTRAP" -L -t llr.hub.dead-letters -m 5 | grep -q "with 3 partitions"'
    _hub_check "kafka: kcat produce" bash -c \
        'printf "k1:hello-1\nk2:hello-2\nk3:hello-3\n" | kcat -b "$HUB_KAFKA_BOOTSTRAP" -P -t '"$topic"' -K: -X acks=all'
    _hub_check "kafka: kcat consume (assign)" bash -c \
        '[[ $(timeout 60 kcat -b "$HUB_KAFKA_BOOTSTRAP" -C -t '"$topic"' -o beginning -e -q -f "%k:%s\n" | sort | tr "\n" " ") == "k1:hello-1 k2:hello-2 k3:hello-3 " ]]'
    _hub_check "kafka: kcat consumer group (-G) reads all" bash -c \
        '[[ $(timeout 60 kcat -b "$HUB_KAFKA_BOOTSTRAP" -G hub-selftest-group -X auto.offset.reset=earliest -c 3 -q -f "%s\n" '"$topic"' | sort | tr "\n" " ") == "hello-1 hello-2 hello-3 " ]]'
    _hub_check "kafka: consumer group committed its offsets" _hub_selftest_group_offsets "$topic" hub-selftest-group 3
    _hub_check "kafka: transactions (commit, abort, read_committed, send_offsets)" \
        _hub_selftest_transactions "$tx_in" "$tx_out"

    _hub_check "registry: register Avro schema, read it back" _hub_selftest_registry
    _hub_check "smtp: deliver to Maildir, refuse @invalid.example.org" _hub_selftest_smtp

    # Restarts mid-stream, through the CLI exactly as a C test would call it.
    t0=$(_hub_now_us)
    _hub_check "postgres: stop + start via CLI" bash -c \
        '"$HUB_INFRA_CLI" pg-stop && ! "$HUB_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$HUB_PG_PORT" && "$HUB_INFRA_CLI" pg-start'
    HUB_START_TIMES[pg-restart]=$(_hub_since "$t0")
    _hub_check "postgres: select 1 after restart" \
        bash -c '[[ "$("$HUB_PG_BIN/psql" -X -At "$HUB_PG_CONNINFO" -c "select 1")" == 1 ]]'
    t0=$(_hub_now_us)
    _hub_check "kafka: stop + start via CLI" bash -c '"$HUB_INFRA_CLI" kafka-stop && "$HUB_INFRA_CLI" kafka-start'
    HUB_START_TIMES[kafka-restart]=$(_hub_since "$t0")
    _hub_check "kafka: data survives restart; group offsets too" bash -c \
        '[[ $(timeout 60 kcat -b "$HUB_KAFKA_BOOTSTRAP" -C -t '"$topic"' -o beginning -e -q -f "%s\n" | wc -l) == 3 ]]' 
    _hub_check "kafka: group resumes after restart" bash -c \
        'printf "hello-4\n" | kcat -b "$HUB_KAFKA_BOOTSTRAP" -P -t '"$topic"' -X acks=all &&
         [[ $(timeout 60 kcat -b "$HUB_KAFKA_BOOTSTRAP" -G hub-selftest-group -X auto.offset.reset=earliest -c 1 -q -f "%s\n" '"$topic"') == hello-4 ]]'

    # Stop everything and make sure nothing of ours is left.
    local ours
    ours=$(_hub_selftest_our_pids "$scratch")
    ours=$(sort -un <<<"$ours")
    _hub_log "processes of this run before stop: ${ours//$'\n'/ }"
    hub_infra_stop || _hub_log "hub_infra_stop reported a failure"
    local left=() pid
    for pid in $ours; do
        _hub_pid_alive "$pid" && left+=("$pid")
    done
    _hub_check "stop: no java/postgres/python process left" test ${#left[@]} -eq 0
    ((${#left[@]})) && ps -o pid,args -p "${left[*]}" >&2
    if [[ "${HUB_KEEP_SCRATCH:-0}" == 1 ]]; then
        _hub_check "stop: scratch directory kept (HUB_KEEP_SCRATCH=1)" test -d "$scratch"
    else
        _hub_check "stop: scratch directory removed" test ! -e "$scratch"
    fi
    hub_infra_stop && _hub_check "stop: second hub_infra_stop is a no-op" true

    local name
    for name in postgres kafka registry smtp total create-topics pg-restart kafka-restart; do
        _hub_log "timing: $(printf '%-14s' "$name") ${HUB_START_TIMES[$name]:-n/a}"
    done
    echo "selftest: $passed passed, $failed failed"
    ((failed == 0))
}

# Pids of every process of the scratch directory $1: those whose command line
# names it, and the PostgreSQL backends (children of the postmaster).
_hub_selftest_our_pids() {
    local scratch=$1 dir pid postmaster=""
    [[ -f "$scratch/pg/data/postmaster.pid" ]] && postmaster=$(head -n 1 "$scratch/pg/data/postmaster.pid")
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        ((pid == $$ || pid == BASHPID)) && continue
        if tr '\0' ' ' <"$dir/cmdline" 2>/dev/null | grep -qF -- "$scratch"; then
            # not our own shell helpers (bash -c ...), only servers
            tr '\0' ' ' <"$dir/cmdline" 2>/dev/null | grep -qE '(^|/)(java|postgres|python3?) ' && echo "$pid"
        elif [[ -n "$postmaster" ]] && [[ "$(awk '{print $4}' "$dir/stat" 2>/dev/null)" == "$postmaster" ]]; then
            echo "$pid"
        fi
    done
    [[ -n "$postmaster" ]] && echo "$postmaster"
    return 0
}

_hub_selftest_group_offsets() {
    "$(_hub_python)" - "$HUB_KAFKA_BOOTSTRAP" "$1" "$2" "$3" <<'PY'
import sys
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, group, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
md = c.list_topics(topic, timeout=10)
parts = [TopicPartition(topic, p) for p in md.topics[topic].partitions]
committed = c.committed(parts, timeout=10)
total = sum(tp.offset for tp in committed if tp.offset >= 0)
c.close()
print(f"group {group}: committed offsets {[(tp.partition, tp.offset) for tp in committed]}", file=sys.stderr)
sys.exit(0 if total == expected else 1)
PY
}

# Transactions with Debian's python3-confluent-kafka (it links the system
# librdkafka 2.0.2, the same library the hub's C services use).
_hub_selftest_transactions() {
    "$(_hub_python)" - "$HUB_KAFKA_BOOTSTRAP" "$1" "$2" <<'PY'
import sys, uuid
from confluent_kafka import Consumer, Producer, TopicPartition, KafkaException

bootstrap, tx_in, tx_out = sys.argv[1:4]
log = lambda *a: print("  txn:", *a, file=sys.stderr)

# 1. committed and aborted transactions on tx_in.
p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "hub-selftest-" + uuid.uuid4().hex,
              "enable.idempotence": True})
p.init_transactions(30)
p.begin_transaction()
for i in range(3):
    p.produce(tx_in, key=f"k{i}", value=f"committed-{i}")
p.commit_transaction(30)
p.begin_transaction()
p.produce(tx_in, key="kx", value="aborted")
p.abort_transaction(30)
log("commit + abort done")

# 2. consume-transform-produce: read tx_in in a group, write tx_out, commit the
#    group's offsets inside the transaction (send_offsets_to_transaction).
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hub-selftest-eos",
              "auto.offset.reset": "earliest", "enable.auto.commit": False,
              "isolation.level": "read_committed"})
c.subscribe([tx_in])
seen = []
import time
deadline = time.time() + 60
p.begin_transaction()
while len(seen) < 3 and time.time() < deadline:
    m = c.poll(1.0)
    if m is None or m.error():
        continue
    seen.append(m.value().decode())
    p.produce(tx_out, key=m.key(), value=m.value().upper())
if sorted(seen) != ["committed-0", "committed-1", "committed-2"]:
    log("read_committed consumer saw", seen)
    sys.exit(1)
p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
p.commit_transaction(30)
log("read_committed saw only committed records; send_offsets_to_transaction committed")
extra = c.poll(2.0)
if extra is not None and not extra.error():
    log("unexpected extra record", extra.value())
    sys.exit(1)
c.close()

# 3. the group's committed offsets came from the transaction; tx_out has 3 records.
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hub-selftest-eos"})
md = c.list_topics(tx_in, timeout=10)
committed = c.committed([TopicPartition(tx_in, q) for q in md.topics[tx_in].partitions], timeout=10)
c.close()
# committed offsets point past the transaction markers: at least 3 records in total
if sum(tp.offset for tp in committed if tp.offset > 0) < 3:
    log("committed offsets", committed)
    sys.exit(1)
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hub-selftest-check-" + uuid.uuid4().hex,
              "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
c.subscribe([tx_out])
out = []
deadline = time.time() + 30
while len(out) < 3 and time.time() < deadline:
    m = c.poll(1.0)
    if m is not None and not m.error():
        out.append(m.value().decode())
c.close()
log("tx_out:", sorted(out))
sys.exit(0 if sorted(out) == ["COMMITTED-0", "COMMITTED-1", "COMMITTED-2"] else 1)
PY
}

# curl for the registry checks: bounded, and each call traced into the scratch
# directory so a failure can be read back (HUB_KEEP_SCRATCH=1).
_hub_selftest_curl() {
    curl --max-time 15 --trace-ascii "$HUB_SCRATCH/registry/selftest-curl-$(_hub_now_us).trace" "$@"
}

_hub_selftest_registry() {
    local subject=hub.selftest-value ct='Content-Type: application/vnd.schemaregistry.v1+json'
    local v1='{"schema":"{\"type\":\"record\",\"name\":\"Selftest\",\"namespace\":\"org.llr.hub\",\"fields\":[{\"name\":\"id\",\"type\":\"string\"}]}"}'
    local v2='{"schema":"{\"type\":\"record\",\"name\":\"Selftest\",\"namespace\":\"org.llr.hub\",\"fields\":[{\"name\":\"id\",\"type\":\"string\"},{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null}]}"}'
    local incompatible='{"schema":"{\"type\":\"record\",\"name\":\"Selftest\",\"namespace\":\"org.llr.hub\",\"fields\":[{\"name\":\"id\",\"type\":\"string\"},{\"name\":\"must\",\"type\":\"int\"}]}"}'
    local out id code
    out=$(_hub_selftest_curl -sf -X POST -H "$ct" --data "$v1" "$HUB_REGISTRY_URL/subjects/$subject/versions") || return 1
    id=$(sed -n 's/.*"id":\([0-9]*\).*/\1/p' <<<"$out")
    [[ -n "$id" ]] || { _hub_log "registry: no id in $out"; return 1; }
    out=$(_hub_selftest_curl -sf "$HUB_REGISTRY_URL/schemas/ids/$id") || return 1
    "$(_hub_python)" -c 'import json,sys; s=json.loads(json.loads(sys.argv[1])["schema"]); sys.exit(s["name"]!="Selftest")' "$out" || return 1
    _hub_selftest_curl -sf -X POST -H "$ct" --data "$v2" "$HUB_REGISTRY_URL/subjects/$subject/versions" >/dev/null || return 1
    code=$(_hub_selftest_curl -s -o /dev/null -w '%{http_code}' -X POST -H "$ct" --data "$incompatible" "$HUB_REGISTRY_URL/subjects/$subject/versions")
    [[ "$code" == 409 ]] || { _hub_log "registry: incompatible schema gave HTTP $code, wanted 409"; return 1; }
    out=$(_hub_selftest_curl -sf "$HUB_REGISTRY_URL/subjects/$subject/versions") || return 1
    [[ "$out" == "[1,2]" ]] || { _hub_log "registry: versions $out"; return 1; }
}

_hub_selftest_smtp() {
    "$(_hub_python)" - "$HUB_SMTP_PORT" "$HUB_MAILDIR" <<'PY'
import mailbox, smtplib, sys
from email.message import EmailMessage
port, maildir = int(sys.argv[1]), sys.argv[2]
msg = EmailMessage()
msg["From"] = "hub@llr.example.org"
msg["To"] = "coordinator@llr.example.org"
msg["Subject"] = "selftest"
msg.set_content("hello from the selftest")
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    s.send_message(msg)
    try:
        s.sendmail("hub@llr.example.org", ["nobody@invalid.example.org"], msg.as_bytes())
        print("  smtp: bad recipient accepted", file=sys.stderr)
        sys.exit(1)
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = exc.recipients["nobody@invalid.example.org"]
        if code != 550 or b"5.1.1" not in text:
            print("  smtp: unexpected refusal", code, text, file=sys.stderr)
            sys.exit(1)
box = mailbox.Maildir(maildir, create=False)
subjects = [m["Subject"] for m in box]
envelope = [m["X-Envelope-To"] for m in box]
print("  smtp: maildir holds", subjects, envelope, file=sys.stderr)
sys.exit(0 if subjects == ["selftest"] and envelope == ["coordinator@llr.example.org"] else 1)
PY
}

# ---------------------------------------------------------------------------
# Command-line interface (when executed rather than sourced)
# ---------------------------------------------------------------------------
_hub_usage() {
    cat <<'EOF'
Usage: scripts/infra.sh <command> [args]
       source scripts/infra.sh   (library: hub_infra_start, hub_infra_stop, ...)

Commands for a running infrastructure (need HUB_SCRATCH in the environment;
they read $HUB_SCRATCH/env.sh):
  pg-stop | pg-start           stop / start PostgreSQL (same data dir and port)
  kafka-stop | kafka-start     stop (controlled) / start the broker (same data and ports)
  kafka-kill                   SIGKILL the broker (crash); kafka-start recovers it
  registry-stop | registry-start, smtp-stop | smtp-start
  create-topics [topic...]     create the hub topics (or the given ones), 3 partitions
  kafka-scram-rotate <name>    secured broker: a new SCRAM password for a principal
  status                       show what is running
  env                          print env.sh
  stop                         stop everything, remove the scratch dir (unless HUB_KEEP_SCRATCH=1)

Commands that start things:
  start <postgres|kafka|registry|smtp|all>...
                               start in $HUB_SCRATCH (a new /tmp/llr-hub.XXXXXX if unset)
                               and leave running; prints the path of env.sh
  selftest                     start all four, exercise them, stop, check nothing is left
  prepare                      fill the download cache (Kafka classpaths, Apicurio) only

Environment (all optional):
  HUB_SCRATCH         scratch directory (default: mktemp -d /tmp/llr-hub.XXXXXX)
  HUB_KEEP_SCRATCH=1  keep the scratch directory (logs, data) after stop
  HUB_CACHE_DIR       download cache (default: ${XDG_CACHE_HOME:-$HOME/.cache}/llr-hub)
  HUB_PG_PORT HUB_KAFKA_PORT HUB_KAFKA_CONTROLLER_PORT HUB_REGISTRY_PORT
  HUB_REGISTRY_MGMT_PORT HUB_SMTP_PORT   fixed ports instead of free random ones
  HUB_PG_BIN          PostgreSQL bin dir (default /usr/lib/postgresql/15/bin)
  HUB_KAFKA_JAVA, HUB_REGISTRY_JAVA      java binaries (registry needs Java 21+)
  HUB_KAFKA_JAVA_OPTS, HUB_REGISTRY_JAVA_OPTS   extra JVM options
  HUB_SMTP_STARTTLS=1 offer STARTTLS with a self-signed certificate (HUB_SMTP_TLS_CERT)
  HUB_KAFKA_SECURITY=sasl_ssl  the broker on SASL_SSL with SCRAM users and the ACLs
                      of config/acls.conf (docs/security.md); client settings per
                      principal in $HUB_KAFKA_CLIENTS
  HUB_STOP_TIMEOUT    seconds between TERM and KILL (default 30)

Exported for tests: HUB_KAFKA_BOOTSTRAP HUB_PG_CONNINFO HUB_PG_BIN HUB_REGISTRY_URL
  HUB_SMTP_URL HUB_MAILDIR HUB_SCRATCH HUB_INFRA_CLI (see docs/infrastructure.md)
EOF
}

_hub_cli_load_env() {
    [[ -n "${HUB_SCRATCH:-}" ]] || { _hub_err "HUB_SCRATCH is not set"; return 1; }
    [[ -f "$HUB_SCRATCH/env.sh" ]] || { _hub_err "no $HUB_SCRATCH/env.sh (infrastructure not started?)"; return 1; }
    # shellcheck disable=SC1091
    source "$HUB_SCRATCH/env.sh"
}

_hub_cli() {
    local command=${1:-}
    (($#)) && shift
    case "$command" in
        -h | --help | help | "") _hub_usage ;;
        pg-stop) _hub_cli_load_env && hub_pg_stop ;;
        pg-start) _hub_cli_load_env && hub_pg_start ;;
        kafka-stop) _hub_cli_load_env && hub_kafka_stop ;;
        kafka-start) _hub_cli_load_env && hub_kafka_start ;;
        kafka-kill) _hub_cli_load_env && hub_kafka_kill ;;
        registry-stop) _hub_cli_load_env && hub_registry_stop ;;
        registry-start) _hub_cli_load_env && hub_registry_start ;;
        smtp-stop) _hub_cli_load_env && hub_smtp_stop ;;
        smtp-start) _hub_cli_load_env && hub_smtp_start ;;
        create-topics) _hub_cli_load_env && hub_kafka_create_topics "$@" ;;
        kafka-scram-rotate) _hub_cli_load_env && hub_kafka_scram_rotate "$@" ;;
        status) _hub_cli_load_env && hub_infra_status ;;
        env) _hub_cli_load_env && cat "$HUB_SCRATCH/env.sh" ;;
        stop)
            if [[ -n "${HUB_SCRATCH:-}" && -f "$HUB_SCRATCH/env.sh" ]]; then
                _hub_cli_load_env && hub_infra_stop
            else
                _hub_log "nothing to stop (no ${HUB_SCRATCH:-\$HUB_SCRATCH}/env.sh)"
            fi
            ;;
        start)
            [[ -n "${HUB_SCRATCH:-}" && -f "$HUB_SCRATCH/env.sh" ]] && _hub_cli_load_env
            hub_infra_start "$@" || return 1
            echo "$HUB_SCRATCH/env.sh"
            ;;
        selftest)
            hub_infra_trap
            hub_infra_selftest
            ;;
        prepare)
            # Both brokers: the plaintext one and the secured one (another Kafka version).
            hub_kafka_libs >/dev/null && HUB_KAFKA_SECURITY=sasl_ssl hub_kafka_libs >/dev/null &&
                hub_registry_home >/dev/null && _hub_log "cache ready in $(_hub_cache_dir)"
            ;;
        *)
            _hub_log "ERROR: unknown command '$command'"
            _hub_usage >&2
            return 2
            ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    _hub_cli "$@"
fi

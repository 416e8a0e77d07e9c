#!/usr/bin/env bash
# PostgreSQL over TLS: sslmode=verify-full against the run's CA works (by IP and
# by name), a wrong CA and an unencrypted connection are refused; a service
# (hub-projector) connects with passwords read from files, over TLS, and its log
# never holds a password, not even when the login fails (nor, on the secured
# broker, its Kafka password).
set -euo pipefail
source "$(dirname "$0")/hubctl_lib.bash"
need_env HUB_PG_CONNINFO HUB_PG_BIN HUB_PG_PORT HUB_TLS_CA HUB_TLS_OTHER_CA HUB_KAFKA_BOOTSTRAP
psql=("$HUB_PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1)
export PGCONNECT_TIMEOUT=10

# ---- the server's certificate, checked by libpq --------------------------------
base="host=127.0.0.1 port=$HUB_PG_PORT dbname=hub user=hub_admin"
export PGPASSFILE=$dir/pgpass # the admin's password from a file, not the command line
(umask 077 && printf '127.0.0.1:%s:*:hub_admin:%s\nlocalhost:%s:*:hub_admin:%s\n' \
    "$HUB_PG_PORT" "$(<"$HUB_SCRATCH/pg.password")" "$HUB_PG_PORT" "$(<"$HUB_SCRATCH/pg.password")" >"$PGPASSFILE")
check "verify-full with the CA: TLS in use" 0 "t|TLSv1.3" -- \
    "${psql[@]}" "$base sslmode=verify-full sslrootcert=$HUB_TLS_CA" \
    -c "select ssl, version from pg_stat_ssl where pid = pg_backend_pid()"
check "verify-full by name (SAN DNS:localhost)" 0 "t" -- \
    "${psql[@]}" "${base/127.0.0.1/localhost} sslmode=verify-full sslrootcert=$HUB_TLS_CA" \
    -c "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
check "a CA that did not sign the server's certificate is refused" 2 "certificate verify failed" -- \
    "${psql[@]}" "$base sslmode=verify-full sslrootcert=$HUB_TLS_OTHER_CA" -c "select 1"
check "an unencrypted connection is refused (hostssl)" 2 "no encryption" -- \
    "${psql[@]}" "$base sslmode=disable" -c "select 1"

# ---- a service with its passwords in files ---------------------------------------
new_topics t risk_flags transition_alerts transition_plans meeting_actions group_notifications \
    dead_letters
db="t_pgtls_$$_$RANDOM"
role="t_pgtls_$$_$RANDOM"
projector_pw=$(openssl rand -hex 20)
admin_pw=$(<"$HUB_SCRATCH/pg.password")
(umask 077 && printf '%s\n' "$projector_pw" >"$dir/projector.password" &&
    printf '%s\n' "$admin_pw" >"$dir/admin.password" && printf 'wrong-%s\n' "$projector_pw" >"$dir/wrong.password")
"${psql[@]}" "$HUB_PG_CONNINFO" -c "CREATE DATABASE $db" -c "CREATE ROLE $role LOGIN PASSWORD '$projector_pw'"
cleanup_pg() {
    "${psql[@]}" "$HUB_PG_CONNINFO" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
        -c "DROP ROLE IF EXISTS $role" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup_pg EXIT

write_config() { # write_config <file> <password file>
    cat >"$1" <<CONF
kafka = { $(kafka_settings) };
postgres = {
  conninfo = "host=127.0.0.1 port=$HUB_PG_PORT dbname=$db user=$role sslmode=verify-full sslrootcert=$HUB_TLS_CA";
  password_file = "$2";
};
log = { level = "debug"; };
topics = {
  risk_flags = "$t_risk_flags"; transition_alerts = "$t_transition_alerts";
  transition_plans = "$t_transition_plans"; meeting_actions = "$t_meeting_actions";
  group_notifications = "$t_group_notifications"; dead_letters = "$t_dead_letters";
};
projector = {
  group_id = "t-pgtls-$$";
  migrate_conninfo = "host=127.0.0.1 port=$HUB_PG_PORT dbname=$db user=hub_admin sslmode=verify-full sslrootcert=$HUB_TLS_CA";
  migrate_password_file = "$dir/admin.password";
  startup_wait_ms = 2000;
  http_listen = "127.0.0.1:0";
};
CONF
}
projector=$HUB_BUILD_DIR/services/projector/hub-projector
unset PGPASSFILE # the service must find its passwords in its own configuration

# The migrations (as the admin, password from its file) make the roles; ours joins hub_projector.
write_config "$dir/hub.conf" "$dir/projector.password"
status=0
"$projector" --config "$dir/hub.conf" --migrate-only >"$dir/migrate.log" 2>&1 || status=$?
assert_eq "migrations over TLS with the admin's password file" 0 "$status"
"${psql[@]}" "$HUB_PG_CONNINFO" -c "GRANT hub_projector TO $role"

# A wrong password: the login fails and is logged, the password is not.
write_config "$dir/wrong.conf" "$dir/wrong.password"
status=0
timeout 60 "$projector" --config "$dir/wrong.conf" >"$dir/wrong.log" 2>&1 || status=$?
assert_eq "wrong password: the projector gives up" 1 "$status"
grep -q "password authentication failed" "$dir/wrong.log" || fail "wrong password: no login error logged"

# The right one: events reach the database over a verified TLS connection.
"$projector" --config "$dir/hub.conf" >"$dir/projector.log" 2>&1 &
projector_pid=$!
S1=c97edffa2dd49a099a182a731258bb2ea4e160ed328b1f5338ffaaa6c374e111
printf '%s\n' "{\"event_id\":\"0b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b80\",\"occurred_at\":\"2025-06-14T09:30:00.250Z\",\"source_agency\":\"LEICESTER_CS\",\"subject_key\":\"$S1\",\"local_authority\":\"LEICESTER\",\"date_of_birth\":\"2008-02-29\",\"risk_categories\":[\"LOOKED_AFTER\"],\"flagged_on\":\"2025-06-14\"}" >"$dir/flag.jsonl"
"$hubctl" --config "$dir/hub.conf" publish YoungPersonFlagged "$dir/flag.jsonl" >/dev/null
rows=0 ssl=""
for _ in $(seq 1 300); do
    rows=$("${psql[@]}" "$HUB_PG_CONNINFO dbname=$db" -c "select count(*) from young_people" 2>/dev/null || echo 0)
    [[ "$rows" == 1 ]] && break
    kill -0 "$projector_pid" 2>/dev/null || break
    sleep 0.2
done
assert_eq "the flag reached the projection" 1 "$rows"
ssl=$("${psql[@]}" "$HUB_PG_CONNINFO" -c "select string_agg(distinct s.ssl::text, ',') from pg_stat_ssl s
      join pg_stat_activity a using (pid) where a.usename = '$role'")
assert_eq "the projector's connections use TLS" "true" "$ssl"
kill -TERM "$projector_pid" 2>/dev/null || true
status=0
wait "$projector_pid" || status=$?
assert_eq "the projector stops cleanly on TERM" 0 "$status"

secrets=("$projector_pw" "$admin_pw")
# On the secured broker the projector also logs in to Kafka with a password file.
[[ -n "${HUB_KAFKA_CLIENTS:-}" ]] && secrets+=("$(<"$HUB_KAFKA_CLIENTS/admin.password")")
for log in migrate wrong projector; do
    for secret in "${secrets[@]}"; do
        if grep -qF -- "$secret" "$dir/$log.log"; then
            fail "$log.log holds a password"
        fi
    done
done
echo "ok: no password in the projector's logs ($(cat "$dir"/{migrate,wrong,projector}.log | wc -l) lines, log level debug)"
finish

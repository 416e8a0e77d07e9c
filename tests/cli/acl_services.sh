#!/usr/bin/env bash
# The hub end to end on the secured broker, every program logged in as its own
# principal through configuration alone (the per-principal snippet that the
# infrastructure writes, @included in kafka = { }): children's services publish a
# flag with hubctl, hub-planner turns it into an alert, adult social care tails the
# alert with hubctl, hub-projector puts both into PostgreSQL. And the denials
# as a partner sees them: children's services cannot publish an alert, adult
# social care cannot tail the risk flags. A rotated SCRAM password: the old one
# is refused, the new one works.
# Runs in scripts/test's secured pass only (label secure-only).
set -euo pipefail
source "$(dirname "$0")/hubctl_lib.bash"
need_env HUB_INFRA_CLI HUB_KAFKA_CLIENTS HUB_KAFKA_BOOTSTRAP HUB_PG_CONNINFO HUB_PG_BIN HUB_PG_PORT HUB_TLS_CA HUB_SCRATCH
psql=("$HUB_PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1)
pids=()
db="t_aclsvc_$$_$RANDOM"
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    "${psql[@]}" "$HUB_PG_CONNINFO" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

# conf <principal> [more settings]: a config file logged in as principal, hub topics by default.
conf() {
    local principal=$1 file=$dir/$1.conf
    shift
    cat >"$file" <<CONF
kafka = {
  bootstrap_servers = "$HUB_KAFKA_BOOTSTRAP";
  @include "$HUB_KAFKA_CLIENTS/$principal.conf"
};
log = { level = "info"; };
$*
CONF
    printf '%s' "$file"
}

subject=$(openssl rand -hex 32)
flag_id=$(</proc/sys/kernel/random/uuid)
cat >"$dir/flag.jsonl" <<EOF
{"event_id":"$flag_id","occurred_at":"2025-06-14T09:30:00.250Z","source_agency":"LEICESTER_CS","subject_key":"$subject","local_authority":"LEICESTER","date_of_birth":"2008-02-29","risk_categories":["LOOKED_AFTER"],"flagged_on":"2025-06-14"}
EOF
cat >"$dir/alert.jsonl" <<EOF
{"event_id":"$(</proc/sys/kernel/random/uuid)","occurred_at":"2025-06-14T09:30:01.000Z","producer":"hub-planner","subject_key":"$subject","local_authority":"LEICESTER","due_date":"2025-08-28","rule":"LOOKED_AFTER_16_PLUS_3M","cause_event_id":"$flag_id","risk_categories":["LOOKED_AFTER"]}
EOF

cs=$(conf childrens-services)
asc=$(conf adult-social-care)
check "children's services publish a risk flag" 0 "published 1 events" -- "$hubctl" --config "$cs" publish YoungPersonFlagged "$dir/flag.jsonl"
check "children's services cannot publish a transition alert" 1 "authorization failed" -- \
    "$hubctl" --config "$cs" publish TransitionPlanDue "$dir/alert.jsonl"
check "adult social care cannot tail the risk flags" 1 "authorization failed" -- \
    "$hubctl" --config "$asc" tail risk_flags --from-beginning --end

# hub-planner, as hub-planner, in groups and transactional ids of its prefix.
planner_conf=$(conf hub-planner "planner = { group_id = \"hub-planner-e2e-$$\"; transactional_id = \"hub-planner-e2e-$$\"; batch_ms = 50; http_listen = \"127.0.0.1:0\"; };")
"$HUB_BUILD_DIR/services/planner/hub-planner" --config "$planner_conf" >"$dir/planner.log" 2>&1 &
pids+=($!)

# hub-projector, as hub-projector, into a fresh database (migrated by the admin role).
"${psql[@]}" "$HUB_PG_CONNINFO" -c "CREATE DATABASE $db"
projector_conf=$(conf hub-projector "postgres = {
  conninfo = \"host=127.0.0.1 port=$HUB_PG_PORT dbname=$db user=hub_admin sslmode=verify-full sslrootcert=$HUB_TLS_CA\";
  password_file = \"$HUB_SCRATCH/pg.password\"; };
projector = { group_id = \"hub-projector-e2e-$$\"; http_listen = \"127.0.0.1:0\"; };")
"$HUB_BUILD_DIR/services/projector/hub-projector" --config "$projector_conf" >"$dir/projector.log" 2>&1 &
pids+=($!)

# Adult social care sees the alert that the planner raised for this flag.
found=""
for _ in $(seq 1 60); do
    if "$hubctl" --config "$asc" tail transition_alerts --from-beginning --end >"$dir/alerts.jsonl" 2>"$dir/tail.err" &&
        grep -q "\"cause_event_id\":\"$flag_id\"" "$dir/alerts.jsonl"; then
        found=yes
        break
    fi
    sleep 1
done
if [[ -n "$found" ]]; then echo "ok: adult social care reads the planner's alert"; else
    fail "no alert for the flag within 60 s"
    sed 's/^/    planner: /' "$dir/planner.log" | tail -20 >&2
    sed 's/^/    tail: /' "$dir/tail.err" | tail -5 >&2
fi

# The projector read both (it reads every hub topic) into the view.
rows=""
for _ in $(seq 1 60); do
    rows=$("${psql[@]}" "$HUB_PG_CONNINFO dbname=$db" -c \
        "select count(*) from young_people yp join transition_plans tp using (subject_key)
         where yp.subject_key = '$subject'" 2>/dev/null || true)
    [[ "$rows" == 1 ]] && break
    sleep 1
done
assert_eq "the projector put the young person and the plan into PostgreSQL" 1 "$rows"

# Operators' hubctl reads the dead letters (what the services rejected).
run status "$dir/dlq.out" "$dir/dlq.err" -- "$hubctl" --config "$(conf hubctl-admin)" tail dead_letters --from-beginning --end
assert_eq "hubctl-admin tails the dead letters" 0 "$status"

# Rotating a SCRAM password: the old one is refused at once, the new one works.
old_pw=$(<"$HUB_KAFKA_CLIENTS/hub-reminder.password")
"$HUB_INFRA_CLI" kafka-scram-rotate hub-reminder >"$dir/rotate.log" 2>&1 || {
    fail "kafka-scram-rotate failed"
    cat "$dir/rotate.log" >&2
}
check "hub-reminder logs in with its new password" 0 "broker 1" -- \
    timeout 30 kcat -F "$HUB_KAFKA_CLIENTS/hub-reminder.properties" -L -t llr.meetings.actions
check "hub-reminder's old password is refused" 1 "Authentication failed" -- \
    timeout 30 kcat -F "$HUB_KAFKA_CLIENTS/hub-reminder.properties" -X "sasl.password=$old_pw" \
    -L -t llr.meetings.actions -m 5

for log in planner projector; do
    if grep -qi "authorization failed\|invalid credentials" "$dir/$log.log"; then
        fail "$log was refused something it needs:"
        grep -i "authorization failed\|invalid credentials" "$dir/$log.log" | head -5 >&2
    else
        echo "ok: $log ran without a refusal"
    fi
done
finish

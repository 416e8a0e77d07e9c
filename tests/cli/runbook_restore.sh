#!/usr/bin/env bash
# The runbook's "Restore the view from the event log" (docs/operations.md), tried
# on the real broker and database with the real hub-projector:
#
#   publish every event type (and two messages the projector rejects) to fresh
#   topics -> project into a fresh database -> snapshot every projected table and
#   the view -> stop the projector, run the runbook's SQL block as it is written
#   there -> start the projector again -> the same tables, row for row.
#
# Columns that record when the projector wrote a row (updated_at, received_at,
# recorded_at), and of dead_letters the id and, for the projector's own
# rejects, when it rejected them and where the copy went, are left out of the
# comparison: the runbook says why.
set -euo pipefail
: "${HUB_BUILD_DIR:?run through ctest}" "${HUB_SOURCE_DIR:?run through ctest}"
for v in HUB_KAFKA_BOOTSTRAP HUB_PG_CONNINFO HUB_PG_BIN HUB_INFRA_CLI HUB_SCRATCH; do
    if [[ -z "${!v:-}" ]]; then
        echo "FAIL: $v is not set: run the tests through scripts/test" >&2
        exit 1
    fi
done
root=$HUB_SOURCE_DIR
hubctl=$HUB_BUILD_DIR/services/hubctl/hubctl
projector=$HUB_BUILD_DIR/services/projector/hub-projector
python=${HUB_PYTHON:-/usr/bin/python3}
export HUB_DATA_DIR=${HUB_DATA_DIR:-$root}
unset HUB_CONFIG
# A free port for /metrics should the projector serve them (the default would clash).
export HUB_HTTP_LISTEN=127.0.0.1:0
started=$SECONDS

dir=$(mktemp -d)
tag=$$_$RANDOM
db=hub_restore_$tag
group=runbook-restore-$tag
conninfo=${HUB_PG_CONNINFO/dbname=hub/dbname=$db}
projector_pid=""
psql_admin() { "$HUB_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$HUB_PG_CONNINFO" "$@"; }
psql_db() { "$HUB_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$conninfo" "$@"; }
cleanup() {
    [[ -n "$projector_pid" ]] && kill -KILL "$projector_pid" 2>/dev/null
    psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
die() {
    echo "FAIL: $*" >&2
    for f in "$dir"/projector-*.log; do
        [[ -f "$f" ]] && { echo "---- $f" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}
ok() { echo "ok: $*"; }

# --- a database and topics of our own ----------------------------------------
[[ "$conninfo" != "$HUB_PG_CONNINFO" ]] || die "HUB_PG_CONNINFO has no dbname=hub to replace"
psql_admin -c "CREATE DATABASE $db" || die "cannot create database $db"
declare -A topic
for name in risk_flags transition_alerts transition_plans meeting_actions group_notifications dead_letters; do
    topic[$name]=test.restore.${name//_/-}.$tag
done
bash "$HUB_INFRA_CLI" create-topics "${topic[@]}" >"$dir/create.log" 2>&1 ||
    { cat "$dir/create.log" >&2; die "cannot create topics"; }

# The broker (with the secured broker's TLS/SASL settings when the tests run there).
kafka_settings="bootstrap_servers = \"$HUB_KAFKA_BOOTSTRAP\";"
if [[ -n "${HUB_KAFKA_EXTRA_PROPS:-}" ]]; then
    IFS=, read -r -a pairs <<<"$HUB_KAFKA_EXTRA_PROPS"
    for kv in "${pairs[@]}"; do
        key=${kv%%=*}
        kafka_settings+=" ${key//./_} = \"${kv#*=}\";"
    done
fi
cat >"$dir/hub.conf" <<EOF
kafka = { $kafka_settings };
postgres = { conninfo = "$conninfo"; };
schema_registry = { url = ""; };
topics = {
  risk_flags = "${topic[risk_flags]}";
  transition_alerts = "${topic[transition_alerts]}";
  transition_plans = "${topic[transition_plans]}";
  meeting_actions = "${topic[meeting_actions]}";
  group_notifications = "${topic[group_notifications]}";
  dead_letters = "${topic[dead_letters]}";
};
projector = { group_id = "$group"; startup_wait_ms = 20000; };
EOF

# --- events: every type, some people flagged twice, plans due and completed ---
"$python" - "$dir" <<'PY'
import json, random, sys, uuid
from datetime import date, timedelta
out = sys.argv[1]
rnd = random.Random(20251)
uid = lambda: str(uuid.UUID(int=rnd.getrandbits(128), version=4))
ms = iter(range(1750000000000, 1750000000000 + 10**9, 1000))
at = lambda: next(ms)
las = ["LEICESTER", "LEICESTERSHIRE", "RUTLAND"]
cats = ["LOOKED_AFTER", "CHILD_IN_NEED", "COUNTY_LINES", "GANGS", "MODERN_SLAVERY", "DOMESTIC_ABUSE"]
cs = ["LEICESTER_CS", "LEICESTERSHIRE_CS", "RUTLAND_CS", "LEICS_POLICE", "LLR_ICB"]
groups = ["llr-exploitation-group", "city-transitions-board", "llr-spe-group"]
ev = {k: [] for k in ["YoungPersonFlagged", "TransitionPlanDue", "TransitionPlanCompleted",
                      "MeetingActionRecorded", "MeetingActionCompleted", "MeetingActionOverdue",
                      "ReminderDue", "BriefingRequested", "BriefingSent"]}
people = []
for i in range(24):
    key = "%064x" % rnd.getrandbits(256)
    dob = date(2007, 1, 1) + timedelta(days=rnd.randrange(0, 1400))
    la = rnd.choice(las)
    flags = []
    for _ in range(rnd.choice([1, 1, 2, 3])):
        e = {"event_id": uid(), "occurred_at": at(), "source_agency": rnd.choice(cs),
             "subject_key": key, "local_authority": rnd.choice([la, la, rnd.choice(las)]),
             "date_of_birth": dob.isoformat(),
             "risk_categories": sorted(rnd.sample(cats, rnd.randint(1, 3))),
             "flagged_on": (date(2025, 3, 1) + timedelta(days=rnd.randrange(90))).isoformat()}
        ev["YoungPersonFlagged"].append(e)
        flags.append(e)
    people.append((key, la, flags))
for key, la, flags in people[:16]:
    ev["TransitionPlanDue"].append({
        "event_id": uid(), "occurred_at": at(), "producer": "hub-planner", "subject_key": key,
        "local_authority": la, "due_date": (date(2025, 6, 1) + timedelta(days=rnd.randrange(400))).isoformat(),
        "rule": rnd.choice(["PLAN_AT_17Y6M", "LOOKED_AFTER_16_PLUS_3M", "LATE_REFERRAL"]),
        "cause_event_id": flags[0]["event_id"], "risk_categories": flags[0]["risk_categories"]})
for key, la, _ in people[:6]:
    ev["TransitionPlanCompleted"].append({
        "event_id": uid(), "occurred_at": at(), "source_agency": la + "_ASC",
        "subject_key": key, "local_authority": la, "completed_on": "2025-07-01",
        "outcome": rnd.choice(["PLAN_AGREED", "CARE_ACT_ASSESSMENT_ARRANGED", "NO_ELIGIBLE_NEEDS"])})
actions = []
for i in range(8):
    a = {"event_id": uid(), "occurred_at": at(), "source_agency": "HUB_COORDINATOR", "action_id": uid(),
         "meeting_id": "LLR-MEETING-%d" % i, "meeting_date": "2025-06-12",
         "kind": rnd.choice(["SAFETY_PLAN", "REFERRAL", "OTHER", "TRANSITION_PLAN"]),
         "owner_agency": rnd.choice(cs), "owner_group_id": rnd.choice(groups),
         "due_date": (date(2025, 6, 13) + timedelta(days=rnd.randrange(60))).isoformat(),
         "subject_key": rnd.choice([None, people[i][0]])}
    ev["MeetingActionRecorded"].append(a)
    actions.append(a)
for a in actions[:3]:
    ev["MeetingActionCompleted"].append({"event_id": uid(), "occurred_at": at(),
                                         "source_agency": a["owner_agency"], "action_id": a["action_id"],
                                         "completed_on": "2025-07-20"})
for a in actions[3:6]:
    ev["MeetingActionOverdue"].append({"event_id": uid(), "occurred_at": at(), "producer": "hub-reminder",
                                       "action_id": a["action_id"], "owner_group_id": a["owner_group_id"],
                                       "due_date": a["due_date"], "as_of": "2025-09-01", "days_overdue": 10})
for key, la, _ in people[:3]:
    ev["ReminderDue"].append({"event_id": uid(), "occurred_at": at(), "producer": "hub-reminder",
                              "group_id": rnd.choice(groups), "kind": "PLAN_DUE_SOON", "subject_key": key,
                              "due_date": "2025-10-01", "as_of": "2025-09-10"})
req = {"event_id": uid(), "occurred_at": at(), "source_agency": "HUB_COORDINATOR", "group_id": "llr-spe-group",
       "title": "Transitions briefing", "link": "https://docs.llr.example/briefings/2025-09.pdf"}
ev["BriefingRequested"].append(req)
ev["BriefingSent"].append({"event_id": uid(), "occurred_at": at(), "producer": "hub-notifier",
                           "group_id": "llr-spe-group", "request_event_id": req["event_id"], "recipients": 3})
total = 0
for name, events in ev.items():
    with open("%s/%s.jsonl" % (out, name), "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    total += len(events)
# A meeting action due before its meeting: valid Avro, refused by the database.
with open("%s/refused.jsonl" % out, "w") as f:
    f.write(json.dumps({"event_id": uid(), "occurred_at": at(), "source_agency": "HUB_COORDINATOR",
                        "action_id": uid(), "meeting_id": "LLR-MEETING-X", "meeting_date": "2025-06-12",
                        "kind": "OTHER", "owner_agency": "LPT", "owner_group_id": "llr-spe-group",
                        "due_date": "2025-06-01", "subject_key": None}) + "\n")
with open("%s/count" % out, "w") as f:
    f.write("%d\n" % total)
PY
good=$(<"$dir/count")
for f in "$dir"/*.jsonl; do
    name=$(basename "$f" .jsonl)
    [[ "$name" == refused ]] && continue
    "$hubctl" --config "$dir/hub.conf" publish "$name" "$f" >>"$dir/publish.log" 2>&1 ||
        { cat "$dir/publish.log" >&2; die "hubctl publish $name failed"; }
done
"$hubctl" --config "$dir/hub.conf" publish MeetingActionRecorded "$dir/refused.jsonl" >>"$dir/publish.log" 2>&1 ||
    { cat "$dir/publish.log" >&2; die "hubctl publish of the refused action failed"; }
# Bytes that are not Confluent-framed Avro.
kcat_args=(-b "$HUB_KAFKA_BOOTSTRAP")
[[ -n "${KCAT_CONFIG:-}" ]] && kcat_args+=(-F "$KCAT_CONFIG")
printf 'not-avro\n' | kcat "${kcat_args[@]}" -P -t "${topic[meeting_actions]}" -k poison -X acks=all 2>"$dir/kcat.log" ||
    { cat "$dir/kcat.log" >&2; die "kcat produce failed"; }
rejected=2
ok "published $good events, one the database refuses and one undecodable message"

# --- projecting ----------------------------------------------------------------
q() { psql_db -At -c "$1"; }
# Stored positions summed: of the source topics, and of the dead-letter topic.
src_offsets() { q "SELECT coalesce(sum(next_offset), 0) FROM hub_consumer_offsets WHERE group_id = '$group' AND topic <> '${topic[dead_letters]}'"; }
dlq_offsets() { q "SELECT coalesce(sum(next_offset), 0) FROM hub_consumer_offsets WHERE group_id = '$group' AND topic = '${topic[dead_letters]}'"; }

# run_projector <n> <dead-letter messages expected>: start, wait until everything is
# projected (rows, and the stored positions at the end of every topic), SIGTERM.
run_projector() {
    local n=$1 dlq_want=$2 deadline=$((SECONDS + 90)) state=""
    "$projector" --config "$dir/hub.conf" >"$dir/projector-$n.log" 2>&1 &
    projector_pid=$!
    while ((SECONDS < deadline)); do
        kill -0 "$projector_pid" 2>/dev/null || die "hub-projector (run $n) exited"
        state=$(q "SELECT (SELECT count(*) FROM hub_event_log) || ' ' || (SELECT count(*) FROM dead_letters)" 2>/dev/null || true)
        if [[ "$state" == "$good $rejected" && "$(src_offsets)" == $((good + rejected)) &&
            "$(dlq_offsets)" == "$dlq_want" ]]; then
            break
        fi
        sleep 0.3
    done
    [[ "$state" == "$good $rejected" ]] ||
        die "run $n: hub_event_log and dead_letters hold '$state', want '$good $rejected'"
    [[ "$(dlq_offsets)" == "$dlq_want" ]] ||
        die "run $n: dead-letter topic position $(dlq_offsets), want $dlq_want"
    kill -TERM "$projector_pid"
    local status=0
    wait "$projector_pid" || status=$?
    projector_pid=""
    ((status == 0)) || die "run $n: hub-projector exited $status on SIGTERM"
    ok "run $n: $good events and $rejected rejects projected; hub-projector stopped cleanly"
}

# Every projected table, the view and the source positions, one JSON row per line.
snapshot() {
    local t
    for t in hub_event_log young_people young_person_flags transition_plans meeting_actions \
        group_state reminders; do
        echo "## $t"
        q "SELECT (to_jsonb(x) - ARRAY['updated_at', 'received_at'])::text AS r FROM $t x ORDER BY r"
    done
    # The projector's own rejects are rejected again, later, and sent again.
    echo "## dead_letters"
    q "SELECT (to_jsonb(x) - ARRAY['id', 'recorded_at', 'occurred_at', 'dlq_topic', 'dlq_partition',
                                  'dlq_offset'])::text AS r FROM dead_letters x ORDER BY r"
    echo "## transitions_view"
    q "SELECT to_jsonb(v)::text AS r FROM transitions_view v ORDER BY r"
    echo "## transitions_summary"
    q "SELECT to_jsonb(s)::text AS r FROM transitions_summary s ORDER BY r"
    echo "## hub_consumer_offsets (source topics)"
    q "SELECT topic || ':' || partition || ':' || next_offset FROM hub_consumer_offsets
       WHERE group_id = '$group' AND topic <> '${topic[dead_letters]}' ORDER BY 1"
}

run_projector 1 "$rejected"
snapshot >"$dir/before.txt"
rows=$(grep -vc '^##' "$dir/before.txt")
((rows > good)) || die "the snapshot is too small ($rows rows)"
{ grep -q '"reason_class": "database"' "$dir/before.txt" && grep -q '"reason_class": "decode"' "$dir/before.txt"; } ||
    die "the dead_letters table lacks the refused or the undecodable message"

# --- the runbook's procedure, as written --------------------------------------
# The fenced block after the marker, its indentation (inside a list item) removed.
awk '/<!-- runbook-test: restore-sql -->/{f=1; next} f && /^ *```/{if (++n == 2) exit; next} f && n == 1 {sub(/^   /, ""); print}' \
    "$root/docs/operations.md" >"$dir/restore.sql"
[[ -s "$dir/restore.sql" ]] || die "docs/operations.md has no '<!-- runbook-test: restore-sql -->' block"
psql_db -v projector_group="$group" -f "$dir/restore.sql" || die "the runbook's SQL failed"
left=$(q "SELECT (SELECT count(*) FROM hub_event_log) + (SELECT count(*) FROM young_people)
          + (SELECT count(*) FROM dead_letters)
          + (SELECT count(*) FROM hub_consumer_offsets WHERE group_id = '$group')")
[[ "$left" == 0 ]] || die "after the runbook's SQL, $left rows are left"
ok "the runbook's SQL emptied the projection and forgot the projector's positions"

# The projector re-sends its own two rejects to the dead-letter topic (runbook).
run_projector 2 $((2 * rejected))
snapshot >"$dir/after.txt"
if diff -u "$dir/before.txt" "$dir/after.txt" >"$dir/diff.txt"; then
    ok "after the restore every projected table and the view are as before ($rows rows)"
else
    head -n 40 "$dir/diff.txt" >&2
    die "the restored tables differ"
fi
echo "all checks passed in $((SECONDS - started))s"

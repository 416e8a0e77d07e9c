#!/usr/bin/env bash
# hubctl publish and tail against the real broker: every event type published
# from JSON lines comes back from tail as the same JSON, with its topic, key
# and schema id; a file with a bad line publishes nothing and names
# file:line: field; undecodable messages are reported, not fatal; the same in
# registry mode.
set -euo pipefail
source "$(dirname "$0")/hubctl_lib.bash"
need_env HUB_KAFKA_BOOTSTRAP HUB_REGISTRY_URL

new_topics t risk_flags transition_alerts transition_plans meeting_actions group_notifications \
    dead_letters
write_config() { # write_config <file> <registry url>
    cat >"$1" <<CONF
kafka = { $(kafka_settings) };
schema_registry = { url = "$2"; };
log = { level = "warn"; };
topics = {
  risk_flags = "$t_risk_flags";
  transition_alerts = "$t_transition_alerts";
  transition_plans = "$t_transition_plans";
  meeting_actions = "$t_meeting_actions";
  group_notifications = "$t_group_notifications";
  dead_letters = "$t_dead_letters";
};
CONF
}
write_config "$dir/hub.conf" ""
cfg=(--config "$dir/hub.conf")

S1=c97edffa2dd49a099a182a731258bb2ea4e160ed328b1f5338ffaaa6c374e111
S2=cad662c879cd744dd25c7d4f9461ef506b169f7b3bd6d37d611f0797c2175c81
A1=6e0c2f1b-8d4a-4b9e-b1c3-5a7d9e2f0c41

# One file per type: type, topic setting, pinned schema id, then JSON lines (all fields given,
# timestamps in the form tail prints, so what comes back must be equal).
cat >"$dir/YoungPersonFlagged.jsonl" <<EOF
# two young people flagged by Leicester children's services
{"event_id":"0b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b80","occurred_at":"2025-06-14T09:30:00.250Z","source_agency":"LEICESTER_CS","subject_key":"$S1","local_authority":"LEICESTER","date_of_birth":"2008-02-29","risk_categories":["LOOKED_AFTER","COUNTY_LINES","TRAFFICKING"],"flagged_on":"2025-06-14"}

{"event_id":"1b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b81","occurred_at":"2025-06-14T09:31:00.000Z","source_agency":"LEICS_POLICE","subject_key":"$S2","local_authority":"RUTLAND","date_of_birth":"2009-11-30","risk_categories":["GANGS"],"flagged_on":"2025-06-14"}
EOF
cat >"$dir/TransitionPlanDue.jsonl" <<EOF
{"event_id":"2b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b82","occurred_at":"2025-06-14T09:30:01.000Z","producer":"hub-planner","subject_key":"$S1","local_authority":"RUTLAND","due_date":"2025-08-28","rule":"LOOKED_AFTER_16_PLUS_3M","cause_event_id":"0b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b80","risk_categories":["CHILD_IN_NEED"]}
EOF
cat >"$dir/TransitionPlanCompleted.jsonl" <<EOF
{"event_id":"3b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b83","occurred_at":"2025-06-14T09:30:02.000Z","source_agency":"RUTLAND_ASC","subject_key":"$S1","local_authority":"LEICESTERSHIRE","completed_on":"2025-06-13","outcome":"MOVED_OUT_OF_AREA"}
EOF
cat >"$dir/MeetingActionRecorded.jsonl" <<EOF
{"event_id":"4b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b84","occurred_at":"2025-06-14T09:30:03.000Z","source_agency":"HUB_COORDINATOR","action_id":"$A1","meeting_id":"LLR-EXPLOITATION-2025-06","meeting_date":"2025-06-12","kind":"SAFETY_PLAN","owner_agency":"LEICS_POLICE","owner_group_id":"llr-exploitation-group","due_date":"2025-07-12","subject_key":"$S2"}
{"event_id":"4b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b94","occurred_at":"2025-06-14T09:30:03.500Z","source_agency":"HUB_COORDINATOR","action_id":"7e0c2f1b-8d4a-4b9e-b1c3-5a7d9e2f0c42","meeting_id":"CITY-TB-7","meeting_date":"2025-06-12","kind":"OTHER","owner_agency":"LLR_ICB","owner_group_id":"city-transitions-board","due_date":"2025-07-01","subject_key":null}
EOF
cat >"$dir/MeetingActionCompleted.jsonl" <<EOF
{"event_id":"5b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b85","occurred_at":"2025-06-14T09:30:04.000Z","source_agency":"LEICS_POLICE","action_id":"$A1","completed_on":"2025-06-14"}
EOF
cat >"$dir/MeetingActionOverdue.jsonl" <<EOF
{"event_id":"6b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b86","occurred_at":"2025-06-14T09:30:05.000Z","producer":"hub-reminder","action_id":"$A1","owner_group_id":"llr-exploitation-group","due_date":"2025-06-01","as_of":"2025-06-14","days_overdue":13}
EOF
cat >"$dir/ReminderDue.jsonl" <<EOF
{"event_id":"7b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b87","occurred_at":"2025-06-14T09:30:06.000Z","producer":"hub-reminder","group_id":"city-transitions-board","kind":"PLAN_DUE_SOON","subject_key":"$S1","due_date":"2025-07-01","as_of":"2025-06-14"}
{"event_id":"7b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b97","occurred_at":"2025-06-14T09:30:06.500Z","producer":"hub-reminder","group_id":"llr-spe-group","kind":"GROUP_NOT_BRIEFED","subject_key":null,"due_date":null,"as_of":"2025-06-14"}
EOF
cat >"$dir/BriefingRequested.jsonl" <<EOF
{"event_id":"8b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b88","occurred_at":"2025-06-14T09:30:07.000Z","source_agency":"HUB_COORDINATOR","group_id":"llr-spe-group","title":"Transitions briefing \u2013 June","link":"https://docs.llr.example/briefings/2025-06.pdf"}
EOF
cat >"$dir/BriefingSent.jsonl" <<EOF
{"event_id":"9b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b89","occurred_at":"2025-06-14T09:30:08.000Z","producer":"hub-notifier","group_id":"llr-spe-group","request_event_id":"8b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b88","recipients":4}
EOF

types=(YoungPersonFlagged:risk_flags TransitionPlanDue:transition_alerts
    TransitionPlanCompleted:transition_plans MeetingActionRecorded:meeting_actions
    MeetingActionCompleted:meeting_actions MeetingActionOverdue:meeting_actions
    ReminderDue:group_notifications BriefingRequested:group_notifications
    BriefingSent:group_notifications)

# ---- publish every type ---------------------------------------------------------
for entry in "${types[@]}"; do
    type=${entry%%:*} setting=${entry#*:}
    topic_var="t_$setting"
    n=$(grep -c '^{' "$dir/$type.jsonl")
    check "publish $type" 0 "published $n events to ${!topic_var}" -- \
        "$hubctl" "${cfg[@]}" publish "$type" "$dir/$type.jsonl"
done

# ---- tail them back: same JSON, right topic, key and pinned schema id -----------------
cat >"$dir/compare.py" <<'PY'
import json, sys
# compare.py <tail output> <expected schema ids: "type=id,..." or "registry"> <jsonl files...>
out, ids, files = sys.argv[1], sys.argv[2], sys.argv[3:]
keys = {"YoungPersonFlagged": "subject_key", "TransitionPlanDue": "subject_key",
        "TransitionPlanCompleted": "subject_key", "MeetingActionRecorded": "action_id",
        "MeetingActionCompleted": "action_id", "MeetingActionOverdue": "action_id",
        "ReminderDue": "group_id", "BriefingRequested": "group_id", "BriefingSent": "group_id"}
want = {}
for f in files:
    t = f.rsplit("/", 1)[-1].split(".")[0]
    for line in open(f):
        if line.startswith("{"):
            ev = json.loads(line)
            want[ev["event_id"]] = (t, ev)
got = [json.loads(l) for l in open(out) if l.strip()]
errors = []
if len(got) != len(want):
    errors.append("expected %d messages, got %d" % (len(want), len(got)))
pinned = dict(x.split("=") for x in ids.split(",")) if ids != "registry" else None
for m in got:
    for k in ("topic", "partition", "offset", "key", "schema_id", "type", "event"):
        if k not in m:
            errors.append("message lacks %s: %s" % (k, m))
    if "event" not in m:
        continue
    t, ev = want.pop(m["event"]["event_id"], (None, None))
    if ev is None:
        errors.append("unexpected or repeated event %s" % m["event"]["event_id"])
        continue
    if m["type"] != t:
        errors.append("type: expected %s, got %s" % (t, m["type"]))
    if m["event"] != ev:
        errors.append("event differs:\n  sent: %s\n  got:  %s" % (ev, m["event"]))
    if m["key"] != ev[keys[t]]:
        errors.append("key: expected %s, got %s" % (ev[keys[t]], m["key"]))
    if pinned is not None and str(m["schema_id"]) != pinned[t]:
        errors.append("%s schema_id: expected %s, got %s" % (t, pinned[t], m["schema_id"]))
    if pinned is None and not isinstance(m["schema_id"], int):
        errors.append("schema_id missing")
for e in errors:
    print(e)
sys.exit(1 if errors else 0)
PY
pinned_ids="YoungPersonFlagged=1001,TransitionPlanDue=1002,TransitionPlanCompleted=1003"
pinned_ids+=",MeetingActionRecorded=1004,MeetingActionCompleted=1005,MeetingActionOverdue=1006"
pinned_ids+=",ReminderDue=1007,BriefingRequested=1008,BriefingSent=1009"

tail_compare() { # tail_compare <what> <config> <ids> <setting> <files...>
    local what=$1 conf=$2 ids=$3 setting=$4 status=0 n=0 f
    shift 4
    for f in "$@"; do n=$((n + $(grep -c '^{' "$f"))); done
    "$hubctl" --config "$conf" tail "$setting" --from-beginning --count "$n" --timeout-ms 30000 \
        >"$dir/tail.out" 2>"$dir/tail.err" || status=$?
    if [[ $status -ne 0 ]]; then
        fail "$what: tail exited $status: $(cat "$dir/tail.err")"
    elif ! "$python" "$dir/compare.py" "$dir/tail.out" "$ids" "$@" >"$dir/cmp.out"; then
        fail "$what: $(cat "$dir/cmp.out")"
    else
        echo "ok: $what ($n events)"
    fi
}
tail_compare "tail risk_flags" "$dir/hub.conf" "$pinned_ids" risk_flags \
    "$dir/YoungPersonFlagged.jsonl"
tail_compare "tail transition_alerts" "$dir/hub.conf" "$pinned_ids" transition_alerts \
    "$dir/TransitionPlanDue.jsonl"
tail_compare "tail transition_plans" "$dir/hub.conf" "$pinned_ids" transition_plans \
    "$dir/TransitionPlanCompleted.jsonl"
tail_compare "tail meeting_actions" "$dir/hub.conf" "$pinned_ids" meeting_actions \
    "$dir/MeetingActionRecorded.jsonl" "$dir/MeetingActionCompleted.jsonl" \
    "$dir/MeetingActionOverdue.jsonl"
tail_compare "tail group_notifications (by topic name)" "$dir/hub.conf" "$pinned_ids" \
    "$t_group_notifications" "$dir/ReminderDue.jsonl" "$dir/BriefingRequested.jsonl" \
    "$dir/BriefingSent.jsonl"

count_on() { # count_on <topic setting>: messages on the topic now
    "$hubctl" "${cfg[@]}" tail "$1" --from-beginning --end --timeout-ms 30000 | wc -l
}
flags_before=$(count_on risk_flags)
assert_eq "risk_flags holds the two published flags" 2 "$flags_before"

# ---- a file with bad lines publishes nothing ------------------------------------------
cat >"$dir/bad.jsonl" <<EOF
{"source_agency":"LEICESTER_CS","subject_key":"$S2","local_authority":"RUTLAND","date_of_birth":"2009-01-01","risk_categories":["GANGS"],"flagged_on":"2025-06-14"}
{"source_agency":"LEICESTER_CS","subject_key":"9434765919","local_authority":"RUTLAND","date_of_birth":"2009-01-01","risk_categories":["GANGS"],"flagged_on":"2025-06-14"}
{"source_agency":"LEICESTER_CS","subject_key":"$S2","local_authority":"RUTLAND","date_of_birth":"2009-02-30","risk_categories":["GANGS"],"flagged_on":"2025-06-14"}
{"source_agency":"NOTTS_CS","subject_key":"$S2","local_authority":"RUTLAND","date_of_birth":"2009-01-01","risk_categories":["GANGS"],"flagged_on":"2025-06-14"}
{"source_agency":"LEICESTER_CS","subject_key":"$S2","local_authority":"RUTLAND","date_of_birth":"2009-01-01","risk_categories":[],"flagged_on":"2025-06-14","name":"Jo"}
{"source_agency":"LEICESTER_CS", "subject_key": 9434765919x}
EOF
check "bad file is rejected" 1 "nothing was published" -- \
    "$hubctl" "${cfg[@]}" publish YoungPersonFlagged "$dir/bad.jsonl"
for want in "$dir/bad.jsonl:2: subject_key: must be 64 lower-case hex characters" \
    "$dir/bad.jsonl:3: date_of_birth: not an existing date" \
    "$dir/bad.jsonl:4: source_agency: not one of the configured agency codes" \
    "$dir/bad.jsonl:5: name: unknown field" \
    "$dir/bad.jsonl:6: invalid JSON at column" \
    "5 line(s) rejected"; do
    if grep -qF -- "$want" "$dir/err"; then echo "ok: error names '$want'"; else
        fail "stderr lacks '$want': $(cat "$dir/err")"
    fi
done
if grep -qE '9434765919|2009-02-30|NOTTS_CS|Jo' "$dir/err"; then
    fail "an error message repeats a value: $(cat "$dir/err")"
else
    echo "ok: no value repeated in the errors"
fi
assert_eq "nothing was published from the bad file" "$flags_before" "$(count_on risk_flags)"

check "dry run of a good file" 0 "2 events valid; nothing published (dry run)" -- \
    "$hubctl" "${cfg[@]}" publish --dry-run YoungPersonFlagged "$dir/YoungPersonFlagged.jsonl"
assert_eq "nothing was published by the dry run" "$flags_before" "$(count_on risk_flags)"

# From stdin, with event_id and occurred_at left out.
printf '{"source_agency":"LPT","action_id":"%s","completed_on":"2025-06-15"}\n' "$A1" \
    >"$dir/stdin.jsonl"
check "publish from stdin" 0 "published 1 events to $t_meeting_actions" -- \
    "$hubctl" "${cfg[@]}" publish MeetingActionCompleted - <"$dir/stdin.jsonl"
"$hubctl" "${cfg[@]}" tail meeting_actions --from-beginning --end >"$dir/actions.out"
if "$python" - "$dir/actions.out" <<'PY'; then echo "ok: generated event_id and occurred_at"; else fail "generated fields"; fi
import json, re, sys
evs = [json.loads(l)["event"] for l in open(sys.argv[1])]
new = [e for e in evs if e.get("completed_on") == "2025-06-15"]
assert len(new) == 1, evs
assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", new[0]["event_id"]), new
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", new[0]["occurred_at"]), new
PY

# ---- usage errors ---------------------------------------------------------------
check "unknown event type" 2 "'Nope' is not an event type" -- "$hubctl" "${cfg[@]}" publish Nope
check "publish without an event type" 2 "Usage: hubctl" -- "$hubctl" "${cfg[@]}" publish
check "missing input file" 2 "cannot open $dir/absent.jsonl" -- \
    "$hubctl" "${cfg[@]}" publish YoungPersonFlagged "$dir/absent.jsonl"
check "publish --help" 0 "--dry-run" -- "$hubctl" publish --help
check "tail --help" 0 "--from-beginning" -- "$hubctl" tail --help
check "tail bad --count" 2 "--count must be a whole number" -- \
    "$hubctl" "${cfg[@]}" tail risk_flags --count x
check "tail of a missing topic" 1 "test.hubctl.absent" -- \
    "$hubctl" "${cfg[@]}" tail "test.hubctl.absent.$$" --end --timeout-ms 10000

# ---- undecodable messages are reported, not fatal ------------------------------------
printf 'not avro' | kcat -b "$HUB_KAFKA_BOOTSTRAP" -P -t "$t_dead_letters" -k k1 -p 0
check "tail reports an undecodable message" 0 '"error":"bad magic byte' -- \
    "$hubctl" "${cfg[@]}" tail dead_letters --from-beginning --count 1 --timeout-ms 30000
if grep -q 'not avro' "$dir/out"; then fail "tail printed the undecodable bytes"; fi

# ---- registry mode: ids from the registry, same events back ---------------------------
new_topics r risk_flags
write_config "$dir/registry.conf" "$HUB_REGISTRY_URL"
sed -i "s|risk_flags = \"$t_risk_flags\"|risk_flags = \"$r_risk_flags\"|" "$dir/registry.conf"
check "publish in registry mode" 0 "published 2 events to $r_risk_flags" -- \
    "$hubctl" --config "$dir/registry.conf" publish YoungPersonFlagged "$dir/YoungPersonFlagged.jsonl"
tail_compare "tail in registry mode" "$dir/registry.conf" registry risk_flags \
    "$dir/YoungPersonFlagged.jsonl"

finish

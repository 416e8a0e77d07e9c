#!/usr/bin/env bash
# hubctl schemas: list shows the catalogue; check says whether a new version
# is BACKWARD compatible with the catalogue's newest one (exit 0) or not
# (exit 1, with the reason), offline and, against the real registry, online.
set -euo pipefail
source "$(dirname "$0")/hubctl_lib.bash"
need_env HUB_REGISTRY_URL

fixtures="$HUB_SOURCE_DIR/tests/fixtures/schemas"
v1="$HUB_SOURCE_DIR/schemas/events/YoungPersonFlagged.v1.avsc"
printf 'schema_registry = { url = ""; };\n' >"$dir/offline.conf"
off=(--config "$dir/offline.conf")

# ---- list -----------------------------------------------------------------------
check "list" 0 "uk.llr.hub.YoungPersonFlagged" -- "$hubctl" "${off[@]}" schemas list
lines=$(grep -c 'uk.llr.hub\.' "$dir/out")
assert_eq "list shows every catalogue entry" 9 "$lines"
row=$(grep '^BriefingSent ' "$dir/out" | tr -s ' ')
assert_eq "list row: type subject version id topic file" \
    "BriefingSent uk.llr.hub.BriefingSent 1 1009 llr.groups.notifications events/BriefingSent.v1.avsc" \
    "$row"
printf 'schema_registry = { url = ""; };\ntopics = { risk_flags = "partner.flags"; };\n' \
    >"$dir/topics.conf"
check "list shows the configured topic" 0 "partner.flags" -- \
    "$hubctl" --config "$dir/topics.conf" schemas list

# ---- check, offline ---------------------------------------------------------------
# Incompatible variants of v1, made here so each breaks exactly one rule.
"$python" - "$v1" "$dir" <<'PY'
import copy, json, sys
v1 = json.load(open(sys.argv[1]))
out = sys.argv[2]
def write(name, s):
    json.dump(s, open(out + "/" + name, "w"), indent=1)
s = copy.deepcopy(v1)  # an enum symbol removed: old data with RUTLAND cannot be read
for f in s["fields"]:
    if f["name"] == "local_authority":
        f["type"]["symbols"].remove("RUTLAND")
write("enum-removed.avsc", s)
s = copy.deepcopy(v1)  # a field's type changed incompatibly
for f in s["fields"]:
    if f["name"] == "date_of_birth":
        f["type"] = "string"
write("type-changed.avsc", s)
s = copy.deepcopy(v1)  # a new field with a default, and int promoted nowhere: compatible
s["fields"].append({"name": "note_code", "type": ["null", "string"], "default": None,
                    "doc": "optional"})
write("added-optional.avsc", s)
s = copy.deepcopy(v1)  # a new subject: nothing to compare with
s["name"] = "SomethingNew"
write("new-subject.avsc", s)
PY

check "compatible v2 (a field with a default)" 0 "offline: compatible" -- \
    "$hubctl" "${off[@]}" schemas check "$fixtures/YoungPersonFlagged.v2.avsc"
check "compatible: an optional field added" 0 "offline: compatible" -- \
    "$hubctl" "${off[@]}" schemas check "$dir/added-optional.avsc"
check "same schema is compatible with itself" 0 "offline: compatible" -- \
    "$hubctl" "${off[@]}" schemas check "$v1"
check "relative path under schemas_dir" 0 "offline: compatible" -- \
    "$hubctl" "${off[@]}" schemas check events/YoungPersonFlagged.v1.avsc
check "incompatible: a field without default" 1 "school_name" -- \
    "$hubctl" "${off[@]}" schemas check "$fixtures/YoungPersonFlagged.v2-incompatible.avsc"
check "incompatible: an enum symbol removed" 1 "RUTLAND" -- \
    "$hubctl" "${off[@]}" schemas check "$dir/enum-removed.avsc"
check "incompatible: a type changed" 1 "offline: INCOMPATIBLE" -- \
    "$hubctl" "${off[@]}" schemas check "$dir/type-changed.avsc"
check "a new subject" 0 "not in the catalogue" -- \
    "$hubctl" "${off[@]}" schemas check "$dir/new-subject.avsc"

# Against a catalogue with a v2: the newest version is the one compared with.
printf 'schemas_dir = "%s";\nschema_registry = { url = ""; };\n' "$fixtures" >"$dir/fixtures.conf"
check "newest version is compared" 0 "v2" -- \
    "$hubctl" --config "$dir/fixtures.conf" schemas check "$fixtures/YoungPersonFlagged.v2.avsc"

# ---- usage ------------------------------------------------------------------------
printf '{"type": "record", "name": ' >"$dir/broken.avsc"
check "not JSON" 2 "broken.avsc:1" -- "$hubctl" "${off[@]}" schemas check "$dir/broken.avsc"
check "missing file" 2 "absent.avsc" -- "$hubctl" "${off[@]}" schemas check "$dir/absent.avsc"
check "no subcommand" 2 "Usage: hubctl" -- "$hubctl" "${off[@]}" schemas
check "check without a file" 2 "Usage: hubctl" -- "$hubctl" "${off[@]}" schemas check
check "schemas --help" 0 "BACKWARD" -- "$hubctl" schemas --help

# ---- check, against the real registry -----------------------------------------------
# A subject of this test's own (the record renamed into a private namespace), registered
# at v1 with BACKWARD compatibility, so the registry's own verdict is exercised.
ns="test.hubctl.s$$$RANDOM"
subject="$ns.YoungPersonFlagged"
mkdir -p "$dir/schemas/events"
"$python" - "$v1" "$fixtures" "$dir/schemas" "$ns" <<'PY'
import json, sys
v1_path, fixtures, out, ns = sys.argv[1:]
for src, dst in ((v1_path, "events/YoungPersonFlagged.v1.avsc"),
                 (fixtures + "/YoungPersonFlagged.v2.avsc", "v2.avsc"),
                 (fixtures + "/YoungPersonFlagged.v2-incompatible.avsc", "v2-incompatible.avsc")):
    s = json.load(open(src))
    s["namespace"] = ns
    json.dump(s, open(out + "/" + dst, "w"))
json.dump({"schemas": [{"subject": ns + ".YoungPersonFlagged", "event": "YoungPersonFlagged",
                        "version": 1, "file": "events/YoungPersonFlagged.v1.avsc", "id": 1001,
                        "topic": "risk_flags"}]}, open(out + "/catalogue.json", "w"))
json.dump({"schema": open(out + "/events/YoungPersonFlagged.v1.avsc").read()},
          open(out + "/register.json", "w"))
PY
ctype="Content-Type: application/vnd.schemaregistry.v1+json"
curl -fsS -X POST -H "$ctype" --data @"$dir/schemas/register.json" \
    "$HUB_REGISTRY_URL/subjects/$subject/versions" >"$dir/register.out" ||
    fail "cannot register the test subject: $(cat "$dir/register.out")"
curl -fsS -X PUT -H "$ctype" --data '{"compatibility":"BACKWARD"}' \
    "$HUB_REGISTRY_URL/config/$subject" >"$dir/config.out" ||
    fail "cannot set BACKWARD on the test subject: $(cat "$dir/config.out")"
printf 'schemas_dir = "%s";\nschema_registry = { url = "%s"; };\n' "$dir/schemas" \
    "$HUB_REGISTRY_URL" >"$dir/online.conf"
on=(--config "$dir/online.conf")

check "registry: compatible v2" 0 "registry: compatible with the latest version of $subject" -- \
    "$hubctl" "${on[@]}" schemas check "$dir/schemas/v2.avsc"
grep -qF "offline: compatible" "$dir/out" || fail "the offline verdict is missing: $(cat "$dir/out")"
check "registry: incompatible v2" 1 "registry: INCOMPATIBLE with the latest version of $subject" \
    -- "$hubctl" "${on[@]}" schemas check "$dir/schemas/v2-incompatible.avsc"
grep -qF "offline: INCOMPATIBLE" "$dir/out" || fail "the offline verdict is missing"
check "--offline skips the registry" 1 "offline: INCOMPATIBLE" -- \
    "$hubctl" "${on[@]}" schemas check --offline "$dir/schemas/v2-incompatible.avsc"
if grep -q "registry:" "$dir/out"; then fail "--offline asked the registry"; fi

printf 'schemas_dir = "%s";\nschema_registry = { url = "http://127.0.0.1:1/none"; };\n' \
    "$dir/schemas" >"$dir/unreachable.conf"
check "registry unreachable" 1 "registry check failed" -- \
    "$hubctl" --config "$dir/unreachable.conf" schemas check "$dir/schemas/v2.avsc"

finish

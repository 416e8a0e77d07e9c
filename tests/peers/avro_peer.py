#!/usr/bin/python3
"""avro_peer.py: an independent Avro implementation (Debian's python3-avro)
reading and writing hub events with nothing but the schemas/ folder.

It is the interoperability check of the codec tests, and the example a
partner can follow: events as JSON in the hub's form (dates "YYYY-MM-DD",
timestamps ISO 8601, enums by symbol, null for an absent optional field),
encoded as Avro binary with the Confluent framing (byte 0, the schema id as
4 big-endian bytes, the body), the id being the catalogue's pinned id.

Commands:
  check SCHEMAS DIR
      decode every DIR/*.bin that has a DIR/*.json beside it and compare
      the two; exit 1 on any difference
  encode SCHEMAS DIR
      for every DIR/<name>.<Event>.json write DIR/<name>.<Event>.py.bin
  encode-jsonl SCHEMAS EVENT FILE OUTDIR
      one framed file OUTDIR/<n>.bin per line of FILE (for kcat -P)
  publish SCHEMAS BOOTSTRAP TOPIC EVENT FILE [EVENT FILE ...]
      produce each line of each FILE to TOPIC with confluent-kafka, keyed as
      the hub keys that event (subject_key, action_id or group_id)
"""
import datetime
import glob
import io
import json
import os
import struct
import sys

import avro.io
import avro.schema

KEY_FIELD = {
    "YoungPersonFlagged": "subject_key",
    "TransitionPlanDue": "subject_key",
    "TransitionPlanCompleted": "subject_key",
    "MeetingActionRecorded": "action_id",
    "MeetingActionCompleted": "action_id",
    "MeetingActionOverdue": "action_id",
    "ReminderDue": "group_id",
    "BriefingRequested": "group_id",
    "BriefingSent": "group_id",
}


class Catalogue:
    """The newest schema of each event, by name and by pinned id."""

    def __init__(self, schemas_dir):
        with open(os.path.join(schemas_dir, "catalogue.json"), encoding="utf-8") as f:
            entries = json.load(f)["schemas"]
        self.by_id = {}
        self.newest = {}
        for e in entries:
            with open(os.path.join(schemas_dir, e["file"]), encoding="utf-8") as f:
                schema = avro.schema.parse(f.read())
            self.by_id[e["id"]] = (e["event"], schema)
            if e["event"] not in self.newest or self.newest[e["event"]][0] < e["version"]:
                self.newest[e["event"]] = (e["version"], e["id"], schema)

    def writer(self, event):
        _, schema_id, schema = self.newest[event]
        return schema_id, schema


def logical(schema):
    return schema.get_prop("logicalType")


def to_datum(schema, value):
    """The hub's JSON form of a value into what python3-avro writes."""
    if isinstance(schema, avro.schema.RecordSchema):
        return {f.name: to_datum(f.type, value[f.name]) for f in schema.fields}
    if isinstance(schema, avro.schema.UnionSchema):
        if value is None:
            return None
        branch = [s for s in schema.schemas if s.type != "null"][0]
        return to_datum(branch, value)
    if isinstance(schema, avro.schema.ArraySchema):
        return [to_datum(schema.items, v) for v in value]
    if logical(schema) == "date":
        return datetime.date.fromisoformat(value)
    if logical(schema) == "timestamp-millis":
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def comparable(schema, datum):
    """A datum with arrays sorted: the hub's risk categories are a set."""
    if isinstance(schema, avro.schema.RecordSchema):
        return {f.name: comparable(f.type, datum[f.name]) for f in schema.fields}
    if isinstance(schema, avro.schema.UnionSchema):
        if datum is None:
            return None
        branch = [s for s in schema.schemas if s.type != "null"][0]
        return comparable(branch, datum)
    if isinstance(schema, avro.schema.ArraySchema):
        return sorted(comparable(schema.items, v) for v in datum)
    return datum


def frame(schema_id, schema, datum):
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    avro.io.DatumWriter(schema).write(datum, avro.io.BinaryEncoder(buf))
    return buf.getvalue()


def unframe(cat, data):
    if len(data) < 5 or data[0] != 0:
        raise ValueError("not Confluent-framed (magic byte)")
    schema_id = struct.unpack(">I", data[1:5])[0]
    if schema_id not in cat.by_id:
        raise ValueError("unknown schema id %d" % schema_id)
    event, schema = cat.by_id[schema_id]
    body = io.BytesIO(data[5:])
    datum = avro.io.DatumReader(schema, schema).read(avro.io.BinaryDecoder(body))
    if body.tell() != len(data) - 5:
        raise ValueError("%d trailing bytes" % (len(data) - 5 - body.tell()))
    return event, schema, datum


def cmd_check(schemas_dir, directory):
    cat = Catalogue(schemas_dir)
    checked = failed = 0
    for path in sorted(glob.glob(os.path.join(directory, "*.bin"))):
        expected_path = path[: -len(".bin")] + ".json"
        if not os.path.exists(expected_path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        with open(expected_path, encoding="utf-8") as f:
            expected = json.load(f)
        name = os.path.basename(path)
        try:
            event, schema, datum = unframe(cat, data)
        except Exception as exc:  # report every file, then fail
            print("%s: cannot decode: %s" % (name, exc))
            failed += 1
            continue
        want = comparable(schema, to_datum(schema, expected))
        got = comparable(schema, datum)
        if want != got:
            print("%s (%s): differs\n  expected %r\n  decoded  %r" % (name, event, want, got))
            failed += 1
        checked += 1
    print("python3-avro decoded %d hub messages, %d failed" % (checked, failed))
    return 1 if failed or not checked else 0


def cmd_encode(schemas_dir, directory):
    cat = Catalogue(schemas_dir)
    written = 0
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        event = path.rsplit(".", 2)[1]
        if event not in cat.newest:
            continue
        schema_id, schema = cat.writer(event)
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
        with open(path[: -len(".json")] + ".py.bin", "wb") as f:
            f.write(frame(schema_id, schema, to_datum(schema, value)))
        written += 1
    print("python3-avro wrote %d framed events" % written)
    return 0 if written else 1


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def cmd_encode_jsonl(schemas_dir, event, path, outdir):
    cat = Catalogue(schemas_dir)
    schema_id, schema = cat.writer(event)
    os.makedirs(outdir, exist_ok=True)
    for n, value in enumerate(read_jsonl(path), 1):
        with open(os.path.join(outdir, "%d.bin" % n), "wb") as f:
            f.write(frame(schema_id, schema, to_datum(schema, value)))
    return 0


def kafka_conf(bootstrap, extra):
    """Client settings for the test broker: its address, the TLS/SASL settings of
    HUB_KAFKA_EXTRA_PROPS ("k=v,..."; key.file=path is read as key) when it is
    secured, then extra."""
    conf = {"bootstrap.servers": bootstrap}
    for kv in filter(None, os.environ.get("HUB_KAFKA_EXTRA_PROPS", "").split(",")):
        key, value = kv.split("=", 1)
        if key.endswith(".file"):
            with open(value) as f:
                key, value = key[: -len(".file")], f.readline().rstrip("\r\n")
        conf[key] = value
    conf.update(extra)
    return conf


def cmd_publish(schemas_dir, bootstrap, topic, pairs):
    from confluent_kafka import Producer

    cat = Catalogue(schemas_dir)
    failures = []
    producer = Producer(kafka_conf(bootstrap, {"enable.idempotence": True}))

    def on_delivery(err, _msg):
        if err is not None:
            failures.append(str(err))

    sent = 0
    for event, path in pairs:
        schema_id, schema = cat.writer(event)
        for value in read_jsonl(path):
            key = value[KEY_FIELD[event]]
            producer.produce(topic, key=key.encode(), value=frame(schema_id, schema, to_datum(schema, value)),
                             on_delivery=on_delivery)
            producer.poll(0)
            sent += 1
    remaining = producer.flush(30)
    if remaining or failures:
        print("publish: %d undelivered, failures: %s" % (remaining, failures[:3]))
        return 1
    print("confluent-kafka published %d events to %s" % (sent, topic))
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "check":
        return cmd_check(argv[1], argv[2])
    if len(argv) >= 3 and argv[0] == "encode":
        return cmd_encode(argv[1], argv[2])
    if len(argv) >= 5 and argv[0] == "encode-jsonl":
        return cmd_encode_jsonl(argv[1], argv[2], argv[3], argv[4])
    if len(argv) >= 6 and argv[0] == "publish" and len(argv[4:]) % 2 == 0:
        rest = argv[4:]
        return cmd_publish(argv[1], argv[2], argv[3], list(zip(rest[0::2], rest[1::2])))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Confluent's own Python client against porch's registry (driven by confluent_python_client.rs).

usage: confluent_client.py <registry url> <hex of a porch record> <its subject>

Needs `pip install 'confluent-kafka[avro]'`. Exits non-zero on the first surprise.
"""

import json
import sys
import uuid

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

url, porch_record_hex, porch_subject = sys.argv[1:4]
client = SchemaRegistryClient({"url": url})

V1 = {"type": "record", "name": "Reading", "namespace": "py", "fields": [
    {"name": "sensor", "type": "string"},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
]}
V2 = dict(V1, fields=V1["fields"] + [{"name": "unit", "type": ["null", "string"], "default": None}])
BREAKING = dict(V1, fields=V1["fields"] + [{"name": "unit", "type": "string"}])
topic = f"py-{uuid.uuid4().hex[:8]}"
subject = f"{topic}-value"


def expect_error(code, call):
    try:
        call()
    except SchemaRegistryError as e:
        assert e.error_code == code, (code, e)
        return
    raise AssertionError(f"expected error {code}")


# Registration, lookup, versions.
id1 = client.register_schema(subject, Schema(json.dumps(V1), "AVRO"))
assert client.register_schema(subject, Schema(json.dumps(V1), "AVRO")) == id1
assert json.loads(client.get_schema(id1).schema_str) == V1
found = client.lookup_schema(subject, Schema(json.dumps(V1), "AVRO"))
assert (found.schema_id, found.version, found.subject) == (id1, 1, subject), found
assert client.test_compatibility(subject, Schema(json.dumps(V2), "AVRO"))
assert not client.test_compatibility(subject, Schema(json.dumps(BREAKING), "AVRO"))
assert client.test_compatibility_all_versions(subject, Schema(json.dumps(V2), "AVRO"))
id2 = client.register_schema(subject, Schema(json.dumps(V2), "AVRO"))
assert id2 != id1
assert client.get_versions(subject) == [1, 2]
latest = client.get_latest_version(subject)
assert (latest.schema_id, latest.version) == (id2, 2)
assert client.get_version(subject, 1).schema_id == id1
assert subject in client.get_subjects()
assert client.get_subjects_by_schema_id(id1) == [subject]
expect_error(409, lambda: client.register_schema(subject, Schema(json.dumps(BREAKING), "AVRO")))
expect_error(42201, lambda: client.register_schema(subject, Schema("{", "AVRO")))
expect_error(40401, lambda: client.get_versions("no-such-subject"))
expect_error(40402, lambda: client.get_version(subject, 9))
expect_error(40403, lambda: client.get_schema(999999))

# Compatibility levels.
assert client.set_compatibility(subject, "NONE")["compatibility"] == "NONE"
assert client.get_compatibility(subject) == "NONE"
assert client.get_compatibility() in ("BACKWARD_TRANSITIVE", "BACKWARD", "FULL", "FULL_TRANSITIVE",
                                      "FORWARD", "FORWARD_TRANSITIVE", "NONE")
expect_error(42203, lambda: client.set_compatibility(subject, "SIDEWAYS"))

# The serializer registers its schema; the deserializer fetches it by id from the framing.
serializer = AvroSerializer(client, json.dumps(V2))
deserializer = AvroDeserializer(client)
ctx = SerializationContext(topic, MessageField.VALUE)
reading = {"sensor": "s1", "at": 1_700_000_000_000_000, "unit": "C"}
framed = serializer(reading, ctx)
assert framed[0] == 0 and int.from_bytes(framed[1:5], "big") == id2, framed[:5]
back = deserializer(framed, ctx)
assert back["sensor"] == "s1" and back["unit"] == "C", back

# A record porch wrote, read with nothing but the registry.
porch_record = bytes.fromhex(porch_record_hex)
decoded = deserializer(porch_record, SerializationContext(porch_subject, MessageField.VALUE))
print(json.dumps(decoded, default=str))

#!/usr/bin/env python3
"""Confluent's Python client against a running distributed porch (run by tests/confluent_interop.rs).

1. Reads porch's event topics from the beginning with a plain Consumer (read_committed) and decodes
   every record with AvroDeserializer over porch's registry, passing no schema: the writer schema
   is fetched by the id in the Confluent framing. Checks the events the test created.
2. Produces a porch.product.CreateProduct to product.commands with AvroSerializer, in Confluent
   framing, with the schema porch registered (latest version of its TopicRecordNameStrategy
   subject; nothing is registered from here), keyed and partitioned as porch keys its records.

Prints one JSON summary line on stdout; exits 1 when a check failed (the reasons are in the summary
under "errors" and on stderr).

Environment: PORCH_KAFKA, PORCH_REGISTRY_URL, PORCH_TOPIC_PREFIX, PORCH_TENANT,
PORCH_EXPECT_PRODUCT, PORCH_EXPECT_OFFER (ids the test drove through the API),
PORCH_NEW_PRODUCT, PORCH_NEW_COMMAND (ids of the command to produce).
"""

import datetime
import json
import os
import sys
import time
import uuid

import requests

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition, libversion, version
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

EVENT_TOPICS = ["product.events", "offer.events", "activation.events"]
COMMAND_TOPIC = "product.commands"
COMMAND_TYPE = "porch.product.CreateProduct"

errors = []


def check(cond, what):
    if not cond:
        errors.append(what)
        print(f"interop: FAILED: {what}", file=sys.stderr)
    return cond


def murmur2(data: bytes) -> int:
    """Kafka's Java murmur2 (seed 0x9747b28c), as an unsigned 32-bit value."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    h = (0x9747B28C ^ len(data)) & mask
    for i in range(0, len(data) - len(data) % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail, rest = len(data) & ~3, len(data) % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def kafka_partition(key: bytes, partitions: int) -> int:
    """The partition the Java client's default partitioner picks for a key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def is_utc_datetime(v):
    return isinstance(v, datetime.datetime) and v.utcoffset() == datetime.timedelta(0)


def find(records, topic, type_, pred):
    """The first decoded record of that topic and type whose value satisfies pred."""
    return next((r for r in records if r["topic"] == topic and r["type"] == type_ and pred(r["value"])), None)


def expected(env):
    """The events the test drove through porch's API: (topic, record type, predicate on the value)."""
    product, offer = env["PORCH_EXPECT_PRODUCT"], env["PORCH_EXPECT_OFFER"]
    return {
        "created": ("product.events", "porch.product.ProductCreated", lambda v: v["product"]["product_id"] == product),
        "offer": ("offer.events", "porch.offer.OfferCreated", lambda v: v["offer"]["offer_id"] == offer),
        "activated": (
            "activation.events",
            "porch.activation.OfferActivated",
            lambda v: v["listing"]["offer_id"] == offer,
        ),
    }


def consume_events(env, registry):
    """Every committed record of the event topics, decoded: a list of dicts."""
    prefix = env["PORCH_TOPIC_PREFIX"]
    consumer = Consumer(
        {
            "bootstrap.servers": env["PORCH_KAFKA"],
            "group.id": f"confluent-interop-{uuid.uuid4()}",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    # No schema given: every value is decoded with the writer schema its framing names.
    deserializer = AvroDeserializer(registry)
    meta = consumer.list_topics(timeout=30)
    assignment = []
    for t in EVENT_TOPICS:
        topic = prefix + t
        md = meta.topics.get(topic)
        if not check(md is not None and md.error is None, f"topic {topic} exists"):
            continue
        # No committed offsets in a fresh group: auto.offset.reset=earliest starts each at 0.
        assignment += [TopicPartition(topic, p) for p in md.partitions]
    partitions = {t: len(meta.topics[prefix + t].partitions) for t in EVENT_TOPICS if prefix + t in meta.topics}
    consumer.assign(assignment)

    records, pending = [], {(tp.topic, tp.partition) for tp in assignment}
    deadline = time.monotonic() + 60
    # Read to the end (the last stable offset, under read_committed) of every partition, and on
    # until the expected events are in (a transaction may commit after the test saw its effect).
    def done():
        return not pending and all(find(records, *e) for e in expected(env).values())

    while not done() and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:  # once per arrival at the end
                pending.discard((msg.topic(), msg.partition()))
                continue
            check(False, f"consumer error: {msg.error()}")
            break
        topic = msg.topic()[len(prefix) :]
        raw = msg.value()
        rec = {
            "topic": topic,
            "partition": msg.partition(),
            "offset": msg.offset(),
            "key": msg.key().decode() if msg.key() else None,
            "headers": {k: v.decode() for k, v in (msg.headers() or [])},
            "magic": raw[0] if raw else None,
            "schema_id": int.from_bytes(raw[1:5], "big") if raw and len(raw) >= 5 else None,
        }
        try:
            rec["value"] = deserializer(raw, SerializationContext(msg.topic(), MessageField.VALUE))
        except Exception as e:  # noqa: BLE001 - every failure is a finding
            check(False, f"{topic}[{msg.partition()}]@{msg.offset()} does not decode: {e!r}")
            continue
        # The record type: the name of the writer schema the registry has under that id.
        schema = registry.get_schema(rec["schema_id"])
        parsed = json.loads(schema.schema_str)
        rec["type"] = f"{parsed.get('namespace')}.{parsed['name']}"
        rec["subjects"] = registry.get_subjects_by_schema_id(rec["schema_id"])
        records.append(rec)
    check(not pending, f"read to the end of every partition (left: {sorted(pending)})")
    consumer.close()
    return records, partitions


def check_events(env, records, partitions):
    tenant, product, offer = env["PORCH_TENANT"], env["PORCH_EXPECT_PRODUCT"], env["PORCH_EXPECT_OFFER"]
    for r in records:
        check(r["magic"] == 0, f"{r['topic']}@{r['offset']}: magic byte 0")
        subject = f"{env['PORCH_TOPIC_PREFIX']}{r['topic']}-{r['type']}"
        check(
            subject in r["subjects"],
            f"{r['topic']}@{r['offset']}: schema {r['schema_id']} is under subject "
            f"{subject} (TopicRecordNameStrategy on the cluster's topic), has {r['subjects']}",
        )
        env_ = r["value"].get("envelope", {})
        check(is_utc_datetime(env_.get("occurred_at")), f"{r['type']}: occurred_at decodes to a UTC datetime")
        # Co-partitioning: porch's partition is the Java client's murmur2 of the record key.
        if r["key"]:
            want = kafka_partition(r["key"].encode(), partitions[r["topic"]])
            check(
                r["partition"] == want,
                f"{r['topic']} key {r['key']}: partition {r['partition']}, murmur2 says {want}",
            )

    want = expected(env)
    created = find(records, *want["created"])
    if check(created is not None, f"ProductCreated of {product} on product.events"):
        v = created["value"]
        check(v["envelope"]["tenant"] == tenant, f"ProductCreated envelope tenant {v['envelope']['tenant']}")
        check(v["envelope"]["aggregate_id"] == product, "ProductCreated envelope aggregate_id")
        check(isinstance(v["envelope"]["aggregate_version"], int), "aggregate_version is a long")
        check(created["key"] == f"{tenant}/{product}", f"ProductCreated key {created['key']}")
        check(isinstance(v["product"]["attributes"], dict), "attributes map decodes to a dict")
    offer_created = find(records, *want["offer"])
    if check(offer_created is not None, f"OfferCreated of {offer} on offer.events"):
        o = offer_created["value"]["offer"]
        check(o["product_id"] == product, "OfferCreated product_id")
        check(isinstance(o["price"]["amount_minor"], int) and len(o["price"]["currency"]) == 3, "OfferCreated money")
        check(o["valid_from"] is None or is_utc_datetime(o["valid_from"]), "optional timestamp-micros decodes")
    activated = find(records, *want["activated"])
    if check(activated is not None, f"OfferActivated of {offer} on activation.events"):
        check(activated["value"]["envelope"]["tenant"] == tenant, "OfferActivated envelope tenant")
    return {
        "product_created": created and {
            "partition": created["partition"],
            "occurred_at": created["value"]["envelope"]["occurred_at"].isoformat(),
            "event_id": created["value"]["envelope"]["event_id"],
        },
    }


def produce_command(env, registry):
    """A CreateProduct in Confluent framing, with porch's registered schema; its delivery report."""
    prefix, tenant = env["PORCH_TOPIC_PREFIX"], env["PORCH_TENANT"]
    product, command_id = env["PORCH_NEW_PRODUCT"], env["PORCH_NEW_COMMAND"]
    # porch names subjects after the topic as it is on the cluster (prefix included), so the
    # stock TopicRecordNameStrategy finds them.
    subject = topic_record_subject_name_strategy(
        SerializationContext(prefix + COMMAND_TOPIC, MessageField.VALUE), COMMAND_TYPE
    )
    latest = registry.get_latest_version(subject)
    serializer = AvroSerializer(
        registry,
        latest.schema,
        conf={
            "auto.register.schemas": False,
            "use.latest.version": True,
            "subject.name.strategy": topic_record_subject_name_strategy,
        },
    )
    correlation_id = str(uuid.uuid4())
    value = {
        "envelope": {
            "command_id": command_id,
            "tenant": tenant,
            "seller": None,
            "aggregate_id": product,
            "issued_at": datetime.datetime.now(datetime.timezone.utc),
            "correlation_id": correlation_id,
        },
        "product": {
            "product_id": product,
            "title": "Linen shirt from Python",
            "description": "Produced by confluent-kafka's AvroSerializer",
            "brand": "Acme",
            "category": "apparel",
            "attributes": {"material": "linen", "tax_code": "6205"},
            "images": [],
            "channel_overrides": {},
        },
    }
    topic = prefix + COMMAND_TOPIC
    payload = serializer(value, SerializationContext(topic, MessageField.VALUE))
    key = f"{tenant}/{product}".encode()
    producer = Producer(
        {
            "bootstrap.servers": env["PORCH_KAFKA"],
            # librdkafka's default is consistent_random (CRC32); porch and the Java client use
            # murmur2, and co-partitioning depends on it.
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "acks": "all",
        }
    )
    reports = []
    producer.produce(
        topic,
        key=key,
        value=payload,
        headers=[("correlation_id", correlation_id.encode())],
        on_delivery=lambda err, msg: reports.append((err, msg)),
    )
    check(producer.flush(30) == 0, "command delivered within 30 s")
    summary = {
        "subject": subject,
        "schema_id": latest.schema_id,
        "subject_version": latest.version,
        "framing": payload[:5].hex(),
        "command_id": command_id,
        "correlation_id": correlation_id,
        "key": key.decode(),
    }
    if check(len(reports) == 1 and reports[0][0] is None, f"delivery report: {reports}"):
        msg = reports[0][1]
        partitions = len(producer.list_topics(topic, timeout=10).topics[topic].partitions)
        summary.update(partition=msg.partition(), offset=msg.offset())
        want = kafka_partition(key, partitions)
        check(
            msg.partition() == want,
            f"the producer's partitioner chose partition {msg.partition()}, Java's murmur2 {want}",
        )
    check(payload[0] == 0 and int.from_bytes(payload[1:5], "big") == latest.schema_id, "Confluent framing")
    return summary


def main():
    names = [
        "PORCH_KAFKA",
        "PORCH_REGISTRY_URL",
        "PORCH_TOPIC_PREFIX",
        "PORCH_TENANT",
        "PORCH_EXPECT_PRODUCT",
        "PORCH_EXPECT_OFFER",
        "PORCH_NEW_PRODUCT",
        "PORCH_NEW_COMMAND",
    ]
    env = {n: os.environ[n] for n in names}
    registry = SchemaRegistryClient({"url": env["PORCH_REGISTRY_URL"]})
    started = time.monotonic()
    records, partitions = consume_events(env, registry)
    found = check_events(env, records, partitions)
    counts = {}
    for r in records:
        counts[f"{r['topic']} {r['type']}"] = counts.get(f"{r['topic']} {r['type']}", 0) + 1
    produced = produce_command(env, registry)
    # Informational: the routes the client called on porch's registry (porch's own metric),
    # e.g. the associations lookup of the default subject name strategy, which porch lacks.
    metrics = requests.get(env["PORCH_REGISTRY_URL"] + "/metrics", timeout=10).text
    calls = [
        line.split("{", 1)[1].replace('"', "")
        for line in metrics.splitlines()
        if line.startswith("porch_registry_http_requests_total{") and 'route="/metrics"' not in line
    ]
    summary = {
        "ok": not errors,
        "registry_calls": calls,
        "errors": errors,
        "client": {"confluent_kafka": version()[0], "librdkafka": libversion()[0]},
        "decoded": len(records),
        "decoded_by_type": counts,
        "schema_ids": sorted({r["schema_id"] for r in records}),
        **found,
        "produced": produced,
        "seconds": round(time.monotonic() - started, 2),
    }
    print(json.dumps(summary, sort_keys=True))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())

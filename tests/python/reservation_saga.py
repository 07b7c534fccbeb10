#!/usr/bin/env python3
"""An order system's saga against porch's Kafka contract for stock (DESIGN §9; run by
tests/reservations.rs), written as the README shows: confluent-kafka, Avro through porch's
registry. For each order it sends a ReserveStock to inventory.reservation.requests, reads the
outcome from inventory.reservation.outcomes (matched by request id), then commits the hold (even
orders) or releases it (odd ones) and reads that outcome too.

Prints one JSON summary line on stdout: every request sent (its id and kind) and the outcomes
read for it. Exits 1 when an outcome did not come in time.

Environment: PORCH_KAFKA, PORCH_REGISTRY_URL, PORCH_TOPIC_PREFIX, PORCH_TENANT, PORCH_PRODUCT,
PORCH_SKU, PORCH_SELLER, PORCH_REGION, PORCH_ORDERS.
"""

import datetime
import json
import os
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

REQUESTS = "inventory.reservation.requests"
OUTCOMES = "inventory.reservation.outcomes"


def serializers(registry, topic):
    """An AvroSerializer per request type, with the schema porch registered for it on the topic
    (TopicRecordNameStrategy; nothing is registered from here)."""
    out = {}
    for kind in ["ReserveStock", "ReleaseReservation", "CommitReservation"]:
        full = f"porch.inventory.{kind}"
        subject = topic_record_subject_name_strategy(
            SerializationContext(topic, MessageField.VALUE), full
        )
        latest = registry.get_latest_version(subject)
        out[kind] = AvroSerializer(
            registry,
            latest.schema,
            conf={
                "auto.register.schemas": False,
                "use.latest.version": True,
                "subject.name.strategy": topic_record_subject_name_strategy,
            },
        )
    return out


def main():
    env = os.environ
    prefix = env.get("PORCH_TOPIC_PREFIX", "")
    tenant, product, sku = env["PORCH_TENANT"], env["PORCH_PRODUCT"], env["PORCH_SKU"]
    seller, region = env["PORCH_SELLER"], env["PORCH_REGION"]
    orders = int(env["PORCH_ORDERS"])
    registry = SchemaRegistryClient({"url": env["PORCH_REGISTRY_URL"]})
    requests_topic, outcomes_topic = prefix + REQUESTS, prefix + OUTCOMES
    encode = serializers(registry, requests_topic)
    decode = AvroDeserializer(registry)
    # Keyed like every porch topic, "<tenant>/<product>", with Java's murmur2 partitioner, so a
    # request lands on the partition of its product.
    producer = Producer(
        {
            "bootstrap.servers": env["PORCH_KAFKA"],
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
        }
    )
    consumer = Consumer(
        {
            "bootstrap.servers": env["PORCH_KAFKA"],
            "group.id": f"saga-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([outcomes_topic])
    outcomes = {}  # request id → outcomes read for it

    def send(kind, reservation_id, **fields):
        request_id = str(uuid.uuid4())
        line = {
            "product_id": product,
            "seller": seller,
            "sku": sku,
            "location": "any",
            "region": region,
        }
        value = {
            "envelope": {
                "command_id": request_id,
                "tenant": tenant,
                "seller": seller,
                "aggregate_id": reservation_id,
                "issued_at": datetime.datetime.now(datetime.timezone.utc),
                "correlation_id": f"order-{reservation_id}",
            },
            "reservation_id": reservation_id,
            "line": line,
            **fields,
        }
        payload = encode[kind](value, SerializationContext(requests_topic, MessageField.VALUE))
        producer.produce(requests_topic, key=f"{tenant}/{product}".encode(), value=payload)
        producer.flush(30)
        return request_id

    def outcome_of(request_id, timeout=120):
        deadline = time.time() + timeout
        while request_id not in outcomes and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            v = decode(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
            if v.get("request_id"):
                outcomes.setdefault(v["request_id"], []).append(v)
        got = outcomes.get(request_id)
        return got[0] if got else None

    sent = []
    for i in range(orders):
        reservation_id = f"order-{i:03}-{uuid.uuid4().hex[:8]}"
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
        reserve = send(
            "ReserveStock",
            reservation_id,
            quantity=1,
            expires_at=int(expires.timestamp() * 1_000_000),
            region_wide=True,
        )
        sent.append({"request_id": reserve, "kind": "reserve", "reservation_id": reservation_id})
        got = outcome_of(reserve)
        if got is None:
            print(f"saga: no outcome for the reservation of order {i}", file=sys.stderr)
            break
        print(f"saga: order {i} {got['result']}", file=sys.stderr)
        if got["result"] != "RESERVED":
            continue
        kind = "CommitReservation" if i % 2 == 0 else "ReleaseReservation"
        then = send(kind, reservation_id)
        sent.append({"request_id": then, "kind": kind, "reservation_id": reservation_id})
        if outcome_of(then) is None:
            print(f"saga: no outcome for the {kind} of order {i}", file=sys.stderr)
            break
    # Read on a little: an outcome written twice would show here.
    end = time.time() + 3
    while time.time() < end:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        v = decode(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
        if v.get("request_id"):
            outcomes.setdefault(v["request_id"], []).append(v)
    consumer.close()
    summary = {
        "sent": sent,
        "outcomes": {
            r["request_id"]: [o["result"] for o in outcomes.get(r["request_id"], [])] for r in sent
        },
    }
    print(json.dumps(summary))
    complete = all(outcomes.get(r["request_id"]) for r in sent) and len(sent) >= orders
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A third party's channel adapter, written the way DESIGN §8 documents it (run by
tests/channels.rs): a Confluent consumer in a group of its own on channel.events, Avro through
porch's registry, acting on its channel's ListingRequested records and reporting what its channel
confirmed to porch's API with an adapter key. Its input position moves only after the outcome is
reported (offsets committed by hand, after the POST).

Prints one JSON summary line on stdout; exits 1 when it did not handle PORCH_EXPECT requests in
time.

Environment: PORCH_KAFKA, PORCH_REGISTRY_URL, PORCH_TOPIC_PREFIX, PORCH_API, PORCH_ADAPTER_KEY,
PORCH_CHANNEL, PORCH_GROUP, PORCH_EXPECT.
"""

import json
import os
import sys
import time

import requests

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main():
    prefix = os.environ.get("PORCH_TOPIC_PREFIX", "")
    topic = prefix + "channel.events"
    channel = os.environ["PORCH_CHANNEL"]
    expect = int(os.environ["PORCH_EXPECT"])
    api = os.environ["PORCH_API"].rstrip("/")
    key = os.environ["PORCH_ADAPTER_KEY"]
    registry = SchemaRegistryClient({"url": os.environ["PORCH_REGISTRY_URL"]})
    # No reader schema: each record is read with the writer schema its id names.
    decode = AvroDeserializer(registry)
    consumer = Consumer(
        {
            "bootstrap.servers": os.environ["PORCH_KAFKA"],
            "group.id": prefix + os.environ["PORCH_GROUP"],
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    handled = []
    deadline = time.time() + 120
    try:
        while len(handled) < expect and time.time() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            value = decode(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
            # channel.events carries ListingRequested and ListingStateChanged: a request has
            # an action.
            if value is None or "action" not in value or value["channel"] != channel:
                consumer.commit(message=msg, asynchronous=False)
                continue
            result = "LIVE" if value["action"] == "UPSERT" else "UNPUBLISHED"
            outcome = {
                "offer_id": value["offer_id"],
                "version": value["version"],
                "result": result,
                "channel_item_id": "ITEM-" + value["retailer_id"][-8:],
            }
            r = requests.post(
                f"{api}/v1/channels/{channel}/outcomes",
                headers={"Authorization": f"Bearer {key}"},
                json={"outcomes": [outcome]},
                timeout=10,
            )
            if r.status_code != 202:
                print(f"adapter: outcome refused {r.status_code} {r.text}", file=sys.stderr)
                return 1
            consumer.commit(message=msg, asynchronous=False)
            handled.append(
                {
                    "offer_id": value["offer_id"],
                    "version": value["version"],
                    "action": value["action"],
                    "title": (value.get("item") or {}).get("title"),
                    "account": value["account"],
                }
            )
    finally:
        consumer.close()
    print(json.dumps({"ok": len(handled) >= expect, "handled": handled}))
    return 0 if len(handled) >= expect else 1


if __name__ == "__main__":
    sys.exit(main())

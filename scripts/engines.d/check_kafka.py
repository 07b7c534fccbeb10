#!/usr/bin/env python3
"""Checks that the broker started by scripts/engines gives exactly-once semantics.

On a fresh topic: a transaction of 3 records is committed, one of 2 records aborted, one of 3
records committed. A read_committed consumer in a KIP-848 group (group.protocol=consumer) must
see exactly the 6 committed records, in order; a read_uncommitted consumer must see all 8 (proof
that the abort really wrote records). The topic is deleted afterwards.

Needs confluent-kafka (`pip install confluent-kafka`), which is not a dependency of porch.
usage: check_kafka.py [bootstrap]   (default: $PORCH_KAFKA or 127.0.0.1:9092)
"""
import os
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def consume_all(bootstrap, topic, isolation, expected, timeout=30.0):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"check-{isolation}-{uuid.uuid4().hex[:8]}",
        "group.protocol": "consumer",
        "isolation.level": isolation,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    values, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                if len(values) >= expected:
                    break
                continue
            if msg.error():
                raise KafkaException(msg.error())
            values.append(msg.value().decode())
        assignment = consumer.assignment()
    finally:
        consumer.close()
    return values, assignment


def main():
    bootstrap = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORCH_KAFKA", "127.0.0.1:9092")
    topic = f"porch-engines-check-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    try:
        producer = Producer({
            "bootstrap.servers": bootstrap,
            "transactional.id": f"{topic}-tx",
            "enable.idempotence": True,
        })
        producer.init_transactions(30)
        for batch, commit in ((["c1", "c2", "c3"], True), (["a1", "a2"], False), (["c4", "c5", "c6"], True)):
            producer.begin_transaction()
            for value in batch:
                producer.produce(topic, value.encode())
            producer.flush(30)
            if commit:
                producer.commit_transaction(30)
            else:
                producer.abort_transaction(30)

        committed, assignment = consume_all(bootstrap, topic, "read_committed", 6)
        everything, _ = consume_all(bootstrap, topic, "read_uncommitted", 8)
        print(f"read_committed:   {committed} (assignment {[(tp.topic, tp.partition) for tp in assignment]})")
        print(f"read_uncommitted: {everything}")
        ok = committed == ["c1", "c2", "c3", "c4", "c5", "c6"] and sorted(everything) == sorted(committed + ["a1", "a2"])
    finally:
        admin.delete_topics([topic])[topic].result(30)
    print("kafka transactions: OK" if ok else "kafka transactions: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

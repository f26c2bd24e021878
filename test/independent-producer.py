"""An independent Kafka producer for tests (librdkafka through Python's confluent-kafka, not the landing's client).

Reads one JSON document on stdin:
  {"config": {librdkafka settings, e.g. bootstrap.servers},
   "topic": "...",
   "steps": [{"kind": "plain", "partition": 0, "compression": "snappy", "values": ["...", ...]},
             {"kind": "commit" | "abort", "partition": 0, "values": [...], "interleave": [...]}]}
A "plain" step sends its values as one flushed batch with the given compression. A "commit"/"abort" step runs one
transaction of a transactional producer: half its values, then the "interleave" values through a plain producer
while the transaction is open, then the other half, then commits or aborts. Prints {"delivered": N} when done.
"""

import json
import sys

from confluent_kafka import Producer


def flushed(producer):
    left = producer.flush(30)
    if left:
        raise SystemExit(f"{left} records not delivered within 30 s")


def main():
    spec = json.load(sys.stdin)
    base = dict(spec["config"])
    topic = spec["topic"]
    errors = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(str(err))

    plain = {}
    transactional = None
    delivered = 0

    def plain_producer(compression):
        if compression not in plain:
            plain[compression] = Producer({**base, "compression.type": compression, "linger.ms": 50})
        return plain[compression]

    for step in spec["steps"]:
        partition = step.get("partition", 0)
        kind = step["kind"]
        if kind == "plain":
            producer = plain_producer(step.get("compression", "none"))
            for value in step["values"]:
                producer.produce(topic, value=value.encode(), partition=partition, on_delivery=on_delivery)
            flushed(producer)
            delivered += len(step["values"])
        elif kind in ("commit", "abort"):
            if transactional is None:
                transactional = Producer(
                    {
                        **base,
                        "transactional.id": spec.get("transactionalId", "nightshift-test"),
                        "compression.type": step.get("compression", "gzip"),
                    }
                )
                transactional.init_transactions(30)
            values = step["values"]
            half = len(values) // 2
            transactional.begin_transaction()
            for value in values[:half]:
                transactional.produce(topic, value=value.encode(), partition=partition, on_delivery=on_delivery)
            flushed(transactional)
            other = plain_producer("none")
            for value in step.get("interleave", []):
                other.produce(topic, value=value.encode(), partition=partition, on_delivery=on_delivery)
            flushed(other)
            for value in values[half:]:
                transactional.produce(topic, value=value.encode(), partition=partition, on_delivery=on_delivery)
            flushed(transactional)  # aborted records too are written to the log: the reader must skip them
            if kind == "commit":
                transactional.commit_transaction(30)
            else:
                transactional.abort_transaction(30)
            delivered += len(values) + len(step.get("interleave", []))
        else:
            raise SystemExit(f"unknown step kind {kind!r}")
    if errors:
        raise SystemExit("delivery failed: " + "; ".join(errors[:5]))
    print(json.dumps({"delivered": delivered}))


if __name__ == "__main__":
    main()

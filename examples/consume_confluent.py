"""Print title and entities of every enriched article (confluent-kafka / librdkafka).

KAFKA_BOOTSTRAP=localhost:9092 python examples/consume_confluent.py
"""

import json
import os

from confluent_kafka import Consumer

consumer = Consumer(
    {
        "bootstrap.servers": os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092"),
        "group.id": os.environ.get("GROUP", "example-confluent"),
        "auto.offset.reset": "earliest",
    }
)
consumer.subscribe([os.environ.get("TOPIC", "news.enriched.v1")])
remaining = int(os.environ.get("MAX_MESSAGES", "0")) or None  # 0: run until Ctrl-C
try:
    while remaining is None or remaining > 0:
        message = consumer.poll(1.0)
        if message is None or message.error() or not (value := message.value()):
            continue
        record = json.loads(value)  # ignore fields you do not know: they may be added
        names = ", ".join(f"{e['name']} ({e['kind']})" for e in record["entities"])
        print(f"{record['article']['title']} | {names}", flush=True)
        remaining = None if remaining is None else remaining - 1
finally:
    consumer.close()

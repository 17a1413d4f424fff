"""Print title and entities of every enriched article (aiokafka). Needs only aiokafka.

KAFKA_BOOTSTRAP=localhost:9092 python examples/consume_aiokafka.py
"""

import asyncio
import json
import os

from aiokafka import AIOKafkaConsumer


async def main() -> None:
    consumer = AIOKafkaConsumer(
        os.environ.get("TOPIC", "news.enriched.v1"),
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092"),
        group_id=os.environ.get("GROUP", "example-aiokafka"),
        auto_offset_reset="earliest",
    )
    remaining = int(os.environ.get("MAX_MESSAGES", "0")) or None  # 0: run until Ctrl-C
    await consumer.start()
    try:
        async for message in consumer:
            record = json.loads(message.value)  # ignore fields you do not know: they may be added
            names = ", ".join(f"{e['name']} ({e['kind']})" for e in record["entities"])
            print(f"{record['article']['title']} | {names}", flush=True)
            remaining = None if remaining is None else remaining - 1
            if remaining == 0:
                break
    finally:
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main())

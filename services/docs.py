"""Generates `docs/topics.md` and `docs/asyncapi.json` from the code, so they cannot drift, and
has the monitoring artefacts (`deploy/monitoring/`) written beside them."""

import json
from pathlib import Path

from pydantic import BaseModel

from services import monitoring
from shared.contracts.topics import ALL_TOPICS, DLQ_SUFFIX

DOCS = Path(__file__).resolve().parents[1] / "docs"


def topics_markdown() -> str:
    rows = [
        "# Topics",
        "",
        "Generated from `shared/contracts/topics.py` by `backorder docs`; do not edit by hand.",
        "",
        "Partitions, replication and retention are applied by `backorder topics apply`.",
        "",
        "| topic | key | producer | consumers | schema | partitions | retention | notes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for topic in ALL_TOPICS:
        schema = topic.schema if isinstance(topic.schema, str) else topic.schema.__name__
        retention = "compacted" if topic.compacted else f"{topic.retention_days} days"
        rows.append(
            f"| `{topic.name}` | `{topic.key}` | {topic.producer} | "
            f"{', '.join(topic.consumers)} | `{schema}` | {topic.partitions} | {retention} | "
            f"{topic.description} |"
        )
    rows += [
        "",
        f"Every topic has a dead-letter topic `<topic>{DLQ_SUFFIX}` (same partitions, kept 30 "
        "days), written by the service that consumes the topic: the original key, value and "
        "headers, plus `dlq-reason`, "
        "`dlq-original-topic`, `dlq-original-partition` and `dlq-original-offset`.",
        "",
        "Every message this project publishes carries `event-id` (deterministic: the same "
        "cause processed again gives the same id), `event-type` and `correlation-id` "
        "(the order id where there is one).",
        "",
        "## Schemas",
        "",
    ]
    for topic in ALL_TOPICS:
        if isinstance(topic.schema, type) and issubclass(topic.schema, BaseModel):
            schema_json = json.dumps(topic.schema.model_json_schema(), indent=2)
            rows += [f"### `{topic.name}`", "", "```json", schema_json, "```", ""]
    rows += [
        "The internal `allocation.commands` schemas are in `asyncapi.json` "
        "(generated from the FastStream routers).",
        "",
    ]
    return "\n".join(rows)


def asyncapi_json() -> str:
    from services.bootstrap import asyncapi_app

    schema = asyncapi_app().schema.to_specification().to_jsonable()
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write() -> list[Path]:
    DOCS.mkdir(exist_ok=True)
    written = []
    for name, text in (("topics.md", topics_markdown()), ("asyncapi.json", asyncapi_json())):
        path = DOCS / name
        path.write_text(text)
        written.append(path)
    return [*written, *monitoring.write()]

"""Applies the topic declaration to a cluster: idempotent, and honest about what it won't fix.

It creates missing topics, raises partitions when asked, and sets a declared size limit
(`max.message.bytes`) that differs; every other difference is reported as drift."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.contracts.topics import TopicSpec

UNKNOWN_TOPIC = 3
# DescribeConfigs' config_source of a value set on the topic itself (v1 and later).
DYNAMIC_TOPIC_CONFIG = 1
# Declared settings `apply` sets on an existing topic when they differ: a size limit only
# concerns the records produced next. Every other difference is reported as drift.
ADJUSTABLE_CONFIGS = frozenset({"max.message.bytes"})


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    raised: list[str] = field(default_factory=list)
    configured: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.raised or self.configured)


async def describe(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> dict[str, TopicState]:
    """The cluster's view of the declared topics that exist."""
    # Only topics the cluster lists are described by name: a metadata request naming a
    # missing topic creates it, with the broker's defaults, where auto.create.topics.enable
    # is on (Kafka's default), and `apply` would then find it there and fail to create it.
    listed = set(await admin.list_topics())
    names = [spec.name for spec in specs if spec.name in listed]
    if not names:
        return {}
    described = await admin.describe_topics(names)
    _raise_errors(
        [t for t in described if t["error_code"] not in (0, UNKNOWN_TOPIC)], "describing topics"
    )
    found = {t["topic"]: t for t in described if t["error_code"] != UNKNOWN_TOPIC}
    if not found:
        return {}
    wanted_keys = {spec.name: spec.config for spec in specs}
    responses = await admin.describe_configs(
        [
            ConfigResource(ConfigResourceType.TOPIC, name, dict.fromkeys(wanted_keys[name]))
            for name in found
        ]
    )
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            configs[resource["resource_name"]] = {
                entry["config_names"]: entry["config_value"] for entry in resource["config_entries"]
            }
    return {
        name: TopicState(
            name=name,
            partitions=len(topic["partitions"]),
            replication_factor=_replicas(topic),
            config=configs.get(name, {}),
        )
        for name, topic in found.items()
    }


async def partitions_of(kafka: dict[str, Any], topic: str) -> list[int]:
    """The partition numbers of an existing topic (empty when it does not exist)."""
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        (found,) = await admin.describe_topics([topic])
        _raise_errors([found] if found["error_code"] not in (0, UNKNOWN_TOPIC) else [], topic)
        return sorted(p["partition"] for p in found["partitions"])
    finally:
        await admin.close()


def _replicas(topic: dict[str, Any]) -> int:
    return min((len(p["replicas"]) for p in topic["partitions"]), default=0)


async def apply(
    admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec], *, raise_partitions: bool = False
) -> ApplyReport:
    report = ApplyReport()
    existing = await describe(admin, specs)
    missing = [spec for spec in specs if spec.name not in existing]
    if missing:
        response = await admin.create_topics(
            [
                NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=dict(s.config))
                for s in missing
            ]
        )
        _raise_errors(response.to_object().get("topic_errors", []), "creating topics")
        report.created = [spec.name for spec in missing]
        await _until_visible(admin, missing)
    to_raise: dict[str, NewPartitions] = {}
    to_configure: dict[str, dict[str, str]] = {}
    for spec in specs:
        state = existing.get(spec.name)
        if state is None:
            continue
        if state.partitions < spec.partitions:
            if raise_partitions:
                to_raise[spec.name] = NewPartitions(spec.partitions)
                report.warnings.append(
                    f"{spec.name}: {state.partitions} -> {spec.partitions} partitions; existing "
                    "keys may move to another partition, so their order is only kept for new "
                    "messages once all old ones are consumed"
                )
            else:
                report.drift.append(
                    f"{spec.name}: {state.partitions} partitions, declared {spec.partitions} "
                    "(apply with --raise-partitions to add them)"
                )
        elif state.partitions > spec.partitions:
            report.drift.append(
                f"{spec.name}: {state.partitions} partitions, declared {spec.partitions} "
                "(Kafka cannot remove partitions)"
            )
        if state.replication_factor != spec.replication_factor:
            report.drift.append(
                f"{spec.name}: replication factor {state.replication_factor}, "
                f"declared {spec.replication_factor} (needs a partition reassignment)"
            )
        for key, value in spec.config.items():
            actual = state.config.get(key)
            if actual == value:
                continue
            if key in ADJUSTABLE_CONFIGS:
                to_configure.setdefault(spec.name, {})[key] = value
                report.configured.append(f"{spec.name}: {key}={value} (was {actual})")
            else:
                report.drift.append(f"{spec.name}: {key}={actual}, declared {value}")
    if to_configure:
        await _configure(admin, to_configure)
        await _until_configured(admin, [s for s in specs if s.name in to_configure])
    if to_raise:
        response = await admin.create_partitions(to_raise)
        _raise_errors(response.to_object().get("topic_errors", []), "adding partitions")
        report.raised = sorted(to_raise)
        await _until_visible(admin, [s for s in specs if s.name in to_raise])
    return report


class TopicAdminError(Exception):
    pass


async def _configure(admin: AIOKafkaAdminClient, changes: dict[str, dict[str, str]]) -> None:
    """Sets `changes` on the topics, keeping every other value set on them: AlterConfigs (all
    that aiokafka offers; not the incremental kind) replaces a topic's whole set."""
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, None) for name in changes]
    )
    current: dict[str, dict[str, str]] = {name: {} for name in changes}
    for response in responses:
        for resource in response.to_object()["resources"]:
            name = resource["resource_name"]
            _raise_errors([{"topic": name, **resource}], "describing topic configs")
            for entry in resource["config_entries"]:
                if not _set_on_topic(entry):
                    continue
                if entry["config_value"] is None:
                    # A sensitive value is not shown, so it could not be written back.
                    raise TopicAdminError(
                        f"{name}: {entry['config_names']} is sensitive; "
                        f"set {', '.join(changes[name])} by hand"
                    )
                current[name][entry["config_names"]] = entry["config_value"]
    results = await admin.alter_configs(
        [
            ConfigResource(ConfigResourceType.TOPIC, name, {**current[name], **wanted})
            for name, wanted in changes.items()
        ]
    )
    for result in results:
        _raise_errors(
            [
                {"topic": r["resource_name"], **r}
                for r in result.to_object()["resources"]
                if r["error_code"]
            ],
            "setting topic configs",
        )


def _set_on_topic(entry: dict[str, Any]) -> bool:
    if "config_source" in entry:
        return bool(entry["config_source"] == DYNAMIC_TOPIC_CONFIG)
    return not entry["is_default"]


async def _until_configured(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> None:
    """The next `apply` (or `describe`) must see the values this one set."""
    for _ in range(100):
        states = await describe(admin, specs)
        if all(
            states[s.name].config.get(key) == s.config[key]
            for s in specs
            for key in ADJUSTABLE_CONFIGS & s.config.keys()
        ):
            return
        await asyncio.sleep(0.1)
    raise TopicAdminError("topic configs did not take effect: " + ", ".join(s.name for s in specs))


def _raise_errors(results: list[dict[str, Any]], doing: str) -> None:
    failed = [
        f"{r.get('topic')}: {r.get('error_message') or r.get('error_code')}"
        for r in results
        if r.get("error_code")
    ]
    if failed:
        raise TopicAdminError(f"{doing} failed: " + "; ".join(failed))


async def _until_visible(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> None:
    """Metadata lags behind an admin change; the next apply must see what this one did."""
    for _ in range(100):
        states = await describe(admin, specs)
        if all(s.name in states and states[s.name].partitions >= s.partitions for s in specs):
            return
        await asyncio.sleep(0.1)
    raise TopicAdminError("topics did not become visible: " + ", ".join(s.name for s in specs))

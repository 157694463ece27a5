"""footprint/stack/kafka_node.py: one node's configuration and the storage format command."""

from __future__ import annotations

from pathlib import Path

import pytest

from footprint.stack import kafka_node
from footprint.stack.kafka_node import ApacheKafkaServer


def test_a_single_node_needs_no_second_replica(tmp_path: Path) -> None:
    node = ApacheKafkaServer(tmp_path)
    props = node.properties()
    assert props["min.insync.replicas"] == "1"
    assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{node.port}"


def test_a_cluster_id_starting_with_a_dash_is_passed_as_one_argument(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    node = ApacheKafkaServer(tmp_path)
    node._cluster_id = "-ABCDEFGHIJKLMNOPQRSTU"
    seen: list[list[str]] = []
    monkeypatch.setattr(kafka_node, "kafka_classpath", lambda: "/nowhere.jar")
    monkeypatch.setattr(kafka_node, "require_tool", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(kafka_node, "run_checked", lambda argv, what: seen.append(argv) or "")
    node.prepare()
    [argv] = seen
    assert "--cluster-id=-ABCDEFGHIJKLMNOPQRSTU" in argv

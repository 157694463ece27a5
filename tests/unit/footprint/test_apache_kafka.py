"""footprint/stack/apache_kafka.py: configuration and the messages a missing tool gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from footprint.stack import apache_kafka
from footprint.stack.apache_kafka import KafkaCluster
from footprint.stack.process import ServerStartError


def test_a_missing_java_or_maven_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(apache_kafka.shutil, "which", lambda name: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(ServerStartError, match="`mvn` not found.*JDK 17\\+ and Maven"):
        apache_kafka.kafka_classpath()


def test_a_three_node_cluster_replicates_three_ways_and_needs_two_in_sync(tmp_path: Path) -> None:
    cluster = KafkaCluster(tmp_path, size=3)
    props = [node.properties() for node in cluster.nodes]
    voters = {p["controller.quorum.voters"] for p in props}
    assert len(voters) == 1 and voters.pop().count("@127.0.0.1:") == 3
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    for p in props:
        assert p["default.replication.factor"] == p["offsets.topic.replication.factor"] == "3"
        assert p["min.insync.replicas"] == "2"
        assert p["process.roles"] == "broker,controller"
    assert cluster.bootstrap.count(",") == 2
    assert len({node.cluster_id for node in cluster.nodes}) == 1


def test_the_cluster_id_survives_for_a_restart_on_the_same_dirs(tmp_path: Path) -> None:
    first = KafkaCluster(tmp_path, size=1)
    again = KafkaCluster(tmp_path, size=1)
    assert again.nodes[0].cluster_id == first.nodes[0].cluster_id


def test_a_single_node_needs_no_second_replica(tmp_path: Path) -> None:
    [node] = KafkaCluster(tmp_path).nodes
    props = node.properties()
    assert props["min.insync.replicas"] == "1"
    assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{node.port}"


def test_a_cluster_id_starting_with_a_dash_is_passed_as_one_argument(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    [node] = KafkaCluster(tmp_path).nodes
    node._cluster_id = "-ABCDEFGHIJKLMNOPQRSTU"
    seen: list[list[str]] = []
    monkeypatch.setattr(apache_kafka, "kafka_classpath", lambda: "/nowhere.jar")
    monkeypatch.setattr(apache_kafka, "_tool", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(apache_kafka, "run_checked", lambda argv, what: seen.append(argv) or "")
    node.prepare()
    [argv] = seen
    assert "--cluster-id=-ABCDEFGHIJKLMNOPQRSTU" in argv

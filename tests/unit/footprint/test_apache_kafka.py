"""footprint/stack/apache_kafka.py: a cluster's nodes share one quorum and one cluster id."""

from __future__ import annotations

from pathlib import Path

from footprint.stack.apache_kafka import KafkaCluster


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

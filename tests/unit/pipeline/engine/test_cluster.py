"""engine: ray on a two-node cluster (simulated on this machine by ``ray.cluster_utils``).

The stage joins it by address, as it would join a real head node (by its GCS address,
then through Ray Client, ``ray://``), and its tasks are placed on both nodes; the tables
are the local engine's bytes.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster
from support import REPO
from support.shard_inputs import synthetic_raw
from support.workspace import tree

from pipeline.analysis.analyse import run_detect_cuts
from pipeline.core.config import CutsParams, RayParams
from pipeline.engine import run_all
from pipeline.engine.cluster import RayEngine
from pipeline.engine.parts import default_parts_dir

pytestmark = pytest.mark.slow  # a two-node Ray cluster, joined twice
ROOT = REPO
NODE_STORE = 80 << 20  # bytes of object store per simulated node


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _node_of(item: int) -> str:
    """Which node ran the task (each task holds its CPU a moment, so both are used)."""
    time.sleep(1.0)
    return ray.get_runtime_context().get_node_id()


@pytest.fixture
def two_nodes(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    # Node processes inherit this: their workers import tests.* like this process.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *sys.path]))
    port = _free_port()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": NODE_STORE, "include_dashboard": False,
        "ray_client_server_port": port})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=NODE_STORE)
        cluster.wait_for_nodes()
        yield cluster, port
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_two_node_cluster_runs_sources_on_both_and_matches_local(
        two_nodes: tuple[Cluster, int], tmp_path: Path):
    cluster, client_port = two_nodes
    synthetic_raw(tmp_path / "raw", clips=4, width=64, height=48, seconds=1.5)
    engine = RayEngine(RayParams(address=cluster.address))
    nodes = [o.value for o in run_all(engine, _node_of, list(range(4)))]
    assert len(set(nodes)) == 2 and len(ray.nodes()) == 2
    run_detect_cuts(CutsParams(), tmp_path / "raw", tmp_path / "ray", engine=engine)
    engine.close()
    assert ray.is_initialized()  # a joined cluster is not ours to shut down
    run_detect_cuts(CutsParams(), tmp_path / "raw", tmp_path / "local")
    assert tree(tmp_path / "ray") == tree(tmp_path / "local")
    assert len(list(default_parts_dir(tmp_path / "ray").iterdir())) == 4
    ray.shutdown()  # this driver leaves; the cluster stays up
    client = f"ray://127.0.0.1:{client_port}"
    engine = RayEngine(RayParams(address=client))
    run_detect_cuts(CutsParams(), tmp_path / "raw", tmp_path / "client", engine=engine)
    assert tree(tmp_path / "client") == tree(tmp_path / "local")

"""The Ray farm: a local Ray cluster, one actor per device, every result in the driver's one store."""

from __future__ import annotations

import pytest

from hwnas.profiler.enumerate import block_items
from hwnas.profiler.store import Store
from hwnas.search.space import get_space

ray = pytest.importorskip("ray", reason="Ray is the optional extra hwnas[farm]")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICES = ["cpu:onnxruntime?threads=1&max_seconds=0.1&warmup=2", "cpu:onnxruntime?threads=2&max_seconds=0.1&warmup=2"]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def test_two_devices_on_a_local_ray_cluster_into_one_store(cluster, tmp_path):
    from hwnas.profiler.farm import run_farm

    items = block_items(get_space("fbnet-cifar").unique_blocks()[:3])
    events = []
    with Store(tmp_path / "farm.db") as st:
        summaries = run_farm(DEVICES + ["cpu:nosuchruntime"], st, items, max_attempts=1, on_progress=events.append)
        ok, ok2, bad = summaries
        assert ok.measured == 3 and ok2.measured == 3 and ok.failed is None
        assert bad.failed and "nosuchruntime" in bad.failed
        devices = st.devices()
        assert len(devices) == 2 and sorted(devices["n_blocks"]) == [3, 3]
        assert {"threads=1", "threads=2"} == {d.split("|")[3] for d in devices["device"]}
        assert len(st.blocks(DEVICES[0])) == 3 and st.integrity_check() == "ok"
        assert any(e.state == "done" for e in events)
        # a second farm run resumes: nothing is measured twice
        again = run_farm(DEVICES, st, items)
        assert [s.skipped for s in again] == [3, 3] and [s.measured for s in again] == [0, 0]

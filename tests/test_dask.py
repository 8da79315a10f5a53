"""Scale-out on Dask: a real LocalCluster (2 worker processes, loopback) computes the tiny
profile's heavy steps -- distractor search per base image, extraction per (model,
condition), ROI RDMs per subject -- with results identical to the in-process run, and a
worker killed in the middle of a task does not change them."""

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import psutil
import pytest

from lib import extract as E
from lib.config import load_profile
from lib.executor import ClusterError, DaskExecutor, InProcessExecutor, connect, start_local_cluster

pytest.importorskip("distributed")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module

LAYERS = r"^layer4\.1\.conv|^blocks\.11\.mlp\.fc2"  # a few layers of each tiny-profile network


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client

    local = start_local_cluster(n_workers=2)
    client = Client(local)
    yield DaskExecutor(client)
    client.close()
    local.close()


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask")
    return load_profile("tiny", {"cache_dir": str(root / "in-process"), "data_dir": str(root / "raw"),
                                 "layers": LAYERS, "n_images": 6, "subjects": [1, 2]})


def _on_cluster(params, cluster, name):
    return dict(params, cache_dir=str(Path(params["cache_dir"]).parent / name), cluster=cluster.address)


def test_tiny_profile_heavy_steps_identical_on_a_local_cluster(params, cluster):
    from lib.brain import pipeline
    from lib.stimuli import build_stimulus_set

    assert cluster.address.startswith("tcp://127.0.0.1:")
    assert len(cluster.client.scheduler_info()["workers"]) == 2
    workers = psutil.Process().children(recursive=True)
    listening = {c.laddr.ip for q in workers for c in q.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    assert listening == {"127.0.0.1"}  # the workers listen on loopback only, HTTP endpoints included
    remote = _on_cluster(params, cluster, "cluster")

    ss = build_stimulus_set(params, progress=False)
    ss_remote = build_stimulus_set(remote, progress=False)  # distractor search: one task per base image
    assert ss_remote.cache_key == ss.cache_key
    pd.testing.assert_frame_equal(ss_remote.candidates, ss.candidates)
    assert ss_remote.ids == ss.ids
    for cond in ("Baseline", "Semantic_Salient"):
        assert all(np.array_equal(a, b) for a, b in zip(ss_remote.images(cond), ss.images(cond)))

    # Dask starts its workers with OMP_NUM_THREADS=1, and a convolution's float32 sums depend on
    # the thread count (up to ~1e-7 between 1 and 2 threads): the reference runs on one thread too
    with E.torch_threads(1):
        rdms = E.stimulus_set_rdms(ss, params, progress=False)
    rdms_remote = E.stimulus_set_rdms(ss_remote, remote, progress=False, executor=cluster)
    assert list(rdms_remote) == list(rdms) and len(rdms) == 2 * 5
    for key, r in rdms.items():
        np.testing.assert_array_equal(rdms_remote[key].dissimilarities, r.dissimilarities)
        assert list(rdms_remote[key].rdm_descriptors["layer"]) == list(r.rdm_descriptors["layer"])
    rep = E.engine_report(rdms_remote)
    assert not rep["from_cache"].any()  # computed on the workers in this call, loaded from the store here
    assert (Path(remote["cache_dir"]) / E.STEP).is_dir()  # the workers wrote the artifacts there

    bs = pipeline.brain_set(params, progress=False)
    roi = pipeline.roi_rdms(bs.data, params["roi_rdm_mode"])
    roi_remote = pipeline.roi_rdms(bs.data, params["roi_rdm_mode"], executor=cluster)  # one task per subject
    pd.testing.assert_frame_equal(roi_remote.rois, roi.rois)
    pd.testing.assert_frame_equal(roi_remote.notes, roi.notes)
    for name, v in roi.vectors.items():
        np.testing.assert_array_equal(roi_remote.vectors[name], v)


@dataclass(frozen=True)
class KillOnce:
    """Image loader that kills the worker process running it the first time (mid-task)."""

    images: list
    marker: str

    def __call__(self):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return self.images


def test_worker_killed_mid_task_gives_identical_results(params, cluster, tmp_path):
    rng = np.random.default_rng(3)
    images = [np.kron(rng.integers(0, 256, (7, 7, 3)).astype(np.uint8), np.ones((32, 32, 1), np.uint8))
              for _ in range(5)]
    ids = tuple(f"img{i}" for i in range(5))
    p = dict(params, models=["timm:resnet18"], layers=r"^layer4\.1\.conv")
    tasks = [E.ExtractionTask("timm:resnet18", KillOnce(images, str(tmp_path / "killed")), "kill-test", ids)]
    workers_before = set(cluster.client.scheduler_info()["workers"])
    got = E.extract_many(tasks, p, store=_store(tmp_path / "cluster"), executor=cluster, progress=False)
    assert (tmp_path / "killed").is_file()  # a worker really died in the task
    assert set(cluster.client.scheduler_info()["workers"]) != workers_before  # ... and was replaced
    with E.torch_threads(1):  # as on the workers (see above)
        expected = E.extract_many([E.ExtractionTask("timm:resnet18", lambda: images, "kill-test", ids)], p,
                                  store=_store(tmp_path / "local"), progress=False)
    np.testing.assert_array_equal(got[0].dissimilarities, expected[0].dissimilarities)


def _store(root):
    from lib.store import Store

    return Store(root)


def test_in_process_executor_is_a_plain_loop_and_bad_addresses_are_named():
    ex = connect(None)
    assert isinstance(ex, InProcessExecutor) and not ex.distributed
    assert ex.map(lambda x, k: x * k, [1, 2, 3], shared=10) == [10, 20, 30]
    with pytest.raises(ClusterError, match="neither null, 'local' nor a scheduler address"):
        connect("my-cluster")
    with pytest.raises(ClusterError, match="no Dask scheduler answers at tcp://127.0.0.1:9"):
        connect("tcp://127.0.0.1:9", timeout="2s")


def test_default_path_does_not_load_dask():
    import subprocess

    code = ("import sys; from lib.executor import executor_for\n"
            "with executor_for({'cluster': None}) as ex: assert ex.map(abs, [-1]) == [1]\n"
            "print('distributed' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False"


def test_build_wide_task_counter_counts_every_task(cluster):
    from lib.executor import COUNTER, _task_counter

    cluster.client.register_plugin(_task_counter())
    assert cluster.map(abs, [-1, -2, -3], progress=False) == [1, 2, 3]

    def counts(dask_scheduler=None):
        p = dask_scheduler.plugins[COUNTER]
        return p.submitted, p.finished

    assert tuple(cluster.client.run_on_scheduler(counts)) == (3, 3)


def test_task_errors_reach_the_caller(cluster):
    def boom(x):
        raise ValueError(f"bad item {x}")

    with pytest.raises(ValueError, match="bad item"):
        cluster.map(boom, [1], progress=False)


def test_serve_passes_an_address_through_and_cli_names_a_bad_cluster(cluster, capsys):
    from lib.__main__ import main
    from lib.executor import serve

    with serve(cluster.address, progress=False) as address:
        assert address == cluster.address
    with serve(None) as address:
        assert address is None
    assert main(["run", "A1_engine", "--profile", "tiny", "--cluster", "my-cluster"]) == 1
    assert "cluster='my-cluster' is neither null, 'local' nor a scheduler address" in capsys.readouterr().err

"""Artifact store: keys change when and only when an input changes; writes are atomic."""

import json

import numpy as np
import pandas as pd
import pytest

from lib.store import Store, make_key, store_for


class Keyed:
    def __init__(self, key):
        self.cache_key = key


BASE = {"model": "resnet50", "n": 96, "alpha": 0.05, "layers": ["a", "b"], "stim": Keyed("abc"),
        "arr": np.arange(6, dtype=np.float32).reshape(2, 3), "opt": None}


def test_key_is_stable_for_equal_inputs():
    same = dict(BASE, layers=list(BASE["layers"]), arr=BASE["arr"].copy())
    assert make_key("step", "1", BASE) == make_key("step", "1", same)
    assert make_key("step", "1", BASE) == make_key("step", "1", dict(reversed(list(BASE.items()))))


@pytest.mark.parametrize(
    "change",
    [
        {"model": "resnet101"}, {"n": 97}, {"alpha": 0.050001}, {"layers": ["b", "a"]},
        {"stim": Keyed("abd")}, {"arr": np.arange(6, dtype=np.float64).reshape(2, 3)},
        {"arr": np.arange(6, dtype=np.float32).reshape(3, 2)}, {"opt": 0}, {"extra": 1},
    ],
)
def test_key_changes_with_any_ingredient(change):
    assert make_key("step", "1", BASE) != make_key("step", "1", dict(BASE, **change))


def test_key_changes_with_step_and_version():
    k = make_key("step", "1", BASE)
    assert k != make_key("step", "2", BASE) and k != make_key("other", "1", BASE)


def test_unhashable_ingredient_is_a_clear_error():
    with pytest.raises(TypeError, match="cache-key ingredient"):
        make_key("s", "1", {"x": object()})


def test_roundtrip_of_every_value_type(tmp_path):
    store = Store(tmp_path)
    images = [np.zeros((4, 5, 3), np.uint8), np.ones((2, 3, 3), np.uint8)]
    table = pd.DataFrame({"id": ["001", "002"], "x": [0.5, 1.5], "n": [1, 2]})
    out = store.get_or_compute("s", "1", {"a": 1}, lambda: {
        "arr": np.eye(3), "images": images, "table": table, "info": {"k": [1, 2]}})
    np.testing.assert_array_equal(out["arr"], np.eye(3))
    assert [i.shape for i in out["images"]] == [(4, 5, 3), (2, 3, 3)]
    pd.testing.assert_frame_equal(out["table"], table)  # string ids stay strings
    assert out["info"] == {"k": [1, 2]}


def test_second_call_loads_instead_of_computing(tmp_path):
    store, calls = Store(tmp_path), []

    def compute():
        calls.append(1)
        return {"x": np.arange(3)}

    store.get_or_compute("s", "1", {"a": 1}, compute)
    store.get_or_compute("s", "1", {"a": 1}, compute)
    store.get_or_compute("s", "1", {"a": 2}, compute)
    assert len(calls) == 2


def test_crash_while_computing_or_writing_leaves_no_artifact(tmp_path):
    store = Store(tmp_path)

    def crash():
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.get_or_compute("s", "1", {"a": 1}, crash)
    key = make_key("s", "1", {"a": 1})
    assert not store.exists("s", key)

    with pytest.raises(TypeError):  # a value that cannot be written fails half-way through
        store.save("s", key, {"ok": np.arange(3), "bad": {1, 2}})
    assert not store.exists("s", key)
    assert list((tmp_path / "s").iterdir()) == []  # temp folder removed too


def test_leftover_temp_folder_from_a_killed_process_is_not_trusted(tmp_path):
    store = Store(tmp_path)
    key = make_key("s", "1", {"a": 1})
    half = tmp_path / "s" / f".tmp-{key}-deadbeef"
    half.mkdir(parents=True)
    np.save(half / "x.npy", np.arange(3))  # no _meta.json: the process died here
    calls = []
    store.get_or_compute("s", "1", {"a": 1}, lambda: calls.append(1) or {"x": np.arange(4)})
    assert calls == [1]
    assert store.clean_tmp() == 1


def test_resume_computes_only_what_is_missing(tmp_path):
    store, done = Store(tmp_path), []
    for i in range(3):
        store.get_or_compute("layer", "1", {"i": i}, lambda i=i: done.append(i) or {"v": np.array([i])})
    done.clear()
    for i in range(5):
        store.get_or_compute("layer", "1", {"i": i}, lambda i=i: done.append(i) or {"v": np.array([i])})
    assert done == [3, 4]


def test_force_recomputes_once_per_run(tmp_path):
    params = {"cache_dir": str(tmp_path / "c"), "force": False, "run_dir": None}
    calls = []
    compute = lambda: calls.append(1) or {"x": np.arange(2)}  # noqa: E731
    store_for(params).get_or_compute("s", "1", {}, compute)
    run = tmp_path / "run"
    run.mkdir()
    import time

    (run / "run.json").write_text(json.dumps({"started": time.time() + 0.01}))
    time.sleep(0.02)
    forced = store_for(dict(params, force=True, run_dir=str(run)))
    forced.get_or_compute("s", "1", {}, compute)  # older than the run: recomputed
    forced.get_or_compute("s", "1", {}, compute)  # made during this run: reused
    assert len(calls) == 2


def test_large_arrays_load_memory_mapped_and_read_only(tmp_path, monkeypatch):
    """Paper-scale RDM stacks come back file-backed (np.memmap), equal to what was saved;
    small arrays stay ordinary in-memory arrays."""
    import lib.store as store_mod

    monkeypatch.setattr(store_mod, "MMAP_MIN_BYTES", 1024)
    s = store_mod.Store(tmp_path)
    big, small = np.arange(4096, dtype=np.float64).reshape(4, 1024), np.arange(10.0)
    out = s.get_or_compute("step", "v1", {"a": 1}, lambda: {"big": big, "small": small})
    assert isinstance(out["big"], np.memmap) and not out["big"].flags.writeable
    np.testing.assert_array_equal(out["big"], big)
    assert not isinstance(out["small"], np.memmap)
    np.testing.assert_array_equal(out["small"], small)

"""Store under concurrency (issues 12 and 14): real processes race on one artifact."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from lib.store import Store, make_key

ENV = dict(os.environ, PYTHONPATH=os.getcwd())


def _spawn(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _start_together(procs, go) -> None:
    """Wait until every process has imported everything, then let all of them go at once."""
    for p in procs:
        line = p.stdout.readline().strip()
        assert line == "ready", p.communicate()[1]
    go.touch()


WRITER = """
import os, sys, time, json, numpy as np
from lib.store import Store
cache, delay, go = sys.argv[1], float(sys.argv[2]), sys.argv[3]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.005)
def compute():
    time.sleep(delay)
    return {"who": np.full(50_000, os.getpid(), dtype=np.int64)}
out = Store(cache).get_or_compute("race", "1", {"a": 1}, compute)
print(json.dumps({"pid": os.getpid(), "got": int(out["who"][0]), "same": bool((out["who"] == out["who"][0]).all())}))
"""


def test_two_writers_of_one_artifact_first_finished_wins_and_the_other_reuses_it(tmp_path):
    go = tmp_path / "go"
    fast, slow = _spawn(WRITER, str(tmp_path), "0.2", str(go)), _spawn(WRITER, str(tmp_path), "1.5", str(go))
    _start_together([fast, slow], go)
    results = []
    for p in (fast, slow):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["same"] for r in results)
    assert results[0]["got"] == results[1]["got"] == results[0]["pid"]  # the faster one's artifact
    key = make_key("race", "1", {"a": 1})
    assert int(Store(tmp_path).load("race", key)["who"][0]) == results[0]["pid"]
    assert [p.name for p in (tmp_path / "race").iterdir()] == [key]
    versions = [p.name for p in (tmp_path / ".data" / "race").iterdir()]
    assert len(versions) == 1 and versions[0].startswith(key)  # the loser's version was removed


def test_many_simultaneous_writers_never_crash(tmp_path):
    go = tmp_path / "go"
    procs = [_spawn(WRITER, str(tmp_path), "0", str(go)) for _ in range(4)]
    _start_together(procs, go)
    got = set()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        r = json.loads(out.strip().splitlines()[-1])
        assert r["same"]
        got.add(r["got"])
    assert len(got) == 1  # everybody uses one and the same artifact


REPLACER = """
import os, sys, time, numpy as np
from lib.store import Store
store = Store(sys.argv[1])
print("ready", flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.005)
stop = time.time() + float(sys.argv[2])
i = 0
while time.time() < stop:
    i += 1
    store.save("live", "k", {"arr": np.full(300_000, i, dtype=np.int64), "info": {"i": i}})
print(i)
"""

READER = """
import os, sys, time, json
from lib.store import Store
store = Store(sys.argv[1])
print("ready", flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.005)
stop = time.time() + float(sys.argv[2])
n, seen = 0, set()
while time.time() < stop:
    v = store.load("live", "k")   # must never raise, never mix two versions
    i = v["info"]["i"]
    assert (v["arr"] == i).all() and v["arr"].shape == (300_000,), (i, v["arr"][:3])
    n += 1
    seen.add(i)
print(json.dumps({"loads": n, "versions": len(seen)}))
"""


def test_reader_racing_a_replacing_writer_never_sees_a_missing_or_partial_artifact(tmp_path):
    Store(tmp_path).save("live", "k", {"arr": np.zeros(300_000, dtype=np.int64), "info": {"i": 0}})
    go = tmp_path / "go"
    writer = _spawn(REPLACER, str(tmp_path), "3", str(go))
    reader = _spawn(READER, str(tmp_path), "3", str(go))
    _start_together([writer, reader], go)
    r_out, r_err = reader.communicate(timeout=120)
    w_out, w_err = writer.communicate(timeout=120)
    assert writer.returncode == 0, w_err
    assert reader.returncode == 0, r_err
    stats = json.loads(r_out.strip().splitlines()[-1])
    assert int(w_out.strip()) > 5 and stats["loads"] > 5, (w_out, stats)
    assert stats["versions"] > 1  # the reader really saw replacements happen


def test_a_replaced_version_stays_readable_for_a_grace_period(tmp_path):
    """A reader that resolved the link just before a replacement can still read the version
    it resolved; versions retired longer than the grace period are removed at the next swap."""
    import time

    import lib.store as store_mod

    store = Store(tmp_path)
    store.save("s", "k", {"x": np.zeros(3)})
    first = Path(os.path.realpath(store.path("s", "k")))
    store.save("s", "k", {"x": np.ones(3)})
    assert first.is_dir() and np.load(first / "x.npy").sum() == 0  # still there for its readers
    np.testing.assert_array_equal(store.load("s", "k")["x"], np.ones(3))
    long_ago = time.time() - store_mod.RETIRED_GRACE_SECONDS - 1
    os.utime(first, (long_ago, long_ago))  # retired longer than the grace period
    store.save("s", "k", {"x": np.full(3, 2.0)})
    assert not first.exists()
    assert len(list((tmp_path / ".data" / "s").iterdir())) == 2  # the live one and the one just retired

"""Synthetic subjects live in the artifact store (issue 14): damage is detected and
repaired, force rebuilds them, and no error sends a synthetic-data user to register for
Algonauts; a truncated or garbage Algonauts .npy names the file and what was expected."""

import numpy as np
import pytest

from lib.brain.algonauts import AlgonautsError, fmri_path, load_algonauts, mapping_path, mask_path
from lib.brain.pipeline import SYNTHETIC_HOWTO, synthetic_root
from lib.rsa import rdm
from lib.store import ArtifactWarning, store_for
from tests.brain_fixtures import make_fake

N = 8


class FakeStimulusSet:
    """What synthetic_root reads from a stimulus set, without building one."""

    cache_key = "fake-stimuli-1"

    def __init__(self):
        rng = np.random.default_rng(3)
        self.ids = [f"img{i}" for i in range(N)]
        self.captions = {k: [f"a picture number {i}"] for i, k in enumerate(self.ids)}
        self._images = [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(N)]
        self._rdms = {"saliency": rdm(np.abs(rng.standard_normal((N, 40))) + 1.0),
                      "semantic": rdm(rng.standard_normal((N, 10)))}

    def images(self, condition):
        assert condition == "Baseline"
        return self._images

    def reference_rdm(self, kind):
        return self._rdms[kind]


@pytest.fixture
def synth_params(tiny_params, monkeypatch):
    import lib.stimuli

    monkeypatch.setattr(lib.stimuli, "build_stimulus_set", lambda params, store=None, progress=True: FakeStimulusSet())
    return dict(tiny_params, subjects=[1, 2])


def _snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != "_meta.json"}


@pytest.mark.parametrize("damage", ["truncate_fmri", "delete_mapping", "flip_mask"])
def test_damaged_synthetic_subjects_are_rebuilt_identically(synth_params, damage):
    root, _ = synthetic_root(synth_params, progress=False)
    before = _snapshot(root)
    if damage == "truncate_fmri":
        f = fmri_path(root, 2, "lh")
        f.write_bytes(f.read_bytes()[:100])
    elif damage == "delete_mapping":
        mapping_path(root, 1, "streams").unlink()
    else:
        f = mask_path(root, 1, "rh", "floc-faces")
        data = bytearray(f.read_bytes())
        data[-1] ^= 0x01
        f.write_bytes(bytes(data))
    with pytest.warns(ArtifactWarning, match="brain-synthetic") as caught:
        again, _ = synthetic_root(synth_params, progress=False)
    assert not any("algonauts.csail" in str(w.message) or "registration" in str(w.message) for w in caught)
    assert again == root and _snapshot(again) == before  # same bytes as first written
    load_algonauts(again, [1, 2], howto=SYNTHETIC_HOWTO)  # and the loader reads it again


def test_force_rebuilds_synthetic_subjects_once_per_run(synth_params, tmp_path):
    import json
    import time

    root, _ = synthetic_root(synth_params, progress=False)
    first_meta = json.loads((root / "_meta.json").read_text())
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"started": time.time() + 0.01}))
    time.sleep(0.02)
    forced = dict(synth_params, force=True, run_dir=str(run))
    root2, _ = synthetic_root(forced, store=store_for(forced), progress=False)
    second = json.loads((root2 / "_meta.json").read_text())
    assert second["created"] > first_meta["created"]
    root3, _ = synthetic_root(forced, store=store_for(forced), progress=False)
    assert json.loads((root3 / "_meta.json").read_text())["created"] == second["created"]


def test_loader_errors_on_synthetic_subjects_do_not_mention_registration(synth_params):
    root, _ = synthetic_root(synth_params, progress=False)
    mapping_path(root, 1, "streams").unlink()
    with pytest.raises(AlgonautsError) as err:
        load_algonauts(root, [1, 2], howto=SYNTHETIC_HOWTO)
    msg = str(err.value)
    assert "mapping_streams.npy" in msg and "force=true" in msg
    assert "registration" not in msg and "algonauts.csail" not in msg


@pytest.mark.parametrize("which", ["fmri", "mask"])
@pytest.mark.parametrize("how", ["truncate", "garbage"])
def test_truncated_or_garbage_algonauts_npy_names_the_file_and_what_was_expected(tmp_path, which, how):
    root = tmp_path / "alg"
    make_fake(root, subjects=(1, 2))
    f = fmri_path(root, 2, "rh") if which == "fmri" else mask_path(root, 1, "lh", "prf-visualrois")
    if how == "truncate":
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    else:
        f.write_bytes(b"this is not a numpy file at all" * 10)
    with pytest.raises(AlgonautsError) as err:
        load_algonauts(root, [1, 2])
    msg = str(err.value)
    assert str(f) in msg and "cannot be read as a NumPy array" in msg
    assert ("images x vertices" if which == "fmri" else "ROI label per vertex") in msg


def test_garbage_mapping_file_names_the_file(tmp_path):
    root = tmp_path / "alg"
    make_fake(root, subjects=(1, 2))
    f = mapping_path(root, 1, "floc-faces")
    f.write_bytes(b"\x93NUMPY garbage garbage garbage")
    with pytest.raises(AlgonautsError, match="mapping_floc-faces.npy.*dict label -> ROI name"):
        load_algonauts(root, [1, 2])

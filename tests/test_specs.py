"""Typed step specs: keys change with every field of their own spec and with nothing else,
code versions follow the code, and keys cover the device and every input file."""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import textwrap
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from lib import specs
from lib.config import SCHEMA
from lib.specs import STEP_SPECS, StepSpec, specs_from_params


# ----------------------------------------------------------------------------- generic perturbation
def _changed(value):
    """A different value of the same kind (generic over the field types specs use)."""
    if isinstance(value, StepSpec):
        f = dataclasses.fields(value)[0]
        return dataclasses.replace(value, **{f.name: _changed(getattr(value, f.name))})
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.125
    if isinstance(value, str):
        return value + "-changed"
    if value is None:
        return 7
    if isinstance(value, tuple):
        extra = (value[0] if value else "x")
        return value + (_changed(extra),) if not isinstance(extra, tuple) else value + (("X", "1"),)
    raise TypeError(f"no perturbation for {type(value).__name__}")


def _field_paths(spec: StepSpec, prefix=()):
    """Every (nested) field of a spec as a path of names."""
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        yield prefix + (f.name,)
        if isinstance(value, StepSpec):
            yield from _field_paths(value, prefix + (f.name,))


def _replace_path(spec: StepSpec, path: tuple[str, ...]) -> StepSpec:
    head, *rest = path
    value = getattr(spec, head)
    new = _replace_path(value, tuple(rest)) if rest else _changed(value)
    return dataclasses.replace(spec, **{head: new})


@pytest.fixture
def all_specs(tiny_params):
    return specs_from_params(tiny_params)


def test_every_step_has_a_spec_and_a_distinct_key(all_specs, tiny_params):
    kinds = {type(s) for s in all_specs.values()}
    assert kinds == set(STEP_SPECS)
    assert len([k for k in all_specs if k.startswith("model_rdms:")]) == len(tiny_params["models"])
    keys = [s.key() for s in all_specs.values()]
    assert len(set(keys)) == len(keys)


def test_any_field_changes_its_key_and_no_other_key(all_specs):
    """The property the cache's soundness rests on, over every field of every spec
    (iterated generically, so a new field is covered without touching this test)."""
    keys = {name: spec.key(x=1) for name, spec in all_specs.items()}
    n_checked = 0
    for name, spec in all_specs.items():
        for path in _field_paths(spec):
            changed = dict(all_specs, **{name: _replace_path(spec, path)})
            assert changed[name] != spec
            new_keys = {n: s.key(x=1) for n, s in changed.items()}
            assert new_keys[name] != keys[name], f"{name}: field {'.'.join(path)} does not reach the key"
            assert {n: k for n, k in new_keys.items() if n != name} == {n: k for n, k in keys.items() if n != name}
            n_checked += 1
    assert n_checked > 40


def test_inputs_reach_the_key(all_specs):
    for spec in all_specs.values():
        assert spec.key(images="a") != spec.key(images="b")
        assert spec.key(images="a") == spec.key(images="a")


def _other_param(name, value):
    p = SCHEMA[name]
    if p.choices:
        return next(c for c in p.choices if c != value)
    if name == "models":
        return value + ["timm:resnet34"]
    if name == "subjects":
        return value + [8]
    if name == "references":
        return value + ["clip_text"]
    if value is None:
        return 3
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if p.high is not None and value + 0.1 > p.high else value + 0.1
    if isinstance(value, str):
        return value + "-other"
    raise TypeError(name)


def test_a_parameter_moves_exactly_the_keys_of_the_specs_that_read_it(tiny_params):
    """Built from params: a parameter change moves a step's key iff it changes its spec;
    and every spec is reached by some parameter."""
    before = specs_from_params(tiny_params)
    reached = set()
    for name in SCHEMA:
        if name == "device":
            continue  # cuda is not available here; covered by the device test below
        params = dict(tiny_params, **{name: _other_param(name, tiny_params[name])})
        after = specs_from_params(params)
        for step, spec in before.items():
            if step not in after:
                continue
            moved = after[step].key() != spec.key()
            assert moved == (after[step] != spec), f"parameter {name}: step {step}"
            if moved:
                reached.add(type(spec))
    assert reached == set(STEP_SPECS)


def test_saliency_device_is_in_stimulus_and_brain_reference_keys(tiny_params, monkeypatch):
    cpu = specs_from_params(tiny_params)
    import lib.config

    monkeypatch.setattr(lib.config, "pick_device", lambda preference="auto": "cuda")
    gpu = specs_from_params(dict(tiny_params, device="cuda"))
    assert specs.saliency_implementation("cpu").endswith("/cpu")
    assert specs.saliency_implementation("cuda").startswith("torch-")
    for step in ("saliency", "stimulus_set", "brain-references"):
        assert gpu[step].key() != cpu[step].key(), step
    for step in ("caption_embeddings", "rsa", "brain-roi-rdms", "model_rdms:timm:resnet18"):
        assert gpu[step].key() == cpu[step].key(), step


def test_layer_environment_enters_the_extraction_key(tiny_params, monkeypatch):
    monkeypatch.delenv("TIMM_FUSED_ATTN", raising=False)
    a = specs.ExtractionSpec.from_params(tiny_params, "timm:resnet18")
    monkeypatch.setenv("TIMM_FUSED_ATTN", "0")
    b = specs.ExtractionSpec.from_params(tiny_params, "timm:resnet18")
    assert a.key() != b.key() and dict(b.environment)["TIMM_FUSED_ATTN"] == "0"


def test_pretrained_weights_enter_by_file_hash_and_library_version(tiny_params, tmp_path, monkeypatch):
    from lib.models import weights as model_weights

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"A" * 64)
    monkeypatch.setattr(model_weights, "resolve_weights", lambda name, policy="auto", **kw: ("pretrained", str(weights)))
    params = dict(tiny_params, weights="auto")
    first = specs.weights_identity("timm:resnet18", params)
    assert first.startswith("pretrained:timm:resnet18") and f"timm-{specs.package_version('timm')}" in first
    weights.write_bytes(b"B" * 64)
    os.utime(weights, ns=(1, 1))  # a different mtime: the memo must not answer
    assert specs.weights_identity("timm:resnet18", params) != first


# ----------------------------------------------------------------------------- code version
def test_code_version_follows_code_not_comments(tmp_path, monkeypatch):
    mod = tmp_path / "spec_probe_mod.py"
    mod.write_text(textwrap.dedent('''
        """Docstring."""
        def f(x):
            return x + 1  # a comment
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    v1 = specs.code_version(["spec_probe_mod"])
    mod.write_text(textwrap.dedent('''
        """Another docstring, reworded."""
        def f(x):
            # a new comment
            return x + 1
    '''))
    assert specs.code_version(["spec_probe_mod"]) == v1
    mod.write_text(textwrap.dedent('''
        def f(x):
            return x + 2
    '''))
    v2 = specs.code_version(["spec_probe_mod"])
    assert v2 != v1

    @dataclass(frozen=True)
    class ProbeSpec(StepSpec):
        STEP: ClassVar[str] = "probe"
        MODULES: ClassVar[tuple[str, ...]] = ("spec_probe_mod",)
        n: int

    key = ProbeSpec(1).key()
    st = mod.stat()
    mod.write_text("def f(x):\n    return x + 3\n")  # same size as before: the mtime tells the memo
    os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert ProbeSpec(1).key() != key
    sys.modules.pop("spec_probe_mod", None)


def test_code_version_of_a_package_covers_its_modules():
    assert specs.code_version(["lib.brain"]) != specs.code_version(["lib.brain.rois"])
    with pytest.raises(ImportError, match="no_such_module"):
        specs.code_version(["no_such_module"])


def test_nested_specs_contribute_their_code(tiny_params):
    s = specs.StimulusSpec.from_params(tiny_params)
    assert "lib.stimuli.saliency" in s.modules() and "lib.stimuli.captions" in s.modules()


# ----------------------------------------------------------------------------- input files
def test_file_digest_is_content_and_memoised_by_size_and_mtime(tmp_path):
    import hashlib

    f = tmp_path / "a.bin"
    f.write_bytes(b"one")
    memo = tmp_path / "memo"
    d1 = specs.file_digest(f, memo)
    assert d1 == hashlib.sha256(b"one").hexdigest()
    st = f.stat()
    f.write_bytes(b"two")  # same size; new mtime -> new digest
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert specs.file_digest(f, memo) == hashlib.sha256(b"two").hexdigest()
    # a rewrite that restores size and mtime is still seen (lib.filehash also keys on ctime)
    from lib import filehash

    filehash.forget_memory()
    f.write_bytes(b"TWO")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert specs.file_digest(f, memo) == hashlib.sha256(b"TWO").hexdigest()


def test_folder_source_key_follows_image_content(tiny_params, tmp_path):
    from PIL import Image

    from lib.stimuli.stimulus_set import source_fingerprint

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((40, 40, 3), i * 40, np.uint8)).save(folder / f"im{i}.png")
    params = dict(tiny_params, source="folder", folder_path=str(folder))
    fp1 = source_fingerprint(params)
    st = (folder / "im0.png").stat()
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(folder / "im0.png")  # same name, new pixels
    os.utime(folder / "im0.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    fp2 = source_fingerprint(params)
    assert fp1 != fp2
    assert fp1 == source_fingerprint(dict(params)) or fp2 == source_fingerprint(dict(params))


def test_algonauts_key_covers_images_table_and_captions(tiny_params, tmp_path):
    import json

    import pandas as pd
    from PIL import Image

    from lib.brain.pipeline import _folder_key, captions_fingerprint
    from tests.brain_fixtures import make_fake

    root = tmp_path / "alg"
    make_fake(root, subjects=(1, 2))
    k1 = _folder_key(root, [1, 2])
    png = next((root / "subj01/training_split/training_images").glob("*.png"))
    st = png.stat()
    Image.fromarray(np.full((4, 4, 3), 99, np.uint8)).save(png)  # rewritten in place, same name
    os.utime(png, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    k2 = _folder_key(root, [1, 2])
    assert k2 != k1

    params = dict(tiny_params, algonauts_dir=str(root), data_dir=str(tmp_path / "raw"))
    pd.DataFrame({"nsdId": [5, 13], "cocoId": [1, 2], "cocoSplit": ["train2017"] * 2,
                  "cropBox": ["(0, 0, 0, 0)"] * 2}).to_csv(root / "nsd_stim_info_merged.csv")
    ann = tmp_path / "raw" / "coco" / "annotations"
    ann.mkdir(parents=True)
    caps = ann / "captions_train2017.json"
    json.dump({"images": [], "annotations": []}, open(caps, "w"))
    c1 = captions_fingerprint(params, np.array([5, 13]))
    json.dump({"images": [{"id": 1}], "annotations": [{"id": 1, "image_id": 1, "caption": "a cat"}]}, open(caps, "w"))
    c2 = captions_fingerprint(params, np.array([5, 13]))
    assert c1["captions"] != c2["captions"] and c1["table"] == c2["table"]
    pd.DataFrame({"nsdId": [5, 13], "cocoId": [1, 3], "cocoSplit": ["train2017"] * 2,
                  "cropBox": ["(0, 0, 0, 0)"] * 2}).to_csv(root / "nsd_stim_info_merged.csv")
    assert captions_fingerprint(params, np.array([5, 13]))["table"] != c2["table"]


def test_force_rewrites_synthetic_subjects(tiny_params, tmp_path, monkeypatch):
    """``force`` (the store's force_before) reaches synthetic subjects, which are written
    outside the store's get_or_compute."""
    import time

    import lib.stimuli
    from lib.brain import pipeline
    from lib.rsa import rdm
    from lib.store import Store

    rng = np.random.default_rng(0)

    class FakeSet:
        ids = [f"img{i}" for i in range(6)]
        captions = {i: ["a caption"] for i in ids}
        cache_key = "fake-stimuli"
        feats = {"saliency": np.abs(rng.standard_normal((6, 30))) + 1, "semantic": rng.standard_normal((6, 5))}

        def reference_rdm(self, k):
            return rdm(self.feats[k])

        def images(self, cond):
            return [np.full((8, 8, 3), i, np.uint8) for i in range(6)]

    monkeypatch.setattr(lib.stimuli, "build_stimulus_set", lambda params, store=None, progress=True: FakeSet())
    params = dict(tiny_params, subjects=[1, 2])
    store = Store(tmp_path / "cache")
    root, caps = pipeline.synthetic_root(params, store, progress=False)
    assert set(caps) == {k for k in caps if k.startswith("nsd-")} and len(caps) == 6
    first = (root / "synthetic.json").stat().st_mtime
    again, _ = pipeline.synthetic_root(params, store, progress=False)
    assert again == root and (root / "synthetic.json").stat().st_mtime == first  # reused
    time.sleep(0.02)
    forced, _ = pipeline.synthetic_root(params, Store(tmp_path / "cache", force_before=time.time() + 1), False)
    assert forced == root and (root / "synthetic.json").stat().st_mtime > first
    other, _ = pipeline.synthetic_root(dict(params, synthetic_noise=2.0), store, progress=False)
    assert other != root

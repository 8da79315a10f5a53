"""Image sources on fixtures: demo photos, folder, COCO+NSD (crop, captions, errors)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lib.stimuli import sources
from lib.stimuli.imageio import read_image, to_rgb_uint8

from stimuli_fixtures import COCO_FIXTURE, make_coco_nsd_fixture


def test_demo_source_has_twenty_real_photos_with_five_captions():
    items = sources.demo_items()
    assert len(items) >= 20
    assert len({it.id for it in items}) == len(items)
    for it in items:
        assert it.image.dtype == np.uint8 and it.image.shape == (sources.DEMO_SIZE, sources.DEMO_SIZE, 3)
        assert len(it.captions) == 5 and all(len(c) > 10 for c in it.captions)
        assert it.image.std() > 5  # a photograph, not a blank
    assert len(sources.demo_items(n=3)) == 3


def test_conversions(tmp_path):
    g = np.arange(300 * 300, dtype=np.uint32).reshape(300, 300) % 256
    assert to_rgb_uint8(g.astype(np.uint8)).shape == (300, 300, 3)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0  # fully transparent -> white
    np.testing.assert_array_equal(to_rgb_uint8(rgba), np.full((4, 4, 3), 255))
    assert to_rgb_uint8(np.full((2, 2), 65535, np.uint16)).max() == 255
    assert to_rgb_uint8(np.ones((2, 2, 3))).max() == 255
    with pytest.raises(ValueError, match="float images"):
        to_rgb_uint8(np.full((2, 2), 3.0))
    with pytest.raises(ValueError, match="expected an"):
        to_rgb_uint8(np.zeros((2, 2, 5)))
    # files: CMYK JPEG, 16-bit PNG, palette PNG
    Image.new("CMYK", (20, 10), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    c = read_image(tmp_path / "c.jpg")
    assert c.shape == (10, 20, 3) and c[..., 0].mean() > 200 and c[..., 1].mean() < 60
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "d.png")
    assert read_image(tmp_path / "d.png").min() == 255
    Image.new("P", (5, 5)).save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (5, 5, 3)


def test_folder_source(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("b", "a"):
        Image.fromarray(rng.integers(0, 255, (260, 270, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    (tmp_path / "captions.yaml").write_text("a: [one caption, another]\nb: single caption\n")
    items = sources.load_source({"source": "folder", "folder_path": str(tmp_path), "n_images": None})
    assert [it.id for it in items] == ["a", "b"]
    assert items[1].captions == ["single caption"]
    (tmp_path / "captions.yaml").write_text("a: [x]\n")
    with pytest.raises(ValueError, match="b.png has no captions"):
        sources.folder_items(tmp_path)
    (tmp_path / "captions.yaml").write_text("a: [x]\nb: [y]\nc: [z]\n")
    with pytest.raises(FileNotFoundError, match=r"\['c'\]"):
        sources.folder_items(tmp_path)
    (tmp_path / "captions.yaml").unlink()
    with pytest.raises(FileNotFoundError, match="captions.yaml"):
        sources.folder_items(tmp_path)


def test_crop_nsd():
    img = np.arange(100 * 200 * 3, dtype=np.uint8).reshape(100, 200, 3)
    out = sources.crop_nsd(img, "(0.1, 0.2, 0.25, 0)", 7)
    assert out.shape == (70, 150, 3)
    np.testing.assert_array_equal(out, img[10:80, 50:200])
    with pytest.raises(ValueError, match="NSD image 7"):
        sources.crop_nsd(img, (0.5, 0.5, 0, 0), 7)
    with pytest.raises(ValueError, match="NSD image 8"):
        sources.crop_nsd(img, (0, 0, 0.7, 0.4), 8)


def _install(fixture_root, data_dir):
    """Lay the served fixture out as the fetcher would (the fetch itself is tested in
    test_stimulus_set.py through a loopback server)."""
    import shutil
    import zipfile

    serve = fixture_root / "serve"
    (data_dir / "nsd").mkdir(parents=True)
    shutil.copy(serve / "nsd_stim_info_merged.csv", data_dir / "nsd")
    with zipfile.ZipFile(serve / "annotations_trainval2017.zip") as zf:
        zf.extractall(data_dir / "coco")
    for split in ("train2017", "val2017"):
        shutil.copytree(serve / split, data_dir / "coco" / split)


def test_coco_nsd_source(tmp_path):
    make_coco_nsd_fixture(tmp_path / "fx")
    data = tmp_path / "raw"
    _install(tmp_path / "fx", data)
    table = sources.read_nsd_stim_info(data / sources.NSD_TABLE)
    assert table["cropBox"].iloc[0] == (0.0, 0.0, 0.1, 0.1)
    items = sources.coco_nsd_items(data, shared1000=True)
    assert [it.id for it in items] == [f"nsd-{i:05d}" for i in range(6)]  # 107 is not shared
    assert len(sources.coco_nsd_items(data, shared1000=False)) == 7
    assert len(sources.coco_nsd_items(data, shared1000=True, n_images=2)) == 2
    for it, (coco_id, split, _, box, _, (h, w)) in zip(items, COCO_FIXTURE):
        assert it.meta["cocoId"] == coco_id and it.meta["cocoSplit"] == split
        t, b, l, r = box
        assert it.image.shape == (h - round(t * h) - round(b * h), w - round(l * w) - round(r * w), 3)
        assert len(it.captions) == 5
    # the val2017 image got its captions from the val file
    assert "coffee" in " ".join(items[3].captions).lower()


def test_coco_nsd_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m lib fetch coco-nsd"):
        sources.coco_nsd_items(tmp_path)
    make_coco_nsd_fixture(tmp_path / "fx")
    data = tmp_path / "raw"
    _install(tmp_path / "fx", data)
    (data / "coco" / "train2017" / "000000000102.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="NSD image 1 .*fetch coco-nsd"):
        sources.coco_nsd_items(data)
    (data / "coco" / "annotations" / "captions_val2017.json").unlink()
    with pytest.raises(FileNotFoundError, match="captions_val2017.json.*fetch coco-nsd"):
        sources.coco_nsd_items(data)
    df = pd.read_csv(data / sources.NSD_TABLE)
    df.loc[0, "cropBox"] = "(0.6, 0.5, 0, 0)"
    df.to_csv(data / sources.NSD_TABLE, index=False)
    (data / "coco" / "annotations" / "captions_val2017.json").write_text(
        '{"images": [], "annotations": [], "info": {}, "licenses": []}')
    with pytest.raises(ValueError, match="NSD image 0: invalid cropBox"):
        sources.coco_nsd_items(data, n_images=1)


def test_importing_stimuli_registers_doctor_and_fetch_and_stays_light():
    import subprocess
    import sys

    code = ("import sys, lib.stimuli; from lib.doctor import FETCHERS, REQUIREMENTS; "
            "assert 'coco-nsd' in FETCHERS; "
            "assert any(r.__name__ == 'stimulus_inputs' for r in REQUIREMENTS); "
            "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_doctor_reports_missing_coco_nsd_inputs(tmp_path):
    from lib.config import load_profile
    from lib.stimuli.checks import stimulus_inputs

    checks = list(stimulus_inputs(load_profile("paper", {"data_dir": str(tmp_path)})))
    table = [c for c in checks if c.name == "NSD stimulus table"][0]
    assert not table.ok and "python -m lib fetch coco-nsd --profile paper" in table.fix
    demo = {c.name: c.ok for c in stimulus_inputs(load_profile("demo"))}
    assert demo["demo captions"] and demo["caption model all-MiniLM-L6-v2"]

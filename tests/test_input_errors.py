"""Errors name the file and the fix (issue 14): folder sources with broken, clashing,
tiny, huge or oddly named images, and YAML caption keys YAML would misread."""

import unicodedata
import warnings

import numpy as np
import pytest
from PIL import Image

from lib.stimuli.imageio import ImageReadError, read_image
from lib.stimuli.saliency import MIN_SIZE
from lib.stimuli.sources import folder_items, read_captions_file


def _photo(path, h=300, w=320, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path, quality=90)
    return path


def _folder(tmp_path, names, captions_yaml=None):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, n in enumerate(names):
        _photo(folder / n, seed=i)
    text = captions_yaml if captions_yaml is not None else "".join(
        f'"{n.rsplit(".", 1)[0]}": ["a photo of thing {i}"]\n' for i, n in enumerate(names))
    (folder / "captions.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_image_names_the_file_and_the_fix(tmp_path, suffix):
    folder = _folder(tmp_path, ["a.jpg", "b.jpg", f"c{suffix}"])
    broken = folder / f"c{suffix}"
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])
    with pytest.raises(ImageReadError) as err:
        folder_items(folder)
    msg = str(err.value)
    assert str(broken) in msg and "truncated" in msg and "remove it from the folder" in msg


def test_file_that_is_not_an_image_names_the_file(tmp_path):
    folder = _folder(tmp_path, ["a.jpg", "b.jpg"])
    (folder / "c.png").write_text("not an image")
    (folder / "captions.yaml").write_text("a: [x]\nb: [y]\nc: [z]\n")
    with pytest.raises(ImageReadError, match=r"c\.png"):
        folder_items(folder)


def test_duplicate_stems_name_both_files(tmp_path):
    folder = _folder(tmp_path, ["coffee.jpg", "coffee.png", "tea.jpg"], "coffee: [a cup]\ntea: [a pot]\n")
    with pytest.raises(ValueError) as err:
        folder_items(folder)
    msg = str(err.value)
    assert "coffee.jpg and coffee.png" in msg and "rename or remove" in msg


def test_image_smaller_than_the_saliency_pyramid_says_the_minimum(tmp_path):
    folder = _folder(tmp_path, ["a.jpg", "b.jpg"])
    _photo(folder / "tiny.png", h=1, w=1)
    (folder / "captions.yaml").write_text("a: [x]\nb: [y]\ntiny: [z]\n")
    with pytest.raises(ValueError) as err:
        folder_items(folder)
    msg = str(err.value)
    assert "tiny.png is 1x1 px" in msg and f"at least {MIN_SIZE} px" in msg


def test_images_down_to_the_minimum_are_accepted(tmp_path):
    folder = _folder(tmp_path, ["a.jpg"])
    _photo(folder / "edge.png", h=MIN_SIZE, w=MIN_SIZE + 5)
    (folder / "captions.yaml").write_text("a: [x]\nedge: [y]\n")
    items = folder_items(folder)
    assert items[1].image.shape == (MIN_SIZE, MIN_SIZE + 5, 3)


def test_yaml_keys_yaml_would_misread_match_their_files(tmp_path):
    names = ["000.jpg", "no.jpg", "yes.jpg", "1.50.jpg", "null.jpg"]
    captions = "000: [zeros]\nno: [a no sign]\nyes: [a yes sign]\n1.50: [a price]\nnull: [nothing]\n"
    items = folder_items(_folder(tmp_path, names, captions))
    assert [it.id for it in items] == ["000", "1.50", "no", "null", "yes"]
    assert {it.id: it.captions[0] for it in items}["no"] == "a no sign"


def test_duplicate_caption_key_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "captions.yaml"
    path.write_text("a: [x]\nb: [y]\na: [z]\n")
    with pytest.raises(ValueError, match=r"key 'a' appears twice \(line 3\)"):
        read_captions_file(path)


def test_unicode_file_names_match_caption_keys_in_nfc_form(tmp_path):
    nfd = unicodedata.normalize("NFD", "café")
    nfc = unicodedata.normalize("NFC", "café")
    assert nfd != nfc
    folder = _folder(tmp_path, [f"{nfd}.jpg", "tea.jpg"], f'"{nfc}": [a cup of coffee]\ntea: [a pot of tea]\n')
    items = folder_items(folder)
    assert [it.id for it in items] == [nfc, "tea"] and items[0].captions == ["a cup of coffee"]


def test_large_image_is_downscaled_on_load_with_a_note(tmp_path):
    folder = _folder(tmp_path, ["a.jpg", "b.jpg"])
    _photo(folder / "huge.jpg", h=1500, w=2000)
    (folder / "captions.yaml").write_text("a: [x]\nb: [y]\nhuge: [z]\n")
    with pytest.warns(UserWarning, match=r"huge\.jpg \(1500x2000 -> 768x1024\)"):
        items = folder_items(folder, max_side=1024)
    assert items[2].image.shape == (768, 1024, 3) and items[2].meta["original_shape"] == [1500, 2000, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # small images: no note
        assert items[0].image.shape == folder_items(folder, max_side=4096)[0].image.shape


def test_downscaled_image_matches_a_reference_resize(tmp_path):
    """The decoded-small image agrees with resizing the full decode (box filter)."""
    path = tmp_path / "big.png"
    rng = np.random.default_rng(1)
    smooth = np.kron(rng.integers(0, 255, (30, 40, 3)), np.ones((20, 20, 1))).astype(np.uint8)  # 600x800
    Image.fromarray(smooth).save(path)
    small = read_image(path, max_side=400)
    ref = np.asarray(Image.fromarray(smooth).resize((400, 300), Image.Resampling.BOX))
    assert small.shape == (300, 400, 3) and np.abs(small.astype(int) - ref).max() <= 1


def test_too_small_after_downscaling_is_explained(tmp_path):
    folder = _folder(tmp_path, ["a.jpg"])
    _photo(folder / "pano.jpg", h=300, w=3000)
    (folder / "captions.yaml").write_text("a: [x]\npano: [y]\n")
    with pytest.raises(ValueError, match=r"pano\.jpg is 300x3000 px \(102x1024 after downscaling"):
        folder_items(folder, max_side=1024)

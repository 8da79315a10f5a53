"""Image sources: base images with their captions, one :class:`StimulusItem` each.

- ``demo``: real photographs that ship inside installed packages (scikit-image,
  scikit-learn, matplotlib) with five captions each written for this project
  (``data/demo/captions.yaml``); offline.
- ``coco_nsd``: COCO-2017 images shown in the Natural Scenes Dataset, cropped with NSD's
  ``cropBox``; captions from COCO's caption annotations (pycocotools). With
  ``distractor_pool=coco_train2017`` (the original study) the bases are the train2017 ones
  and :func:`coco_train2017_pool` gives the candidate distractors: every train2017 image,
  uncropped, in COCO's order, fetched on first use.
- ``folder``: any folder of images plus ``captions.yaml`` (file stem -> list of captions).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import os
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import yaml

from lib.config import DATA_DIR, resolve_path
from lib.stimuli.imageio import IMAGE_SUFFIXES, image_size, read_image, to_rgb_uint8

DEMO_CAPTIONS = DATA_DIR / "demo" / "captions.yaml"
DEMO_SIZE = 384  # demo photos: centre square, resized to this side (>= the saliency minimum)
NSD_TABLE = "nsd/nsd_stim_info_merged.csv"
COCO_CAPTIONS = "coco/annotations/captions_{split}.json"
COCO_IMAGE = "coco/{split}/{coco_id:012d}.jpg"
COCO_INSTANCES = "coco/annotations/instances_{split}.json"
COCO_ORDER = "coco/annotations/{split}_image_order.json"  # extracted once from COCO_INSTANCES
FETCH_HINT = "python -m lib fetch coco-nsd --profile {profile}"


@dataclass
class StimulusItem:
    """One base image: id, RGB uint8 (H, W, 3) pixels, its captions, and where it came from."""

    id: str
    image: np.ndarray
    captions: list[str]
    meta: dict[str, Any] = field(default_factory=dict)


# --- demo ----------------------------------------------------------------------------------


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load():
        from skimage import data

        if name == "motorcycle":
            return data.stereo_motorcycle()[0]
        return getattr(data, name)()

    return load


def _package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, found without importing the package
    (importing scikit-learn or pyplot costs seconds)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package} is not installed (the demo source needs it)")
    return Path(list(spec.submodule_search_locations)[0], *parts)


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    # the files behind sklearn.datasets.load_sample_image(name)
    return lambda: read_image(_package_file("sklearn", "datasets", "images", name))


def _matplotlib(name: str) -> Callable[[], np.ndarray]:
    # the file behind matplotlib.cbook.get_sample_data(name)
    return lambda: read_image(_package_file("matplotlib", "mpl-data", "sample_data", name))


# id -> (loader, provenance); order is the dataset order
DEMO_PHOTOS: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "astronaut": (_skimage("astronaut"), "skimage.data.astronaut"),
    "rocket": (_skimage("rocket"), "skimage.data.rocket"),
    "chelsea": (_skimage("chelsea"), "skimage.data.chelsea"),
    "coffee": (_skimage("coffee"), "skimage.data.coffee"),
    "motorcycle": (_skimage("motorcycle"), "skimage.data.stereo_motorcycle (left)"),
    "china": (_sklearn("china.jpg"), "sklearn.datasets.load_sample_image('china.jpg')"),
    "flower": (_sklearn("flower.jpg"), "sklearn.datasets.load_sample_image('flower.jpg')"),
    "grace_hopper": (_matplotlib("grace_hopper.jpg"), "matplotlib.cbook.get_sample_data('grace_hopper.jpg')"),
    "camera": (_skimage("camera"), "skimage.data.camera (grayscale)"),
    "hubble_deep_field": (_skimage("hubble_deep_field"), "skimage.data.hubble_deep_field"),
    "moon": (_skimage("moon"), "skimage.data.moon (grayscale)"),
    "immunohistochemistry": (_skimage("immunohistochemistry"), "skimage.data.immunohistochemistry"),
    "retina": (_skimage("retina"), "skimage.data.retina"),
    "cell": (_skimage("cell"), "skimage.data.cell (grayscale)"),
    "coins": (_skimage("coins"), "skimage.data.coins (grayscale)"),
    "clock": (_skimage("clock"), "skimage.data.clock (grayscale)"),
    "page": (_skimage("page"), "skimage.data.page (grayscale)"),
    "text": (_skimage("text"), "skimage.data.text (grayscale)"),
    "brick": (_skimage("brick"), "skimage.data.brick (grayscale)"),
    "grass": (_skimage("grass"), "skimage.data.grass (grayscale)"),
    "gravel": (_skimage("gravel"), "skimage.data.gravel (grayscale)"),
}


def square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop, resized to size x size (area interpolation down, cubic up).

    Why square: NSD's crops are square, and a square image survives the networks'
    centre crop whole, so a distractor pasted at an edge is never cut away."""
    import cv2

    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    sq = image[top : top + s, left : left + s]
    interp = cv2.INTER_AREA if s >= size else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(sq, (size, size), interpolation=interp))


class _LiteralKeyLoader(yaml.SafeLoader):
    """YAML loader that keeps mapping keys as written: captions are keyed by file names,
    and plain YAML would turn ``000``, ``no`` and ``yes`` into 0, False and True."""


def _literal_keys(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    out: dict = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else loader.construct_object(key_node, deep=True)
        if key in out:
            mark = key_node.start_mark
            raise ValueError(f"{getattr(loader, 'name', 'captions file')}: key {key!r} appears twice "
                             f"(line {mark.line + 1}); merge its captions into one entry")
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_LiteralKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _literal_keys)


def _nfc(text: str) -> str:
    """Unicode NFC form: macOS writes file names decomposed (NFD), editors compose (NFC)."""
    return unicodedata.normalize("NFC", text)


def read_captions_file(path: str | os.PathLike) -> dict[str, list[str]]:
    """A YAML/JSON mapping id -> list of captions (a single string is one caption).

    Keys are read as written (``000:`` is the id "000", ``no:`` the id "no") and in Unicode
    NFC form, so that they match file names whatever the editor or file system did."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"captions file {path} does not exist")
    with open(path, encoding="utf-8") as fh:
        loader = _LiteralKeyLoader(fh)
        loader.name = str(path)
        try:
            data = loader.get_single_data() or {}
        except yaml.YAMLError as err:
            raise ValueError(f"{path} is not valid YAML/JSON: {err}") from None
        finally:
            loader.dispose()
    if not isinstance(data, dict):
        raise ValueError(f"{path} must map image ids to lists of captions, found {type(data).__name__}")
    out: dict[str, list[str]] = {}
    for key, caps in data.items():
        if not isinstance(caps, (str, list, tuple)) and caps is not None:
            raise ValueError(f"{path}: the captions of {key!r} must be a list of strings, found {caps!r}")
        caps = [caps] if isinstance(caps, str) else list(caps or [])
        out[_nfc(str(key))] = [str(c).strip() for c in caps if str(c).strip()]
    return out


def demo_items(size: int = DEMO_SIZE, captions_path: str | os.PathLike = DEMO_CAPTIONS,
               n: int | None = None) -> list[StimulusItem]:
    """The demo photographs (grayscale ones converted to RGB), square, with their captions."""
    captions = read_captions_file(captions_path)
    items = []
    for item_id, (load, origin) in list(DEMO_PHOTOS.items())[: n or None]:
        if not captions.get(item_id):
            raise ValueError(f"demo photo {item_id!r} has no captions in {captions_path}; add five")
        raw = load()
        img = to_rgb_uint8(raw, item_id)
        items.append(StimulusItem(item_id, square_resize(img, size), captions[item_id],
                                  {"origin": origin, "original_shape": list(np.shape(raw))}))
    return items


# --- folder --------------------------------------------------------------------------------


def folder_items(folder: str | os.PathLike, captions_file: str = "captions.yaml",
                 max_side: int | None = None) -> list[StimulusItem]:
    """Images of a folder (sorted by name) with captions from ``captions.yaml`` keyed by
    file stem (compared in Unicode NFC form). An image without captions, captions without
    an image, two files with one stem, an unreadable file or an image smaller than the
    saliency pyramid needs is an error naming the file. Images whose longer side exceeds
    ``max_side`` are downscaled while decoded (with a warning listing them)."""
    from lib.stimuli.saliency import MIN_SIZE

    folder = resolve_path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist (set -p folder_path=<folder>)")
    cap_path = folder / captions_file
    if not cap_path.is_file():
        alt = folder / "captions.json"
        if not alt.is_file():
            raise FileNotFoundError(f"{folder} has no {captions_file}: write one mapping each image's "
                                    "file name (without suffix) to a list of captions")
        cap_path = alt
    captions = read_captions_file(cap_path)
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: _nfc(p.name))
    if not files:
        raise FileNotFoundError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    by_stem: dict[str, list[Path]] = {}
    for p in files:
        by_stem.setdefault(_nfc(p.stem), []).append(p)
    clashes = {k: v for k, v in by_stem.items() if len(v) > 1}
    if clashes:
        listed = "; ".join(" and ".join(p.name for p in v) for v in clashes.values())
        raise ValueError(f"{folder}: several files share one image id (the file name without suffix): {listed}. "
                         "Captions are keyed by that id; rename or remove all but one of each")
    missing_img = sorted(set(captions) - set(by_stem))
    if missing_img:
        raise FileNotFoundError(f"{cap_path} has captions for images not in {folder}: {missing_img}")
    items, shrunk = [], []
    for stem, (p,) in by_stem.items():
        if not captions.get(stem):
            raise ValueError(f"image {p.name} has no captions in {cap_path}; add at least one")
        h, w = image_size(p)
        scale = min(1.0, max_side / max(h, w)) if max_side else 1.0
        if min(h, w) * scale < MIN_SIZE:
            after = f" ({round(h * scale)}x{round(w * scale)} after downscaling to max_image_side={max_side})" \
                if scale < 1 else ""
            raise ValueError(f"image {p} is {h}x{w} px{after}, too small for the saliency model: both sides must "
                             f"be at least {MIN_SIZE} px. Use a larger image, upscale it, or remove it")
        image = read_image(p, max_side=max_side)
        meta = {"path": str(p)}
        if scale < 1:
            meta["original_shape"] = [h, w, 3]
            shrunk.append(f"{p.name} ({h}x{w} -> {image.shape[0]}x{image.shape[1]})")
        items.append(StimulusItem(stem, image, captions[stem], meta))
    if shrunk:
        warnings.warn(f"{len(shrunk)} image(s) in {folder} were larger than max_image_side={max_side} and were "
                      f"downscaled on load: {', '.join(shrunk)}", stacklevel=2)
    return items


# --- COCO + NSD ----------------------------------------------------------------------------


def parse_crop_box(value: Any) -> tuple[float, float, float, float]:
    box = ast.literal_eval(value) if isinstance(value, str) else value
    return tuple(float(v) for v in box)  # type: ignore[return-value]


def read_nsd_stim_info(path: str | os.PathLike) -> pd.DataFrame:
    """NSD's ``nsd_stim_info_merged.csv`` with ``cropBox`` parsed to 4 floats
    (fractions cut from top, bottom, left, right)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NSD stimulus table {path} not found")
    df = pd.read_csv(path)
    if "nsdId" not in df.columns and df.columns[0].startswith("Unnamed"):
        df = df.rename(columns={df.columns[0]: "nsdId"})
    need = {"cocoId", "cocoSplit", "cropBox", "nsdId"}
    if not need <= set(df.columns):
        raise ValueError(f"{path} lacks columns {sorted(need - set(df.columns))}; is it nsd_stim_info_merged.csv?")
    df["cropBox"] = df["cropBox"].map(parse_crop_box)
    if "shared1000" in df.columns:
        df["shared1000"] = df["shared1000"].astype(str).str.lower().isin(["true", "1"])
    return df


def crop_nsd(image: np.ndarray, crop_box, nsd_id: int | str = "?") -> np.ndarray:
    """Crop as NSD did: cropBox = fractions of height (top, bottom) and width (left, right)."""
    top, bottom, left, right = parse_crop_box(crop_box)
    if min(top, bottom, left, right) < 0 or top + bottom >= 1 or left + right >= 1:
        raise ValueError(f"NSD image {nsd_id}: invalid cropBox {crop_box!r}; fractions must be >= 0 "
                         "and top+bottom, left+right < 1")
    h, w = image.shape[:2]
    t, b = int(round(top * h)), h - int(round(bottom * h))
    l, r = int(round(left * w)), w - int(round(right * w))
    return np.ascontiguousarray(image[t:b, l:r])


def select_nsd_rows(table: pd.DataFrame, shared1000: bool, n_images: int | None,
                    train2017_only: bool = False) -> pd.DataFrame:
    """The NSD rows a run uses, by nsdId; ``train2017_only``: as the original, whose bases were
    the NSD images of COCO's train2017 split (``distractor_pool=coco_train2017``)."""
    rows = table
    if train2017_only:
        rows = rows[rows["cocoSplit"] == "train2017"]
    if shared1000:
        if "shared1000" not in table.columns:
            raise ValueError("the NSD table has no shared1000 column; set -p nsd_shared1000=false")
        rows = rows[rows["shared1000"]]
    rows = rows.sort_values("nsdId")
    return rows.head(n_images) if n_images else rows


def coco_nsd_paths(data_dir: str | os.PathLike) -> dict[str, Path]:
    root = resolve_path(data_dir)
    return {"root": root, "table": root / NSD_TABLE}


def _missing(what: str, path: Path, profile: str) -> FileNotFoundError:
    return FileNotFoundError(f"{what} {path} not found. Download it with: {FETCH_HINT.format(profile=profile)}")


def coco_nsd_items(data_dir: str | os.PathLike, shared1000: bool = True, n_images: int | None = None,
                   profile: str = "paper", train2017_only: bool = False) -> list[StimulusItem]:
    """NSD's COCO images (cropped as NSD cropped them) with their COCO captions, by nsdId
    (ids ``nsd-00013``, the same scheme as the brain image sets)."""
    from lib.image_set import nsd_image_id

    root = resolve_path(data_dir)
    table_path = root / NSD_TABLE
    if not table_path.is_file():
        raise _missing("NSD stimulus table", table_path, profile)
    rows = select_nsd_rows(read_nsd_stim_info(table_path), shared1000, n_images, train2017_only)
    captions: dict[int, list[str]] = {}
    for split in sorted(rows["cocoSplit"].unique()):
        cap_path = root / COCO_CAPTIONS.format(split=split)
        if not cap_path.is_file():
            raise _missing("COCO caption annotations", cap_path, profile)
        captions.update(coco_captions(cap_path))
    items = []
    for row in rows.itertuples(index=False):
        nsd_id, coco_id = int(row.nsdId), int(row.cocoId)
        path = root / COCO_IMAGE.format(split=row.cocoSplit, coco_id=coco_id)
        if not path.is_file():
            raise _missing(f"COCO image of NSD image {nsd_id} (cocoId {coco_id}):", path, profile)
        caps = captions.get(coco_id)
        if not caps:
            raise ValueError(f"NSD image {nsd_id} (cocoId {coco_id}) has no captions in "
                             f"{COCO_CAPTIONS.format(split=row.cocoSplit)}")
        image = crop_nsd(read_image(path), row.cropBox, nsd_id)
        items.append(StimulusItem(nsd_image_id(nsd_id), image, caps,
                                  {"nsdId": nsd_id, "cocoId": coco_id, "cocoSplit": row.cocoSplit,
                                   "cropBox": list(row.cropBox), "path": str(path)}))
    return items


def coco_captions(path: str | os.PathLike) -> dict[int, list[str]]:
    """COCO caption annotations -> {image id: [captions in annotation order]} (pycocotools)."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco = COCO(str(path))
    out: dict[int, list[str]] = {}
    for ann in sorted(coco.dataset.get("annotations", []), key=lambda a: a["id"]):
        out.setdefault(int(ann["image_id"]), []).append(ann["caption"].strip())
    return out


# --- the original's distractor pool: all of COCO train2017 -----------------------------------


def uses_coco_pool(params: dict[str, Any]) -> bool:
    """Whether the run draws distractors from all of COCO train2017 (needs source=coco_nsd)."""
    if params.get("distractor_pool", "bases") != "coco_train2017":
        return False
    if params["source"] != "coco_nsd":
        raise ValueError(f"distractor_pool=coco_train2017 needs source=coco_nsd (got source={params['source']}); "
                         "use -p distractor_pool=bases")
    return True


def read_image_order(fh: io.TextIOBase, chunk: int = 1 << 24) -> list[int]:
    """Image ids in the order of a COCO annotation file's ``images`` list, decoding only that
    list (it comes before the annotations; the whole instances file is ~450 MB)."""
    import json

    decoder, buf = json.JSONDecoder(), ""
    while True:
        block = fh.read(chunk)
        buf += block
        at = buf.find('"images"')
        if at >= 0 and "[" in buf[at:]:
            start = buf.index("[", at)
            try:
                images, _ = decoder.raw_decode(buf, start)
                return [int(im["id"]) for im in images]
            except json.JSONDecodeError:
                pass
        if not block:
            raise ValueError("no complete 'images' list found; is this a COCO annotation file?")


def coco_image_order(root: Path, split: str = "train2017", profile: str = "paper") -> list[int]:
    """COCO's order of ``split``: the instances file's ``images`` list, the order of pycocotools'
    ``getImgIds()`` that the original iterated. Kept as a small JSON beside the annotations."""
    import json

    cached = root / COCO_ORDER.format(split=split)
    if cached.is_file():
        return [int(v) for v in json.loads(cached.read_text())]
    path = root / COCO_INSTANCES.format(split=split)
    if not path.is_file():
        raise _missing("COCO instance annotations (for COCO's image order)", path, profile)
    with open(path, encoding="utf-8") as fh:
        order = read_image_order(fh)
    tmp = cached.with_suffix(".part")
    tmp.write_text(json.dumps(order))
    tmp.replace(cached)
    return order


def coco_pool_image(root: Path, coco_id: int, geometry: str, split: str = "train2017",
                    url: str | None = None) -> np.ndarray | None:
    """A pool image, uncropped: read from ``<data_dir>/coco/<split>/`` (an unpacked COCO folder
    or earlier downloads), else downloaded there first (resumable, verified). Under the
    original geometry a non-RGB file (grayscale, CMYK) gives None: the original pasted
    ``np.array(Image.open(f))`` and its paste failed on those, so they were skipped."""
    from PIL import Image

    path = root / COCO_IMAGE.format(split=split, coco_id=coco_id)
    if not path.is_file():
        from lib.download import download
        from lib.stimuli.checks import COCO_IMAGE_URL

        download((url or COCO_IMAGE_URL).format(split=split, coco_id=coco_id), path, progress=False)
    if geometry == "original":
        with Image.open(path) as im:
            if im.mode != "RGB":
                return None
            return np.asarray(im)
    return read_image(path)


def coco_train2017_pool(params: dict[str, Any], items: list[StimulusItem], store=None,
                        image_url: str | None = None):
    """Every COCO train2017 image with captions, uncropped, in COCO's order, as candidate
    distractors (the original's pool); a base is never its own distractor."""
    from lib.stimuli.captions import embed_captions
    from lib.stimuli.distractors import DistractorPool
    from lib.store import make_key

    root = resolve_path(params["data_dir"])
    profile = params.get("profile", "paper")
    cap_path = root / COCO_CAPTIONS.format(split="train2017")
    if not cap_path.is_file():
        raise _missing("COCO caption annotations", cap_path, profile)
    captions = coco_captions(cap_path)
    order = [c for c in coco_image_order(root, profile=profile) if captions.get(c)]
    ids = [f"coco{c:012d}" for c in order]
    emb = embed_captions({k: captions[c] for k, c in zip(ids, order)}, params["caption_model"], store)
    where = {c: j for j, c in enumerate(order)}
    own = [where.get(int(it.meta["cocoId"])) if it.meta.get("cocoSplit") == "train2017" else None for it in items]
    geometry = params.get("paste_geometry", "fitted")
    key = make_key("coco_train2017_pool", "1", {"order": order, "embeddings": emb, "geometry": geometry,
                                                "root": str(root)})
    load = functools.partial(_pool_entry, root, tuple(order), geometry, image_url)  # picklable, for process pools
    return DistractorPool(ids, emb, load, own, key)


def _pool_entry(root: Path, order: tuple[int, ...], geometry: str, url: str | None, j: int) -> np.ndarray | None:
    return coco_pool_image(root, order[j], geometry, url=url)


def uncropped_nsd_images(params: dict[str, Any], nsd_ids) -> list[np.ndarray]:
    """The COCO images behind NSD ids, uncropped: what the original computed the brain-side
    saliency maps on (``brain_saliency_crop=uncropped``), though subjects saw NSD's crops.
    Read from ``<data_dir>/coco/<split>/``, downloaded on first use."""
    root = resolve_path(params["data_dir"])
    table_path = root / NSD_TABLE
    if not table_path.is_file():
        raise _missing("NSD stimulus table", table_path, params.get("profile", "paper"))
    table = read_nsd_stim_info(table_path).set_index("nsdId")
    missing = [int(n) for n in nsd_ids if int(n) not in table.index]
    if missing:
        raise ValueError(f"NSD ids {missing[:10]} are not in {table_path}")
    rows = [table.loc[int(n)] for n in nsd_ids]
    return [coco_pool_image(root, int(r["cocoId"]), "fitted", split=r["cocoSplit"]) for r in rows]


def distractor_pool(params: dict[str, Any], items: list[StimulusItem], embeddings: np.ndarray, store=None):
    """The run's candidate distractors: all of COCO train2017, or the other base images."""
    from lib.stimuli.distractors import pool_of_bases

    if uses_coco_pool(params):
        return coco_train2017_pool(params, items, store)
    return pool_of_bases([it.image for it in items], [it.id for it in items], embeddings)


# --- dispatch ------------------------------------------------------------------------------


def load_source(params: dict[str, Any]) -> list[StimulusItem]:
    """The base images of the profile's ``source``, in dataset order, ``n_images`` first."""
    source = params["source"]
    n = params.get("n_images")
    if source == "demo":
        items = demo_items(n=n)
    elif source == "folder":
        if not params.get("folder_path"):
            raise ValueError("source=folder needs -p folder_path=<folder with images and captions.yaml>")
        items = folder_items(params["folder_path"], max_side=params.get("max_image_side"))
    elif source == "coco_nsd":
        return coco_nsd_items(params["data_dir"], params.get("nsd_shared1000", True), n,
                              profile=params.get("profile", "paper"), train2017_only=uses_coco_pool(params))
    else:
        raise ValueError(f"unknown source {source!r}; one of demo, coco_nsd, folder")
    return items[:n] if n else items

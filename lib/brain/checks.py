"""``python -m lib doctor`` / ``fetch`` for the brain data: what is needed and how to get it.

The Algonauts 2023 release needs a registration, so nothing downloads it for the user;
the doctor says exactly what is missing and where it goes, and ``fetch algonauts`` checks
a folder the user unpacked and prints the steps.
"""

from __future__ import annotations

from typing import Any, Iterable

from lib.brain.algonauts import FAMILIES, HEMIS, fmri_path, images_dir, mapping_path, mask_path
from lib.doctor import Check, fetcher, requirement

STEPS = """1. Register (free) at http://algonauts.csail.mit.edu/challenge.html and accept the NSD terms of use
   (https://naturalscenesdataset.org); you receive a link to the challenge data.
2. Download algonauts_2023_challenge_data and unpack it so that {root}/subj01/training_split/ exists
   (or set -p algonauts_dir=<the unpacked folder>). The paper uses subjects 1, 2, 3, 4, 5, 6, 8.
3. The NSD stimulus table nsd_stim_info_merged.csv (NSD id -> COCO id) and the COCO-2017 caption
   files: python -m lib fetch coco-nsd --profile paper (or put the table in {root}/).
4. Check: python -m lib doctor --profile paper"""


def _subject_checks(params: dict[str, Any]) -> Iterable[Check]:
    from lib.config import resolve_path

    root = resolve_path(params["algonauts_dir"])
    steps = STEPS.format(root=root)
    if not root.is_dir():
        yield Check("Algonauts 2023 data", False, f"{root} does not exist", steps)
        return
    for s in params["subjects"]:
        needed = [fmri_path(root, s, h) for h in HEMIS] + [images_dir(root, s)]
        needed += [mapping_path(root, s, f) for f in FAMILIES]
        needed += [mask_path(root, s, h, f) for h in HEMIS for f in FAMILIES]
        missing = [p for p in needed if not p.exists()]
        if missing:
            yield Check(f"Algonauts subject {s}", False,
                        f"{len(missing)} of {len(needed)} files missing, e.g. {missing[0]}", steps)
        else:
            n = sum(1 for _ in images_dir(root, s).glob("*.png"))
            yield Check(f"Algonauts subject {s}", True, f"{root / f'subj{s:02d}'} ({n} images)")


@requirement
def brain_requirements(params: dict[str, Any]) -> Iterable[Check]:
    if params["brain_source"] == "synthetic":
        yield Check("fMRI subjects", True, f"synthetic subjects {params['subjects']} (generated; the book says so)")
        return
    yield from _subject_checks(params)
    from lib.brain.pipeline import nsd_table_path

    try:
        yield Check("NSD stimulus table", True, str(nsd_table_path(params)))
    except ValueError as err:
        yield Check("NSD stimulus table", False, str(err).split(";")[0], "python -m lib fetch coco-nsd --profile paper")


@fetcher("algonauts", "Algonauts 2023 fMRI: needs a registration; checks the unpacked folder and prints the steps")
def fetch_algonauts(params: dict[str, Any], **_: Any) -> None:
    from lib.config import resolve_path

    checks = list(_subject_checks(params))
    for c in checks:
        print(f"[{'ok' if c.ok else 'MISSING'}] {c.name}: {c.detail}")
    if not all(c.ok for c in checks):
        print("The Algonauts data cannot be downloaded automatically (registration required):")
        print(STEPS.format(root=resolve_path(params["algonauts_dir"])))
        raise FileNotFoundError(f"Algonauts data incomplete in {resolve_path(params['algonauts_dir'])}")

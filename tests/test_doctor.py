"""doctor: every check says how to get what is missing; exit code reflects it."""

from lib import doctor
from lib.config import load_profile


def test_base_checks_pass_on_this_machine(tmp_path):
    params = load_profile("tiny", {"cache_dir": str(tmp_path / "c")})
    checks = list(doctor._base_checks(params))
    assert {c.name for c in checks} == {"cache folder", "device"}
    assert all(c.ok for c in checks)


def test_unwritable_cache_is_reported_with_a_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    params = load_profile("tiny", {"cache_dir": str(blocker / "sub")})
    cache = next(c for c in doctor._base_checks(params) if c.name == "cache folder")
    assert not cache.ok and "cache_dir" in cache.fix


def test_report_lists_fixes_for_missing_items():
    report = doctor.format_report(
        [doctor.Check("weights", False, "resnet50 not cached", "python -m lib fetch weights"),
         doctor.Check("device", True, "cpu")], "paper")
    assert "[MISSING] weights" in report and "-> python -m lib fetch weights" in report
    assert "1 input(s) missing" in report


def test_doctor_paper_names_every_input_with_its_command(tmp_path, monkeypatch):
    """torchvision / OpenAI weights, the USE extra, COCO train2017, the NSD table, Algonauts."""
    from lib.reproducibility import PAPER_MODELS

    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "tfhub"))
    params = load_profile("paper", {"data_dir": str(tmp_path / "raw"), "cache_dir": str(tmp_path / "cache"),
                                    "algonauts_dir": str(tmp_path / "algonauts")})
    checks = {c.name: c for c in doctor.run_checks(params)}
    missing = {n: c.fix for n, c in checks.items() if not c.ok}
    assert "python -m lib fetch coco-nsd --profile paper" in missing["NSD stimulus table"]
    assert "pip install -e .[use]" in missing["caption model use-v4"]
    assert "downloads on first use" in missing["caption model use-v4"]
    for model in PAPER_MODELS:
        fix = next(fix for name, fix in missing.items() if name.endswith(model))
        assert "python -m lib fetch weights" in fix
    assert "algonauts.csail.mit.edu" in missing["Algonauts 2023 data"]
    # with the NSD table present, the original's distractor pool is checked too
    from stimuli_fixtures import make_coco_pool_fixture

    make_coco_pool_fixture(tmp_path / "raw")
    (tmp_path / "raw" / "coco" / "annotations" / "instances_train2017.json").unlink()
    checks = {c.name: c for c in doctor.run_checks(params)}
    assert not checks["COCO train2017 order (instances annotations)"].ok
    assert "fetch coco-nsd" in checks["COCO train2017 order (instances annotations)"].fix
    assert checks["COCO train2017 captions (distractor pool)"].ok
    images = checks["COCO train2017 images (distractor pool)"]
    assert not images.ok and images.detail.startswith("11 of 118287")
    assert "python -m lib fetch coco-train2017" in images.fix and "first use" in images.fix
    report = doctor.format_report(list(checks.values()), "paper")
    assert "python -m lib fetch coco-train2017" in report and "[MISSING] COCO train2017 images" in report

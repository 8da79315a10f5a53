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

"""The claims dashboard: published column recomputed independently from data/published,
rows saved by chapters and read back by the intro page."""

import numpy as np
import pandas as pd
import pytest

from lib import dashboard, verdicts

PUB = dashboard.published.PUBLISHED_DIR


def _layers():
    t = pd.read_csv(PUB / "layer_rsa.csv")
    t["rel"] = t["layer_index"] / t.groupby("model")["layer_index"].transform("max")
    return t


def _half(t, ref, early):
    b = t[(t.condition == "Baseline") & (t.reference == ref)]
    b = b[(b.rel < 0.5) if early else (b.rel >= 0.5)]
    return b.groupby("model").rsa.mean()


def test_published_column_equals_an_independent_recomputation():
    t = _layers()
    base_sal = t[(t.condition == "Baseline") & (t.reference == "saliency")]
    whole = base_sal.groupby("model").rsa.mean()
    early_sal, late_sem = _half(t, "saliency", True), _half(t, "semantic", False)
    expected = {
        "resnet_gt_vit_saliency": whole[["rn50", "rn101"]].mean() - whole[["vit_b16", "vit_b32", "vit_l14"]].mean(),
        "early_suppression": base_sal.assign(tenth=np.minimum((base_sal.rel * 10).astype(int), 9))
        .query("tenth < 2").groupby(["model", "tenth"]).rsa.mean().groupby("tenth").mean().mean(),
        "clip_deepens_suppression": early_sal[["clip_rn50", "clip_rn101"]].mean() - early_sal[["rn50", "rn101"]].mean(),
        "clip_semantics_resnet": late_sem[["clip_rn50", "clip_rn101"]].mean() - late_sem[["rn50", "rn101"]].mean(),
        "clip_semantics_vit": (late_sem[["clip_vit_b16", "clip_vit_b32", "clip_vit_l14"]].mean()
                               - late_sem[["vit_b16", "vit_b32", "vit_l14"]].mean()),
    }
    # ΔRSA design checks: condition minus Baseline, layer by layer
    wide = t.pivot_table(index=["model", "layer_index", "reference"], columns="condition", values="rsa")
    for ref, hi, lo, key in (("saliency", ["Salient", "Semantic_Salient"], ["Control", "Semantic"], "saliency_design"),
                             ("semantic", ["Semantic", "Semantic_Salient"], ["Control"], "semantic_design")):
        w = wide.xs(ref, level="reference")
        d = w[hi + lo].sub(w["Baseline"], axis=0).abs()
        expected[key] = d[hi].stack().mean() - d[lo].stack().mean()
    # brain: layer semantic RSA vs mean ROI RSA (All vertices out), Pearson over all layers
    m = pd.read_csv(PUB / "model_roi_rsa.csv.gz")
    brain = m[m.roi != "All vertices"].groupby(["model", "layer_index"]).rsa.mean()
    sem = t[(t.condition == "Baseline") & (t.reference == "semantic")].set_index(["model", "layer_index"]).rsa
    j = pd.DataFrame({"s": sem, "b": brain}).dropna()
    expected["semantics_tracks_brain"] = np.mean([np.corrcoef(g.s, g.b)[0, 1] for _, g in j.groupby(level=0)])
    r = pd.read_csv(PUB / "roi_rsa.csv").groupby("roi")[["saliency", "semantic"]].mean()
    early = ["V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "early"]
    high = ["EBA", "FBA-1", "FBA-2", "mTL-bodies", "OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces", "OPA", "PPA",
            "RSC", "OWFA", "VWFA-1", "VWFA-2", "mfs-words", "mTL-words", "ventral", "lateral"]
    expected["early_rois_saliency"] = r.loc[early, "saliency"].mean() - r.loc[high, "saliency"].dropna().mean()
    expected["high_rois_semantic"] = r.loc[high, "semantic"].dropna().mean() - r.loc[early, "semantic"].mean()

    got = dashboard.published_values()
    assert set(got) == {c.key for c in dashboard.CLAIMS} == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    # and the dashboard shows exactly these, formatted
    shown = dashboard.table(None).set_index("claim or check")["published"]
    for c in dashboard.CLAIMS:
        assert shown[c.text] == dashboard.fmt_number(expected[c.key])


def test_paper_values_have_the_claimed_signs():
    """The original's own numbers point the way the paper says (a sanity check of the definitions)."""
    got = dashboard.published_values()
    for c in dashboard.CLAIMS:
        assert np.sign(got[c.key]) == c.expected_sign, c.key


def test_rows_round_trip_through_the_run_folder(tmp_path):
    rows = [dashboard.ClaimRow.judged("clip_semantics_vit", 0.05, 0.01, 0.09, "03_semantics"),
            dashboard.ClaimRow.judged("resnet_gt_vit_saliency", 0.05, 0.01, 0.09, "02_saliency",
                                      untestable="random weights")]
    assert dashboard.save({"run_dir": None}, "x", rows) is None
    dashboard.save({"run_dir": str(tmp_path)}, "03_semantics", rows)
    table = dashboard.table(tmp_path).set_index("claim or check")
    vit = table.loc[dashboard.CLAIM_BY_KEY["clip_semantics_vit"].text]
    assert vit["status"] == verdicts.SUPPORTED and vit["95 % CI"] == "[0.0100, 0.0900]"
    res = table.loc[dashboard.CLAIM_BY_KEY["resnet_gt_vit_saliency"].text]
    assert res["status"] == "not testable here (random weights)"
    other = table.loc[dashboard.CLAIM_BY_KEY["semantics_tracks_brain"].text]
    assert other["status"] == "not computed in this run" and other["this run"] == "–"


def test_banner_says_what_the_run_cannot_show(tmp_path):
    import json

    assert dashboard.banner(None)[0] == "note"
    (tmp_path / "run.json").write_text(json.dumps({"profile": "demo", "params": {"models": ["a", "b"], "n_images": 8}}))
    assert dashboard.banner(tmp_path)[1] == "No chapter has run yet"
    records = [{"kind": "random_weights", "message": "m", "models": ["resnet50"]},
               {"kind": "synthetic_data", "message": "s"}]
    (tmp_path / "provenance.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    kind, title, text = dashboard.banner(tmp_path)
    assert kind == "warning" and "resnet50" in text and "synthetic" in text and "8 base images" in text
    (tmp_path / "provenance.jsonl").write_text(json.dumps({"kind": "pretrained_weights", "message": "p"}) + "\n")
    assert dashboard.banner(tmp_path)[0] == "tip"


SUBJECT_SHIFT = (-0.02, 0.0, 0.01, 0.03, -0.01)  # per-subject offsets of the early ROIs' saliency


def _brain_results(synthetic: bool, shift=SUBJECT_SHIFT):
    from types import SimpleNamespace

    rows = []
    for subject, d in enumerate(shift, 1):
        for roi, sal, sem in (("V1v", 0.5, 0.1), ("early", 0.4, 0.1), ("FFA-1", 0.1, 0.4), ("ventral", 0.05, 0.5)):
            sal = sal + d if roi in ("V1v", "early") else sal
            rows += [{"subject": subject, "roi": roi, "reference": "saliency", "rho": sal},
                     {"subject": subject, "roi": roi, "reference": "semantic", "rho": sem}]
    link = pd.DataFrame([{"reference": "semantic", "r": 0.6, "ci_low": 0.3, "ci_high": 0.8, "n_layers": 40,
                          "n_networks": 8}])
    return SimpleNamespace(bs=SimpleNamespace(synthetic=synthetic), ref_per_subject=pd.DataFrame(rows), link=link)


def test_brain_rows_on_synthetic_subjects_only_speak_of_recovery():
    rows = {r.key: r for r in dashboard.brain_rows(_brain_results(True))}
    assert rows["semantics_tracks_brain"].status == "not testable here (synthetic fMRI)"
    assert rows["early_rois_saliency"].status == verdicts.RECOVERED
    assert rows["early_rois_saliency"].estimate == pytest.approx(0.45 + np.mean(SUBJECT_SHIFT) - 0.075)
    assert rows["high_rois_semantic"].estimate == pytest.approx(0.45 - 0.1)


def test_brain_roi_checks_are_tested_across_subjects():
    """The ROI rows' CI is the t interval of the per-subject contrasts (scipy), so the
    subjects, not the ROIs, are the units."""
    from scipy import stats

    rows = {r.key: r for r in dashboard.brain_rows(_brain_results(False))}
    per_subject = 0.45 + np.array(SUBJECT_SHIFT) - 0.075
    lo, hi = stats.t.interval(0.95, len(per_subject) - 1, loc=per_subject.mean(), scale=stats.sem(per_subject))
    r = rows["early_rois_saliency"]
    assert (r.ci_low, r.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert r.status == verdicts.SUPPORTED and "5 subjects" in r.note
    # subjects that disagree in sign: the interval spans zero
    mixed = {k.key: k for k in dashboard.brain_rows(_brain_results(False, shift=(-0.5, 0.4, -0.45, 0.38, -0.4)))}
    assert mixed["early_rois_saliency"].status in (verdicts.DIRECTION, verdicts.INCONCLUSIVE)


def test_brain_rows_on_measured_fmri_use_the_verdicts():
    rows = {r.key: r for r in dashboard.brain_rows(_brain_results(False))}
    assert rows["semantics_tracks_brain"].status == verdicts.SUPPORTED
    rows = {r.key: r for r in dashboard.brain_rows(_brain_results(False), random_models=["resnet50"])}
    assert rows["semantics_tracks_brain"].status == "not testable here (random weights)"


def test_brain_link_with_too_few_networks_says_so():
    res = _brain_results(False)
    res.link.loc[0, ["r", "ci_low", "ci_high", "n_networks"]] = [float("nan"), float("nan"), float("nan"), 2]
    row = {r.key: r for r in dashboard.brain_rows(res)}["semantics_tracks_brain"]
    assert row.status == "not testable here (too few networks (2) for a network-level test)"

"""Training dynamics: per-checkpoint RDMs, the demo series, trajectories, the published
series, against independent computations (scipy) on fixtures made here."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from lib import checkpoints as C
from lib.rsa import rdm
from lib.store import Store
from lib.training import analysis, demo, series


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(7)]


@pytest.fixture
def ids():
    return [f"img{i}" for i in range(7)]


def _demo_checkpoints(folder, seeds=(0, 1, 2)):
    folder.mkdir(exist_ok=True)
    for step, seed in zip((0, 3, 30), seeds):
        net = demo.build(seed)
        with torch.no_grad():  # distinct BN statistics, as a trained net would have
            for m in net.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_var.uniform_(0.5, 2.0)
        torch.save(net.state_dict(), folder / ("pre_training.pt" if step == 0 else f"step_{step}.pt"))
    return C.find_checkpoints(folder)


def test_checkpoint_rdms_match_an_independent_forward(tmp_path, tiny_params, images, ids):
    cks = _demo_checkpoints(tmp_path / "run")
    store = Store(tmp_path / "cache")
    out = series.series_rdms(demo.ARCHITECTURE, cks, images, images_key="k", ids=ids, params=tiny_params,
                             store=store)
    assert [c.name for c in out.checkpoints] == ["pre_training", "step_3", "step_30"]
    for ck, rdms in zip(cks, out.rdms):
        net = demo.build(99)
        C.load_into(net, ck.path).eval()
        with torch.no_grad():
            emb = net(demo.to_tensor(images)).numpy()
        fc = list(rdms.rdm_descriptors["layer"]).index("fc")
        expected = pdist(emb.astype(np.float64), "cosine")
        np.testing.assert_allclose(rdms.get_vectors()[fc], expected, atol=1e-5)
        assert list(rdms.pattern_descriptors["image_id"]) == ids
    # checkpoints differ, so do their RDMs
    assert not np.allclose(out.rdms[0].get_vectors(), out.rdms[2].get_vectors())


def test_cache_key_is_the_file_content(tmp_path, tiny_params, images, ids, monkeypatch):
    cks = _demo_checkpoints(tmp_path / "run")
    store = Store(tmp_path / "cache")
    first = series.series_rdms(demo.ARCHITECTURE, cks, images, images_key="k", ids=ids, params=tiny_params,
                               store=store)
    calls = []
    real = series.load_into
    monkeypatch.setattr(series, "load_into", lambda m, p: calls.append(p) or real(m, p))
    # the same content under another name: cached, nothing loaded
    renamed = tmp_path / "copy"
    renamed.mkdir()
    for ck in cks:
        (renamed / f"{ck.name.replace('step', 'iter')}.pt").write_bytes(ck.path.read_bytes())
    again = series.series_rdms(demo.ARCHITECTURE, C.find_checkpoints(renamed), images, images_key="k", ids=ids,
                               params=tiny_params, store=store)
    assert calls == []
    np.testing.assert_array_equal(first.rdms[1].get_vectors(), again.rdms[1].get_vectors())
    # retrained weights under the old name: a new key, recomputed
    torch.save(demo.build(7).state_dict(), cks[1].path)
    changed = series.series_rdms(demo.ARCHITECTURE, C.find_checkpoints(cks[1].path.parent), images,
                                 images_key="k", ids=ids, params=tiny_params, store=store)
    assert calls == [cks[1].path]
    assert not np.allclose(first.rdms[1].get_vectors(), changed.rdms[1].get_vectors())


def test_checkpoint_of_another_architecture_names_file_and_keys(tmp_path, tiny_params, images, ids):
    folder = tmp_path / "run"
    folder.mkdir()
    state = demo.build(0).state_dict()
    state["layer4.0.conv1.weight"] = torch.zeros(1)
    torch.save(state, folder / "epoch_3.pt")
    with pytest.raises(C.CheckpointError) as err:
        series.series_rdms(demo.ARCHITECTURE, C.find_checkpoints(folder), images, images_key="k", ids=ids,
                           params=tiny_params, store=Store(tmp_path / "cache"))
    assert "epoch_3.pt" in str(err.value) and "unexpected keys: layer4.0.conv1.weight" in str(err.value)


def test_demo_training_is_seeded_and_log_spaced(tmp_path, images):
    emb = np.random.default_rng(1).normal(size=(len(images), 384)).astype(np.float32)
    spec = demo.TrainingSpec(images_key="k", train_steps=6, n_checkpoints=4, seed=3, batch_size=4)
    assert spec.checkpoint_steps() == [0, 1, 2, 6]
    assert demo.TrainingSpec("k", 1000, 8, 0).checkpoint_steps() == [0, 1, 3, 10, 32, 100, 316, 1000]
    a, rec = demo.demo_series(images, emb, spec, tmp_path / "a")
    b, _ = demo.demo_series(images, emb, spec, tmp_path / "b")
    ca = C.find_checkpoints(a, steps_per_epoch=rec["steps_per_epoch"])
    cb = C.find_checkpoints(b, steps_per_epoch=rec["steps_per_epoch"])
    assert [c.step for c in ca] == spec.checkpoint_steps()  # names parse back to the steps
    assert [c.sha256 for c in ca] == [c.sha256 for c in cb]  # same spec -> same weights
    assert len(rec["losses"]) == 6 and all(np.isfinite(rec["losses"]))
    assert len({c.sha256 for c in ca}) == 4  # training changed the weights at every checkpoint
    again, _ = demo.demo_series(images, emb, spec, tmp_path / "a")  # cached: same folder, no retraining
    assert again == a and not list((tmp_path / "a" / demo.STEP).glob(".tmp-*"))


def test_contrastive_loss_matches_a_hand_computation():
    img = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    txt = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    s = np.array([[1.0, 1 / np.sqrt(2)], [0.0, 1 / np.sqrt(2)]]) / 0.5
    row = -np.mean([s[0, 0] - np.log(np.exp(s[0]).sum()), s[1, 1] - np.log(np.exp(s[1]).sum())])
    col = -np.mean([s[0, 0] - np.log(np.exp(s[:, 0]).sum()), s[1, 1] - np.log(np.exp(s[:, 1]).sum())])
    assert float(demo.clip_loss(img, txt, 0.5)) == pytest.approx((row + col) / 2, rel=1e-6)


def test_trajectories_against_scipy_and_paired_change(tmp_path, tiny_params, images, ids):
    cks = _demo_checkpoints(tmp_path / "run")
    out = series.series_rdms(demo.ARCHITECTURE, cks, images, images_key="k", ids=ids, params=tiny_params,
                             store=Store(tmp_path / "cache"))
    rng = np.random.default_rng(5)
    refs = {"saliency": rdm(rng.normal(size=(7, 5))), "semantic": rdm(rng.normal(size=(7, 5)))}
    for r in refs.values():
        r.pattern_descriptors["image_id"] = ids
    tr = analysis.trajectories(out, refs, n_bootstrap=200, seed=0)
    rel = np.asarray(out.rdms[0].rdm_descriptors["rel_depth"])
    early = np.flatnonzero(rel <= analysis.EARLY_MAX_REL_DEPTH)
    assert 0 < len(early) < len(rel)
    for k, rdms in enumerate(out.rdms):
        v = rdms.get_vectors()
        sal = np.mean([spearmanr(v[i], refs["saliency"].get_vectors()[0])[0] for i in early])
        sem = spearmanr(v[-1], refs["semantic"].get_vectors()[0])[0]
        row = tr.table[tr.table["order"] == k].set_index("measure")
        assert row.loc[analysis.EARLY, "rho"] == pytest.approx(sal, abs=1e-9)
        assert row.loc[analysis.LAST, "rho"] == pytest.approx(sem, abs=1e-9)
        assert row.loc[analysis.EARLY, "ci_low"] <= row.loc[analysis.EARLY, "ci_high"]
    est, lo, hi = tr.change(analysis.LAST, 0, 2)
    table = tr.table[tr.table["measure"] == analysis.LAST]
    assert est == pytest.approx(table["rho"].iloc[2] - table["rho"].iloc[0])
    assert lo <= hi
    # identical checkpoints give a zero change with a zero-width paired interval
    assert tr.change(analysis.LAST, 1, 1) == (0.0, 0.0, 0.0)
    rsa = analysis.rsa_over_training(out, refs)
    assert len(rsa) == 3 * 2 * len(rel)


def test_published_series_in_training_order():
    pub = analysis.published_table()
    order = pub.drop_duplicates("order").sort_values("order")["checkpoint"].tolist()
    assert order[0] == "epoch_pre_training" and order[-1] == "epoch_19" and len(order) == 41
    assert order.index("epoch_0_5000") < order.index("epoch_0_") < order.index("epoch_1_0")
    m = analysis.measures_from_table(pub)
    last = m[(m["measure"] == analysis.LAST)].sort_values("order")["rho"]
    raw = analysis.published_table()
    fc = raw[(raw["reference"] == "semantic") & (raw["layer"] == "fc")].sort_values("order")["rho"]
    np.testing.assert_allclose(last.to_numpy(), fc.to_numpy())


def test_written_out_adamw_matches_torch():
    torch.manual_seed(0)
    a = torch.nn.Linear(5, 3)
    b = torch.nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    ours = demo.AdamW(a.parameters(), lr=0.01, weight_decay=0.1)
    ref = torch.optim.AdamW(b.parameters(), lr=0.01, weight_decay=0.1)
    x = torch.randn(8, 5)
    for _ in range(5):
        for net, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            net(x).pow(2).sum().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_lib_run_on_a_users_series(tmp_path):
    """`python -m lib run 05_training -p checkpoints=... -p architecture=...` on a series of
    timm ResNet-18 checkpoints written here (DataParallel-prefixed, wrapped, safetensors)."""
    import os
    import subprocess
    import sys

    import nbformat
    import timm
    from safetensors.torch import save_file

    from lib.config import REPO_ROOT

    run = tmp_path / "my_run"
    run.mkdir()
    for i, name in enumerate(["pre_training.pth", "epoch_0_99.pth", "epoch_0.safetensors"]):
        torch.manual_seed(i)
        state = timm.create_model("resnet18", pretrained=False).state_dict()
        if name.endswith(".safetensors"):
            save_file({k: v.contiguous() for k, v in state.items()}, str(run / name))
        elif i == 1:
            torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 0}, run / name)
        else:
            torch.save(state, run / name)
    out = tmp_path / "out.ipynb"
    cmd = [sys.executable, "-m", "lib", "run", "05_training", "--profile", "tiny", "--out", str(out),
           "-p", f"checkpoints={run}", "-p", "architecture=timm:resnet18", "-p", f"cache_dir={tmp_path / 'cache'}",
           "-p", "n_bootstrap=20"]
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # conftest's Agg would hide the figures
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(str(o.get("data", {}).get("text/markdown", "")) + str(o.get("data", {}).get("text/html", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "A miniature training run" not in text  # a user's series is not labelled a miniature
    for name in ("pre_training", "epoch_0_99", "epoch_0"):
        assert name in text
    # real verdicts for a user's series (the demo's are "not testable here (miniature ...)")
    assert "this run: **" in text and "not testable here (miniature" not in text
    assert sum(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])) >= 3


def test_doctor_checks_the_series_before_any_work(tmp_path, tiny_params):
    from lib import doctor
    from lib.training import pipeline

    doctor.load_plugins()
    assert pipeline._series_checks in doctor.REQUIREMENTS
    (ok,) = pipeline._series_checks(tiny_params)  # checkpoints: null -> the demo series
    assert ok.ok and "demo" in ok.detail
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("pre_training.pt", "epoch_0_7.pt", "final.pt"):
        torch.save({"w": torch.zeros(1)}, folder / name)
    bad = dict(tiny_params, checkpoints=str(folder), architecture="timm:resnet18")
    (check,) = pipeline._series_checks(bad)
    assert not check.ok and "final.pt" in check.detail and "checkpoint_regex" in check.fix
    (folder / "final.pt").unlink()
    (check,) = pipeline._series_checks(bad)
    assert check.ok and "2 checkpoints of timm:resnet18, pre_training … epoch_0_7" in check.detail

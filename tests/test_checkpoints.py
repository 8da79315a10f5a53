"""Checkpoint reading and series discovery, on checkpoints written here in every format."""

import hashlib

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from lib import checkpoints as C


class Net(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, 2)


def _weights(seed: int, width: int = 4) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = Net(width)
    with torch.no_grad():
        net.bn.running_mean.normal_()  # buffers count too
    return net.state_dict()


def _write(path, state, fmt):
    if fmt == "plain":
        torch.save(state, path)
    elif fmt == "dataparallel":
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
    elif fmt == "state_dict":
        torch.save({"state_dict": state, "epoch": 3, "optimizer": {"lr": 0.1}}, path)
    elif fmt == "model":
        torch.save({"model": state, "step": 100}, path)
    elif fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


FORMATS = ["plain", "dataparallel", "state_dict", "model", "safetensors"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_loads_the_exact_weights(tmp_path, fmt):
    state = _weights(1)
    path = _write(tmp_path / ("ck.safetensors" if fmt == "safetensors" else "ck.pt"), state, fmt)
    net = C.load_into(Net(), path)
    loaded = net.state_dict()
    assert set(loaded) == set(state)
    for k in state:
        assert torch.equal(loaded[k], state[k]), k


def test_missing_file_names_it(tmp_path):
    with pytest.raises(C.CheckpointError, match="nope.pt does not exist"):
        C.load_into(Net(), tmp_path / "nope.pt")


@pytest.mark.parametrize("fmt", ["plain", "safetensors"])
def test_truncated_file_names_it(tmp_path, fmt):
    path = _write(tmp_path / ("cut.safetensors" if fmt == "safetensors" else "cut.pt"), _weights(0), fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(C.CheckpointError) as err:
        C.load_into(Net(), path)
    assert str(path) in str(err.value) and "could not be read" in str(err.value)


def test_not_a_state_dict_is_named(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(C.CheckpointError, match="list.pt: no state dict found"):
        C.load_state_dict(path)


def test_mismatched_keys_and_shapes_are_named(tmp_path):
    state = _weights(0)
    state["extra.weight"] = torch.zeros(1)
    del state["fc.bias"]
    path = _write(tmp_path / "bad.pt", state, "plain")
    with pytest.raises(C.CheckpointError) as err:
        C.load_into(Net(), path)
    msg = str(err.value)
    assert "bad.pt" in msg and "missing keys: fc.bias" in msg and "unexpected keys: extra.weight" in msg
    wide = _write(tmp_path / "wide.pt", _weights(0, width=8), "plain")
    with pytest.raises(C.CheckpointError) as err:
        C.load_into(Net(), wide)
    assert "wide.pt" in str(err.value) and "shape mismatch: bn.bias" in str(err.value)


# ----------------------------------------------------------------------------- names and order

# The original study's 41 checkpoint names (data/published/training_dynamics.csv), in the
# training order worked out by hand: init; batches of epoch 0 (saved after that batch's
# update); the end of epoch 0 (named 'epoch_0_'); batches of epoch 1; ends of epochs 1-19.
ORIGINAL_ORDER = (["epoch_pre_training"]
                  + [f"epoch_0_{b}" for b in (0, 10, 20, 30, 40, 100, 500, 1000, 1500, 2000, 2500, 3000,
                                              3500, 4000, 4500, 5000)]
                  + ["epoch_0_"] + [f"epoch_1_{b}" for b in (0, 500, 1000, 1500)]
                  + [f"epoch_{e}" for e in range(1, 20)])


def test_original_names_parse():
    assert C.parse_training_time("epoch_pre_training.pth") == C.TrainingTime("init")
    assert C.parse_training_time("pre_training") == C.TrainingTime("init")
    assert C.parse_training_time("epoch_0_") == C.TrainingTime("epoch_end", epoch=0)
    assert C.parse_training_time("epoch_12.pt") == C.TrainingTime("epoch_end", epoch=12)
    assert C.parse_training_time("epoch_1_500.pth.tar") == C.TrainingTime("batch", epoch=1, batch=500)
    assert C.parse_training_time("step_40.safetensors") == C.TrainingTime("step", step=40)
    assert C.parse_training_time("final_model.pt") is None


def test_original_series_is_ordered_by_training_time(tmp_path):
    state = _weights(0)
    shuffled = sorted(ORIGINAL_ORDER)  # alphabetical: epoch_0_1000 before epoch_0_20 etc.
    assert shuffled != ORIGINAL_ORDER
    for name in shuffled:
        torch.save(state, tmp_path / f"{name}.pth")
    series = C.find_checkpoints(tmp_path)
    assert [c.name for c in series] == ORIGINAL_ORDER
    steps = [c.step for c in series]
    assert steps == sorted(steps) and steps[0] == 0
    # epoch length estimated from the names: the largest batch number + 1
    assert series[-1].epochs == pytest.approx(20.0)
    assert series[1].step == 1  # epoch_0_0: after the first update


def test_glob_hashes_and_single_file(tmp_path):
    for i, step in enumerate((0, 5, 50)):
        torch.save(_weights(i), tmp_path / f"run-step_{step}.pt")
    torch.save(_weights(9), tmp_path / "notes.pt")
    series = C.find_checkpoints(str(tmp_path / "run-step_*.pt"))
    assert [c.step for c in series] == [0, 5, 50]
    for c in series:
        assert c.sha256 == hashlib.sha256(c.path.read_bytes()).hexdigest()
    one = C.find_checkpoints(tmp_path / "run-step_5.pt")
    assert len(one) == 1 and one[0].step == 5


def test_unparseable_names_need_a_regex(tmp_path):
    for step in (100, 2000, 300):
        torch.save(_weights(0), tmp_path / f"ckpt-{step:05d}.pt")
    with pytest.raises(C.CheckpointError) as err:
        C.find_checkpoints(tmp_path)
    msg = str(err.value)
    assert "ckpt-00100.pt" in msg and "checkpoint_regex" in msg and "pre_training" in msg
    series = C.find_checkpoints(tmp_path, regex=r"ckpt-(?P<step>\d+)")
    assert [c.step for c in series] == [100, 300, 2000]


def test_bad_regexes_and_folders(tmp_path):
    with pytest.raises(C.CheckpointError, match="no named group"):
        C.find_checkpoints(tmp_path, regex=r"ckpt-(\d+)")
    with pytest.raises(C.CheckpointError, match="not a valid regular expression"):
        C.compile_regex("(?P<step>")
    with pytest.raises(C.CheckpointError, match="holds no checkpoint files"):
        C.find_checkpoints(tmp_path)
    with pytest.raises(C.CheckpointError, match="no such folder or file"):
        C.find_checkpoints(tmp_path / "absent")
    with pytest.raises(C.CheckpointError, match="holds no checkpoint files"):
        C.find_checkpoints(str(tmp_path / "*.pt"))


def test_two_files_with_one_training_time_are_an_error(tmp_path):
    torch.save(_weights(0), tmp_path / "step_10.pt")
    torch.save(_weights(1), tmp_path / "iter_10.pth")
    with pytest.raises(C.CheckpointError, match="same training time"):
        C.find_checkpoints(tmp_path)

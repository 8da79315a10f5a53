"""The demo's own training series: a small residual network trained from scratch, offline.

Objective (CLIP-style with a frozen text tower): the image network maps an augmented crop
of a photograph to the 384-d space of that photograph's caption embedding (all-MiniLM,
from the stimulus set), and a symmetric InfoNCE loss pulls each image towards its own
caption and away from the other captions in the batch. Why this objective: it is the one
the paper's CLIP networks were trained with, it needs nothing but the stimulus set's
photographs and captions (no labels, no download), and it trains *semantics* directly, so
the series can show whether semantic structure surfaces in the last layer and what happens
to saliency structure in early layers meanwhile. The photographs are also the test images:
this is a miniature that shows the machinery, not a replication of ImageNet training.

The network has the layer types the paper hooked (Conv2d, BatchNorm2d, ReLU, MaxPool2d,
Linear) in residual blocks, at 64 px. Seeded and trained on one thread (deterministic); the series
is cached under the cache folder by a hash of the training spec.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ARCHITECTURE = "demo_resnet"
VERSION = "2"  # 2: written-out AdamW, one training thread
STEP = "training_series"
IMAGE_SIZE = 64
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    """A ResNet basic block (two 3x3 convolutions with a skip connection)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(out + skip)


class DemoResNet(nn.Module):
    """Stem + three residual stages (16-32-64 channels) + a linear head into caption space."""

    def __init__(self, embed_dim: int = 384, widths: Sequence[int] = (16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(2)
        stages, cin = [], widths[0]
        for i, w in enumerate(widths):
            stages.append(BasicBlock(cin, w, 1 if i == 0 else 2))
            cin = w
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(seed: int = 0) -> nn.Module:
    """The demo architecture with seeded initial weights."""
    torch.manual_seed(seed)
    return DemoResNet()


def to_tensor(images: Sequence[np.ndarray], size: int = IMAGE_SIZE) -> torch.Tensor:
    """uint8 (H, W, 3) images -> normalised (n, 3, size, size) float tensor."""
    x = torch.stack([torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1) for im in images]).float() / 255
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


class DemoPreprocess:
    """Preprocessing of the demo network (the engine calls ``preprocess(images)``)."""

    kind = "demo-64px"

    def __call__(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        return to_tensor(images)


@dataclass(frozen=True)
class TrainingSpec:
    """Everything that changes the trained series (its hash names the cache folder)."""

    images_key: str  # the stimulus set's key (photographs + captions)
    train_steps: int
    n_checkpoints: int
    seed: int
    batch_size: int = 8
    lr: float = 3e-3
    temperature: float = 0.1
    crop_scale: tuple[float, float] = (0.5, 1.0)
    image_size: int = IMAGE_SIZE

    def checkpoint_steps(self) -> list[int]:
        """0 and log-spaced steps up to ``train_steps`` (at most ``n_checkpoints`` in all)."""
        if self.n_checkpoints < 2:
            raise ValueError(f"n_checkpoints must be at least 2 (init and one trained), got {self.n_checkpoints}")
        k = self.n_checkpoints - 1
        steps = sorted({int(round(s)) for s in np.geomspace(1, self.train_steps, k)})
        while len(steps) < min(k, self.train_steps):  # rounding merged early steps: fill in
            missing = next(s for s in range(1, self.train_steps + 1) if s not in steps)
            steps = sorted(steps + [missing])
        return [0] + steps


def _augment(x: torch.Tensor, g: torch.Generator, scale: tuple[float, float], size: int) -> torch.Tensor:
    """Random resized square crops and horizontal flips, drawn from ``g``."""
    n, _, h, w = x.shape
    out = []
    for i in range(n):
        s = math.sqrt(scale[0] + (scale[1] - scale[0]) * torch.rand(1, generator=g).item())
        ch, cw = max(8, int(h * s)), max(8, int(w * s))
        top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
        left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
        crop = x[i:i + 1, :, top:top + ch, left:left + cw]
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False)
        if torch.rand(1, generator=g).item() < 0.5:
            crop = crop.flip(-1)
        out.append(crop)
    return torch.cat(out)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: each image with its own caption against the batch's others."""
    a = F.normalize(image_emb, dim=1)
    b = F.normalize(text_emb, dim=1)
    logits = a @ b.T / temperature
    target = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class AdamW:
    """AdamW (decoupled weight decay), written out. Why not ``torch.optim.AdamW``: its
    constructor imports torch's compiler stack, ~7 s on a busy 2-core box, which is more
    than the tiny profile's whole training; the tests check it against torch's."""

    def __init__(self, params, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.wd, self.betas, self.eps = lr, weight_decay, betas, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            p.mul_(1 - self.lr * self.wd)
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            denom = (v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / (1 - b1 ** self.t))


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    return max(1, math.ceil(n_images / batch_size))


def checkpoint_name(step: int, per_epoch: int) -> str:
    """The original study's names: ``pre_training``, then ``epoch_<e>_<batch>`` saved after
    the update of batch ``<batch>`` (0-based) of epoch ``<e>``."""
    return "pre_training" if step == 0 else f"epoch_{(step - 1) // per_epoch}_{(step - 1) % per_epoch}"


def train(images: Sequence[np.ndarray], caption_embeddings: np.ndarray, spec: TrainingSpec,
          folder: Path, progress: bool = False) -> dict:
    """Train from scratch and save a plain state dict at every checkpoint step into ``folder``.

    Returns the run record (losses per step, checkpoint names, seconds).
    """
    from lib.progress import tqdm

    if len(images) != len(caption_embeddings):
        raise ValueError(f"{len(images)} images but {len(caption_embeddings)} caption embeddings")
    if len(images) < 2:
        raise ValueError(f"training needs at least 2 images (a contrastive batch), got {len(images)}")
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(spec.seed)
    model = build(spec.seed)
    model.fc = nn.Linear(model.fc.in_features, caption_embeddings.shape[1])
    # Train on a larger copy so the crops have detail; evaluation sees the whole image.
    x_all = to_tensor(images, size=2 * spec.image_size)
    text = torch.from_numpy(np.asarray(caption_embeddings, np.float32))
    opt = AdamW(model.parameters(), lr=spec.lr, weight_decay=1e-4)
    n = len(images)
    bs = min(spec.batch_size, n)
    per_epoch = steps_per_epoch(n, bs)
    save_at = set(spec.checkpoint_steps())
    names, losses = [], []

    def save(step: int) -> None:
        name = checkpoint_name(step, per_epoch)
        torch.save(model.state_dict(), folder / f"{name}.pt")
        names.append(name)

    save(0)
    order = torch.randperm(n, generator=g)
    model.train()
    for step in tqdm(range(1, spec.train_steps + 1), desc="training", disable=not progress, leave=False):
        pos = ((step - 1) % per_epoch) * bs
        if pos == 0 and step > 1:
            order = torch.randperm(n, generator=g)
        idx = order[pos:pos + bs]
        if len(idx) < 2:  # a last batch of one image has no negatives: top it up
            idx = torch.cat([idx, order[:2 - len(idx)]])
        batch = _augment(x_all[idx], g, spec.crop_scale, spec.image_size)
        loss = clip_loss(model(batch), text[idx], spec.temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if step in save_at:
            save(step)
    model.eval()
    return {"checkpoints": names, "losses": losses, "steps_per_epoch": per_epoch, "batch_size": bs,
            "n_images": n, "seconds": round(time.perf_counter() - t0, 2), "spec": asdict(spec)}


def demo_series(images: Sequence[np.ndarray], caption_embeddings: np.ndarray, spec: TrainingSpec,
                cache_root: Path, progress: bool = False) -> tuple[Path, dict]:
    """The trained series' folder under ``cache_root``, training it on a cache miss.

    The folder is named by a hash of the spec and written atomically (temp folder renamed
    when complete), so an interrupted run never leaves a half series a later run trusts.
    """
    from lib.store import make_key

    key = make_key(STEP, VERSION, asdict(spec))
    final = Path(cache_root) / STEP / key
    record = final / "series.json"
    if record.is_file():
        return final, json.loads(record.read_text())
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        with _deterministic():
            run = train(images, caption_embeddings, spec, tmp, progress=progress)
        (tmp / "series.json").write_text(json.dumps(run))
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, run


class _deterministic:
    """One thread while training: the same spec gives the same checkpoints (a fixed
    reduction order; CPU convolutions are otherwise deterministic, which the tests check),
    and on a small network one thread is also the fastest (measured: 0.12 s per step
    against 1-2 s with two threads on a busy 2-core box). ``torch.use_deterministic_algorithms``
    is not used: it imports torch's compiler stack (~13 s)."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)

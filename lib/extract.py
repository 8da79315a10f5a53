"""The extraction engine: images -> one RDM per layer, exactly, in one pass when it fits.

Why this shape (see DESIGN.md): an RDM needs only the n x n Gram matrix of a layer's
flattened activations. When all n images go through as one batch, each forward hook turns
its output into that Gram on the spot and keeps nothing else, so peak memory is about n x
the per-image working set of the forward, not n x all layers. When that does not fit the
memory budget, the images go through in batches and the activations of all images are
held for a *group* of layers at a time (sized to the budget); the forward pass stops after
the group's last module. Reading the output inside the hook also beats in-place ops (an
in-place ReLU after a BatchNorm) that would overwrite a stored reference.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import rsatoolbox
import torch

from lib.gram import ZeroNormError, check_metric, rdm_from_gram, upper
from lib.models import LoadedModel, ModelError, first_tensor, load_model, spec

STEP = "model_rdms"
DESCRIPTORS = ("model", "layer", "module", "call_index", "depth", "rel_depth", "block", "type")
LAYER_DETAILS = ("n_calls", "shape", "numel", "bytes", "batch_axis")  # carried too when the table has them
REPORT = "engine"  # key of the engine report in an RDMs object's descriptors


class ExtractionError(ValueError):
    """Activations that give no valid RDM (NaN/Inf, zero norm); names model, layer, image."""


class _StopForward(Exception):
    """Raised from the hook of a group's last layer: the rest of the forward is not needed."""


# ----------------------------------------------------------------------------- planning


@dataclass
class Plan:
    """How one extraction runs: a single batch with Grams in hooks, or grouped layers."""

    mode: str  # "single" | "grouped"
    batch_size: int
    groups: list[list[int]]  # row indices of the layer table, depth order
    working_set_bytes: int  # per image, estimated
    held_bytes: list[int] = field(default_factory=list)  # per group, all n images
    notes: list[str] = field(default_factory=list)


def working_set_per_image(probe_bytes: Sequence[int]) -> int:
    """Per-image memory of a forward pass: a few of its largest tensors alive at once
    (module input, output, a residual branch) plus the input image."""
    return int(3 * max(probe_bytes) + 3 * 224 * 224 * 4)


def plan_extraction(table: pd.DataFrame, n: int, budget_bytes: float, batch_size: int | None = None,
                    working_set: int | None = None) -> Plan:
    """Choose single-pass or grouped extraction for n images under a memory budget."""
    ws = working_set or working_set_per_image(table["bytes"].tolist())
    rows = list(range(len(table)))
    if (batch_size is None or batch_size >= n) and n * ws <= budget_bytes:
        return Plan("single", n, [rows], ws, [0])
    b = batch_size or max(1, min(n, int(0.25 * budget_bytes // ws)))
    b = min(b, n)
    room = max(budget_bytes - b * ws, 0.25 * budget_bytes)
    # Pack from the deepest layer backwards: the group that needs the full forward pass
    # takes as many (small, deep) layers as fit, and every earlier group ends as early as
    # possible. Cost = sum over groups of the forward up to the group's end; on ResNet-50
    # this is ~20 % less than packing from the front.
    groups, held, cur, cur_bytes = [], [], [], 0
    notes = []
    sizes = table["bytes"].tolist()
    for i in reversed(rows):
        need = n * int(sizes[i])
        if cur and cur_bytes + need > room:
            groups.append(cur[::-1])
            held.append(cur_bytes)
            cur, cur_bytes = [], 0
        cur.append(i)
        cur_bytes += need
        if need > room:
            notes.append(f"layer {table['layer'].iloc[i]} alone needs {need / 1e9:.2f} GB for {n} images, "
                         f"over the budget ({room / 1e9:.2f} GB for held activations)")
    if cur:
        groups.append(cur[::-1])
        held.append(cur_bytes)
    return Plan("grouped", b, groups[::-1], ws, held[::-1], notes[::-1])


# ----------------------------------------------------------------------------- hooks


def _forward(module: torch.nn.Module, x: torch.Tensor) -> None:
    """One forward pass; stops early (quietly) when a hook says the rest is not needed."""
    try:
        module(x)
    except _StopForward:
        pass


class _Hooks:
    """Forward hooks on the modules of the active layers; route each call to a sink."""

    def __init__(self, module: torch.nn.Module, table: pd.DataFrame):
        self.module = module
        self.table = table
        self.named = dict(module.named_modules())
        self.handles: list[Any] = []
        self.counters: dict[str, int] = defaultdict(int)
        self.lookup: dict[tuple[str, int], int] = {}
        self.sink: Callable[[int, torch.Tensor], None] | None = None
        self.stop = False
        self.pending: set[int] = set()  # rows not yet seen in this forward pass

    def activate(self, rows: list[int], sink: Callable[[int, torch.Tensor], None], stop: bool) -> None:
        self.remove()
        self.sink = sink
        self.lookup = {(self.table.module.iat[i], int(self.table.call_index.iat[i])): i for i in rows}
        self.stop = stop
        self.reset()
        for qname in sorted({m for m, _ in self.lookup}):
            self.handles.append(self.named[qname].register_forward_hook(self._make(qname)))

    def _make(self, qname: str):
        axis_of = self.table.batch_axis

        def hook(mod, inp, out):
            k = self.counters[qname]
            self.counters[qname] = k + 1
            i = self.lookup.get((qname, k))
            if i is None:
                return
            t = first_tensor(out)
            ax = int(axis_of.iat[i])
            if ax:
                t = t.movedim(ax, 0)  # sequence-first transformer output -> batch-first
            self.sink(i, t.reshape(t.shape[0], -1))
            self.pending.discard(i)
            if self.stop and not self.pending:  # table order need not be call order (layer_rule=original)
                raise _StopForward

        return hook

    def reset(self) -> None:
        self.counters.clear()
        self.pending = set(self.lookup.values())

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


GRAM_CHUNK = 1 << 14  # features per float32 matmul; partial Grams are summed in float64
GRAM_ONE_THREAD_MAX_N = 128  # Grams of at most this many images run on one thread (see gram)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads, then restore the process's setting."""
    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def gram(t: torch.Tensor) -> torch.Tensor:
    """X Xᵀ (float64) of an (n, p) float32 matrix: float32 matmuls over feature chunks,
    summed in float64. Why chunks: one float32 matmul over ~800k features errs by ~5e-6 in
    cosine distance; chunks of 16k features bring it to ~1e-7 at the same speed (measured).
    Why one thread for small n on CPU: a (n x 16k)(16k x n) product is memory-bound, so a
    second thread gains little, and when another process holds a core the threads wait for
    each other at every chunk: a 12 x 802,816 Gram took 25 ms on one thread and 90-620 ms
    on two on a busy 2-core machine (bench/bench_extract.py --stability)."""
    p = t.shape[1]
    one_thread = t.device.type == "cpu" and t.shape[0] <= GRAM_ONE_THREAD_MAX_N
    with torch_threads(1) if one_thread else nullcontext():
        if t.dtype == torch.float64 or p <= GRAM_CHUNK:
            return (t @ t.T).double()
        acc = torch.zeros((t.shape[0], t.shape[0]), dtype=torch.float64, device=t.device)
        for s in range(0, p, GRAM_CHUNK):
            c = t[:, s:s + GRAM_CHUNK]
            acc += (c @ c.T).double()
        return acc


def _prepare(t: torch.Tensor, metric: str) -> torch.Tensor:
    """Rows for the Gram. Correlation: centred in float64, because centred ReLU outputs
    repeat one value (-mean) so float32 rounding adds up instead of cancelling (2e-5 seen)."""
    if metric == "correlation":
        t = t.double()
        return t - t.mean(dim=1, keepdim=True)
    return t.float()


# ----------------------------------------------------------------------------- memory meter


class _PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 20 ms)."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> int:
        return self.proc.memory_info().rss

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self):
        self.start_rss = self._sample()
        self.peak = self.start_rss
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._sample())


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


# ----------------------------------------------------------------------------- core


@torch.inference_mode()
def compute_grams(lm: LoadedModel, x: torch.Tensor, table: pd.DataFrame, *, metric: str = "cosine",
                  budget_bytes: float = 6e9, batch_size: int | None = None, progress: bool = True,
                  report: dict[str, Any] | None = None) -> list[np.ndarray]:
    """Per-layer (n, n) float64 Gram matrices of preprocessed images ``x`` (n, 3, H, W).

    For ``correlation`` the Grams are of row-centred activations. Lowers the batch size and
    continues when the device runs out of memory (and says so in ``report['notes']``).
    """
    from lib.progress import tqdm

    check_metric(metric)
    n = len(x)
    device = lm.device
    sized = table if metric == "cosine" else table.assign(bytes=table.bytes * 2)  # float64 rows
    plan = plan_extraction(sized, n, budget_bytes, batch_size)
    report = report if report is not None else {}
    notes: list[str] = report.setdefault("notes", [])
    notes.extend(plan.notes)
    grams: list[torch.Tensor | None] = [None] * len(table)
    hooks = _Hooks(lm.module, table)
    passes = 0
    bar = tqdm(total=n * len(plan.groups), desc=lm.name, unit="img", disable=not progress, leave=False)
    try:
        if plan.mode == "single":
            def sink(i, t):
                grams[i] = gram(_prepare(t, metric))

            hooks.activate(plan.groups[0], sink, stop=True)
            try:
                hooks.reset()
                _forward(lm.module, x.to(device))
                passes += 1
                bar.update(n)
            except Exception as err:  # noqa: BLE001 - only OOM is handled
                if not _is_oom(err):
                    raise
                grams = [None] * len(table)
                _free(device)
                smaller = max(1, n // 2)
                msg = f"{lm.name}: out of memory with all {n} images in one batch; continuing in batches of {smaller}"
                print(msg)
                notes.append(msg)
                plan = plan_extraction(sized, n, budget_bytes, smaller, plan.working_set_bytes)
                bar.reset(total=n * len(plan.groups))
        if plan.mode == "grouped":
            for group in plan.groups:
                passes += _run_group(lm, x, table, group, plan, metric, hooks, grams, notes, bar)
    finally:
        hooks.remove()
        bar.close()
    report.update(mode=plan.mode, batch_size=plan.batch_size, n_groups=len(plan.groups), forward_passes=passes,
                  working_set_mb=plan.working_set_bytes / 1e6,
                  held_gb=max(plan.held_bytes) / 1e9 if plan.held_bytes else 0.0)
    return [g.double().cpu().numpy() for g in grams]


def _free(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _run_group(lm: LoadedModel, x: torch.Tensor, table: pd.DataFrame, group: list[int], plan: Plan, metric: str,
               hooks: _Hooks, grams: list, notes: list[str], bar) -> int:
    """Hold all images' activations of one layer group, then one Gram per layer."""
    n, device = len(x), lm.device
    batch = plan.batch_size
    while True:
        try:
            dtype = torch.float64 if metric == "correlation" else torch.float32
            bufs = {i: torch.empty((n, int(table.numel.iat[i])), dtype=dtype, device=device) for i in group}
            break
        except Exception as err:  # noqa: BLE001
            if not _is_oom(err) or len(group) == 1:
                raise
            half = len(group) // 2
            msg = f"{lm.name}: out of memory holding {len(group)} layers; splitting the group"
            print(msg)
            notes.append(msg)
            _free(device)
            return (_run_group(lm, x, table, group[:half], plan, metric, hooks, grams, notes, bar)
                    + _run_group(lm, x, table, group[half:], plan, metric, hooks, grams, notes, bar))
    where = {"start": 0}

    def sink(i, t):
        s = where["start"]
        bufs[i][s:s + len(t)] = _prepare(t, metric)

    hooks.activate(group, sink, stop=True)
    passes = 0
    start = 0
    while start < n:
        end = min(start + batch, n)
        where["start"] = start
        try:
            hooks.reset()
            _forward(lm.module, x[start:end].to(device))
            passes += 1
            bar.update(end - start)
            start = end
        except Exception as err:  # noqa: BLE001
            if not _is_oom(err) or batch == 1:
                raise
            _free(device)
            batch = max(1, batch // 2)
            msg = f"{lm.name}: out of memory at batch size {end - start}; continuing with {batch}"
            print(msg)
            notes.append(msg)
    for i in group:
        b = bufs.pop(i)
        grams[i] = gram(b)
        del b
    return passes


def grams_to_rdms(grams: list[np.ndarray], table: pd.DataFrame, metric: str, model: str,
                  ids: Sequence[str] | None = None) -> np.ndarray:
    """(L, n(n-1)/2) RDM vectors from per-layer Grams; NaN/Inf or zero-norm rows are errors
    that name the model, layer and image (never a silent NaN RDM)."""
    n = grams[0].shape[0]
    ids = list(ids) if ids is not None else [str(i) for i in range(n)]
    out = np.empty((len(grams), n * (n - 1) // 2))
    for i, g in enumerate(grams):
        layer = table.layer.iat[i]
        diag = np.diag(g)
        bad = np.flatnonzero(~np.isfinite(diag))
        if bad.size:
            raise ExtractionError(f"{model}, layer {layer}: activations of image(s) {[ids[j] for j in bad]} "
                                  f"contain NaN/Inf (or overflow); no valid RDM")
        try:
            d = rdm_from_gram(g, "cosine")  # correlation Grams are already centred
        except ZeroNormError as err:
            raise ExtractionError(f"{model}, layer {layer}: activations of image(s) {[ids[j] for j in err.rows]} "
                                  f"have zero norm{' after centring' if metric == 'correlation' else ''}, so their "
                                  f"{metric} distance is undefined") from None
        out[i] = upper(d)
    return out


def to_rdms(dissimilarities: np.ndarray, table: pd.DataFrame, metric: str, ids: Sequence[str] | None = None,
            report: dict[str, Any] | None = None) -> rsatoolbox.rdm.RDMs:
    """rsatoolbox RDMs carrying what the engine used and measured: the layer table as rdm
    descriptors (one row per RDM) and the engine report as ``descriptors['engine']``."""
    n = int(round((1 + np.sqrt(1 + 8 * dissimilarities.shape[1])) / 2))
    pattern = {"image_id": list(ids)} if ids is not None else {"index": list(range(n))}
    desc = {c: table[c].tolist() for c in (*DESCRIPTORS, *[d for d in LAYER_DETAILS if d in table])}
    return rsatoolbox.rdm.RDMs(dissimilarities, dissimilarity_measure=metric, rdm_descriptors=desc,
                               pattern_descriptors=pattern, descriptors={REPORT: dict(report or {})})


# ----------------------------------------------------------------------------- public API


def load_engine_model(name: str, params: Mapping[str, Any], device: str) -> LoadedModel:
    """Build a network for extraction without touching the caller's global RNG: the model
    seeds torch for its random weights, and the state before is restored afterwards."""
    with torch.random.fork_rng(devices=[] if device == "cpu" else None):
        return load_model(name, params["weights"], seed=params["seed"], preprocessing=params["preprocessing"],
                          device=device, params=dict(params), layer_rule=params["layer_rule"])


class ModelHolder:
    """One network loaded on first use and shared by the extractions of that model (so five
    conditions that all miss the cache build it once, and a full cache hit builds nothing)."""

    def __init__(self, name: str, params: Mapping[str, Any], device: str):
        self.name, self.params, self.device = name, params, device
        self._model: LoadedModel | None = None

    def __call__(self) -> LoadedModel:
        if self._model is None:
            self._model = load_engine_model(self.name, self.params, self.device)
        return self._model

    def release(self) -> None:
        """Drop the network (frees its memory)."""
        self._model = None
        _free(self.device)


def release_models() -> None:
    """Free memory left by dropped networks (the engine holds no network between calls)."""
    _free("cuda" if torch.cuda.is_available() else "cpu")


class NotInStoreError(RuntimeError):
    """A worker said it stored an artifact that the client cannot find (no shared store)."""


def extract_rdms(model_name: str, images: Sequence[np.ndarray] | Callable[[], Sequence[np.ndarray]], *,
                 images_key: str, params: Mapping[str, Any], store=None, progress: bool = True,
                 ids: Sequence[str] | None = None,
                 model: LoadedModel | Callable[[], LoadedModel] | None = None,
                 must_exist: bool = False) -> rsatoolbox.rdm.RDMs:
    """One RDM per layer of ``model_name`` over ``images`` (uint8 HxWx3 arrays, or a callable
    returning them, called only on a cache miss), cached in the artifact store.

    Returns rsatoolbox RDMs whose rdm descriptors are the layer table and whose
    ``descriptors['engine']`` is this call's report (weights used and their hash, plan,
    seconds, peak memory, ``from_cache``); :func:`engine_report` and :func:`layer_table`
    read them back. ``model``: a loaded network, or a callable giving one on a cache miss
    (default: built for this call). The cache key is :class:`lib.specs.ExtractionSpec`
    (model, weights identity with the precision the device runs them in, preprocessing,
    layer set, layer rule, metric, layer-changing environment, code version) plus
    ``images_key``; batch size and memory budget do not change the result.
    """
    from lib.config import pick_device
    from lib.store import store_for

    spec(model_name)  # unknown names fail before anything else
    check_metric(params["metric"])
    store = store if store is not None else store_for(dict(params))
    from lib.specs import ExtractionSpec

    spec_ = ExtractionSpec.from_params(params, model_name)
    inputs = {"images": images_key}
    device = pick_device(params["device"])
    computed = []

    def compute() -> dict[str, Any]:
        if must_exist:
            raise NotInStoreError(
                f"a worker computed {model_name} on {images_key} but the artifact is not in {store.root}: the "
                "client and every Dask worker must share one cache_dir (a shared file system)")
        computed.append(True)
        imgs = images() if callable(images) else images
        if len(imgs) < 3:
            raise ExtractionError(f"need at least 3 images for an RDM, got {len(imgs)}")
        report: dict[str, Any] = {"model": model_name, "n_images": len(imgs), "device": device,
                                  "budget_gb": params["memory_budget_gb"]}
        t0 = time.perf_counter()
        with _PeakRSS() as meter:
            if isinstance(model, LoadedModel):
                lm = model
            else:
                lm = model() if model is not None else load_engine_model(model_name, params, device)
            t_load = time.perf_counter()
            table = lm.layers(params["layers"])
            x = lm.preprocess(imgs)
            t_pre = time.perf_counter()
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            grams = compute_grams(lm, x, table, metric=params["metric"], progress=progress,
                                  budget_bytes=params["memory_budget_gb"] * 1e9,
                                  batch_size=params["batch_size"], report=report)
            t_ex = time.perf_counter()
            diss = grams_to_rdms(grams, table, params["metric"], model_name, ids)
        table = table.assign(model=model_name)
        report.update(weights=lm.weights_used, weights_hash=lm.weights_hash, n_layers=len(table),
                      act_mb_per_image=float(table.bytes.sum() / 1e6),
                      all_layers_gb=float(table.bytes.sum() * len(imgs) / 1e9),
                      seconds_load=t_load - t0, seconds_preprocess=t_pre - t_load,
                      seconds_extract=t_ex - t_pre, seconds_total=time.perf_counter() - t0,
                      peak_rss_gb=meter.peak / 1e9,
                      peak_cuda_gb=torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else None)
        return {"dissimilarities": diss, "layers": table, "report": report}

    out = spec_.get_or_compute(store, inputs, compute)
    rep = dict(out["report"])
    rep.update(from_cache=not computed, images_key=images_key, layers=params["layers"], metric=params["metric"])
    return to_rdms(out["dissimilarities"], out["layers"], params["metric"], ids, rep)


@dataclass(frozen=True)
class ExtractionTask:
    """One (model, image set) extraction, as a worker receives it. ``images`` is called only
    on a cache miss; for a task sent to another process it must load the images there."""

    model: str
    images: Callable[[], Sequence[np.ndarray]]
    images_key: str
    ids: tuple[str, ...] | None = None


def _extract_on_worker(job: tuple[ExtractionTask, dict[str, Any], Any]) -> bool:
    """Worker side of :func:`extract_many`: compute into the shared store; True if computed
    here (the RDMs stay in the store; only this flag travels back)."""
    task, params, store = job
    rdms = extract_rdms(task.model, task.images, images_key=task.images_key, params=params, store=store,
                        progress=False, ids=task.ids)
    release_models()
    return not rdms.descriptors[REPORT]["from_cache"]


def extract_many(tasks: Sequence[ExtractionTask], params: Mapping[str, Any], *, store=None, executor=None,
                 progress: bool = True) -> list[rsatoolbox.rdm.RDMs]:
    """RDMs of every task, in task order. In process (default): one network at a time,
    built once for all its tasks. On a Dask executor: one task per worker slot; workers
    write the artifacts to the shared store and the client loads them."""
    from lib.store import store_for

    store = store if store is not None else store_for(dict(params))
    if executor is None or not executor.distributed:
        out: list[rsatoolbox.rdm.RDMs | None] = [None] * len(tasks)
        for name in dict.fromkeys(t.model for t in tasks):
            holder = ModelHolder(name, params, _device(params))
            for i, t in enumerate(tasks):
                if t.model == name:
                    out[i] = extract_rdms(t.model, t.images, images_key=t.images_key, params=params, store=store,
                                          progress=progress, ids=t.ids, model=holder)
            holder.release()
        return out  # type: ignore[return-value]
    computed = executor.map(_extract_on_worker, [(t, dict(params), store) for t in tasks], desc="layer RDMs",
                            progress=progress)
    out = []
    for t, here in zip(tasks, computed):
        rdms = extract_rdms(t.model, t.images, images_key=t.images_key, params=params, store=store,
                            progress=False, ids=t.ids, must_exist=True)
        rdms.descriptors[REPORT]["from_cache"] = not here
        out.append(rdms)
    return out


def precompute(tasks: Sequence[ExtractionTask], params: Mapping[str, Any], *, store=None, executor=None,
               progress: bool = True) -> None:
    """Have a Dask executor's workers compute (into the shared store) every task not cached
    yet, so that the caller's later :func:`extract_rdms` calls are cache hits it can load one
    at a time. In process (default) this does nothing: the later calls compute."""
    if executor is None or not executor.distributed:
        return
    from lib.store import store_for

    store = store if store is not None else store_for(dict(params))
    executor.map(_extract_on_worker, [(t, dict(params), store) for t in tasks], desc="layer RDMs",
                 progress=progress)


def _device(params: Mapping[str, Any]) -> str:
    from lib.config import pick_device

    return pick_device(params["device"])


@dataclass(frozen=True)
class StimulusImages:
    """Images of one condition of the profile's stimulus set, loaded where it is called
    (a Dask worker rebuilds the set from the shared store: a cache hit)."""

    params: dict[str, Any]
    condition: str
    expected_key: str
    store: Any = None

    def __call__(self) -> list[np.ndarray]:
        from lib.stimuli import build_stimulus_set

        ss = build_stimulus_set(self.params, store=self.store, progress=False)
        if ss.cache_key != self.expected_key:
            raise ExtractionError(f"the stimulus set built from these parameters ({ss.cache_key}) is not the one "
                                  f"the client passed ({self.expected_key}); on a cluster the stimulus set must "
                                  "come from build_stimulus_set(params)")
        return ss.images(self.condition)


def stimulus_set_rdms(ss, params: Mapping[str, Any], conditions: Sequence[str] | None = None,
                      progress: bool = True, store=None,
                      executor=None) -> dict[tuple[str, str], rsatoolbox.rdm.RDMs]:
    """RDMs of every model in ``params['models']`` for each condition of a StimulusSet (each
    carries its engine report and layer table; see :func:`engine_report`)."""
    if conditions is None:
        try:
            from lib.stimuli import CONDITIONS as conditions  # noqa: N811
        except ImportError:
            conditions = ("Baseline", "Control", "Salient", "Semantic", "Semantic_Salient")
    keys = [(m, c) for m in params["models"] for c in conditions]
    shipped = executor is not None and executor.distributed

    def images(cond: str) -> Callable[[], Sequence[np.ndarray]]:
        if shipped:
            return StimulusImages(dict(params), cond, ss.cache_key, store)
        return lambda: ss.images(cond)

    tasks = [ExtractionTask(m, images(c), f"{ss.cache_key}/{c}", tuple(ss.ids)) for m, c in keys]
    return dict(zip(keys, extract_many(tasks, params, store=store, executor=executor, progress=progress)))


def engine_report(rdms: Mapping[Any, rsatoolbox.rdm.RDMs] | Sequence[rsatoolbox.rdm.RDMs]) -> pd.DataFrame:
    """One row per extraction, from the engine reports the RDMs carry (cached ones say so and
    carry the timing and memory measured when the artifact was computed)."""
    items = rdms.values() if isinstance(rdms, Mapping) else rdms
    rep = pd.DataFrame([r.descriptors[REPORT] for r in items if REPORT in (r.descriptors or {})])
    if len(rep) and "images_key" in rep:
        rep["condition"] = rep["images_key"].astype(str).str.rsplit("/", n=1).str[-1]
    return rep


def weights_used(rdms: Mapping[Any, rsatoolbox.rdm.RDMs] | Sequence[rsatoolbox.rdm.RDMs]) -> dict[str, str]:
    """Model -> weights the engine actually used ("pretrained" | "random")."""
    rep = engine_report(rdms)
    if rep.empty or "weights" not in rep:
        return {}
    return rep.groupby("model", sort=False)["weights"].last().to_dict()


def layer_table(rdms: rsatoolbox.rdm.RDMs) -> pd.DataFrame:
    """Layer table (name, call, depth, block, type, per-image shape and size) of extracted
    RDMs, read from their rdm descriptors."""
    desc = rdms.rdm_descriptors
    cols = [c for c in (*DESCRIPTORS, *LAYER_DETAILS) if c in desc]
    return pd.DataFrame({c: list(desc[c]) for c in cols})


def layer_tables(rdms: Mapping[tuple[str, str], rsatoolbox.rdm.RDMs]) -> dict[str, pd.DataFrame]:
    """Model -> layer table, from a ``stimulus_set_rdms`` result (first condition of each)."""
    out: dict[str, pd.DataFrame] = {}
    for (model, _), r in rdms.items():
        out.setdefault(model, layer_table(r))
    return out


def layer_summary(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per model: layer count, shared-module calls, blocks, activation size."""
    from lib.models import describe

    rows = []
    for model, t in tables.items():
        big = t.loc[t["bytes"].idxmax()]
        rows.append({"model": model, "label": describe(model)["label"], "layers": len(t),
                     "modules": t["module"].nunique(),
                     "extra calls of shared modules": int((t["call_index"] > 0).sum()),
                     "blocks": int(t.loc[~t["block"].isin(["stem", "head"]), "block"].nunique()),
                     "MB per image (all layers)": round(t["bytes"].sum() / 1e6, 1),
                     "largest layer": f"{big['layer']} ({big['shape']})",
                     "types": ", ".join(f"{k} {v}" for k, v in t["type"].value_counts().items())})
    return pd.DataFrame(rows)


__all__ = ["extract_rdms", "extract_many", "precompute", "stimulus_set_rdms", "ExtractionTask", "StimulusImages",
           "compute_grams", "plan_extraction", "grams_to_rdms", "to_rdms", "gram", "torch_threads",
           "engine_report", "weights_used", "layer_table", "layer_tables", "layer_summary", "load_engine_model",
           "ModelHolder", "release_models", "ExtractionError", "NotInStoreError", "ModelError"]

"""Where the heavy steps run: in this process (default), or as tasks on a Dask cluster.

Why an executor: distractor search per base image, extraction per (model, condition) and
ROI RDMs per subject are independent tasks. The steps write each task's map as
``executor.map(fn, items)``; the default runs it as a plain loop (no Dask import, no
overhead), a :class:`DaskExecutor` sends the tasks to a ``dask.distributed`` cluster and
shows one progress bar over all of them. Tasks that produce artifacts write them to the
shared store (``cache_dir`` must be on a file system every worker sees) and return only
something small; the client then loads the artifacts.

``params['cluster']``: ``None`` (in process), ``"local"`` (a LocalCluster of worker
processes on this machine, loopback only) or a scheduler address ``tcp://HOST:8786``.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Sequence

RETRIES = 1  # a task whose code raised is tried again this often (a killed worker: see ALLOWED_FAILURES)
ALLOWED_FAILURES = 3  # a task is rescheduled this often when the worker running it dies


NOTHING = object()  # "no shared argument" (None is a valid one)


class ClusterError(ValueError):
    """A cluster that cannot be reached or started; the message says what to check."""


class InProcessExecutor:
    """Runs every task here, one after another: the default, with no Dask overhead."""

    distributed = False

    def map(self, fn: Callable[..., Any], items: Sequence[Any], *, desc: str = "tasks", progress: bool = False,
            shared: Any = NOTHING) -> list[Any]:
        """``[fn(x) for x in items]``, or ``fn(x, shared)`` when ``shared`` is given."""
        from lib.progress import tqdm

        extra = () if shared is NOTHING else (shared,)
        return [fn(x, *extra) for x in tqdm(items, desc=desc, disable=not progress, leave=False)]

    def close(self) -> None:
        pass


def _run_logged(fn: Callable[..., Any], item: Any, label: str, shared: Any = NOTHING) -> Any:
    """Task wrapper on a worker: run it and log to the worker's log (``client.get_worker_logs()``)."""
    log = logging.getLogger("distributed.worker")
    t0 = time.perf_counter()
    log.info("lib: %s started (pid %d)", label, os.getpid())
    out = fn(item) if shared is NOTHING else fn(item, shared)
    log.info("lib: %s done in %.1f s", label, time.perf_counter() - t0)
    return out


class DaskExecutor:
    """Runs tasks on a ``dask.distributed`` cluster; results come back in input order."""

    distributed = True

    def __init__(self, client, cluster=None):
        self.client = client
        self._cluster = cluster  # owned (started here) LocalCluster, closed with the executor

    @property
    def address(self) -> str:
        return self.client.scheduler.address

    def map(self, fn: Callable[..., Any], items: Sequence[Any], *, desc: str = "tasks", progress: bool = True,
            shared: Any = NOTHING) -> list[Any]:
        """Like :meth:`InProcessExecutor.map`; ``shared`` goes to the workers once (scattered),
        not once per task. One progress bar over the tasks as they complete."""
        from distributed import as_completed

        from lib.progress import tqdm

        items = list(items)
        labels = [f"{desc} {i + 1}/{len(items)}" for i in range(len(items))]
        kwargs = {} if shared is NOTHING else {"shared": self.client.scatter([shared], hash=False)[0]}
        futures = self.client.map(_run_logged, [fn] * len(items), items, labels, pure=False, retries=RETRIES,
                                  **kwargs)
        try:
            with tqdm(total=len(futures), desc=desc, disable=not progress, leave=False) as bar:
                for fut in as_completed(futures):
                    if fut.status == "error":
                        fut.result()  # raises the task's own error, with its traceback
                    bar.update(1)
            return self.client.gather(futures)
        finally:
            for fut in futures:
                fut.release()

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def start_local_cluster(n_workers: int | None = None, threads_per_worker: int = 1):
    """A LocalCluster of worker processes; it and its HTTP endpoints listen on 127.0.0.1 only.
    One thread per worker: the engine and saliency already use the cores inside a task."""
    import dask
    from distributed import LocalCluster

    n = n_workers or max(1, (os.cpu_count() or 2) // threads_per_worker)
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
        return LocalCluster(n_workers=n, threads_per_worker=threads_per_worker, processes=True,
                            host="127.0.0.1", dashboard_address="127.0.0.1:0",
                            worker_dashboard_address="127.0.0.1:0")


def connect(cluster: str | None, timeout: str = "20s") -> InProcessExecutor | DaskExecutor:
    """An executor for a ``cluster`` setting (see the module docstring); close it when done."""
    if cluster is None:
        return InProcessExecutor()
    try:
        from distributed import Client
    except ImportError as err:  # pragma: no cover - distributed is a dependency
        raise ClusterError("cluster is set but dask.distributed is not installed: pip install distributed") from err
    if cluster == "local":
        local = start_local_cluster()
        return DaskExecutor(Client(local), local)
    if not cluster.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise ClusterError(f"cluster={cluster!r} is neither null, 'local' nor a scheduler address "
                           "(e.g. tcp://HOST:8786)")
    try:
        return DaskExecutor(Client(cluster, timeout=timeout))
    except OSError as err:
        raise ClusterError(f"no Dask scheduler answers at {cluster} ({err}); start one with `dask scheduler` "
                           "(and workers with `dask worker {cluster}`) or use -p cluster=local") from None


@contextmanager
def executor_for(params: Mapping[str, Any]) -> Iterator[InProcessExecutor | DaskExecutor]:
    """The executor a profile asks for (``params['cluster']``), closed at the end of the block."""
    ex = connect(params.get("cluster"))
    try:
        yield ex
    finally:
        ex.close()


COUNTER = "lib-task-counter"


def _task_counter():
    """A scheduler plugin counting lib tasks submitted and finished (one bar over a build).
    Defined locally so that it travels by value: the scheduler need not import lib."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class TaskCounter(SchedulerPlugin):
        name = COUNTER

        def __init__(self):
            self.submitted = 0
            self.finished = 0

        def transition(self, key, start, finish, *args, **kwargs):
            if not str(key).startswith("_run_logged-"):  # client.map's keys: function name + token
                return
            if start == "released" and finish == "waiting":
                self.submitted += 1
            elif finish in ("memory", "erred"):
                self.finished += 1

    return TaskCounter()


@contextmanager
def serve(cluster: str | None, progress: bool = True, log=print) -> Iterator[str | None]:
    """A cluster for a whole build: ``"local"`` starts one LocalCluster for every chapter and
    yields its address (the chapters connect to it through ``params['cluster']``); an address
    is used as is. While the block runs, one progress bar counts every task the chapters send
    (unless the scheduler refuses the plugin; the workers' logs show progress anyway)."""
    if cluster is None:
        yield None
        return
    import threading

    from lib.progress import tqdm

    local = start_local_cluster() if cluster == "local" else None
    address = local.scheduler_address if local is not None else cluster
    if local is not None:
        log(f"cluster: LocalCluster with {len(local.workers)} worker processes at {address}")
    client = connect(address).client
    stop = threading.Event()
    watcher = None
    try:
        client.register_plugin(_task_counter())
    except Exception as err:  # noqa: BLE001 - a remote scheduler without lib installed: no bar
        log(f"cluster: no build-wide progress bar ({type(err).__name__}: {err})")
        progress = False
    if progress:
        def counts(dask_scheduler=None, name=COUNTER) -> tuple[int, int]:  # local: travels by value
            plugin = dask_scheduler.plugins.get(name)
            return (plugin.submitted, plugin.finished) if plugin is not None else (0, 0)

        def watch() -> None:
            with tqdm(total=0, desc="cluster tasks", unit="task") as bar:
                while not stop.wait(0.5):
                    try:
                        submitted, finished = client.run_on_scheduler(counts)
                    except Exception:  # noqa: BLE001 - shutting down
                        return
                    bar.total = submitted
                    bar.n = finished
                    bar.refresh()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    try:
        yield address
    finally:
        stop.set()
        if watcher is not None:
            watcher.join()
        client.close()
        if local is not None:
            local.close()


__all__ = ["InProcessExecutor", "DaskExecutor", "ClusterError", "connect", "executor_for", "serve",
           "start_local_cluster"]

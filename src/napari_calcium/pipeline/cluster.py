"""Run the pipeline on many recordings: one after another here, or in parallel on a dask cluster.

::

    from napari_calcium.pipeline.cluster import run_batch
    items = run_batch(["a.tif", "b.tif"], "results")                      # here, in turn
    items = run_batch("sessions/", "results", scheduler="local", workers=4)   # LocalCluster
    items = run_batch(paths, "results", scheduler="tcp://10.0.0.5:8786")  # an existing cluster

Each recording is one :func:`~napari_calcium.pipeline.run_pipeline` call (one task on a
cluster) writing its own output folder, so a failing recording is reported in its
:class:`BatchItem` while the others finish, and a rerun resumes every folder. ``distributed`` is
imported only when a scheduler is asked for (``pip install 'napari-calcium[cluster]'``).

On a cluster the workers must see the inputs and the output folder at the same paths (a shared
file system), and have napari-calcium installed. Interrupting :func:`run_batch` (Ctrl-C, or
SIGTERM through the ``napari-calcium`` command) asks the running tasks to stop between blocks
(their step is recorded as cancelled, no partial files stay), waits a few seconds for them,
then closes the cluster it started.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BackendError, ParameterError, RecordingError
from .config import PipelineConfig, load_config

__all__ = ["BatchItem", "find_recordings", "output_folders", "run_batch"]

#: seconds to let running cluster tasks stop by themselves after an interrupt
STOP_GRACE_S = 60.0
_INSTALL_HINT = "pip install 'napari-calcium[cluster]'"


@dataclass(frozen=True)
class BatchItem:
    """What became of one recording of a batch.

    Attributes
    ----------
    input : pathlib.Path
        The recording (absolute path).
    out_dir : pathlib.Path
        Its output folder (absolute path).
    status : {"done", "failed"}
    error : str or None
        Why it failed (None when done).
    summary : dict or None
        :attr:`PipelineRun.summary <napari_calcium.pipeline.PipelineRun>` when done.
    steps : dict of str to str
        Step name -> "ran", "skipped" or "disabled", in run order (empty when failed).
    seconds : float
        Wall time spent on this recording, in seconds.
    """

    input: Path
    out_dir: Path
    status: str
    error: str | None = None
    summary: dict[str, Any] | None = None
    steps: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "done"


# ------------------------------------------------------------------------------------ inputs
def _looks_like_recording(entry: Path) -> bool:
    """Whether a folder entry is meant as a recording, whether or not it opens.

    Its format is recognised (:func:`~napari_calcium.io.open.sniff_format`), or its name says so
    though its content does not: a ``.tif``/``.tiff`` file, a ``.bin`` with a ``.json`` beside it.
    """
    from ..io.open import sniff_format

    if sniff_format(entry) is not None:
        return True
    if not entry.is_file():
        return False
    suffix = entry.suffix.lower()
    return suffix in (".tif", ".tiff") or (
        suffix == ".bin" and entry.with_suffix(".json").is_file()
    )


def find_recordings(path: str | os.PathLike) -> list[Path]:
    """The recordings at ``path``: itself when it opens, else the entries of a folder.

    The entries are those that look like recordings: a Bruker PrairieView folder, a folder of
    TIFFs or of one ``.bin`` + ``.json``, a TIFF, a ``.bin`` with its ``.json`` (kept once), by
    their format or their name. One that does not open is listed too, so that running it
    reports why (a failed :class:`BatchItem`) instead of leaving it out in silence; other files
    (notes, configs, hidden files) are skipped.

    Parameters
    ----------
    path : str or os.PathLike
        A recording, or a folder of recordings (not searched recursively).

    Returns
    -------
    list of pathlib.Path
        Sorted by name.

    Raises
    ------
    RecordingError
        ``path`` does not exist, is a file or a Bruker folder that does not open (its error),
        or is a folder that holds no recording.
    """
    from ..io.open import open_recording, sniff_format

    path = Path(path)
    if not path.exists():
        raise RecordingError(path, "does not exist")
    try:
        open_recording(path)
        return [path]
    except RecordingError:
        # a damaged Bruker folder is one recording: never run its frame files one by one
        if not path.is_dir() or sniff_format(path) == "bruker":
            raise
    found = []
    for entry in sorted(path.iterdir()):
        if entry.name.startswith(".") or (
            entry.suffix.lower() == ".json" and entry.with_suffix(".bin").exists()
        ):
            continue
        if _looks_like_recording(entry):
            found.append(entry)
    if not found:
        raise RecordingError(
            path, "is not a recording and holds none napari-calcium can open (see `info`)"
        )
    return found


def output_folders(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike):
    """Where each recording's results go: ``out_dir`` for one, ``out_dir/<name>`` for several.

    Parameters
    ----------
    inputs : iterable of str or os.PathLike
    out_dir : str or os.PathLike

    Returns
    -------
    list of (pathlib.Path, pathlib.Path)
        (input, output folder) pairs, both absolute, in the order given.

    Raises
    ------
    ParameterError
        No inputs, the same input twice, or two inputs with the same name (``a.tif`` and
        ``a.tiff``) that would share a folder.
    """
    paths = [Path(p).resolve() for p in inputs]
    out = Path(out_dir).resolve()
    if not paths:
        raise ParameterError("no recordings to run")
    if len(paths) == 1:
        return [(paths[0], out)]
    seen: dict[str, Path] = {}
    pairs = []
    for p in paths:
        if p.stem in seen:
            raise ParameterError(
                f"{seen[p.stem]} and {p} would share the output folder {out / p.stem}; "
                "rename one or run them separately"
            )
        seen[p.stem] = p
        pairs.append((p, out / p.stem))
    return pairs


# -------------------------------------------------------------------------------- one recording
_STOP_TOKENS: set[str] = set()  # in a worker process: batches asked to stop


def _request_stop(token: str) -> None:
    """Run on every worker (``Client.run``) when a batch is interrupted."""
    _STOP_TOKENS.add(token)


def _limit_numba_threads() -> int:
    """On a dask worker, give each task thread its share of the cores (no oversubscription).

    The share is ``NUMBA_NUM_THREADS`` of the worker's environment when set (a "local" cluster
    sets it), else the machine's cores divided by the worker's threads. Returns the share.
    """
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return os.cpu_count() or 1  # not on a worker
    import numba

    try:
        share = int(os.environ["NUMBA_NUM_THREADS"])
    except (KeyError, ValueError):
        nthreads = getattr(worker, "nthreads", None) or worker.state.nthreads
        share = (os.cpu_count() or 1) // max(1, int(nthreads))
    share = max(1, min(share, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(share)
    return share


def _run_one(
    input_path: Path,
    out_dir: Path,
    config: PipelineConfig,
    overwrite: bool,
    progress: Callable[..., Any] | bool | None = None,
    token: str | None = None,
    client: Any = None,
) -> BatchItem:
    """One recording; every ``Exception`` becomes a failed item (also on a worker).

    `token`: this runs as a cluster task; `client`: this runs here, its per-frame steps on the
    client's workers.
    """
    from .steps import run_pipeline

    should_stop = None
    scope: contextlib.AbstractContextManager = contextlib.nullcontext()
    if token is not None:  # a cluster task
        import dask

        threads = _limit_numba_threads()
        # the steps' own dask arrays compute here, in this worker, not as tasks of the cluster
        scope = dask.config.set(scheduler="threads", num_workers=threads)

        def should_stop() -> bool:
            return token in _STOP_TOKENS

    t0 = time.perf_counter()
    try:
        with scope:
            result = run_pipeline(
                input_path,
                out_dir,
                config,
                progress=progress,
                should_stop=should_stop,
                overwrite=overwrite,
                client=client,
            )
    except Exception as exc:  # reported in the item; the batch goes on
        return BatchItem(
            input_path, out_dir, "failed", _describe(exc), seconds=time.perf_counter() - t0
        )
    return BatchItem(
        input_path,
        out_dir,
        "done",
        summary=result.summary,
        steps={s.name: s.status for s in result.steps},
        seconds=time.perf_counter() - t0,
    )


def _describe(exc: BaseException) -> str:
    from ..errors import NapariCalciumError

    if isinstance(exc, NapariCalciumError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# ------------------------------------------------------------------------------------ clusters
def _distributed():
    try:
        import distributed
    except ImportError:
        raise BackendError(
            f"running on a dask cluster needs the 'distributed' package: {_INSTALL_HINT}"
        ) from None
    return distributed


def dask_setup(worker: Any) -> None:
    """Worker preload of the "local" cluster: Ctrl-C goes to the client process alone.

    A terminal's Ctrl-C reaches every process of the group; the workers ignore it, and the
    client asks their tasks to stop between blocks (see :func:`run_batch`) instead.
    """
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_env(workers: int) -> dict[str, str]:
    """Each worker process's share of the cores, for numba and BLAS (no oversubscription)."""
    share = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    names = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return dict.fromkeys(names, share)


@contextlib.contextmanager
def _client(scheduler: Any, workers: int, memory_limit: str | float | int | None):
    """A ``distributed.Client`` for `scheduler`; closes what it started (also on Ctrl-C)."""
    distributed = _distributed()
    if isinstance(scheduler, distributed.Client):
        yield scheduler  # the caller's: theirs to close
        return
    cluster = None
    try:
        if isinstance(scheduler, str) and scheduler == "local":
            if int(workers) < 1:
                raise ParameterError(f"workers must be >= 1, got {workers}")
            cluster = distributed.LocalCluster(
                n_workers=int(workers),
                threads_per_worker=1,
                processes=True,
                memory_limit="auto" if memory_limit is None else memory_limit,
                dashboard_address=":0",  # any free port: never clashes
                env=_worker_env(int(workers)),
                preload=[__name__],  # dask_setup: the workers ignore Ctrl-C
                silence_logs=50,  # logging.CRITICAL: errors reach us through the futures; a
                # worker's heartbeat traceback on a loaded machine is noise on stderr
            )
            client = distributed.Client(cluster, set_as_default=False)
        elif isinstance(scheduler, str):
            try:
                client = distributed.Client(scheduler, timeout="10s", set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise BackendError(
                    f"cannot connect to the dask scheduler at {scheduler!r} ({exc}); give its "
                    "address (tcp://host:8786) or 'local'"
                ) from None
        elif hasattr(scheduler, "scheduler_address"):  # a Cluster object (LocalCluster, ...)
            client = distributed.Client(scheduler, set_as_default=False)
        else:
            raise ParameterError(
                "scheduler must be None, 'local', a scheduler address or a distributed.Client, "
                f"got {scheduler!r}"
            )
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise
    try:
        yield client
    finally:
        try:
            client.close()
        finally:
            if cluster is not None:
                cluster.close()


def _run_on_cluster(client, pairs, config, overwrite, on_done) -> dict[Path, BatchItem]:
    distributed = _distributed()
    token = uuid.uuid4().hex
    futures = {
        client.submit(_run_one, inp, out, config, overwrite, None, token,
                      pure=False, key=f"napari-calcium-{inp.stem}-{token[:8]}"): (inp, out)
        for inp, out in pairs
    }  # fmt: skip
    items: dict[Path, BatchItem] = {}
    try:
        for future in distributed.as_completed(list(futures), loop=client.loop):
            inp, out = futures[future]
            try:
                item = future.result()
            except Exception as exc:  # a lost worker, a cancelled task, ...
                item = BatchItem(inp, out, "failed", f"on the cluster: {_describe(exc)}")
            items[inp] = item
            if on_done is not None:
                on_done(item)
    except BaseException:  # Ctrl-C / SIGTERM: ask the tasks to stop between blocks, then go
        # Ask first, and wait for the tasks to end by themselves: a future's "pending" status
        # also covers a task that is running, and cancelling that one would only make the
        # client forget it while its worker thread goes on writing. Tasks that start after
        # the request stop at their first check. Only what is left after the grace period
        # is cancelled.
        pending = [f for f in futures if not f.done()]
        with contextlib.suppress(Exception):
            client.run(_request_stop, token)
            deadline = time.monotonic() + STOP_GRACE_S
            while time.monotonic() < deadline and not all(f.done() for f in pending):
                time.sleep(0.1)
            client.cancel([f for f in pending if not f.done()])
        raise
    return items


# ---------------------------------------------------------------------------------------- API
def run_batch(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: str | os.PathLike | Mapping[str, Any] | PipelineConfig | None = None,
    *,
    scheduler: Any = None,
    workers: int = 2,
    memory_limit: str | float | int | None = None,
    overwrite: bool = False,
    progress: Callable[..., Any] | bool | None = None,
    on_done: Callable[[BatchItem], Any] | None = None,
) -> list[BatchItem]:
    """Run the pipeline on every recording; a failing recording does not stop the others.

    Parameters
    ----------
    inputs : path or iterable of paths
        Recordings (anything :func:`~napari_calcium.open_recording` opens). A single path that
        is a folder but not a recording stands for the recordings in it
        (:func:`find_recordings`).
    out_dir : str or os.PathLike
        Output folder: the results folder itself for one recording, else each recording gets
        ``out_dir/<name without suffix>`` (see :func:`output_folders`). Folders from an earlier
        run are resumed.
    config : path, mapping, PipelineConfig or None
        See :func:`~napari_calcium.pipeline.load_config`; read once, here, before any work.
    scheduler : None, "local", str or distributed.Client
        None: one recording after another in this process. "local": a
        ``distributed.LocalCluster`` of `workers` processes (one thread each), closed at the
        end. Any other string: the address of a running dask scheduler
        (``tcp://host:8786``). A ``distributed.Client`` (or cluster object) is used as is and
        left open. On a cluster each recording is one task, except a single recording, which
        runs here with its per-frame steps (motion correction, filter) chunked across the
        workers (see :func:`~napari_calcium.pipeline.run_pipeline`'s `client`); the workers
        must see the same paths.
    workers : int
        Worker processes of the "local" cluster (default 2).
    memory_limit : str, float, int or None
        Memory limit per worker of the "local" cluster (e.g. "4GiB"); None: the memory of the
        machine shared between the workers.
    overwrite : bool
        Recompute every step (see :func:`~napari_calcium.pipeline.run_pipeline`).
    progress : callable or bool, optional
        tqdm-like factory for the movie-level steps; used without a scheduler, and for a
        single recording on a cluster.
    on_done : callable, optional
        Called with each :class:`BatchItem` as its recording finishes (in completion order on
        a cluster).

    Returns
    -------
    list of BatchItem
        One per recording, in input order.

    Raises
    ------
    ParameterError
        A bad config, bad `scheduler` or `workers`, or two recordings that would share an
        output folder; raised before any work.
    RecordingError
        A single input path does not exist or holds no recordings.
    BackendError
        A scheduler was asked for and ``distributed`` is not installed
        (``pip install 'napari-calcium[cluster]'``), or the scheduler cannot be reached.
    KeyboardInterrupt
        Interrupted: the recording running here stops (its step is not recorded as complete);
        on a cluster the tasks are asked to stop, and a cluster started here is closed.
    """
    config = load_config(config)
    if isinstance(inputs, str | os.PathLike):
        inputs = find_recordings(inputs)
    pairs = output_folders(inputs, out_dir)
    if scheduler is None:
        results = []
        for inp, out in pairs:
            item = _run_one(inp, out, config, overwrite, progress)
            results.append(item)
            if on_done is not None:
                on_done(item)
        return results
    with _client(scheduler, workers, memory_limit) as client:
        if len(pairs) == 1:  # one movie: its per-frame steps chunked across the workers
            ((inp, out),) = pairs
            item = _run_one(inp, out, config, overwrite, progress, client=client)
            if on_done is not None:
                on_done(item)
            return [item]
        items = _run_on_cluster(client, pairs, config, overwrite, on_done)
    return [items[inp] for inp, _ in pairs]

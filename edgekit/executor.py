"""Where parallel work runs: in this process, on an embedded local Ray, or on a Ray cluster.

Ray is the one engine for parallel computing (tune trials, search candidates and
other CPU work). Three kinds, one API::

    with open_executor() as ex:                       # embedded Ray on this machine's cores
        results = ex.map(work, items, key=lambda item: item.group)   # one at a time per key
    with open_executor("10.0.0.5:6379") as ex: ...    # an existing cluster (or RAY_ADDRESS)
    with open_executor(workers=0) as ex: ...          # in-process, sequential (no Ray)

``kind`` is ``inprocess``, ``local`` (a Ray started here and shut down at the end)
or ``ray`` (an existing cluster). :meth:`Executor.info` is the ``executor`` object of
``report.json``. Data every task reads go once through the object store
(:meth:`Executor.put` → :class:`Shared`); files travel by content hash (:meth:`Executor.share` →
:class:`FileRef`): a worker finds them in the shared cache folder
(``EDGEKIT_CACHE_DIR``, passed to every worker) or, when that folder is not
shared, fetches the bytes from Ray's object store; never by a node-local path.
A task whose worker process dies is retried (``max_retries``).

On the embedded Ray, tasks run on *warm workers* (:mod:`edgekit.raypool`): one Ray actor per worker, started by
:meth:`Executor.warm` right after the executor opens, importing TensorFlow/edgekit once while the
driver loads data or trains, then serving every :meth:`Executor.map` of the run.

How a fan-out plugs in (``fn`` must be a module-level function; items and results pickle)::

    # the --max-accuracy-drop search: one task per candidate chain, the baseline trained once first
    with open_executor(address, workers=workers) as ex:
        ex.warm(("tensorflow", ...))                 # the workers import while the driver trains
        data = ex.put(dataset)                       # once into the object store
        results = ex.map(run_candidate, [(data, chain_steps, baseline_id) for chain_steps in chains])
        report["executor"] = ex.info()
    # run_candidate runs on a worker: dataset = data.get(); parents come from the artifact cache by id
    # (EDGEKIT_CACHE_DIR on shared storage), so a cached stage is never recomputed; it returns Artifact records.

SSH board fleets (``edgekit bench`` on many boards) do not need Ray: the driver only waits on ssh
while each board computes, so :func:`map_by_key` runs them on threads in this process, one lane per
board (a per-board lock), and the report records ``kind: inprocess`` with one worker per board.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

from edgekit.errors import UsageError
from edgekit.fsutil import write_bytes

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
ExecutorKind = Literal["inprocess", "local", "ray"]
DEFAULT_MAX_RETRIES = 3


def cache_root() -> Path:
    """The cache root every worker resolves (``EDGEKIT_CACHE_DIR``; shared storage on a cluster)."""
    return Path(os.environ.get("EDGEKIT_CACHE_DIR", Path.home() / ".cache" / "edgekit"))


def resolve_address(address: str | None) -> str | None:
    """``--ray-address`` if given, else ``RAY_ADDRESS``, else None (embedded local Ray)."""
    value = address if address else os.environ.get("RAY_ADDRESS", "")
    value = value.strip()
    if not value:
        return None
    if value != "auto":
        host, _, port = value.removeprefix("ray://").rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise UsageError(f"--ray-address must be HOST:PORT with a port in 1-65535 (or RAY_ADDRESS), got {value!r}")
    return value


PROBE_TIMEOUT_S = 3.0
"""How long the up-front probe of a cluster address waits for a TCP connection (Ray itself retries for minutes)."""


def probe_address(address: str | None, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast, in one line, when nothing answers at the cluster address (``--ray-address`` or ``RAY_ADDRESS``).

    Ray's own connect retries every ~40 s with nothing printed; a TCP connect with a short timeout
    before any work tells a wrong or unreachable address apart at once. ``auto`` (Ray finds a local
    cluster) and no address are not probed.
    """
    resolved = resolve_address(address)
    if resolved is None or resolved == "auto":
        return
    host, _, port = resolved.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        why = f"no answer within {timeout_s:g} s" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__)
        raise UsageError(f"--ray-address {resolved}: nothing accepts connections there ({why}); start the cluster "
                         "(ray start --head) or fix the address") from None


@dataclass(frozen=True)
class FileRef:
    """A file named by its content: ``sha256`` and ``name``; ``data`` is an object-store fallback."""

    sha256: str
    name: str
    data: Any = None  # a ray.ObjectRef of the bytes, when shared through the object store

    def local_path(self) -> Path:
        """The file on this node, under the cache root by hash; fetched and verified when missing."""
        target = cache_root() / "blobs" / self.sha256 / self.name
        if target.is_file():
            return target
        if self.data is None:
            raise UsageError(f"{self.name} ({self.sha256[:12]}): not in the shared cache {cache_root()} "
                             "and not in the object store")
        import ray

        payload = ray.get(self.data)
        if hashlib.sha256(payload).hexdigest() != self.sha256:
            raise UsageError(f"{self.name}: object-store copy does not match its hash {self.sha256[:12]}")
        return write_bytes(target, payload)


@dataclass(frozen=True)
class Shared:
    """A value put once where every worker can read it (Ray's object store; in process, the value itself)."""

    ref: Any
    in_store: bool

    def get(self) -> Any:
        """The value (on a worker: fetched from the object store once per process, zero-copy for NumPy)."""
        if not self.in_store:
            return self.ref
        import ray

        return ray.get(self.ref)


class Executor:
    """Runs ``fn`` over items in this process or on Ray; see the module docstring."""

    def __init__(self, kind: ExecutorKind, address: str = "", *, max_retries: int = DEFAULT_MAX_RETRIES,
                 cpus_per_task: float = 1.0) -> None:
        self.kind: ExecutorKind = kind
        self.address = address
        self.max_retries = max_retries
        self.cpus_per_task = cpus_per_task
        self._pool: Any = None  # the warm workers (edgekit.raypool.WarmPool), started by warm() or the first map()
        self._saved_environ: dict[str, str] | None = None  # os.environ before Ray started; restored by close()

    # ---- where it runs
    @property
    def nodes(self) -> int:
        """Alive Ray nodes (1 in process)."""
        if self.kind == "inprocess":
            return 1
        import ray

        return sum(1 for n in ray.nodes() if n.get("Alive"))

    @property
    def workers(self) -> int:
        """How many tasks can run at once: cluster CPUs / CPUs per task (1 in process)."""
        if self.kind == "inprocess":
            return 1
        import ray

        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        return max(1, int(cpus // self.cpus_per_task))

    def info(self) -> dict[str, Any]:
        """The ``executor`` object of report.json: kind, address, nodes, workers."""
        return {"kind": self.kind, "address": self.address, "nodes": self.nodes, "workers": self.workers}

    # ---- work
    @overload
    def map(self, fn: Callable[[T], R], items: Iterable[T], *, key: Callable[[T], Hashable] | None = None,
            return_exceptions: Literal[False] = False) -> list[R]: ...

    @overload
    def map(self, fn: Callable[[T], R], items: Iterable[T], *, key: Callable[[T], Hashable] | None = None,
            return_exceptions: bool) -> list[R | BaseException]: ...

    def map(self, fn: Callable[[T], R], items: Iterable[T], *, key: Callable[[T], Hashable] | None = None,
            return_exceptions: bool = False) -> list[R] | list[R | BaseException]:
        """``[fn(item) for item in items]``, in order, run in parallel on the run's warm Ray workers.

        The workers are the ones :meth:`warm` started (else started here) and stay for the next
        call, so a worker process starts and imports its libraries once per run, not per call.
        ``key``: items with the same key never run at the same time (a per-board lock
        for SSH fleets: ``key=lambda target: target.host``). A task whose worker dies
        is retried up to ``max_retries`` times; an exception raised by ``fn`` is
        re-raised here, or returned in its slot with ``return_exceptions``.
        """
        items = list(items)
        if self.kind == "inprocess":
            return [self._call_local(fn, item, return_exceptions) for item in items]
        return self._map_ray(fn, items, key, return_exceptions)

    @staticmethod
    def _call_local(fn: Callable[[T], R], item: T, return_exceptions: bool) -> R | BaseException:
        try:
            return fn(item)
        except Exception as e:
            if return_exceptions:
                return e
            raise

    def warm(self, modules: Sequence[str] = ()) -> None:
        """Start the run's warm workers now: one Ray actor per worker, each importing ``modules`` once.

        Call it right after opening the executor, before the driver's own work (loading data,
        training), so the workers' start and imports overlap that work; every later :meth:`map`
        runs on them (:class:`edgekit.raypool.WarmPool`). Only on the embedded Ray: on a cluster, tasks
        run as plain Ray tasks (a worker still imports once, on its first task).
        """
        if self.kind != "local":
            return
        self._ensure_pool(self.workers, modules)

    def wait_warm(self) -> float:
        """Block until the warm workers have imported their modules; the seconds waited (0 without any)."""
        return self._pool.wait_ready() if self._pool is not None else 0.0

    def _ensure_pool(self, size: int, modules: Sequence[str] = ()) -> Any:
        from edgekit.raypool import WarmPool

        if self._pool is None:
            self._pool = WarmPool(modules, cpus=self.cpus_per_task, max_retries=self.max_retries)
        self._pool.grow(size)
        return self._pool

    def _map_ray(self, fn: Callable[[T], R], items: list[T], key: Callable[[T], Hashable] | None,
                 return_exceptions: bool) -> list[R | BaseException]:
        if not items:
            return []
        if self.kind == "local":
            pool = self._ensure_pool(min(self.workers, len(items)))
            return pool.map(fn, items, key, return_exceptions)
        from edgekit.raypool import map_tasks

        return map_tasks(fn, items, key, return_exceptions, cpus=self.cpus_per_task, max_retries=self.max_retries)

    # ---- data every task reads
    def put(self, value: Any) -> Shared:
        """Share ``value`` (e.g. a Dataset's arrays) with every task once, instead of once per item."""
        if self.kind == "inprocess":
            return Shared(value, False)
        import ray

        return Shared(ray.put(value), True)

    # ---- files by content
    def share(self, path: str | os.PathLike[str]) -> FileRef:
        """Make a file available to every worker by its hash (cache folder, and object store on Ray)."""
        p = Path(path)
        data = p.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        target = cache_root() / "blobs" / digest / p.name
        if not target.is_file():
            write_bytes(target, data)
        ref = None
        if self.kind != "inprocess":
            import ray

            ref = ray.put(data)
        return FileRef(digest, p.name, ref)

    # ---- lifetime
    def close(self) -> None:
        """Shut down the embedded Ray, or disconnect from a cluster (which keeps running)."""
        if self.kind == "inprocess":
            return
        import ray

        if ray.is_initialized():
            ray.shutdown()  # ends the warm workers too
        self._pool = None
        if self._saved_environ is not None:  # Ray leaves its settings (auth mode, node address …) in os.environ
            os.environ.clear()
            os.environ.update(self._saved_environ)
            self._saved_environ = None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def map_by_key(fn: Callable[[T], R], items: Iterable[T], key: Callable[[T], Hashable]) -> list[R]:
    """``[fn(item) for item in items]``, in order, on threads of this process: one lane per key.

    Items with the same key run one after another in their order (a per-key lock: one benchmark per
    board at a time); lanes run at the same time. For work that waits on other machines (SSH boards),
    not for CPU work here (that is :meth:`Executor.map`). An exception raised by ``fn`` stops only its
    own lane and is re-raised once every lane has finished (callers that must keep the other lanes'
    results catch inside ``fn``, as ``edgekit bench`` does per cell).

    Ctrl-C/SIGTERM while lanes run: no lane starts another item, items not started are cancelled, the
    subprocesses the lane threads are running (ssh, scp) are terminated, and the interrupt is re-raised
    at once, without waiting for the lanes' current calls to time out.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    items = list(items)
    lanes: dict[Hashable, list[int]] = {}
    for i, item in enumerate(items):
        lanes.setdefault(key(item), []).append(i)
    results: dict[int, R] = {}
    stop = threading.Event()  # set on Ctrl-C/SIGTERM in the caller: lanes start no new item
    lane_threads: set[int] = set()  # native ids of the threads running lanes (their children are the lanes' ssh calls)

    def run_lane(indices: list[int]) -> None:
        lane_threads.add(threading.get_native_id())
        for i in indices:
            if stop.is_set():
                return
            results[i] = fn(items[i])

    if len(lanes) <= 1:
        for indices in lanes.values():
            run_lane(indices)
        return [results[i] for i in range(len(items))]
    pool = ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="edgekit-lane")
    futures = [pool.submit(run_lane, indices) for indices in lanes.values()]
    try:
        for f in futures:
            f.exception()  # wait here, where Ctrl-C/SIGTERM can interrupt
    except BaseException:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        _terminate_children(lane_threads)
        raise
    pool.shutdown(wait=True)
    for f in futures:
        f.result()  # the first lane's exception, after every lane finished
    return [results[i] for i in range(len(items))]


def _terminate_children(thread_ids: Iterable[int]) -> None:
    """SIGTERM the child processes started by these threads of this process (Linux: /proc/self/task/TID/children).

    A lane thread blocked in ``subprocess.run`` then gets its child's exit at once instead of waiting for
    its timeout. Elsewhere (no such file) nothing is sent: Ctrl-C still reaches the children through the
    terminal's process group, SIGTERM does not.
    """
    import signal

    for tid in list(thread_ids):
        try:
            pids = [int(p) for p in Path(f"/proc/self/task/{tid}/children").read_text().split()]
        except (OSError, ValueError):
            continue
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
                log.debug("interrupted: terminated child process %d of lane thread %d", pid, tid)
            except OSError:
                pass


def _worker_env() -> dict[str, str]:
    """What every Ray worker needs: the shared cache root and edgekit's quiet TF settings."""
    env = {"EDGEKIT_CACHE_DIR": str(cache_root()), "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in ("EDGEKIT_DATA_DIR", "EDGEKIT_OFFLINE", "PYTHONPATH"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def open_executor(address: str | None = None, *, workers: int | None = None, cpus_per_task: float = 1.0,
                  max_retries: int = DEFAULT_MAX_RETRIES) -> Executor:
    """Connect to the cluster at ``address`` (or ``RAY_ADDRESS``), else start a quiet local Ray.

    ``workers``: for the embedded Ray, how many CPUs it gets (default: this machine's
    cores); ``workers=0`` runs everything in this process, sequentially, without Ray.
    Use as a context manager so the embedded Ray is shut down at the end.
    """
    if workers is not None and workers < 0:
        raise UsageError(f"--workers must not be negative, got {workers}")
    resolved = resolve_address(address)
    if workers == 0 and resolved is None:
        return Executor("inprocess", max_retries=max_retries, cpus_per_task=cpus_per_task)
    saved_environ = dict(os.environ)
    if resolved is None:
        # The embedded Ray listens on loopback only. Left alone, Ray binds to the host's network address;
        # with this (read when ray is first imported) its node address is 127.0.0.1, as on Windows/macOS.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        # Ray starts its workers at nice 15, behind every other process: the run's work would wait on a busy
        # machine while the driver, which does it at nice 0 in process, only waits for them.
        os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        import ray
    except ImportError:
        raise UsageError("Ray is not installed: pip install 'edgekit[ray]' (or workers=0 to run in process)") from None
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    if ray.is_initialized():
        ray.shutdown()
    runtime_env = {"env_vars": _worker_env()}
    started = time.perf_counter()
    if resolved is None:
        ncpu = workers or os.cpu_count() or 1
        # Ray sets a worker's OMP_NUM_THREADS (which TensorFlow's CPU kernels follow) to its CPUs (1); on this
        # machine the workers share its cores instead, as the driver would use them all in process
        runtime_env["env_vars"]["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // ncpu))
        ray.init(address="local", num_cpus=ncpu, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR, configure_logging=True, runtime_env=runtime_env)
        ctx_address = ray.get_runtime_context().gcs_address
        ex = Executor("local", ctx_address, max_retries=max_retries, cpus_per_task=cpus_per_task)
    else:
        try:
            ray.init(address=resolved, log_to_driver=False, logging_level=logging.ERROR, runtime_env=runtime_env)
        except ConnectionError as e:
            raise UsageError(f"--ray-address {resolved}: cannot connect to a Ray cluster ({e})") from None
        ex = Executor("ray", resolved, max_retries=max_retries, cpus_per_task=cpus_per_task)
    ex._saved_environ = saved_environ
    log.debug("executor %s at %s ready in %.1f s", ex.kind, ex.address, time.perf_counter() - started)
    return ex


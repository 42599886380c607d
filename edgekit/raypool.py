"""Warm Ray workers: long-lived actors that import the heavy libraries once and then serve many calls.

A Ray task runs in a generic worker process that Ray starts when the first task arrives, so the first
task of every run pays the process start and TensorFlow's import (seconds) on its critical path, while
the driver waits. A :class:`WarmPool` starts its actors as soon as it is created; each imports the given
modules in its constructor, so that cost overlaps the driver's own work (loading data, training the
prefix of a plan) instead of following it. The executor (:mod:`edgekit.executor`) runs its
``map`` on the pool, one call per actor at a time, and keeps the pool for every later ``map`` of the run.

An actor whose process dies is restarted (its constructor runs again) and its call is retried up to
``max_retries`` times, as a task would be. On a cluster the executor runs plain tasks instead
(:func:`map_tasks`). Ray is imported only by the functions that need it.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any

log = logging.getLogger(__name__)


class WarmWorker:
    """The actor's body: imports ``modules`` once, then runs ``fn(item)`` calls (made remote by :class:`WarmPool`)."""

    def __init__(self, modules: Sequence[str]) -> None:
        started = time.perf_counter()
        for name in modules:
            importlib.import_module(name)
        self.warm_s = time.perf_counter() - started

    def ready(self) -> tuple[int, float]:
        """(process id, seconds the imports took): answers once the constructor has finished."""
        return os.getpid(), self.warm_s

    def run(self, fn: Callable[[Any], Any], item: Any) -> Any:
        """``fn(item)``, with the process titled ``ray::<fn>`` meanwhile (as a task of ``fn`` would be in ``ps``)."""
        import ray

        title = getattr(ray._raylet, "setproctitle", None)
        if title is not None:
            title(f"ray::{getattr(fn, '__name__', 'run')}")
        return fn(item)


class WarmPool:
    """Up to ``size`` :class:`WarmWorker` actors of ``cpus`` CPUs each, started on demand and reused."""

    def __init__(self, modules: Sequence[str], *, cpus: float, max_retries: int) -> None:
        import ray

        self.modules = tuple(modules)
        self._cls = ray.remote(num_cpus=cpus, max_restarts=-1, max_task_retries=max_retries)(WarmWorker)
        self._actors: list[Any] = []
        self._started = time.perf_counter()

    def grow(self, size: int) -> None:
        """Start actors until the pool holds ``size`` (they warm up in the background)."""
        while len(self._actors) < size:
            self._actors.append(self._cls.remote(self.modules))

    @property
    def size(self) -> int:
        return len(self._actors)

    def wait_ready(self) -> float:
        """Block until every actor has imported its modules; the seconds waited here."""
        import ray

        waited = time.perf_counter()
        ready = ray.get([a.ready.remote() for a in self._actors])
        log.debug("warm pool: %d actor(s) ready %.1f s after start (imports %s s)", len(ready),
                  time.perf_counter() - self._started, ", ".join(f"{s:.1f}" for _, s in ready))
        return time.perf_counter() - waited

    def map(self, fn: Callable[[Any], Any], items: list[Any], key: Callable[[Any], Hashable] | None,
            return_exceptions: bool) -> list[Any]:
        """``[fn(item) for item in items]`` on the actors, in order; one call per actor and per key at a time."""
        import ray

        lanes: dict[Hashable, deque[int]] = {}
        for i, item in enumerate(items):
            lanes.setdefault(key(item) if key else i, deque()).append(i)
        ready_lanes: deque[Hashable] = deque(lanes)  # lanes with items left and none running
        idle = deque(self._actors)
        running: dict[Any, tuple[int, Hashable, Any]] = {}  # ref → (item index, lane, actor)
        results: dict[int, Any] = {}
        while ready_lanes or running:
            while idle and ready_lanes:
                lane = ready_lanes.popleft()
                actor = idle.popleft()
                i = lanes[lane].popleft()
                running[actor.run.remote(fn, items[i])] = (i, lane, actor)
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                i, lane, actor = running.pop(ref)
                idle.append(actor)
                if lanes[lane]:
                    ready_lanes.append(lane)
                try:
                    results[i] = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    cause = e.as_instanceof_cause()
                    if not return_exceptions:
                        self._drop([a for _, _, a in running.values()])
                        raise cause from None
                    results[i] = cause
        return [results[i] for i in range(len(items))]

    def _drop(self, actors: list[Any]) -> None:
        """Stop actors still busy with an abandoned map (the pool starts fresh ones when next needed)."""
        import ray

        for actor in actors:
            ray.kill(actor, no_restart=True)
            self._actors.remove(actor)


def map_tasks(fn: Callable[[Any], Any], items: list[Any], key: Callable[[Any], Hashable] | None,
              return_exceptions: bool, *, cpus: float, max_retries: int) -> list[Any]:
    """``[fn(item) for item in items]`` as plain Ray tasks (on a cluster), in order; one task per key at a time."""
    import ray

    remote = ray.remote(num_cpus=cpus, max_retries=max_retries)(fn)
    queues: dict[Hashable, deque[int]] = {}
    for i, item in enumerate(items):
        queues.setdefault(key(item) if key else i, deque()).append(i)
    results: dict[int, Any] = {}
    running: dict[Any, tuple[int, Hashable]] = {}

    def submit(k: Hashable) -> None:
        if queues[k]:
            i = queues[k].popleft()
            running[remote.remote(items[i])] = (i, k)

    for k in list(queues):
        submit(k)
    while running:
        done, _ = ray.wait(list(running), num_returns=1)
        for ref in done:
            i, k = running.pop(ref)
            try:
                results[i] = ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                cause = e.as_instanceof_cause()
                if not return_exceptions:
                    for other in running:
                        ray.cancel(other)
                    raise cause from None
                results[i] = cause
            submit(k)  # the next item under this key (one at a time per key)
    return [results[i] for i in range(len(items))]

"""Ctrl-C and SIGTERM, remembered: some libraries (tf2onnx's bare ``except:``) swallow the
KeyboardInterrupt a signal raises inside them, so long steps call :func:`check` afterwards and the
run still stops, cleans up and exits 130 (SIGINT) or 143 (SIGTERM)."""

from __future__ import annotations

import signal
from collections.abc import Callable


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, CI cancellation, ``docker stop``), unwound like Ctrl-C so every cleanup runs."""


_received: list[int] = []


def _handler(signum: int, frame: object) -> None:
    _received.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def install() -> Callable[[], None]:
    """Handle SIGINT and SIGTERM in this (main) thread; returns a function that restores the old handlers.
    Outside the main thread nothing is installed."""
    _received.clear()
    previous: dict[int, object] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _handler)
    except ValueError:  # not the main thread
        pass

    def restore() -> None:
        for sig, old in previous.items():
            try:
                signal.signal(sig, old)  # type: ignore[arg-type]
            except KeyboardInterrupt:  # a signal pending when the call began ran _handler first; the run is over
                signal.signal(sig, old)  # type: ignore[arg-type]

    return restore


def received() -> int | None:
    """The signal received since :func:`install` (SIGTERM wins over SIGINT), or None."""
    if not _received:
        return None
    return signal.SIGTERM if signal.SIGTERM in _received else signal.SIGINT


def check() -> None:
    """Raise again when a signal arrived and the exception it raised was swallowed somewhere."""
    if _received:
        raise Terminated() if signal.SIGTERM in _received else KeyboardInterrupt()

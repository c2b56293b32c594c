"""The runtime of a process: what an entrypoint sets up once, and everything that lives as long.

Each entrypoint (`python -m obesity.train|serve|monitor|registry|feedback`, a DVC stage, a call
of the Python API) starts one `Runtime` and closes it when it is done:

    with Runtime():
        ...

Started, it holds the process's state in one place: the environment defaults the libraries read
(obesity.environment), the caches (data sets by file version, their splits, MLflow experiment
ids and the stores opened, database engines, Optuna storages, the code's git state), and what
code below it asked to undo at the end (`on_close`: the sqlite tuning listener, engines to
dispose). Closed, it undoes those, gives back the environment variables it set and drops the
caches.

Code below the entrypoints reaches it through `current()`. With none started (a test, a library
call of an inner function) `current()` gives a runtime of the call's own that caches nothing
between calls: nothing is kept or installed for longer than an entrypoint asked. A process that
runs trials for a launcher (a joblib worker) starts one for its life with `for_this_process()`.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from obesity.compat import hydra_ray_launcher
from obesity.environment import quiet_libraries


@dataclass
class Caches:
    """What a started runtime keeps between calls (each keyed by what makes an entry valid)."""

    datasets: dict[tuple[str, int, int], Any] = field(default_factory=dict)  # (path, size, mtime)
    splits: dict[tuple, Any] = field(default_factory=dict)
    experiments: dict[tuple, str] = field(default_factory=dict)  # (uri, registry uri, name) -> id
    opened_stores: set[str] = field(default_factory=set)  # MLflow stores opened (migrated) here
    engines: dict[str, Any] = field(default_factory=dict)  # database URL -> SQLAlchemy engine
    study_storages: dict[str, Any] = field(default_factory=dict)  # URL -> Optuna storage
    git: dict[str, dict[str, str]] = field(default_factory=dict)  # root -> commit, dirty
    warned: set[str] = field(default_factory=set)  # warnings said once


class Runtime:
    """One process's state, started and closed like a service (see the module doc)."""

    def __init__(self) -> None:
        self.caches = Caches()
        self.started = False
        self._environment: list[str] = []
        self._on_close: list[Callable[[], None]] = []

    def start(self) -> Runtime:
        global _STARTED
        if _STARTED is not None:
            raise RuntimeError("a runtime is started already in this process: use current()")
        self._environment = quiet_libraries()  # before MLflow or Evidently is imported
        plugin_filter = hydra_ray_launcher.quiet_plugin_import()  # before Hydra scans plugins
        self.started = True
        self.on_close(lambda: _remove_filter(plugin_filter))
        _STARTED = self
        return self

    def close(self) -> None:
        """Undo what was asked (last asked first), restore the environment, drop the caches."""
        global _STARTED
        while self._on_close:
            self._on_close.pop()()
        for name in self._environment:
            os.environ.pop(name, None)
        self._environment = []
        self.caches = Caches()
        self.started = False
        if _STARTED is self:
            _STARTED = None

    def on_close(self, undo: Callable[[], None]) -> None:
        """Run `undo` when this runtime closes (a runtime that was never started: never, as
        it is gone when the call that made it returns)."""
        if self.started:
            self._on_close.append(undo)

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


_STARTED: Runtime | None = None


def _remove_filter(entry: Any) -> None:
    with contextlib.suppress(ValueError):  # a caller's catch_warnings gave the list back
        warnings.filters.remove(entry)  # type: ignore[attr-defined]


def current() -> Runtime:
    """The started runtime, or (none started) one of the caller's own that keeps nothing."""
    return _STARTED if _STARTED is not None else Runtime()


@contextlib.contextmanager
def using() -> Iterator[Runtime]:
    """The started runtime; none started, one started for the block (an entrypoint's run, a
    call of the Python API) and closed after it."""
    with _STARTING:
        owned = _STARTED is None
        runtime = Runtime().start() if _STARTED is None else _STARTED
    try:
        yield runtime
    finally:
        if owned:
            runtime.close()


_STARTING = threading.Lock()  # two threads entering `using` at once start one runtime


def for_this_process() -> Runtime:
    """The started runtime; none yet (a launcher's worker process running trials), one that
    lives as long as this process (closed at its exit)."""
    with _STARTING:
        if _STARTED is not None:
            return _STARTED
        runtime = Runtime().start()
    atexit.register(runtime.close)
    command_line_process()  # a worker of a command, as heavy as its launcher
    return runtime


def command_line_process() -> None:
    """Tune the garbage collector for a command's own process (its `__main__`), which imports
    MLflow, scikit-learn, pandas and more: millions of objects that live as long as it does.

    - Young collections every `YOUNG_COLLECTION` allocations instead of 700: with the default,
      the imports alone triggered several full collections, each walking everything loaded so
      far; the full ones still run, when the objects that survived grow by a quarter.
    - At exit, the objects are frozen (gc.freeze) as the exit functions run, so the interpreter's
      last collection has nothing to walk: it only freed memory the OS takes back anyway. Exit
      functions, flushes and module teardown still run (Python never promised `__del__` at exit).

    Not for a library call: the caller's process is the caller's."""
    global _TUNED
    if not _TUNED:
        gc.set_threshold(YOUNG_COLLECTION, *gc.get_threshold()[1:])
        atexit.register(gc.freeze)
        _TUNED = True


YOUNG_COLLECTION = 10_000
_TUNED = False

"""Named, cross-process locks held in the database the work touches, for the few read-then-write
steps that concurrent processes must not interleave: "how many trials are left? ask that many",
"is the study finished? then promote its best trial once", "create the fresh MLflow store",
"move an alias and append it to the alias log".

The database engines already provide such locks; nothing is home-made:
- PostgreSQL: a session-level advisory lock (`pg_advisory_lock`) keyed by a hash of the name;
- MySQL: `GET_LOCK(name)`;
- sqlite (one machine): an exclusive `flock` on a small file beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from obesity.config.schemas import RegistryConfig
from obesity.errors import ConfigError
from obesity.runtime import current
from obesity.stores.locations import DATABASES, backend

log = logging.getLogger(__name__)


def _key(name: str) -> int:
    """A stable signed 64-bit key (Python's hash() changes between processes)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _engine(url: str) -> Any:
    """The runtime's engine for `url` (disposed when the runtime closes)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    runtime = current()
    engines = runtime.caches.engines
    if url not in engines:
        # NullPool: a lock lives as long as its connection
        engines[url] = create_engine(url, poolclass=NullPool)
        runtime.on_close(engines[url].dispose)
    return engines[url]


_HELD = threading.local()  # the locks this thread holds: taking one again is a no-op


@contextlib.contextmanager
def db_lock(url: str, name: str) -> Iterator[None]:
    """Hold the lock `name` in the database at `url` for the duration of the block.

    Re-entrant within a thread (an alias move inside a promotion that holds the lock already);
    exclusive between threads and processes."""
    held: set = _HELD.__dict__.setdefault("locks", set())
    if (url, name) in held:
        yield
        return
    with _acquire(url, name):
        held.add((url, name))
        try:
            yield
        finally:
            held.discard((url, name))


@contextlib.contextmanager
def _acquire(url: str, name: str) -> Iterator[None]:
    from sqlalchemy.engine import make_url

    engine_kind = make_url(url).get_backend_name()
    if engine_kind == "sqlite":
        database = make_url(url).database
        if not database or database == ":memory:":
            yield  # one process only: nothing to coordinate
            return
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        lock_file = Path(database).with_name(f"{Path(database).name}.{safe}.lock")
        lock_file.parent.mkdir(parents=True, exist_ok=True)  # as sqlite would for its file
        with open(lock_file, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    from sqlalchemy import text

    params: dict[str, Any]
    if engine_kind == "postgresql":
        take, release, params = ("SELECT pg_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)",
                                 {"key": _key(name)})
    elif engine_kind in ("mysql", "mariadb"):  # the lock's name is text here
        take, release, params = ("SELECT GET_LOCK(:name, -1)", "SELECT RELEASE_LOCK(:name)",
                                 {"name": f"obesity:{_key(name)}"})
    else:
        raise ConfigError(f"no lock for a {engine_kind} study storage: use PostgreSQL, MySQL or sqlite")
    with _engine(url).connect() as connection:
        connection.execute(text(take), params)
        try:
            yield
        finally:
            connection.execute(text(release), params)


def _lock_url(reg: RegistryConfig, allow_study: bool) -> str | None:
    """The database that holds this registry's locks: MLflow's own when it is one, else (for
    an MLflow server) the study database."""
    if backend(str(reg.tracking_uri)) in DATABASES:
        return str(reg.tracking_uri)
    if allow_study and reg.study_storage:
        return str(reg.study_storage)
    return None


def registry_lock(reg: RegistryConfig) -> AbstractContextManager:
    """Serialise every alias move on `reg.model_name` across threads and processes."""
    url = _lock_url(reg, allow_study=True)
    if url is None:
        warned = current().caches.warned
        if f"unlocked:{reg.model_name}" not in warned:  # once per runtime
            warned.add(f"unlocked:{reg.model_name}")
            log.warning("alias moves on %s are not serialised across processes: the MLflow store "
                        "is a server and no study storage is set (set OPTUNA_STORAGE)",
                        reg.model_name)
        return contextlib.nullcontext()
    return db_lock(url, f"registry:{reg.model_name}")


def creation_lock(reg: RegistryConfig) -> AbstractContextManager:
    """Held while a process first opens MLflow's store: two processes creating (migrating) a
    fresh store at once crash (`table ... already exists`). A server migrates its own."""
    url = _lock_url(reg, allow_study=False)
    return db_lock(url, "mlflow-store") if url else contextlib.nullcontext()

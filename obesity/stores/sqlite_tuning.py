"""WAL journal and synchronous=NORMAL for every sqlite database this process opens, once
`install()` was called (by the code that opens a store).

Both embedded stores (MLflow's and Optuna's) commit once per logged item; with sqlite's default
rollback journal every commit is an fsync. WAL halves Optuna's cost per trial here
and lets sweep workers read while one writes. A killed process loses nothing committed; only a
power cut can lose the last transactions.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine

from obesity.runtime import current


def install() -> None:
    """Tune every sqlite connection this process opens from now on (idempotent), until the
    runtime closes. Called where the stores are opened, never on import: the listener is on
    every SQLAlchemy Engine."""
    if not event.contains(Engine, "connect", _tune_sqlite):
        event.listen(Engine, "connect", _tune_sqlite)
        current().on_close(uninstall)


def uninstall() -> None:
    """Stop tuning new sqlite connections."""
    if event.contains(Engine, "connect", _tune_sqlite):
        event.remove(Engine, "connect", _tune_sqlite)


def _tune_sqlite(dbapi_connection: object, connection_record: object) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

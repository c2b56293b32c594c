"""Opening the stores safely: a fast, clear check of an embedded sqlite store, and the locks that
serialise store creation and alias moves on every store kind.

MLflow retries a store it cannot open for ~100 s (ten attempts, exponential back-off) and then
fails with a traceback that does not name the file; the check here answers at once, naming the
file and the cause. Locks (obesity.stores.locks) live in the database the work touches: a file lock
beside a sqlite store, an advisory lock in PostgreSQL.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from obesity.errors import StoreError

log = logging.getLogger(__name__)
DATABASES = ("sqlite", "postgresql", "mysql", "mariadb")


def backend(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0].lower()


def redact(url: str) -> str:
    """A storage URL without its password, fit for logs and tags."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL (e.g. an MLflow server): nothing secret in it
        return url


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///...` URL (None for other URLs and in-memory databases)."""
    if backend(url) != "sqlite":
        return None
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def check_sqlite(url: str, what: str, create: bool) -> bool:
    """Can the sqlite store at `url` be opened? StoreError naming the file and the cause if not.

    False when the file does not exist and `create` is off (nothing stored yet); with `create`
    its folder is made. Non-sqlite URLs pass (their servers answer for themselves)."""
    path = sqlite_path(url)
    if path is None:
        return True
    if path.is_dir():
        raise StoreError(f"cannot open the {what} {path}: a folder is in the place of the "
                         f"sqlite file")
    if not path.exists():
        if not create:
            return False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the {what} {path}: {exc.strerror or exc}") from None
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode={'rwc' if create else 'rw'}",
                                     uri=True, timeout=10)
        try:
            connection.execute("PRAGMA schema_version").fetchone()  # reads the header
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the {what} {path}: {exc}") from None
    return True









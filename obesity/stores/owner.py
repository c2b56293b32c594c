"""Who owns a sweep or a trial (host:pid), and whether that owner is provably dead.

Used to recover from `kill -9`: a RUNNING Optuna trial or MLflow run whose owner process is gone
is marked failed/killed, while one owned by a live process (or another host) is left alone.
"""

from __future__ import annotations

import os
import socket


def me() -> str:
    """This process as `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_dead(owner: str | None) -> bool:
    """True only when `owner` names a process on this host that no longer exists."""
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by someone else
        return False
    return False

"""The project's own exception types (every failure a user can cause is one of these), and the
one way an entrypoint turns them into a clear exit."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator


class ObesityError(Exception):
    """Base class: a clear, user-facing error (printed without a traceback, non-zero exit)."""


class DataError(ObesityError):
    """The data file is missing, unreadable or breaks the data contract."""


class ConfigError(ObesityError):
    """The composed configuration is inconsistent (beyond what the structured schema catches)."""


class StoreError(ObesityError):
    """A store (MLflow's, Optuna's) cannot be opened: named with its location and the cause."""


class RegistryError(ObesityError):
    """Unknown model, version or alias, or an alias move the rules refuse."""


class ModelRefused(RegistryError):
    """A registered version the framework will not load: not a model it produced and verified
    (e.g. a pickle, or skops holding types nobody reviewed)."""


@contextlib.contextmanager
def exit_on_error(reraise: bool = False) -> Iterator[None]:
    """What every entrypoint does with a user's mistake: the ObesityError's message as one line
    on stderr (`error: ...`) and exit code 1, never a traceback. `reraise`: let it propagate
    after the line (a sweep trial: the sweeper records the trial as failed and goes on)."""
    try:
        yield
    except ObesityError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr, flush=True)
        if reraise:
            raise
        raise SystemExit(1) from None


def first_line(error: BaseException | str) -> str:
    """What a one-line report says of an error: the first line of its message (of the database
    driver's own error when SQLAlchemy wraps one), or its type's name when it has no message."""
    cause = error if isinstance(error, str) else (getattr(error, "orig", None) or error)
    text = str(cause).strip()
    if text:
        return text.splitlines()[0]
    return "" if isinstance(cause, str) else type(cause).__name__


def printable(text: str) -> str:
    """`text` with control characters escaped (a tag or a card may hold ESC[2J, which would
    clear a terminal): newlines and tabs stay."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

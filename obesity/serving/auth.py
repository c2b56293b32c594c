"""Bearer tokens for what changes what the framework believes (POST /feedback), and, when
`auth.predictions` says so, for predictions too.

Tokens come from the environment variable `auth.tokens_env` (comma-separated) and from the file
`auth.tokens_file` (one per line, `#` comments): several at once, so one can be rotated while
the other still works. The config names where they are, never the tokens, so no token reaches a
log, an MLflow param or an error. A presented token is compared with every configured one in
constant time (hmac.compare_digest), each comparison made whatever the others gave.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Any

from obesity.errors import ConfigError
from obesity.serving.http_errors import ApiError

MIN_LENGTH = 16  # a shorter token is guessable: refused at start


def load_tokens(auth: Any) -> tuple[bytes, ...]:
    """The configured tokens; ConfigError naming the variable or file (never a token) when one
    is too short or the file cannot be read."""
    found: list[tuple[str, str]] = []
    env = os.environ.get(str(auth.tokens_env), "") if auth.tokens_env else ""
    found += [(f"${auth.tokens_env}", t.strip()) for t in env.split(",") if t.strip()]
    if auth.tokens_file:
        path = Path(str(auth.tokens_file))
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"auth.tokens_file={path}: cannot read it "
                              f"({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
        found += [(str(path), line.strip()) for line in lines
                  if line.strip() and not line.lstrip().startswith("#")]
    short = sorted({where for where, token in found if len(token) < MIN_LENGTH})
    if short:
        raise ConfigError(f"a token in {', '.join(short)} is shorter than {MIN_LENGTH} "
                          "characters: make one with `python -c 'import secrets; "
                          "print(secrets.token_urlsafe(32))'`")
    return tuple(token.encode() for _, token in found)


def matches(presented: bytes, tokens: tuple[bytes, ...]) -> bool:
    """Is `presented` one of `tokens`? Every token is compared, in constant time."""
    ok = False
    for token in tokens:
        ok |= hmac.compare_digest(presented, token)
    return ok


def _require(connection: Any, what: str) -> None:
    tokens = connection.app.state.tokens
    if not tokens:
        raise ApiError(403, f"{what} need a token and none is configured: set "
                            f"{connection.app.state.tokens_env or 'auth.tokens_env'} (or "
                            "auth.tokens_file) for the service, then send `Authorization: "
                            "Bearer <token>` (docs/monitoring.md)")
    scheme, _, presented = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not matches(presented.strip().encode(), tokens):
        raise ApiError(401, f"{what} need `Authorization: Bearer <token>` with a valid token",
                       headers={"www-authenticate": 'Bearer realm="obesity"'})


# The guards are coroutines: Litestar runs a plain function guard in a worker thread, a hop
# that cost a single-row prediction more than its model.
async def labels_guard(connection: Any, _: Any) -> None:
    """Litestar guard of the /feedback routes: always a token."""
    _require(connection, "labels")


async def predictions_guard(connection: Any, _: Any) -> None:
    """Litestar guard of the /predict routes, put on them only when `auth.predictions` is true
    (obesity.serving.app)."""
    _require(connection, "predictions")

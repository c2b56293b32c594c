"""Aliases (champion, challenger) and their log: every move is a registered-model tag
`alias_log.NNNNNN` (who, when, from, to, why); `rollback` walks that log back. Moves on one model
are serialised across threads and processes (obesity.stores.locks.registry_lock)."""

from __future__ import annotations

import getpass
import json
import socket
from datetime import UTC, datetime
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from obesity.config.schemas import RegistryConfig
from obesity.errors import RegistryError
from obesity.registry.evidence import Evidence
from obesity.stores.locks import registry_lock

LOG_PREFIX = "alias_log."


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def resolve(client: MlflowClient, name: str, alias: str, version: str | None,
            hint: str = "") -> ModelVersion:
    """`version` of `name` when given, else the version `alias` names; RegistryError (ending
    with `hint`) when there is none."""
    if version is not None:
        try:
            return client.get_model_version(name, str(int(version)))
        except (MlflowException, ValueError):
            raise RegistryError(f"{name} has no version {version!r}{hint}") from None
    found = alias_version(client, name, alias)
    if found is None:
        raise RegistryError(f"{name} has no version at alias {alias!r}{hint}")
    return found


def set_alias(client: MlflowClient, reg: RegistryConfig, alias: str, version: str | int, why: str,
              kind: str = "move", evidence: Evidence | None = None) -> None:
    """Point `alias` at `version` and append the move to the model's alias log, under the
    registry lock (re-entrant: callers that decide first hold it already). `evidence`: the
    guard's figures behind the move, kept in the log entry."""
    name = reg.model_name
    with registry_lock(reg):
        previous = alias_version(client, name, alias)
        client.set_registered_model_alias(name, alias, str(version))
        entry: dict[str, Any] = {"alias": alias, "from": previous.version if previous else None,
                 "to": str(version), "kind": kind, "why": why,
                 "who": f"{getpass.getuser()}@{socket.gethostname()}",
                 "when": datetime.now(UTC).isoformat(timespec="seconds")}
        if evidence is not None:
            entry["evidence"] = evidence.tags()
        n = len(alias_log(client, name))
        client.set_registered_model_tag(name, f"{LOG_PREFIX}{n:06d}", json.dumps(entry))


def alias_log(client: MlflowClient, name: str) -> list[dict]:
    """Every recorded alias move of a registered model, oldest first."""
    tags = client.get_registered_model(name).tags
    return [json.loads(tags[k]) for k in sorted(tags) if k.startswith(LOG_PREFIX)]


def rollback(client: MlflowClient, reg: RegistryConfig) -> str:
    """Point champion back at the version it held before its last (not yet undone) move."""
    with registry_lock(reg):  # the log read and the move are one step
        return _rollback(client, reg)


def _rollback(client: MlflowClient, reg: RegistryConfig) -> str:
    stack: list[dict] = []
    for entry in alias_log(client, reg.model_name):
        if entry["alias"] != reg.champion_alias:
            continue
        if entry["kind"] == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(entry)
    if not stack or stack[-1]["from"] is None:
        raise RegistryError(f"{reg.model_name}: no previous {reg.champion_alias} to roll back to")
    last = stack[-1]
    set_alias(client, reg, reg.champion_alias, last["from"],
              f"rollback of the move {last['from']} -> {last['to']}", kind="rollback")
    return last["from"]

"""Config values as plain Python: a node (OmegaConf's or a schema's dataclass) as a dict, a nested
dict as dotted keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import OmegaConf


def flatten(node: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """`{"model": {"n_estimators": 300}}` -> `("model.n_estimators", 300)`."""
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, f"{name}.")
        else:
            yield name, value


def plain(node: Any, resolve: bool = True) -> dict[str, Any]:
    """A mapping config node (OmegaConf's, or a schema's dataclass) as a plain dict."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        node = OmegaConf.structured(node)
    container = OmegaConf.to_container(node, resolve=resolve)
    if not isinstance(container, dict):
        raise TypeError(f"expected a mapping config node, got {type(container).__name__}")
    return {str(key): value for key, value in container.items()}

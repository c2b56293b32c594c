"""The one way a config is made: configs/<name>.yaml composed by Hydra with overrides.

The command line (through `hydra.main` on the same CONFIG_DIR), the Python API, the registry CLI,
scripts/params.py, the DVC stages and the tests all compose here, so a config means the same
thing everywhere and a bad override fails the same way (ConfigError naming the key).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from obesity.config import schemas  # noqa: F401  (puts the schemas in Hydra's ConfigStore)
from obesity.errors import ConfigError

# configs/: inside the package in an installed wheel (pyproject force-include), else beside the
# package in a source checkout. Composing from here makes the working directory irrelevant.
_PACKAGE = Path(__file__).resolve().parents[1]
CONFIG_DIR: Path = (_PACKAGE / "configs" if (_PACKAGE / "configs").is_dir()
                    else _PACKAGE.parent / "configs")
# In a source checkout the data and the embedded stores live beside configs/; an installed
# package has no such root: set OBESITY_ROOT or paths.root.
SOURCE_ROOT: Path | None = (CONFIG_DIR.parent if (CONFIG_DIR.parent / "pyproject.toml").is_file()
                            else None)
GROUPS = ("data", "model", "registry")  # the choices a composed train config records by name


def root_override(overrides: Sequence[str]) -> list[str]:
    """`paths.root=<checkout>` unless the caller or OBESITY_ROOT says where the root is."""
    given = any(o.lstrip("+~").split("=")[0] == "paths.root" for o in overrides)
    if given or "OBESITY_ROOT" in os.environ or SOURCE_ROOT is None:
        return []
    return [f"paths.root={SOURCE_ROOT}"]


def compose(overrides: Sequence[str] = (), config_name: str = "train") -> DictConfig:
    """configs/<config_name>.yaml composed with command-line `overrides`, from any directory."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides)
    # Inside a running Hydra app (a sweep's end composes a model card's command) Hydra's global
    # state is taken: set it aside for this compose and give it back after.
    running = GlobalHydra.instance()
    outer = running.hydra if running.is_initialized() else None
    running.clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR)):
            return hydra_compose(config_name, overrides=[*root_override(overrides), *overrides])
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_message(exc)) from None
    finally:
        if outer is not None:
            GlobalHydra.instance().clear()
            GlobalHydra.instance().initialize(outer)


def compose_saved(path: Path) -> DictConfig:
    """A composed train config saved as YAML (params.yaml, a run's config/resolved.yaml), checked
    again: its group choices are composed afresh, then its values are merged onto them (a key
    the schemas do not know, or a value of the wrong type, is a ConfigError naming it)."""
    from omegaconf.errors import OmegaConfBaseException

    if not path.is_file():
        raise ConfigError(f"{path} is missing: run `python scripts/params.py` (or dvc exp run)")
    try:
        saved = OmegaConf.load(path)
        if not isinstance(saved, DictConfig):
            raise ConfigError("a mapping of config keys is expected")
        choices = [f"{group}={saved[group].name}" for group in GROUPS]
        merged = OmegaConf.merge(compose([*choices, f"paths.root={saved.paths.root}"]), saved)
        assert isinstance(merged, DictConfig)  # a merge onto a DictConfig is one
        return merged
    except (OmegaConfBaseException, ConfigError) as exc:
        raise ConfigError(f"{path}: {_message(exc)}") from None


def _message(exc: Exception) -> str:
    """Hydra's own message names the key (and, for a group, the available options); the cause
    sometimes says more."""
    cause = exc.__cause__
    extra = str(cause) if cause is not None and str(cause) not in str(exc) else ""
    return f"{exc}" + (f"\n{extra}" if extra else "")


# What a run's own environment decides, not what it trains: left out of a reproducing command.
_ENVIRONMENT = ("paths.", "registry.", "run_name", "trial", "promote")


def reproduce_command(saved: DictConfig) -> str:
    """The `python -m obesity.train ...` line that trains what a run's resolved config describes:
    its data and model choices and every training key that differs from their defaults (paths
    and stores are the reader's own)."""
    from obesity.config.schemas import flatten, plain

    groups = [f"{group}={saved[group].name}" for group in ("data", "model")]
    base = compose([*groups, f"paths.root={saved.paths.root}"])
    mine = dict(flatten(plain(saved)))
    theirs = dict(flatten(plain(base, resolve=True)))
    changed = [f"{key}={hydra_value(value)}" for key, value in mine.items()
               if not key.startswith(_ENVIRONMENT) and theirs.get(key, _MISSING) != value]
    return " ".join(["python", "-m", "obesity.train", *map(shlex.quote, groups + changed)])


_MISSING = object()


def hydra_value(value: Any) -> str:
    """A value in Hydra's override grammar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    text = str(value)
    bare = text and all(c.isalnum() or c in "_-./:" for c in text) and text not in ("null", "true", "false")
    return text if bare else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

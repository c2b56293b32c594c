"""The one way a config is made: configs/<name>.yaml composed by Hydra with overrides.

The command line (through `hydra.main` on the same CONFIG_DIR), the Python API, the registry CLI,
scripts/params.py, the DVC stages and the tests all compose here, so a config means the same
thing everywhere and a bad override fails the same way (ConfigError naming the key).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from obesity.config import schemas
from obesity.errors import ConfigError, first_line, printable

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
    schemas.register()
    # Inside a running Hydra app (a sweep's end composes a model card's command) Hydra's global
    # state is taken: set it aside for this compose and give it back after.
    running = GlobalHydra.instance()
    outer = running.hydra if running.is_initialized() else None
    running.clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR)):
            return hydra_compose(config_name, overrides=[*root_override(overrides), *overrides])
    except (HydraException, OmegaConfBaseException, ValueError) as exc:  # ValueError: `=3`
        raise ConfigError(one_line(exc)) from None
    finally:
        if outer is not None:
            GlobalHydra.instance().clear()
            GlobalHydra.instance().initialize(outer)


def hydra_cli(main: Any) -> None:
    """Run a `hydra.main` entrypoint so that a bad override is one line naming the key (`error:
    model.max_dept: no such key (did you mean 'max_depth'...)`, exit 1) instead of Hydra's 3-5
    lines and its `+key=value` advice, which adds a key no estimator takes."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from obesity.environment import quiet_libraries

    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing: said here
    quiet_libraries()  # before MLflow or Evidently is imported
    schemas.register()  # before hydra.main composes
    try:
        main()
    except (HydraException, OmegaConfBaseException) as exc:
        print(f"error: {printable(one_line(exc))}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


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
        raise ConfigError(f"{path}: {one_line(exc)}") from None


def one_line(exc: BaseException) -> str:
    """One line naming the key and what it may be, from Hydra's and OmegaConf's errors (they
    take 3-5 lines, and suggest `+key=value`, which adds a key no estimator takes)."""
    import dataclasses
    import re

    cause = exc.__cause__
    key = getattr(cause, "full_key", None)
    if key and re.match(r"Key '.*' not in", str(getattr(cause, "msg", ""))):
        kind = getattr(cause, "object_type", None)
        known = ([f.name for f in dataclasses.fields(kind) if not f.name.startswith("_")]
                 if kind is not None and dataclasses.is_dataclass(kind) else [])
        guess = re.search(r"Did you mean(?: one of)?: (.*)$", str(cause.msg), re.M)  # type: ignore[union-attr]
        return (f"{key}: no such key" + (f" (did you mean {guess.group(1).rstrip('?')}?)" if guess else "")
                + (f"; the keys there: {', '.join(known)}" if known else ""))
    if key:
        return f"{key}: {first_line(str(getattr(cause, 'msg', cause)))}"
    found = re.search(r"Could not find '([^']+)/([^']+)'.*?Available options in '[^']+':\n((?:\t[^\n]*\n?)+)",
                      str(exc), re.S)
    if found:
        group, option, options = found.groups()
        return (f"{group}={option}: no such option; {group} is one of: "
                f"{', '.join(o.strip() for o in options.strip().splitlines())}")
    lines = [line for line in (str(exc) + "\n" + str(cause or "")).splitlines() if line.strip()]
    return "; ".join(dict.fromkeys(line.strip() for line in lines[:2])) or type(exc).__name__


# What a run's own environment decides, not what it trains: left out of a reproducing command.
_ENVIRONMENT = ("paths.", "registry.", "run_name", "trial", "promote")


def sweep_command(data_name: str, model: str = "rf") -> str:
    """The sweep that registers a model of `data_name`'s registered model (obesity_<data>): the
    hint wherever there is none yet."""
    return f"python -m obesity.train -m sweep={model} data={data_name}"


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

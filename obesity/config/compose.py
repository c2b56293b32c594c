"""The one way a config is made: configs/<name>.yaml composed by Hydra with overrides.

The command line (through `hydra.main` on the same CONFIG_DIR), the Python API, the registry CLI,
scripts/params.py, the DVC stages and the tests all compose here, so a config means the same
thing everywhere and a bad override fails the same way (ConfigError naming the key).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

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
T = TypeVar("T")
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


def typed(cfg: DictConfig | T, schema: type[T]) -> T:
    """A composed, validated config as its schema's dataclass (OmegaConf.to_object: every
    interpolation resolved, enums as members): what entrypoints hand to the core. A config that
    is one already is returned as it is."""
    from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

    if isinstance(cfg, schema):
        return cfg
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"expected a composed config or a {schema.__name__}, got {type(cfg).__name__}")
    try:
        obj = OmegaConf.to_object(cfg)
    except InterpolationResolutionError as exc:  # e.g. registry=server without its env var
        key = str(getattr(exc, "full_key", "") or "")
        group = key.split(".")[0]
        name = OmegaConf.select(cfg, f"{group}.name", default=None) if key else None
        found = re.search(r'"([^"]+)"', str(exc))  # OmegaConf: KeyError raised while ... "<why>"
        said = found.group(1) if found else first_line(str(exc))
        raise ConfigError(f"{key}: {said}" + (f": {group}={name} needs its environment (set "
                          f"it, or choose another {group})" if name else "")) from None
    except OmegaConfBaseException as exc:  # e.g. a value left missing (???)
        raise ConfigError(one_line(exc)) from None
    if not isinstance(obj, schema):
        raise ConfigError(f"expected a {schema.__name__} config, got {type(obj).__name__}")
    return obj


def hydra_cli(main: Any) -> None:
    """Run a `hydra.main` entrypoint so that a bad override is one line naming the key (`error:
    model.max_dept: no such key (did you mean 'max_depth'...)`, exit 1) instead of Hydra's 3-5
    lines and its `+key=value` advice, which adds a key no estimator takes."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from obesity.runtime import command_line_process, using

    command_line_process()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing: said here
    schemas.register()  # before hydra.main composes
    try:
        with using():  # the environment set before MLflow or Evidently is imported
            main()
    except (HydraException, OmegaConfBaseException) as exc:
        print(f"error: {printable(one_line(exc))}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def compose_saved(path: Path) -> DictConfig:
    """A composed train config saved as YAML (params.yaml), checked again (`recompose`)."""
    if not path.is_file():
        raise ConfigError(f"{path} is missing: run `python scripts/params.py` (or dvc exp run)")
    return recompose(path.read_text(), str(path))


def recompose(text: str, where: str) -> DictConfig:
    """A train config saved as YAML (`where`: params.yaml, a run's config/resolved.yaml)
    checked again: its group choices are composed afresh, then its values are merged onto them
    (a key the schemas do not know, or a value of the wrong type, is a ConfigError naming it;
    a key it lacks, saved before the key existed, takes the default)."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        saved = OmegaConf.create(text)
        if not isinstance(saved, DictConfig):
            raise ConfigError("a mapping of config keys is expected")
        choices = [f"{group}={saved[group].name}" for group in GROUPS]
        merged = OmegaConf.merge(compose([*choices, f"paths.root={saved.paths.root}"]), saved)
        assert isinstance(merged, DictConfig)  # a merge onto a DictConfig is one
        return merged
    except (OmegaConfBaseException, ConfigError) as exc:
        raise ConfigError(f"{where}: {one_line(exc)}") from None


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


# What a run's own environment decides, not what it trains: left out of a portable command.
_ENVIRONMENT = ("paths.", "registry.", "run_name", "trial", "promote")


def sweep_command(data_name: str, model: str = "rf") -> str:
    """The sweep that registers a model of `data_name`'s registered model (obesity_<data>): the
    hint wherever there is none yet."""
    return f"python -m obesity.train -m sweep={model} data={data_name}"


def command_line(cfg: DictConfig | schemas.TrainConfig, portable: bool = False) -> str:
    """The `python -m obesity.train ...` line that trains what `cfg` describes (a composed
    config, or a run's saved resolved one): its group choices, then every key whose value
    differs from what those choices compose to (`~key` for a key it lacks).

    `portable`: for a reader elsewhere (a model card): the data and model choices always named,
    what the run's own environment decides (paths, stores, run name, trial) left out. Else the
    line reruns `cfg` here: only choices that are not the defaults, paths and stores included.
    """
    from obesity.config.values import flatten, plain

    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg)
    defaults = compose()
    groups = [f"{g}={node[g].name}" for g in GROUPS
              if (portable and g != "registry") or node[g].name != defaults[g].name]
    base = compose([*groups, f"paths.root={cfg.paths.root}"])
    mine, theirs = dict(flatten(plain(node, resolve=False))), dict(flatten(plain(base, resolve=False)))
    mine_now, theirs_now = dict(flatten(plain(node))), dict(flatten(plain(base)))
    # a key differs when its value differs both as written and as resolved (`${seed}` against
    # a saved run's 42 is no difference)
    differ = [key for key, value in mine.items()
              if key not in theirs or (value != theirs[key] and mine_now[key] != theirs_now[key])]
    # a key the defaults fill by interpolation (`model.random_state: ${seed}`) is said only when
    # the other differences do not already give it its value (`seed=11` says it)
    sources = [k for k in differ if not (isinstance(theirs.get(k), str) and "${" in theirs[k])]
    followed = dict(flatten(plain(compose([*groups, f"paths.root={cfg.paths.root}",
                                           *(f"{k}={hydra_value(mine[k])}" for k in sources)]))))
    changed = [f"{k}={hydra_value(mine[k])}" for k in differ
               if k in sources or followed.get(k) != mine_now[k]]
    removed = [f"~{key}" for key in theirs if key not in mine]
    here = [f"paths.root={cfg.paths.root}"] if cfg.paths.root != defaults.paths.root else []
    words = [*groups, *([] if portable else here), *changed, *removed]
    if portable:
        words = [w for w in words if not w.lstrip("~").startswith(_ENVIRONMENT)]
    return " ".join(["python", "-m", "obesity.train", *map(shlex.quote, words)])




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

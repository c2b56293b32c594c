"""The DVC pipeline's stages (dvc.yaml): `python -m obesity.stages.<prepare|train|evaluate>`.

Each reads the composed config from `params.yaml` (generated from configs/ by
`python scripts/params.py` or by `dvc exp run -S ...`; never edited by hand) and writes only the
outputs dvc.yaml declares for it, so DVC can tell exactly what a change reruns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

PARAMS = Path("params.yaml")
PREPARED = Path("data/prepared")
REPORTS = Path("reports")
MODEL_FILE = Path("models/model.skops")


def load_params(path: Path = PARAMS) -> DictConfig:
    """params.yaml, re-checked against the structured schemas (it is a composed train config)."""
    from obesity import config
    from obesity.errors import ConfigError

    if not path.exists():
        raise ConfigError(f"{path} is missing: run `python scripts/params.py` (or dvc exp run)")
    loaded = OmegaConf.load(path)
    try:
        schema = OmegaConf.structured(config.TrainConfig)
        model = OmegaConf.structured(config.MODEL_SCHEMAS[loaded.model.name])
        cfg = OmegaConf.merge(schema, loaded)
        cfg.model = OmegaConf.merge(model, loaded.model)
        cfg.data = OmegaConf.merge(OmegaConf.structured(config.DataConfig), loaded.data)
        cfg.registry = OmegaConf.merge(OmegaConf.structured(config.RegistryConfig), loaded.registry)
    except Exception as exc:  # OmegaConf names the key and the bad value
        raise ConfigError(f"{path}: {exc}") from None
    return cfg


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def main(stage: Any) -> None:
    """Run one stage: a clear one-line error and exit 1 on a data or config problem."""
    import logging
    import sys

    from obesity.errors import ObesityError

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    try:
        stage(load_params())
    except ObesityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)

"""Write params.yaml: configs/train.yaml composed by Hydra, as DVC's `dvc exp run -S` does.

    python scripts/params.py [override ...]      e.g. model=hgb data=lifestyle seed=3

params.yaml is generated, never edited by hand: change configs/ or pass overrides. Paths stay
relative to the repository root (where DVC runs the stages).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("# GENERATED from configs/ (Hydra composition of train.yaml): do not edit by hand.\n"
          "# Regenerate: python scripts/params.py [overrides]; or dvc exp run -S key=value.\n")


def compose_params(overrides: list[str]) -> str:
    from omegaconf import OmegaConf

    from obesity.config.compose import compose

    os.environ.pop("OBESITY_ROOT", None)
    cfg = compose(["paths.root=.", *overrides])  # paths relative to the repository root
    OmegaConf.resolve(cfg)
    return OmegaConf.to_yaml(cfg)


if __name__ == "__main__":
    (ROOT / "params.yaml").write_text(HEADER + compose_params(sys.argv[1:]))
    print(f"wrote {ROOT / 'params.yaml'}")

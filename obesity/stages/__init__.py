"""The DVC pipeline's stages (dvc.yaml): `python -m obesity.stages.<prepare|train|evaluate>`.

Each reads the composed config from `params.yaml` (generated from configs/ by
`python scripts/params.py` or by `dvc exp run -S ...`; never edited by hand) and writes only the
outputs dvc.yaml declares for it, so DVC can tell exactly what a change reruns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PARAMS = Path("params.yaml")
PREPARED = Path("data/prepared")
REPORTS = Path("reports")
MODEL_FILE = Path("models/model.skops")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def main(stage: Any) -> None:
    """Run one stage on params.yaml: a clear one-line error and exit 1 on a data or config problem."""
    import logging
    import sys

    from obesity.config.compose import compose_saved, typed
    from obesity.config.schemas import TrainConfig
    from obesity.errors import exit_on_error
    from obesity.runtime import command_line_process, using

    command_line_process()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    with using(), exit_on_error():  # the environment set before MLflow is imported
        stage(typed(compose_saved(PARAMS), TrainConfig))

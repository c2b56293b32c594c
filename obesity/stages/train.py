"""Stage `train`: `obesity.training.job.run`, the code path of `python -m obesity.train`, on params.yaml.

Logs to MLflow like the CLI, then keeps the fitted pipeline (skops) and the CV scores for DVC.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from obesity.config.schemas import TrainConfig
from obesity.stages import MODEL_FILE, REPORTS, main, write_json
from obesity.training import job as training

CV_METRICS = ("cv_accuracy_mean", "cv_accuracy_std", "cv_f1_macro_mean", "cv_f1_macro_std")


def train_stage(cfg: TrainConfig) -> None:
    import skops.io

    result = training.run(cfg, overrides=["(dvc stage train: params.yaml)"])
    MODEL_FILE.parent.mkdir(parents=True, exist_ok=True)
    skops.io.dump(result.model, MODEL_FILE)
    byte_stable(MODEL_FILE)
    # the headline scores only (per class: MLflow); no run id, it would change on every rerun
    write_json(REPORTS / "train.json", {k: result.metrics[k] for k in CV_METRICS})
    print(f"train: MLflow run {result.run_id}")


def byte_stable(path: Path) -> None:
    """Rewrite a skops file so that the same model gives the same bytes: skops names objects by
    their memory address (`id()`) and stamps each zip entry with the time, so every rerun gave
    another md5 and left dvc.lock modified. Addresses become their order of first appearance."""
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    schema = next(data for info, data in entries if info.filename == "schema.json").decode()
    order: dict[str, str] = {}  # address -> its number

    def renumbered(match: re.Match[str]) -> str:
        before, address, after = match.groups()
        return f"{before}{order.setdefault(address, str(len(order)))}{after}"

    schema = ADDRESS.sub(renumbered, schema)
    with zipfile.ZipFile(path, "w") as target:
        for info, data in entries:
            name = "schema.json" if info.filename == "schema.json" else \
                f"{order[info.filename.removesuffix('.npy')]}.npy"
            fixed = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = info.compress_type
            target.writestr(fixed, schema.encode() if name == "schema.json" else data)


# an object's address in a skops schema: `"__id__": 1404…` and `"file": "1404….npy"`
ADDRESS = re.compile(r'("__id__": |"file": ")(\d+)(\.npy"|)')


if __name__ == "__main__":
    main(train_stage)

"""Stage `prepare`: validate the raw CSV, drop duplicates, split; a data report as DVC metrics."""

from __future__ import annotations

from obesity.config.schemas import TrainConfig
from obesity.data.contract import TARGET
from obesity.data.split import split_of
from obesity.stages import PREPARED, REPORTS, main, write_json


def prepare(cfg: TrainConfig) -> None:
    dataset, split = split_of(cfg.data)
    PREPARED.mkdir(parents=True, exist_ok=True)
    for name, X, y in (("train", split.X_train, split.y_train), ("test", split.X_test, split.y_test)):
        X.assign(**{TARGET: y}).to_csv(PREPARED / f"{name}.csv", index=False)
    write_json(REPORTS / "data.json", {
        "rows_raw": dataset.rows_raw,
        "rows_dedup": dataset.rows,
        "duplicates_dropped": dataset.duplicates_dropped,
        "rows_train": len(split.X_train),
        "rows_test": len(split.X_test),
    })


if __name__ == "__main__":
    main(prepare)

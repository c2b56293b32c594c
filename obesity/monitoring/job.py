"""One check of the served model: the window of logged traffic against the served version's
training split (drift), and the labels that came back against its test-split estimate
(realized performance, obesity.monitoring.performance).

Writes `summary.json`, Evidently's `snapshot.json` and (on drift, or as `monitor.report` says)
its `report.html` into `out_dir`, logs them as a run of the experiment `monitor.experiment`
(tags name the model version), tags the version (`drift_status`, `drift_share`,
`drift_checked_at`, `drift_run_id`; `performance_status`, `realized_*`) and, on drift with
`monitor.on_drift=retrain` or on degradation with `monitor.on_degraded=retrain`, starts the
retrain (on degradation: on the original data plus the exported labels) and names its run in
the summary.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obesity.config.compose import sweep_command
from obesity.config.schemas import MonitorConfig, MonitorJobConfig, TrainConfig, feature_columns
from obesity.config.values import plain
from obesity.errors import ObesityError
from obesity.monitoring.window import log_url

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)
# The exit code of `python -m obesity.monitor` for each outcome (errors exit 1); a degraded
# version exits 5 whatever the drift verdict
EXIT_CODES = {"no_drift": 0, "drift": 3, "insufficient_data": 4}
DEGRADED_EXIT = 5


@dataclass
class Check:
    status: str  # no_drift | drift | insufficient_data
    summary: dict[str, Any]
    out_dir: Path
    run_id: str
    retrain: dict[str, Any] | None = None
    performance: str = "insufficient"  # the checked version's: ok | degraded | insufficient

    @property
    def exit_code(self) -> int:
        return DEGRADED_EXIT if self.performance == "degraded" else EXIT_CODES[self.status]


def run(cfg: MonitorJobConfig, out_dir: Path) -> Check:
    """Check `cfg.model_name` at `cfg.alias` (or `cfg.version`) against its logged traffic."""
    from obesity.config.checks import check
    from obesity.monitoring.window import read_window
    from obesity.registry.policy import run_of
    from obesity.stores import tracking

    check(cfg)
    reg, m = cfg.registry, cfg.monitor
    with tracking.store_errors(reg):
        client = tracking.client(reg)
        version = _version(client, cfg)
        trained = tracking.run_config(run_of(version))
    inputs = feature_columns(trained.data)
    window = read_window(reg.prediction_log, cfg.model_name, m.window, m.since_hours, inputs)
    summary: dict[str, Any] = {
        "model_name": cfg.model_name, "model_version": str(version.version),
        "alias": None if cfg.version is not None else cfg.alias,
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "prediction_log": window.source, "rows": len(window), "rows_without_inputs": window.without_inputs,
        "window": m.window, "since_hours": m.since_hours, "min_rows": m.min_rows,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(window) < m.min_rows:
        status = "insufficient_data"
        summary["why"] = (f"{len(window)} logged row(s) with inputs for {cfg.model_name} in the "
                          f"window, monitor.min_rows={m.min_rows}"
                          + (f" ({window.without_inputs} more logged without inputs: "
                             "monitor.log_inputs=false)" if window.without_inputs else ""))
    else:
        drift = _drift(version, trained, window.frame, inputs, m)
        status = "drift" if drift.drifted else "no_drift"
        summary |= drift.summary()
        drift.save(out_dir, html=m.report == "always" or (m.report == "drift" and drift.drifted))
    summary["status"] = status
    with tracking.store_errors(reg):
        judged = _performance(client, cfg, version, out_dir)
    summary["performance"] = judged
    with tracking.store_errors(reg):
        run_id = _record(client, cfg, version, summary, out_dir)
    result = Check(status, summary, out_dir, run_id, performance=judged["status"])
    log.info("%s version %s: %s (%s)", cfg.model_name, version.version, status, _say(summary))
    log.info("%s version %s: performance %s (%s)", cfg.model_name, version.version,
             judged["status"], judged["why"])
    degraded = judged["status"] == "degraded" and m.on_degraded == "retrain"
    if degraded or (status == "drift" and m.on_drift == "retrain"):
        from obesity.monitoring import retrain

        extra = _export_labels(cfg) if degraded else None
        if extra is not None:
            summary["labels_export"] = extra
        result.retrain = summary["retrain"] = retrain.start(
            cfg, version, run_id, out_dir, extra=Path(extra["path"]) if extra else None)
        _write(summary, out_dir)
        with tracking.store_errors(reg):
            client.log_artifact(run_id, str(out_dir / "summary.json"))
            client.set_tag(run_id, "retrain_run_id", result.retrain.get("sweep_run_id") or "")
        if "error" in result.retrain:
            raise ObesityError(result.retrain["error"])
    return result


def _performance(client: MlflowClient, cfg: MonitorJobConfig, version: ModelVersion,
                 out_dir: Path) -> dict[str, Any]:
    """Every version with labelled rows in the label window, judged (performance.realized);
    the checked version's verdict first."""
    from obesity.feedback.store import labelled_rows
    from obesity.monitoring.performance import realized

    m = cfg.monitor
    frame = labelled_rows(log_url(cfg.registry.prediction_log), cfg.model_name, m.label_window,
                          m.since_hours)

    def estimates(number: str) -> dict[str, float]:
        try:
            found = client.get_model_version(cfg.model_name, number)
            return dict(client.get_run(found.run_id).data.metrics) if found.run_id else {}
        except Exception:  # rows of a version deleted since: scored, without an estimate
            return {}

    versions = realized(frame, estimates, m, cfg.registry)
    mine = versions.get(str(version.version))
    if mine is not None and mine.status != "insufficient" and (
            m.report == "always" or (m.report == "drift" and mine.status == "degraded")):
        _performance_report(version, frame[frame["model_version"] == str(version.version)], out_dir)
    return {"status": mine.status if mine else "insufficient",
            "why": mine.why if mine else (f"no labelled row of version {version.version} in the "
                                          f"last {m.label_window} labelled rows"),
            "rows": len(frame), "label_window": m.label_window, "min_labels": m.min_labels,
            "margin": m.margin, "versions": [v.as_dict() for v in versions.values()]}


def _performance_report(version: ModelVersion, labelled: Any, out_dir: Path) -> None:
    """Evidently's classification report of the labelled answers against the version's test
    split (and its answers there)."""
    import pandas as pd

    from obesity.model import files as model_files
    from obesity.monitoring.performance import REPORT, save_report
    from obesity.registry.policy import test_split_of

    split = test_split_of(version)
    model = model_files.load_pipeline(version.name, version.version)
    reference = pd.DataFrame({"label": split.y_test.to_numpy(),
                              "prediction": model.predict(split.X_test)})
    out_dir.mkdir(parents=True, exist_ok=True)
    save_report(reference, labelled, out_dir / REPORT)


def _export_labels(cfg: MonitorJobConfig) -> dict[str, Any]:
    """The labelled rows as a CSV (and a DVC data version) for the retrain to learn from."""
    from obesity.feedback.export import export

    done = export(log_url(cfg.registry.prediction_log), cfg.model_name, Path(cfg.monitor.labels_export))
    log.info("degraded: %d labelled row(s) exported to %s (md5 %s) for the retrain", done.rows,
             done.path, done.md5)
    return {"path": str(done.path), "rows": done.rows, "md5": done.md5,
            "dvc_file": str(done.dvc_file) if done.dvc_file else None}


def _version(client: MlflowClient, cfg: MonitorJobConfig) -> ModelVersion:
    from obesity.registry.aliases import resolve

    return resolve(client, cfg.model_name, cfg.alias, cfg.version,
                   f": nothing is served to check (train one: {sweep_command(cfg.data.name)})")


def _drift(version: ModelVersion, trained: TrainConfig, current: Any, inputs: list[str],
           m: MonitorConfig) -> Any:
    """The reference (the version's training split and its predictions on it) against the
    window (and the version's predictions on it: the rows may have been answered by others)."""
    from obesity.model import files as model_files
    from obesity.monitoring.drift import PREDICTION, detect
    from obesity.registry.policy import test_split_of

    # the same load and split code as training; DataError naming the file when it is not the
    # data the version was trained on (md5)
    split = test_split_of(version, trained)
    model = model_files.load_pipeline(version.name, version.version)
    reference = split.X_train[inputs].assign(**{PREDICTION: model.predict(split.X_train)})
    window = current[inputs].assign(**{PREDICTION: model.predict(current[inputs])})
    return detect(reference, window, inputs, m)


def _record(client: MlflowClient, cfg: MonitorJobConfig, version: ModelVersion,
            summary: dict[str, Any], out_dir: Path) -> str:
    """The check as an MLflow run of `monitor.experiment`, linked to the version both ways."""
    from mlflow.entities import Metric, Param, RunTag

    from obesity.monitoring.drift import REPORT, SNAPSHOT
    from obesity.monitoring.performance import REPORT as PERFORMANCE_REPORT
    from obesity.stores import tracking

    experiment_id = tracking.setup(dataclasses.replace(cfg.registry, experiment=cfg.monitor.experiment))
    status = summary["status"]
    tags = {"model_name": cfg.model_name, "model_version": str(version.version),
            "model_run_id": version.run_id or "", "drift_status": status,
            "drifted_columns": ",".join(summary.get("drifted_columns", []))}
    run = client.create_run(experiment_id, run_name=f"drift {cfg.model_name} v{version.version}",
                            tags=tags)
    run_id = run.info.run_id
    summary["run_id"] = run_id
    _write(summary, out_dir)
    now = int(datetime.now(UTC).timestamp() * 1000)
    metrics = {"rows": summary["rows"], "rows_without_inputs": summary["rows_without_inputs"]}
    if status != "insufficient_data":
        metrics |= {"drift_share": summary["drift_share"],
                    "prediction_drift_score": summary["prediction"]["score"],
                    **{f"drift_score_{c['column']}": c["score"] for c in summary["columns"]}}
    performance = summary["performance"]
    mine = next((v for v in performance["versions"]
                 if v["version"] == str(version.version)), None)
    metrics["labelled_rows"] = mine["rows"] if mine else 0
    for kind, s in (mine or {}).get("scores", {}).items():
        metrics |= {f"realized_{kind}": s["value"], f"realized_{kind}_low": s["low"],
                    f"realized_{kind}_high": s["high"]}
    params = {f"monitor.{k}": v for k, v in plain(cfg.monitor).items()}
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                     params=[Param(k, tracking.param_value(v)) for k, v in params.items()],
                     tags=[RunTag("alias", str(summary["alias"])),
                           RunTag("performance_status", performance["status"])])
    for name in (SNAPSHOT, REPORT, PERFORMANCE_REPORT, "summary.json"):
        if (out_dir / name).is_file():
            client.log_artifact(run_id, str(out_dir / name))
    client.set_terminated(run_id, "FINISHED")
    version_tags = {"drift_status": status, "drift_checked_at": summary["checked_at"],
                    "drift_run_id": run_id}
    if status != "insufficient_data":
        version_tags["drift_share"] = f"{summary['drift_share']:.4f}"
    for key, value in version_tags.items():
        client.set_model_version_tag(cfg.model_name, str(version.version), key, value)
    for judged in performance["versions"]:  # every version its labels judged
        if judged["version"] != str(version.version) and judged["status"] == "insufficient":
            continue
        _tag_performance(client, cfg.model_name, judged, summary["checked_at"], run_id)
    if mine is None:
        _tag_performance(client, cfg.model_name, {"version": str(version.version), "rows": 0,
                                                   "status": "insufficient", "scores": {}},
                         summary["checked_at"], run_id)
    return run_id


def _tag_performance(client: MlflowClient, model_name: str, judged: dict[str, Any], at: str,
                     run_id: str) -> None:
    from mlflow.exceptions import MlflowException

    tags = {"performance_status": judged["status"], "performance_checked_at": at,
            "performance_run_id": run_id, "realized_rows": str(judged["rows"])}
    for kind in ("accuracy", "f1_macro"):  # "-": no figure this time (never an older one)
        s = judged["scores"].get(kind)
        tags[f"realized_{kind}"] = (f"{s['value']:.4f} [{s['low']:.4f}, {s['high']:.4f}]"
                                    if s is not None else "-")
    try:
        for key, value in tags.items():
            client.set_model_version_tag(model_name, judged["version"], key, value)
    except MlflowException:  # a version deleted since its answers were logged
        log.warning("version %s of %s is gone: its realized performance is in run %s only",
                    judged["version"], model_name, run_id)


def _write(summary: dict[str, Any], out_dir: Path) -> None:
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def _say(summary: dict[str, Any]) -> str:
    if summary["status"] == "insufficient_data":
        return summary["why"]
    columns = summary["drifted_columns"]
    said = (f"{len(columns)} of {len(summary['columns'])} input column(s) drifted"
            + (f": {', '.join(columns)}" if columns else ""))
    if summary["prediction_drift"]:
        said += f"; the predicted classes drifted ({summary['prediction']['score']:.3f})"
    return f"{said}; {summary['rows']} rows"

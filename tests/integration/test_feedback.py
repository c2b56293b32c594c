"""The truth after deployment: labels over HTTP and from files, the token that guards them, the
monitor's verdict on realized performance, `registry evaluate`, and the loop end to end:
serve, predict, label, monitor (degraded), retrain on the labels, guard on fresh rows, served."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from obesity.config.compose import compose
from obesity.data.contract import TARGET
from obesity.data.load import file_md5, load_dataset
from obesity.data.split import split_of
from obesity.errors import ConfigError, DataError
from obesity.monitoring import job
from obesity.registry import cli as registry_cli
from obesity.serving.app import create_app
from tests.helpers import (
    ROOT,
    compose_monitor,
    compose_serve,
    compose_train,
    metric_value,
    mlflow_client,
    other_population,
    register,
    rf_champion,
    serving,
    wait_until,
)

TOKEN, OTHER = "a-token-for-the-tests-0123456789", "the-rotated-token-9876543210abcd"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# the drift half of a check has its own tests (test_monitor.py): too few rows for it here
LABELS_ONLY = ["monitor.min_rows=100000", "monitor.window=100000"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A champion (rf, 60 trees) in a tmp store: version 1."""
    return rf_champion(tmp_path_factory, "labelled")


@pytest.fixture
def tokens(monkeypatch):
    monkeypatch.setenv("OBESITY_API_TOKENS", f"{TOKEN}, {OTHER}")


def records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.drop(columns=[TARGET], errors="ignore").to_json(orient="records"))


def labels_in(outputs: Path) -> list[tuple]:
    """(prediction_id, label, replaced) of every stored label, the history included."""
    with sqlite3.connect(outputs / "predictions.db") as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name='labels'").fetchone():
            return []
        return db.execute("SELECT prediction_id, label, replaced_at IS NOT NULL FROM labels "
                          "ORDER BY id").fetchall()


def predict(client, rows: list[dict], headers: dict | None = None) -> tuple[str, list[str]]:
    """Answer `rows` in batches of 500: (the last request's id, every predicted class)."""
    predicted, rid = [], ""
    for start in range(0, len(rows), 500):
        answer = client.post("/predict/batch", json={"rows": rows[start:start + 500]},
                             headers=headers or {})
        assert answer.status_code == 200, answer.text
        rid = answer.headers["x-request-id"]
        predicted += [p["prediction"] for p in answer.json()["predictions"]]
    return rid, predicted


def test_labels_over_http_reach_the_store_and_bad_ones_are_refused(served, tokens, caplog):
    caplog.set_level(logging.DEBUG)
    rows = records(other_population(3, seed=1))
    with TestClient(app=create_app(compose_serve(served))) as client:
        one = client.post("/predict", json=rows[0]).headers["x-request-id"]
        batch, _ = predict(client, rows)
        before = labels_in(served)
        normal = 'obesity_feedback_labels_total{label="Normal_Weight"}'
        normal_before = metric_value(client.get("/metrics").text, normal)

        def refused(path: str, body, status: int, *said: str, headers=AUTH, **kw) -> None:
            send = {"content": body, "headers": {**headers, "content-type": "text/csv"}} \
                if isinstance(body, str) else {"json": body, "headers": headers}
            answer = client.post(path, **send, **kw)
            assert answer.status_code == status, answer.text
            assert all(s in answer.json()["detail"] for s in said), answer.json()
            assert labels_in(served) == before  # all or nothing
            assert TOKEN not in answer.text and "wrong-token" not in answer.text

        label = {"request_id": one, "label": "Obesity_Type_I"}
        refused("/feedback", label, 401, "Bearer", headers={})
        refused("/feedback", label, 401, "valid token",
                headers={"Authorization": "Bearer wrong-token"})
        refused("/feedback", label, 401, "Bearer", headers={"Authorization": TOKEN})  # no scheme
        refused("/feedback/batch", {"labels": [label, {"request_id": batch, "row": 1, "label": "Fat"},
                                               {"request_id": batch, "row": 2, "label": "obese"}]},
                400, "labels[1]: 'Fat' is not a class", "labels[2]: 'obese'")
        unknown = {"request_id": "no-such-id", "label": "Normal_Weight"}
        refused("/feedback/batch", {"labels": [label, unknown]},
                404, "labels[1]: no prediction with request id 'no-such-id'")
        refused("/feedback", {"request_id": batch, "row": 3, "label": "Normal_Weight"}, 404,
                f"request '{batch}' has 3 row(s), no row 3")
        refused("/feedback/batch", {"labels": [label, label]}, 409, "labelled twice")
        refused("/feedback", {"request_id": one, "label": "Normal_Weight", "extra": 1}, 400)
        refused("/feedback/csv", f"request_id,label,row\n{batch},Normal_Weight,0\n{batch},Normal_Weight,x\n",
                400, "line 3: row 'x' is not a whole number")
        assert client.post("/feedback", content=json.dumps(label), headers=AUTH).status_code == 415

        answer = client.post("/feedback", json=label, headers=AUTH)
        assert answer.status_code == 201 and answer.json() == {"stored": 1, "replaced": 0}
        before = labels_in(served)
        refused("/feedback", {**label, "label": "Normal_Weight"}, 409,
                "have a label already", "'Obesity_Type_I'", "replace")
        # the rotated token works too, and replacing keeps the history
        answer = client.post("/feedback?replace=true", json={**label, "label": "Normal_Weight"},
                             headers={"Authorization": f"Bearer {OTHER}"})
        assert answer.status_code == 201 and answer.json() == {"stored": 1, "replaced": 1}
        csv = f"request_id,label,row\n{batch},Normal_Weight,0\n{batch},Obesity_Type_III,2\n"
        answer = client.post("/feedback/csv", content=csv, headers={**AUTH, "content-type": "text/csv"})
        assert answer.status_code == 201 and answer.json()["stored"] == 2
        assert metric_value(client.get("/metrics").text, normal) == normal_before + 2
    stored = labels_in(served)
    assert [(label, replaced) for _, label, replaced in stored[len(before) - 1:]] == [
        ("Obesity_Type_I", 1), ("Normal_Weight", 0), ("Normal_Weight", 0), ("Obesity_Type_III", 0)]
    assert TOKEN not in caplog.text and OTHER not in caplog.text


def test_without_a_token_labels_are_off_and_predictions_can_need_one(served, monkeypatch, tmp_path):
    monkeypatch.delenv("OBESITY_API_TOKENS", raising=False)
    with TestClient(app=create_app(compose_serve(served))) as client:
        answer = client.post("/feedback", json={"request_id": "x", "label": "Normal_Weight"})
        assert answer.status_code == 403 and "OBESITY_API_TOKENS" in answer.json()["detail"]
        assert client.post("/predict", json=records(other_population(1, 2))[0]).status_code == 200
    secrets = tmp_path / "tokens"
    secrets.write_text(f"# rotated monthly\n{TOKEN}\n")
    cfg = compose_serve(served, "auth.predictions=true", f"auth.tokens_file={secrets}")
    with TestClient(app=create_app(cfg)) as client:
        row = records(other_population(1, 2))[0]
        assert client.post("/predict", json=row).status_code == 401
        assert client.post("/predict", json=row, headers=AUTH).status_code == 200
        assert client.get("/health").status_code == 200  # probes stay open
    secrets.write_text("short\n")
    with pytest.raises(ConfigError, match=f"a token in {secrets} is shorter than 16") as error:
        create_app(cfg)
    assert "short" not in str(error.value).replace("shorter", "")


def feedback_cli(outputs: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "obesity.feedback", *args, f"paths.root={ROOT}",
           f"paths.outputs={outputs}"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_labels_from_a_file_and_the_labelled_rows_as_data(tmp_path):
    register(tmp_path, ["model=lr"])
    people = other_population(40, seed=4)
    with TestClient(app=create_app(compose_serve(tmp_path))) as client:
        rid, _ = predict(client, records(people))
    table = pd.DataFrame({"request_id": rid, "label": people[TARGET], "row": range(40)})
    bad = table.copy()
    bad.loc[1, "label"] = "Obese"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    refused = feedback_cli(tmp_path, str(tmp_path / "bad.csv"))
    assert refused.returncode == 1 and labels_in(tmp_path) == []
    assert refused.stderr.strip().splitlines()[-1].startswith(
        f"error: {tmp_path / 'bad.csv'}: nothing stored: 1 bad label(s): line 3: 'Obese' is not a class")
    table.to_csv(tmp_path / "labels.csv", index=False)
    done = feedback_cli(tmp_path, str(tmp_path / "labels.csv"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"stored 40 label(s) from {tmp_path / 'labels.csv'} (0 replaced")

    project = tmp_path / "project"  # a DVC project: the export becomes a tracked data version
    project.mkdir()
    dvc = Path(sys.executable).with_name("dvc")
    subprocess.run([str(dvc), "init", "--no-scm", "-q"], cwd=project, check=True)
    out = project / "feedback" / "labelled.csv"
    exported = feedback_cli(tmp_path, "export", "--out", str(out))
    assert exported.returncode == 0, exported.stderr[-2000:]
    data = load_dataset(out)  # contract-valid: what training reads
    assert data.rows_raw == 40 and f"md5 {file_md5(out)}" in exported.stdout
    tracked = yaml.safe_load(out.with_name("labelled.csv.dvc").read_text())["outs"][0]
    assert tracked["md5"] == file_md5(out) and f"tracked by {out}.dvc" in exported.stdout
    pd.testing.assert_frame_equal(data.frame.reset_index(drop=True)[people.columns].astype(str),
                                  load_dataset_frame(people).astype(str), check_dtype=False)
    first = out.read_bytes()
    from obesity.feedback.export import export

    url = compose_monitor(tmp_path).registry.prediction_log
    again = export(url, "obesity_full", out, dvc=False)
    assert out.read_bytes() == first and again.md5 == file_md5(out)  # same labels, same version


def load_dataset_frame(people: pd.DataFrame) -> pd.DataFrame:
    """`people` as the data loader types it (floats and text), deduplicated like it."""
    from obesity.data.load import validate

    return validate(people.astype(str)).drop_duplicates(ignore_index=True)


def sample(scraped: str, name: str, **labels: str) -> float | None:
    """The value of the one sample of `name` of the served version with these labels (None:
    no such sample)."""
    want = {"model": "obesity_full", "version": "1", **labels}
    for family in text_string_to_metric_families(scraped):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in want.items()):
                return s.value
    return None


def alerts_fire(scraped: str, folder: Path, expected: dict[str, list]) -> None:
    """`promtool test rules` of docs/alerts.yml on the obesity_ samples of a scrape (held for
    15 minutes): the alerts named in `expected` are exactly those."""
    series = [{"series": s.name + "{" + ",".join(f'{k}="{v}"' for k, v in s.labels.items()) + "}",
               "values": f"{s.value:g}x15"}
              for family in text_string_to_metric_families(scraped) for s in family.samples
              if s.name.startswith(("obesity_monitor_", "obesity_served_"))]
    spec = {"rule_files": [str(ROOT / "docs/alerts.yml")], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": [
                {"eval_time": "10m", "alertname": name, "exp_alerts": alerts}
                for name, alerts in expected.items()]}]}
    (folder / "alerts_test.yml").write_text(yaml.safe_dump(spec))
    result = subprocess.run(["promtool", "test", "rules", str(folder / "alerts_test.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_alert_rules_are_valid_prometheus_rules():
    result = subprocess.run(["promtool", "check", "rules", str(ROOT / "docs/alerts.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "SUCCESS: 6 rules found" in result.stdout, result.stdout + result.stderr


def shows(client, status: str, rows: int) -> bool:
    """One scrape shows a whole performance verdict: its status and (set last by a poll) its
    labelled rows; a scrape during a poll may see a part of it."""
    text = client.get("/metrics").text
    return (verdict(text, "performance", status) == 1
            and sample(text, "obesity_monitor_labelled_rows") == rows)


def verdict(client_or_text, check: str, status: str) -> float | None:
    text = client_or_text if isinstance(client_or_text, str) else client_or_text.get("/metrics").text
    return sample(text, "obesity_monitor_status", check=check, status=status)


def test_the_monitor_scores_labelled_traffic_ok_when_it_agrees_degraded_when_not(served, tokens, tmp_path):
    split = split_of(compose([]).data)[1]
    people = other_population(400, seed=6)
    with TestClient(app=create_app(compose_serve(served, "reload_interval_s=0.2"))) as client:
        rid, agreed = predict(client, records(split.X_test))
        labels = [{"request_id": rid, "row": i, "label": y} for i, y in enumerate(split.y_test)]
        assert client.post("/feedback/batch", json={"labels": labels}, headers=AUTH).status_code == 201
        ok = job.run(compose_monitor(served, "monitor.label_window=418", *LABELS_ONLY), tmp_path / "ok")
        # the verdict reaches /metrics at the service's next poll of the registry
        assert wait_until(lambda: shows(client, "ok", 418))
        rid, served_answers = predict(client, records(people))
        labels = [{"request_id": rid, "row": i, "label": y} for i, y in enumerate(people[TARGET])]
        assert client.post("/feedback/batch", json={"labels": labels}, headers=AUTH).status_code == 201
        bad = job.run(compose_monitor(served, "monitor.label_window=400", *LABELS_ONLY), tmp_path / "bad")
        assert wait_until(lambda: shows(client, "degraded", 400))
        scraped = client.get("/metrics").text
    assert verdict(scraped, "performance", "ok") is None  # one status at a time
    assert verdict(scraped, "drift", "insufficient_data") == 1  # too few rows for drift, on purpose
    # not degraded: the exit code is the drift half's (4 here: too few rows for it, on purpose)
    assert ok.performance == "ok" and ok.exit_code == 4, ok.summary["performance"]
    mine = ok.summary["performance"]["versions"][0]
    assert mine["rows"] == 418
    assert mine["scores"]["accuracy"]["value"] == pytest.approx(np.mean(np.array(agreed) == split.y_test))

    assert bad.performance == "degraded" and bad.exit_code == job.DEGRADED_EXIT == 5
    judged = bad.summary["performance"]["versions"][0]
    direct = float(np.mean(np.array(served_answers) == people[TARGET].to_numpy()))
    accuracy = judged["scores"]["accuracy"]
    assert judged["rows"] == 400 and accuracy["value"] == pytest.approx(direct)
    assert accuracy["high"] < accuracy["estimate"] - 0.02 and accuracy["low"] < direct < accuracy["high"]
    assert "significantly below the test-split estimate" in bad.summary["performance"]["why"]
    client = mlflow_client(served)
    run = client.get_run(bad.run_id)
    assert run.data.tags["performance_status"] == "degraded"
    assert run.data.metrics["realized_accuracy"] == pytest.approx(direct)
    assert run.data.metrics["labelled_rows"] == 400
    tags = client.get_model_version("obesity_full", "1").tags
    assert tags["performance_status"] == "degraded" and tags["realized_rows"] == "400"
    assert tags["realized_accuracy"].startswith(f"{direct:.4f} [")
    # the gauges an alert rule reads (docs/monitoring.md) carry the tags' figures
    shown = {bound: sample(scraped, "obesity_monitor_realized", metric="accuracy", bound=bound)
             for bound in ("estimate", "low", "high")}
    assert tags["realized_accuracy"] == "{estimate:.4f} [{low:.4f}, {high:.4f}]".format(**shown)
    assert sample(scraped, "obesity_monitor_labelled_rows") == 400
    checked = datetime.fromisoformat(tags["performance_checked_at"]).timestamp()
    assert sample(scraped, "obesity_monitor_checked_timestamp_seconds", check="performance") == checked
    # and the example alert rules fire on them: Prometheus' own rule engine (promtool) fed the
    # scraped samples
    alerts_fire(scraped, tmp_path, {
        "ObesityModelDegraded": [{
            "exp_labels": {"severity": "critical", "model": "obesity_full", "version": "1",
                           "check": "performance", "status": "degraded"},
            "exp_annotations": {
                "summary": "obesity_full version 1 scores below its promise on labelled traffic",
                "description": "Its realized score on labelled rows is significantly below its "
                               "test-split estimate (tags performance_status, realized_accuracy "
                               "of the version)."}}],
        "ObesityTrafficDrifted": [],  # insufficient data is not drift
        "ObesityNoModelServed": [],
    })
    few = job.run(compose_monitor(served, "monitor.min_labels=1000", "monitor.label_window=1000",
                                  *LABELS_ONLY),
                  tmp_path / "few")
    assert few.performance == "insufficient"
    assert "monitor.min_labels=1000" in few.summary["performance"]["why"]


def test_registry_evaluate_scores_a_version_on_a_labelled_file(served, tmp_path, capsys):
    from obesity.model import files

    people = other_population(300, seed=8)
    cohort = tmp_path / "cohort.csv"
    people.to_csv(cohort, index=False)
    outputs = f"paths.outputs={served}"
    assert registry_cli.main(["-o", outputs, "evaluate", "1", f"data.path={cohort}"]) == 0
    said = capsys.readouterr().out
    direct = float(np.mean(files.load_pipeline("obesity_full", "1").predict(people) == people[TARGET]))
    assert said.startswith(f"version 1 evaluated on cohort.csv (md5 {file_md5(cohort)[:8]}, 300 rows): "
                           f"accuracy {direct:.4f} [")
    client = mlflow_client(served)
    version = client.get_model_version("obesity_full", "1")
    run = client.get_run(version.tags["evaluated_run_id"])
    assert run.data.metrics["accuracy"] == pytest.approx(direct)
    assert run.data.tags["data_md5"] == file_md5(cohort)
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["cohort.csv"]
    assert client.get_experiment(run.info.experiment_id).name == "obesity-evaluations"
    registry_cli.main(["-o", outputs, "versions"])
    assert f"{direct:.4f} [" in capsys.readouterr().out  # accuracy [interval] on cohort.csv
    registry_cli.main(["-o", outputs, "card", "1"])
    card = capsys.readouterr().out
    assert "## Since registration" in card
    assert f"evaluated on cohort.csv (md5 {file_md5(cohort)[:8]}, 300 rows): accuracy {direct:.4f} [" in card
    with TestClient(app=create_app(compose_serve(served))) as http:  # the page, beside the test figure
        assert f"evaluated on cohort.csv (md5 {file_md5(cohort)[:8]}, 300 rows): accuracy {direct:.4f}" \
            in http.get("/").text
    # a file that breaks the contract, the version's own training data, no file at all
    (tmp_path / "bad.csv").write_text(cohort.read_text().replace("Female", "Robot", 1))
    raw = ROOT / "data/raw/ObesityDataSet_raw_and_data_sinthetic.csv"
    for args, said in ((["evaluate", "1", f"data.path={tmp_path / 'bad.csv'}"], "unknown categories 'Robot'"),
                       (["evaluate", "1"], "name the labelled file"),
                       (["evaluate", "1", f"data.path={raw}"], "is the data obesity_full version 1")):
        with pytest.raises(SystemExit):
            registry_cli.main(["-o", outputs, *args])
        assert said in capsys.readouterr().err


@pytest.mark.slow
def test_serve_label_degraded_retrain_on_the_labels_guard_on_fresh_rows_served(tmp_path, monkeypatch,
                                                                              capsys):
    """The loop on the embedded stores: the served champion meets people of another population,
    their labels come back over HTTP, the monitor says `degraded` (exit 5), exports the labels,
    retrains on the original data plus them, the guard decides on the fresh labelled rows, and
    the service picks the new champion up; on other people of that population it is better."""
    monkeypatch.setenv("OBESITY_API_TOKENS", TOKEN)
    register(tmp_path, ["model=rf", "model.n_estimators=60"])
    people = other_population(1000, seed=11)
    export = tmp_path / "feedback" / "labels.csv"
    with serving(tmp_path, "reload_interval_s=0.5", "monitor.flush_interval_s=0.2") as base, \
            httpx.Client(base_url=base, timeout=30, headers=AUTH) as http:
        ids = []
        for start in range(0, 1000, 500):
            answer = http.post("/predict/batch", json={"rows": records(people)[start:start + 500]})
            ids += [(answer.headers["x-request-id"], i) for i in range(500)]
        csv = "request_id,label,row\n" + "".join(
            f"{r},{y},{i}\n" for (r, i), y in zip(ids, people[TARGET], strict=True))
        answer = http.post("/feedback/csv", content=csv, headers={"content-type": "text/csv"})
        assert answer.status_code == 201 and answer.json()["stored"] == 1000, answer.text
        proc = subprocess.run(
            [sys.executable, "-m", "obesity.monitor", f"paths.root={ROOT}", f"paths.outputs={tmp_path}",
             "monitor=retrain", "monitor.on_degraded=retrain", f"monitor.labels_export={export}",
             "monitor.retrain=['sweep=rf','hydra.sweeper.n_trials=1','cv_folds=2','model.n_estimators=40']"],
            cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 5, proc.stderr[-3000:]
        assert proc.stdout.startswith("drift,degraded: ")
        assert proc.stdout.split()[-1].endswith("performance.html")  # Evidently's classification report
        summary = json.loads(Path(proc.stdout.split()[1]).read_text())
        assert summary["drifted_columns"] == ["Age"] and summary["performance"]["status"] == "degraded"
        assert summary["performance"]["versions"][0]["rows"] == 1000  # the labels of version 1's answers
        exported = summary["labels_export"]
        assert exported["rows"] == 1000 and exported["md5"] == file_md5(export)
        assert "data.extra=[" in summary["retrain"]["command"]
        assert [v["version"] for v in summary["retrain"]["registered"]] == ["2"]
        decision = summary["retrain"]["registered"][0]["decision"]
        assert "over version 1: enough evidence" in decision
        assert "on the fresh labelled rows held out of labels.csv" in decision
        client = mlflow_client(tmp_path)
        assert client.get_model_version("obesity_full", "1").tags["drift_status"] == "drift"
        v2 = client.get_model_version("obesity_full", "2")
        assert v2.tags["data_extra_md5"] == file_md5(export) and int(v2.tags["guard_rows"]) >= 250
        assert wait_until(lambda: http.get("/ready").json()["version"] == "2", timeout=60)
    rest = tmp_path / "rest.csv"
    other_population(600, seed=12).to_csv(rest, index=False)
    assert registry_cli.main(["-o", f"paths.outputs={tmp_path}", "compare", "1", "2",
                              f"data.path={rest}"]) == 0
    compared = capsys.readouterr().out
    assert "on rest.csv" in compared and "the guard (better) would say: promote" in compared


def test_a_version_trained_on_extra_files_is_verified_against_their_md5(tmp_path):
    people = other_population(200, seed=13)
    extra = tmp_path / "extra.csv"
    people.to_csv(extra, index=False)
    cfg = compose_train([f"data.extra=[{extra}]"], tmp_path)
    dataset, split = split_of(cfg.data)
    assert len(split.X_fresh) == 60 and len(split.X_train) == len(split_of(compose([]).data)[1].X_train) + 140
    assert split.extra_md5 == (file_md5(extra),)
    assert not set(split.X_fresh.index) & (set(split.X_train.index) | set(split.X_test.index))
    from types import SimpleNamespace

    from obesity.registry.policy import test_split_of

    version = SimpleNamespace(name="obesity_full", version="7", run_id="r",
                              tags={"data_md5": dataset.md5, "data_extra_md5": file_md5(extra)})
    assert len(test_split_of(version, cfg).X_fresh) == 60
    extra.write_text(extra.read_text().replace("Female", "Male", 1))
    with pytest.raises(DataError, match="are not the ones obesity_full version 7 was trained on"):
        test_split_of(version, cfg)

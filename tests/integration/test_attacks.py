"""What an attacker or a crash tried (issue "Promises that an attack still breaks"): each test
failed on the code before its fix. Real models in a tmp registry, the real service in-process."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from litestar.testing import TestClient

from obesity.errors import ModelRefused
from obesity.model import files as model_files
from obesity.registry import manifest
from obesity.serving.app import create_app
from tests.helpers import (
    compose_serve,
    compose_train,
    metric_value,
    mlflow_client,
    register,
    registry_cli,
    rf_champion,
    wait_until,
)

MODEL = "obesity_full"
ESCAPES = ["../../../../../../../../etc/passwd", "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
           "/etc/passwd", "card/../../../../../../../../../proc/self/environ", "card\\..\\..\\x",
           "file:///etc/passwd", "..", "card/%2e%2e/%2e%2e/README.md"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """v1: rf (60 trees) with its twin, card and manifest: the champion."""
    return rf_champion(tmp_path_factory, "attacked")


@contextlib.contextmanager
def tags_changed(outputs: Path, version: str, **tags: str | None):
    """Set (None: delete) version tags for the block; the old values come back after it."""
    client = mlflow_client(outputs)
    old = client.get_model_version(MODEL, version).tags
    for key, value in tags.items():
        if value is None:
            client.delete_model_version_tag(MODEL, version, key)
        else:
            client.set_model_version_tag(MODEL, version, key, value)
    try:
        yield client
    finally:
        for key in tags:
            if key in old:
                client.set_model_version_tag(MODEL, version, key, old[key])


def artifact(outputs: Path, run_id: str, relative: str) -> Path:
    [found] = outputs.glob(f"mlartifacts/**/{run_id}/artifacts/{relative}")
    return found


@contextlib.contextmanager
def file_replaced(path: Path, content: bytes):
    saved = path.read_bytes()
    path.write_bytes(content)
    try:
        yield
    finally:
        path.write_bytes(saved)


@pytest.mark.parametrize("relative", ESCAPES)
def test_a_tag_never_names_a_file_outside_the_versions_artifacts(relative):
    with pytest.raises(ModelRefused, match="not a path inside the version's own artifacts"):
        model_files.artifact_path(relative, "v1")
    assert model_files.artifact_path("card/README.md", "v1") == "card/README.md"


def test_the_card_tag_cannot_make_the_service_or_the_cli_read_another_file(registry):
    secret = "root:x:0:0"
    for relative in ESCAPES[:4]:
        # a bound version: the manifest names the card, the tag is not read for the path
        with tags_changed(registry, "1", card=relative), \
                TestClient(app=create_app(compose_serve(registry))) as client:
            card = client.get("/model/card")
            assert card.status_code == 200 and secret not in card.text
            assert "# Intended use" in card.text
        # a version without a manifest (registered before them): the tag is checked as a path
        with tags_changed(registry, "1", card=relative, manifest=None), \
                TestClient(app=create_app(compose_serve(registry))) as client:
            card = client.get("/model/card")
            assert card.status_code == 404 and secret not in card.text
            assert client.get("/model").json()["card"] is None
        with tags_changed(registry, "1", card=relative):
            shown = registry_cli(registry, "card", "1")
            assert shown.returncode == 1 and secret not in shown.stdout
            assert "not a path inside the version's own artifacts" in shown.stderr


def test_a_file_that_is_not_the_one_checked_at_registration_is_refused(registry, tmp_path):
    client = mlflow_client(registry)
    version = client.get_model_version(MODEL, "1")
    bound = json.loads(version.tags[manifest.TAG])["files"]
    assert set(bound) == {"model", "onnx", "card"}
    twin = artifact(registry, version.run_id, "onnx/model.onnx")
    other = tmp_path / "other"  # a real, valid twin of another model: the hand-made file
    register(other, ["model=lr", "model.C=0.001", "registry.promotion_threshold=0"])
    forged = artifact(other, mlflow_client(other).get_model_version(MODEL, "1").run_id,
                      "onnx/model.onnx").read_bytes()
    card = artifact(registry, version.run_id, "card/README.md")
    for path, content in ((twin, forged), (card, b"# trust me\n")):
        with file_replaced(path, content), \
                TestClient(app=create_app(compose_serve(registry))) as http:
            ready = http.get("/ready")
            assert ready.status_code == 503, ready.text
            assert "is not the one checked at registration" in ready.json()["detail"]
            # promotion looks too, forced or not
            client.delete_registered_model_alias(MODEL, "champion")
            try:
                for force in ([], ["--force"]):
                    refused = registry_cli(registry, "promote", "1", *force)
                    assert refused.returncode == 1
                    assert "is not the one checked at registration" in refused.stderr
            finally:
                client.set_registered_model_alias(MODEL, "champion", "1")
    with TestClient(app=create_app(compose_serve(registry))) as http:  # the real files: served
        info = http.get("/model").json()
        assert (info["backend"], info["integrity"]) == ("onnx", "unsigned")
        assert "registry.verify_key" in info["integrity_detail"]


def test_signed_manifests_verify_and_a_rewritten_one_is_refused(tmp_path, caplog, capfd):
    keys = tmp_path / "keys"
    made = registry_cli(tmp_path, "keygen", str(keys))
    assert made.returncode == 0 and (keys / "signing.pem").stat().st_mode & 0o777 == 0o600
    register(tmp_path, ["model=lr", f"registry.signing_key={keys / 'signing.pem'}"])
    client = mlflow_client(tmp_path)
    version = client.get_model_version(MODEL, "1")
    assert version.tags[manifest.SIGNATURE_TAG] and version.tags[manifest.KEY_TAG]
    verify = f"registry.verify_key={keys / 'verify.pem'}"
    with TestClient(app=create_app(compose_serve(tmp_path, verify))) as http:
        info = http.get("/model").json()
        assert info["integrity"] == "signed" and version.tags[manifest.KEY_TAG] in info["integrity_detail"]
    # whoever can write tags rewrites the manifest to bind their own twin: the signature fails
    forged = json.loads(version.tags[manifest.TAG])
    forged["files"]["onnx"]["sha256"] = "0" * 64
    text = manifest.encode(MODEL, "1", version.run_id, forged["files"])
    with tags_changed(tmp_path, "1", manifest=text), \
            TestClient(app=create_app(compose_serve(tmp_path, verify))) as http:
        detail = http.get("/ready").json()["detail"]
        assert "signature does not verify with registry.verify_key" in detail
    with tags_changed(tmp_path, "1", manifest_signature=None), \
            TestClient(app=create_app(compose_serve(tmp_path, verify))) as http:
        assert "is not signed and registry.verify_key is set" in http.get("/ready").json()["detail"]
    for garbage in ("{not json", '{"files": []}', "\x1b[2J" * 100):
        with tags_changed(tmp_path, "1", manifest=garbage), \
                TestClient(app=create_app(compose_serve(tmp_path, verify))) as http:
            assert "is not one this framework writes" in http.get("/ready").json()["detail"]
    # another key pair: what this service trusts did not sign it
    assert registry_cli(tmp_path, "keygen", str(tmp_path / "other")).returncode == 0
    with TestClient(app=create_app(compose_serve(
            tmp_path, f"registry.verify_key={tmp_path / 'other' / 'verify.pem'}"))) as http:
        assert "signature does not verify" in http.get("/ready").json()["detail"]
    # without a verify key the service says so, at start and in /model
    caplog.clear()
    capfd.readouterr()
    with TestClient(app=create_app(compose_serve(tmp_path))) as http:
        assert http.get("/model").json()["integrity"] == "unsigned"
    assert "models are not signature-checked" in caplog.text + capfd.readouterr().err


def test_evidence_too_small_to_decide_is_refused_even_without_a_champion(tmp_path):
    import pandas as pd

    from obesity.data.contract import TARGET
    from tests.helpers import RAW_CSV

    frame = pd.read_csv(RAW_CSV)
    small = pd.concat([frame[frame[TARGET] == c].head(6) for c in ("Normal_Weight", "Obesity_Type_I")])
    path = tmp_path / "small.csv"
    small.to_csv(path, index=False)
    promotion = register(tmp_path, [f"data.path={path}", "data.stratify=false", "model=lr",
                                    "registry.promotion_threshold=0"])
    assert promotion.champion is None
    assert promotion.why.startswith("not enough evidence to decide: the test split has 3 row(s)")
    assert "champion" not in mlflow_client(tmp_path).get_registered_model(MODEL).aliases


def test_a_one_class_model_is_registered_without_a_twin_and_says_why(registry):
    from sklearn.ensemble import RandomForestClassifier

    from obesity.data.split import split_of
    from obesity.model.pipeline import build
    from obesity.registry import twin

    cfg = compose_train(["model=rf", "model.n_estimators=5"], registry)
    _, split = split_of(cfg.data)
    one = split.y_train == split.y_train.iloc[0]
    pipeline = build(cfg).fit(split.X_train[one], split.y_train[one])
    assert isinstance(pipeline.steps[-1][1], RandomForestClassifier) and len(pipeline.classes_) == 1

    class Recorder:  # the registry calls attach makes
        def __init__(self) -> None:
            self.tags: dict[str, str] = {}

        def set_model_version_tag(self, name, version, key, value):
            self.tags[key] = value

    version = type("V", (), {"name": MODEL, "version": "9", "run_id": "r"})()
    recorder = Recorder()
    assert twin.attach(recorder, pipeline, version, split.X_test, cfg.registry) is None
    assert recorder.tags["onnx"] == "failed" and "one-class" in recorder.tags["onnx_error"]


def test_a_training_split_of_one_class_is_refused_stratified_or_not(tmp_path):
    from obesity.data.load import load_dataset
    from obesity.data.split import split_dataset
    from obesity.errors import DataError
    from tests.helpers import RAW_CSV

    lines = RAW_CSV.read_text().splitlines()
    path = tmp_path / "one.csv"
    path.write_text("\n".join(lines[:4]) + "\n")  # three Normal_Weight rows
    with pytest.raises(DataError, match="holds one class only"):
        split_dataset(load_dataset(path), 0.34, 0, stratify=False)


def test_a_prediction_log_deleted_while_serving_is_opened_anew_and_loses_nothing(tmp_path, caplog,
                                                                                 capfd):
    import sqlite3

    from obesity.data.contract import CLASSES
    from obesity.data.split import split_of
    from obesity.serving.prediction_log import PredictionLog
    from obesity.serving.schema import Person, RowPrediction
    from tests.helpers import as_json

    _, split = split_of(compose_train([], tmp_path).data)
    rows = [Person(**r) for r in as_json(split.X_test.head(5))]
    answers = [RowPrediction("Normal_Weight", {c: float(c == "Normal_Weight") for c in CLASSES})
               ] * len(rows)
    model = type("M", (), {"name": MODEL, "version": "1",
                           "predictor": type("P", (), {"backend": "onnx"})()})()
    path = tmp_path / "log.db"
    log = PredictionLog(f"sqlite:///{path}", 60, 1000, True, None)  # flushed by hand below

    def count() -> int:
        with contextlib.closing(sqlite3.connect(path)) as db:
            return db.execute("SELECT count(*) FROM predictions").fetchone()[0]

    log.record("a", model, rows, answers, 1.0)
    assert log.flush() == 5 and count() == 5
    for leftover in tmp_path.glob("log.db*"):  # a cleanup job removes the file under the service
        leftover.unlink()
    log.record("b", model, rows[:3], answers[:3], 1.0)
    log.flush()
    assert path.is_file() and count() == 3 and log.written == 8
    assert "deleted or replaced while serving" in caplog.text + capfd.readouterr().err
    log.stop()


def test_a_model_file_put_back_is_served_without_a_restart(registry):
    client = mlflow_client(registry)
    folder = Path(client.get_model_version_download_uri(MODEL, "1").removeprefix("file://"))
    skops = folder / "model.skops"
    aside = skops.with_suffix(".aside")
    skops.rename(aside)
    try:
        with TestClient(app=create_app(compose_serve(registry, "reload_interval_s=0.2"))) as http:
            detail = http.get("/ready").json()["detail"]
            assert "model file model.skops is missing" in detail and "refused" not in detail
            aside.rename(skops)
            assert wait_until(lambda: http.get("/ready").status_code == 200)
    finally:
        if aside.exists():
            aside.rename(skops)


def test_every_error_answer_is_valid_json_with_a_request_id_and_counted(registry):
    with TestClient(app=create_app(compose_serve(registry))) as http:
        unrouted = ['obesity_http_unrouted_requests_total{method="GET",status_code="404"}',
                    'obesity_http_unrouted_requests_total{method="DELETE",status_code="405"}']
        before = http.get("/metrics").text  # the counters are the process's: counted from here
        answers = {
            "surrogate": http.post("/predict", content=b'{"\\ud800":1}',
                                   headers={"content-type": "application/json"}),
            "surrogate in batch": http.post("/predict/batch", content=b'{"rows":[{"\\udfff\\ud800":1}]}',
                                            headers={"content-type": "application/json"}),
            "not found": http.get("/nowhere"),
            "method": http.delete("/predict"),
        }
        for case, answer in answers.items():
            assert 400 <= answer.status_code < 500, (case, answer.text)
            body = answer.json()
            assert body["status"] == answer.status_code, case
            assert len(answer.headers["x-request-id"]) == 32, case
        assert {e["field"] for e in answers["surrogate"].json()["errors"]} >= {"\\ud800"}
        mine = http.get("/nowhere", headers={"X-Request-ID": "mine-404"})
        assert mine.headers["x-request-id"] == "mine-404"
        scraped = http.get("/metrics").text
        assert [metric_value(scraped, m) - metric_value(before, m) for m in unrouted] == [2, 1]
        csv = http.post("/predict/csv", content=b"Gender\n", headers={"content-type": "text/csv"})
        assert csv.headers["x-request-id"]


def test_the_csv_download_names_its_charset_once(registry):
    from tests.helpers import RAW_CSV

    head = "\n".join(RAW_CSV.read_text().splitlines()[:4]).encode()
    with TestClient(app=create_app(compose_serve(registry))) as http:
        answer = http.post("/predict/csv", content=head, headers={"content-type": "text/csv"})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"


def test_the_registry_cli_escapes_control_characters(registry):
    with tags_changed(registry, "1", model="rf\x1b[2J\x07"):
        shown = registry_cli(registry, "versions")
    assert shown.returncode == 0 and "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "rf\\x1b[2J\\x07" in shown.stdout


def test_a_folder_in_place_of_the_prediction_log_is_named(tmp_path):
    from obesity.errors import StoreError
    from obesity.monitoring.window import read_window

    (tmp_path / "predictions.db").mkdir()
    with pytest.raises(StoreError, match="is not a file"):
        read_window(f"sqlite:///{tmp_path / 'predictions.db'}", MODEL, 10, None, ["Age"])


def test_keys_that_are_not_keys_are_named_before_anything_starts(tmp_path):
    from obesity.config.checks import check
    from obesity.errors import ConfigError

    (tmp_path / "plain").write_text("hello\n")
    for override, said in (("registry.verify_key=/etc/passwd", "not a PEM public key"),
                           (f"registry.signing_key={tmp_path / 'plain'}", "not a PEM private key"),
                           (f"registry.verify_key={tmp_path / 'absent.pem'}", "cannot be read")):
        with pytest.raises(ConfigError, match=said):
            check(compose_serve(tmp_path, override))
    occupied = registry_cli(tmp_path, "keygen", str(tmp_path / "plain"))  # a file, not a folder
    assert occupied.returncode == 1 and "the key pair cannot be written there" in occupied.stderr
    assert "Traceback" not in occupied.stderr

"""The prediction service on real promoted models: answers, bad input, readiness, hot swap."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import hypothesis
import mlflow
import numpy as np
import pytest
import schemathesis
from litestar.testing import TestClient
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from obesity.data.load import file_md5
from obesity.data.split import split_of
from obesity.registry import aliases
from obesity.serving.app import create_app
from obesity.serving.holder import ModelHolder
from obesity.stores import locks
from obesity.stores.locations import sqlite_path
from tests.helpers import (
    RAW_CSV,
    ROOT,
    as_json,
    compose_serve,
    mlflow_client,
    register,
    serving,
    wait_until,
)

MODEL = "obesity_full"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """v1: rf with its ONNX twin (champion); v2: hgb registered WITHOUT a twin."""
    outputs = tmp_path_factory.mktemp("serve")
    register(outputs, ["model=rf", "model.n_estimators=60"])
    register(outputs, ["model=hgb", "model.max_iter=60", "registry.onnx_twin=false"])
    client = mlflow_client(outputs)
    aliases.set_alias(client, compose_serve(outputs).registry, "champion", "1", "test: start from v1")
    return outputs


@pytest.fixture(scope="module")
def test_rows(tmp_path_factory):
    _, split = split_of(compose_serve(tmp_path_factory.mktemp("rows")).data)  # the served split
    return split.X_test.head(60)


def test_promotion_keeps_a_verified_onnx_twin(registry):
    v1 = mlflow_client(registry).get_model_version(MODEL, "1")
    assert v1.tags["onnx"] == "verified"
    assert float(v1.tags["onnx_max_prob_diff"]) <= 1e-5 and int(v1.tags["onnx_rows_checked"]) > 400


@pytest.mark.parametrize("use_onnx", [True, False])
def test_predictions_equal_the_models_own(registry, test_rows, use_onnx):
    cfg = compose_serve(registry, f"use_onnx={use_onnx}")
    pipeline = mlflow.sklearn.load_model(f"models:/{MODEL}/1")
    expected = pipeline.predict_proba(test_rows)
    with TestClient(app=create_app(cfg)) as client:
        info = client.get("/model").json()
        assert (info["version"], info["alias"]) == ("1", "champion")
        assert info["backend"] == ("onnx" if use_onnx else "sklearn")
        assert info["data_md5"] == file_md5(RAW_CSV) and "test_f1_macro" in info["metrics"]

        batch = client.post("/predict/batch", json={"rows": as_json(test_rows)})
        assert batch.status_code == 200, batch.text
        answers = batch.json()["predictions"]
        assert [a["prediction"] for a in answers] == list(pipeline.predict(test_rows))
        got = np.array([[a["probabilities"][c] for c in pipeline.classes_] for a in answers])
        assert np.abs(got - expected).max() <= 1e-5

        for row, want in zip(as_json(test_rows.head(5)), answers[:5], strict=True):
            single = client.post("/predict", json=row)
            assert single.status_code == 200  # not 201
            assert single.json()["prediction"] == want["prediction"]
            assert single.json()["model"] == {"name": MODEL, "version": "1"}


def test_the_served_versions_card_is_linked_from_model(registry, tmp_path):
    with TestClient(app=create_app(compose_serve(registry))) as client:
        info = client.get("/model").json()
        assert info["card"] == "/model/card"
        card = client.get(info["card"])
        assert card.status_code == 200 and card.headers["content-type"].startswith("text/markdown")
        assert "`obesity_full` version 1" in card.text and "# Intended use" in card.text
    # a version registered before cards existed: served, no link, 404 naming it
    client_ = mlflow_client(registry)
    client_.delete_model_version_tag(MODEL, "2", "card")
    client_.delete_model_version_tag(MODEL, "2", "manifest")  # nor manifests
    with TestClient(app=create_app(compose_serve(registry, "alias=challenger"))) as client:
        assert client.get("/model").json()["card"] is None
        missing = client.get("/model/card")
        assert missing.status_code == 404 and "obesity_full version 2 has no model card" in missing.text


def test_every_bad_input_is_a_4xx_in_one_shape(registry, test_rows):
    good = as_json(test_rows.head(3))
    with TestClient(app=create_app(compose_serve(registry, "batch_limit=5",
                                                 "body_limit_bytes=20000"))) as client:
        def post(path, **kwargs):
            response = client.post(path, **kwargs)
            body = response.json()
            assert set(body) == {"status", "error", "detail", "errors"}, body
            assert body["status"] == response.status_code
            return response.status_code, body

        status, body = post("/predict", json={**good[0], "Age": "old", "Height": 9,
                                              "Gender": "Robot", "shoe_size": 44})
        named = {e["field"] for e in body["errors"]}
        assert status == 400 and named == {"Age", "Height", "Gender", "shoe_size"}
        status, body = post("/predict", json={k: v for k, v in good[0].items() if k != "FAF"})
        assert status == 400 and body["errors"] == [{"field": "FAF",
                                                     "message": "required field is missing"}]
        status, body = post("/predict/batch", json={"rows": [good[0], {**good[1], "NCP": 99}]})
        assert status == 400 and [e["field"] for e in body["errors"]] == ["rows[1].NCP"]
        status, _ = post("/predict/batch", json={"rows": []})
        assert status == 400
        status, body = post("/predict/batch", json={"rows": good * 2})
        assert status == 413 and "at most 5 rows" in body["detail"]
        status, _ = post("/predict", content=b'{"Age": 1', headers={"content-type": "application/json"})
        assert status == 400
        status, _ = post("/predict", content=json.dumps(good[0]).replace('"Age": ', '"Age": NaN, "x": ')
                         .encode(), headers={"content-type": "application/json"})
        assert status == 400
        status, _ = post("/predict", content=b"[" * 5000 + b"]" * 5000,
                         headers={"content-type": "application/json"})
        assert status == 400
        status, body = post("/predict", json={**good[0], "MTRANS": "x" * 15000})
        assert status == 400 and len(json.dumps(body)) < 1000  # the value is not echoed whole
        status, body = post("/predict", content=b"x" * 30000, headers={"content-type": "application/json"})
        assert status == 413 and "limit of 20,000 bytes (body_limit_bytes)" in body["detail"]
        status, _ = post("/predict", content=json.dumps(good[0]).encode(),
                         headers={"content-type": "text/plain"})
        assert status == 415
        status, _ = post("/predict", json=[good[0]])
        assert status == 400
        status, _ = post("/nowhere", json=good[0])
        assert status == 404


def test_the_hint_without_a_champion_registers_into_the_served_model(tmp_path):
    with TestClient(app=create_app(compose_serve(tmp_path, "data=lifestyle"))) as client:
        detail = client.get("/ready").json()["detail"]
        assert "obesity_lifestyle@champion" in detail
        assert "python -m obesity.train -m sweep=rf data=lifestyle" in detail


def test_without_a_champion_the_service_starts_and_says_how_to_get_one(tmp_path, test_rows):
    row = as_json(test_rows.head(1))[0]
    cfg = compose_serve(tmp_path, "reload_interval_s=0.2")
    with TestClient(app=create_app(cfg)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/schema").status_code == 200  # the OpenAPI page, with or without a model
        for path in ("/", "/health"):  # uptime checkers that ask HEAD: 200, no body
            answer = client.head(path)
            assert (answer.status_code, answer.content) == (200, b""), path
        for response in (client.get("/ready"), client.post("/predict", json=row)):
            assert response.status_code == 503
            assert "python -m obesity.train -m sweep=rf data=full" in response.json()["detail"]
        register(tmp_path, ["model=lr"])  # the first champion appears: the poller loads it
        deadline = time.monotonic() + 60
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get("/ready").json() == {"name": MODEL, "version": "1"}
        assert client.post("/predict", json=row).status_code == 200


def test_a_store_being_created_is_waited_for_not_migrated_a_second_time(tmp_path):
    """MLflow migrates a fresh store in MlflowClient's constructor. While another process creates
    the store (it holds the creation lock; its file exists, empty), the service's poll waits for
    it: migrating the same file at once fails with `table ... already exists` (CI saw it)."""
    cfg = compose_serve(tmp_path)
    database = sqlite_path(cfg.registry.tracking_uri)
    database.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(database).close()  # what the creating process has done so far

    def tables() -> list[str]:
        with contextlib.closing(sqlite3.connect(database)) as connection:
            return [name for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]

    holder = ModelHolder(cfg)
    with ThreadPoolExecutor(1) as pool:
        with locks.creation_lock(cfg.registry):  # another thread's flock excludes like a process's
            poll = pool.submit(holder.refresh)
            time.sleep(1.5)
            assert not poll.done() and tables() == []  # waiting, and nothing migrated meanwhile
        assert poll.result(timeout=60) is False  # then the store is opened: no model in it yet
    assert "registered_models" in tables() and holder.problem is None


@pytest.fixture(scope="module")
def server(registry):
    with serving(registry, "reload_interval_s=0.2", "header_timeout_s=1") as base:
        yield base


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.slow
def test_generated_requests_never_get_a_5xx_or_an_off_schema_answer(server, mode):
    """Schemathesis over the service's own OpenAPI document: valid (positive) and invalid
    (negative) requests for every operation; each answer must be no 5xx, a documented status,
    and match its documented schema."""
    # Invalid data must be refused with a 4xx; 413 (a body or batch over its limit, as
    # documented) is such a refusal, which schemathesis' default list leaves out.
    default = SchemathesisConfig.from_dict({}).projects.default.checks.negative_data_rejection
    rejected = [*default.expected_statuses, "413"]
    config = SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": rejected}}})
    api = schemathesis.openapi.from_url(f"{server}/schema/openapi.json", config=config)
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/predict/batch", "/predict/csv",
                                              "/ready", "/model"}
    for operation in operations:
        if mode == "negative" and not operation.body:  # a GET without parameters: nothing to break
            continue
        # Any string is a schema-valid CSV body, but only a file with the 16 columns is a valid
        # file (tests/test_page.py): there, a 400 for "valid" data is right; every other check holds.
        excluded = [positive_data_acceptance] if operation.path == "/predict/csv" else []

        @hypothesis.settings(max_examples=40, deadline=None, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck))
        @hypothesis.given(case=operation.as_strategy(GenerationMode(mode)))
        def check(case) -> None:  # called at once, in this iteration: B023 does not apply
            case.call_and_validate(excluded_checks=excluded)  # noqa: B023

        check()


@pytest.mark.slow
def test_champion_swaps_under_load_without_a_failed_request(server, registry, test_rows):
    rows = as_json(test_rows.head(20))
    seen: list[list[tuple[int | str, str]]] = [[] for _ in range(4)]
    stop = threading.Event()

    def hammer(log: list) -> None:
        """Every request is one entry: an answer (status, version) or the exception it raised
        (a refused connection, a body that is not JSON): nothing ends the thread early."""
        with httpx.Client(base_url=server, timeout=30) as http:
            i = 0
            while not stop.is_set():
                try:
                    response = http.post("/predict", json=rows[i % len(rows)])
                    version = response.json()["model"]["version"] \
                        if response.status_code == 200 else "?"
                    log.append((response.status_code, version))
                except Exception as exc:  # a failed request, counted as one
                    log.append((type(exc).__name__, "?"))
                i += 1

    def every_worker_saw(version: str) -> bool:
        return all(any(v == version for _, v in list(log)) for log in seen)

    workers = [threading.Thread(target=hammer, args=(log,)) for log in seen]
    for w in workers:
        w.start()
    assert wait_until(lambda: every_worker_saw("1"), 60)
    client = mlflow_client(registry)
    aliases.set_alias(client, compose_serve(registry).registry, "champion", "2", "test: swap under load")
    # v2 has no bound twin: the service makes one in memory, then swaps; every worker must see it
    swapped = wait_until(lambda: every_worker_saw("2"), 120)
    stop.set()
    for w in workers:
        w.join()

    answers = [a for log in seen for a in log]
    assert swapped, {a for a in answers}
    assert answers and all(status == 200 for status, _ in answers), \
        [a for a in answers if a[0] != 200][:5]
    assert {v for _, v in answers} == {"1", "2"}
    for log in seen:  # once a worker saw the new model it never saw the old one again
        versions = [v for _, v in log]
        assert "1" not in versions[versions.index("2"):]
    info = httpx.get(f"{server}/model").json()
    assert (info["version"], info["backend"]) == ("2", "onnx")  # its twin was made at first load,
    assert "onnx" not in client.get_model_version(MODEL, "2").tags  # in memory: the service writes nothing


def test_bytes_that_are_not_utf8_and_numbers_out_of_range_are_named(registry, test_rows):
    good = json.dumps(as_json(test_rows.head(1))[0], separators=(",", ":")).encode()
    age = good.split(b'"Age":')[1].split(b",")[0]
    cases = {  # body -> (status, field or words the answer must name)
        good.replace(b'"Gender":"', b'"Gender":"\xe9'): "not valid UTF-8: byte 0xe9",
        good.replace(b'"Age"', b'"A\xffge"'): "not valid UTF-8: byte 0xff",
        good.replace(b'"Age":' + age, b'"Age":"x","Age":25'): "Age",  # a duplicate key, first bad
        good.replace(b'"Age":' + age, b'"Age":1e400'): "Age",
        good.replace(b'"Age":' + age, b'"Age":' + b"9" * 5000): "Age",
    }
    assert all(body != good for body in cases)
    with TestClient(app=create_app(compose_serve(registry))) as client:
        for body, named in cases.items():
            for path, content in (("/predict", body), ("/predict/batch", b'{"rows":[' + body + b"]}")):
                response = client.post(path, content=content,
                                       headers={"content-type": "application/json"})
                answer = response.json()
                assert response.status_code == 400, (path, body[:60], answer)
                assert set(answer) == {"status", "error", "detail", "errors"}
                if named == "Age":
                    prefix = "rows[0]." if path.endswith("batch") else ""
                    assert [e["field"] for e in answer["errors"]] == [prefix + "Age"], answer
                else:
                    assert named in answer["detail"], answer


def test_an_unreadable_store_is_named_and_the_model_comes_when_it_returns(registry, tmp_path,
                                                                         test_rows):
    row = as_json(test_rows.head(1))[0]
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"this is not a sqlite database " * 50)
    with TestClient(app=create_app(compose_serve(tmp_path, "reload_interval_s=0.2"))) as client:
        assert client.get("/health").status_code == 200
        for response in (client.get("/ready"), client.post("/predict", json=row)):
            assert response.status_code == 503
            assert f"{store}: file is not a database" in response.json()["detail"]
        # the store comes back (a consistent copy of a real registry, sqlite's backup API)
        source, copy = sqlite3.connect(registry / "mlflow.db"), sqlite3.connect(tmp_path / "new.db")
        source.backup(copy)
        source.close(), copy.close()
        os.replace(tmp_path / "new.db", store)
        deadline = time.monotonic() + 60
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get("/ready").json()["name"] == MODEL
        assert client.post("/predict", json=row).status_code == 200


def test_missing_files_are_named_and_a_missing_twin_falls_back_to_sklearn(tmp_path):
    register(tmp_path, ["model=lr"])
    client = mlflow_client(tmp_path)
    version = client.get_model_version(MODEL, "1")
    [twin] = tmp_path.glob(f"mlartifacts/**/{version.run_id}/artifacts/onnx/model.onnx")
    twin.unlink()
    cfg = compose_serve(tmp_path, "reload_interval_s=0.2")
    with TestClient(app=create_app(cfg)) as http:
        assert http.get("/model").json()["backend"] == "sklearn"
    model_dir = client.get_model_version_download_uri(MODEL, "1").removeprefix("file://")
    shutil.rmtree(model_dir)
    with TestClient(app=create_app(cfg)) as http:
        detail = http.get("/ready").json()["detail"]
        assert "version 1" in detail and model_dir in detail and "rollback" in detail
        assert "does not exist" not in detail  # it exists; its files are gone


class CodeInAPickle:
    """Unpickling this creates a folder: proof that the pickle's code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_a_version_the_framework_did_not_produce_is_never_loaded_or_promoted(tmp_path, capfd):
    from obesity.stores import tracking
    from tests.helpers import registry_cli

    register(tmp_path, ["model=lr"])  # v1: a real champion
    cfg = compose_serve(tmp_path, "reload_interval_s=0.1")
    marker = tmp_path / "the-pickle-ran"
    experiment = tracking.setup(cfg.registry)  # its artifacts under tmp_path, not ./mlruns
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.sklearn.log_model(CodeInAPickle(str(marker)), name="model",
                                        serialization_format="pickle", pip_requirements=[])
    version = mlflow.register_model(info.model_uri, MODEL, tags={
        "validation_status": "approved", "test_f1_macro": "0.999"})  # tags anyone can write
    forced = registry_cli(tmp_path, "promote", str(version.version), "--force")
    assert forced.returncode == 1 and "pickle" in forced.stderr and "refused" in forced.stderr
    client = mlflow_client(tmp_path)
    client.set_registered_model_alias(MODEL, "champion", str(version.version))  # around the CLI
    capfd.readouterr()
    with TestClient(app=create_app(cfg)) as http:
        holder, polls = http.app.state.holder, []
        refresh = holder.refresh  # counted, not replaced: the poller looks it up at every poll
        holder.refresh = lambda: polls.append(1) or refresh()
        assert wait_until(lambda: len(polls) >= 10, 60)  # ten polls of the alias
        response = http.get("/ready")
        assert response.status_code == 503 and "refused" in response.json()["detail"]
        assert "pickle" in response.json()["detail"]
        client.set_registered_model_alias(MODEL, "champion", "1")
        deadline = time.monotonic() + 30
        while http.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert http.get("/ready").json()["version"] == "1"
    assert not marker.exists()
    assert capfd.readouterr().err.count("refused to load") == 1  # once, not once per poll


@pytest.mark.slow
def test_serve_applies_the_execution_whitelist(tmp_path):
    """Neither a Hydra callback nor a logging handler factory can make the service run code."""
    (tmp_path / "src").write_text("x")
    logging_dir = tmp_path / "configs" / "hydra" / "job_logging"
    logging_dir.mkdir(parents=True)
    (logging_dir / "evil.yaml").write_text(
        "version: 1\nhandlers:\n  console:\n    class: logging.StreamHandler\n"
        "  evil:\n    (): shutil.copyfile\n"
        f"    src: {tmp_path / 'src'}\n    dst: {tmp_path / 'copied2'}\n"
        "root:\n  handlers: [evil]\n")
    attacks = [
        ["+hydra.callbacks.x._target_=shutil.copyfile", f"+hydra.callbacks.x.src={tmp_path / 'src'}",
         f"+hydra.callbacks.x.dst={tmp_path / 'copied1'}"],
        ["--config-dir", str(tmp_path / "configs"), "hydra/job_logging=evil"],
    ]
    for attack in attacks:
        proc = subprocess.run(
            [sys.executable, "-m", "obesity.serve", f"paths.outputs={tmp_path}", "port=9", *attack],
            cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and "whitelist" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "copied1").exists() and not (tmp_path / "copied2").exists()


@pytest.mark.slow
def test_slow_clients_do_not_hold_connections(server):
    """Half a request head, then nothing: the server closes it after header_timeout_s (1 s in
    the fixture); a normal client on a kept-alive connection is served meanwhile, and may
    leave its connection idle (uvicorn's keep-alive timeout closes idle ones, 5 s)."""
    host, port = server.removeprefix("http://").split(":")
    slow = []
    for _ in range(50):
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-")
        slow.append(sock)
    with httpx.Client(base_url=server) as http:
        assert http.get("/health").status_code == 200
        closed = 0
        for sock in slow:
            sock.settimeout(30)  # waits for the server's FIN (due after header_timeout_s)
            closed += sock.recv(100) == b""
            sock.close()
        assert closed == 50
        assert http.get("/health").status_code == 200
    # a kept-alive connection idle for longer than the head deadline is still open (only a
    # request that has begun has a deadline), and half a head on it is cut like any other
    with socket.create_connection((host, int(port))) as sock:
        sock.settimeout(5)
        health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"

        def answer() -> bytes:  # head and body may come in separate segments
            data = b""
            while not data.endswith(b"}") and (chunk := sock.recv(65536)):
                data += chunk
            return data

        sock.sendall(health)
        assert answer().startswith(b"HTTP/1.1 200")
        time.sleep(1.5)
        sock.sendall(health)
        assert answer().startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-")
        sock.settimeout(30)  # waits for the server's FIN (due after header_timeout_s)
        assert sock.recv(100) == b""

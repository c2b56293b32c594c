"""The service's prediction log, request ids and /metrics, on a real promoted model."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from litestar.testing import TestClient

from obesity.config.compose import compose
from obesity.data.contract import CLASSES, FEATURE_NAMES
from obesity.data.split import split_of
from obesity.serving.app import create_app
from obesity.testing import local_servers
from tests.helpers import ROOT, compose_serve, metric_value, register, serving, wait_until


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("logged")
    register(outputs, ["model=lr"])  # champion v1
    return outputs


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    _, split = split_of(compose([f"paths.outputs={tmp_path_factory.mktemp('rows')}"]).data)
    return json.loads(split.X_test.head(40).to_json(orient="records"))


def logged(url: str) -> list[dict]:
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM predictions ORDER BY id")]


def test_every_answered_row_is_logged_exactly_once_with_its_request_id(registry, rows, tmp_path):
    url = f"sqlite:///{tmp_path}/log.db"
    cfg = compose_serve(registry, f"registry.prediction_log={url}", "monitor.flush_interval_s=0.2")
    ids = []
    with TestClient(app=create_app(cfg)) as client:
        single = client.post("/predict", json=rows[0], headers={"X-Request-ID": "mine-1"})
        assert single.headers["x-request-id"] == "mine-1"
        batch = client.post("/predict/batch", json={"rows": rows[1:11]})
        generated = batch.headers["x-request-id"]
        assert len(generated) == 32 and generated != "mine-1"
        bad = client.post("/predict", json={**rows[0], "Height": 175},
                          headers={"X-Request-ID": "bad one\x7f"})
        assert bad.status_code == 400 and bad.headers["x-request-id"] != "bad one\x7f"

        def one(i: int) -> str:  # concurrent single requests
            answer = client.post("/predict", json=rows[11 + i % 29])
            assert answer.status_code == 200
            return answer.headers["x-request-id"]

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(one, range(60)))
    # leaving the client shut the app down: the log was flushed
    found = logged(url)
    assert len(found) == 1 + 10 + 60  # the 400 answered no prediction
    assert found[0]["request_id"] == "mine-1"
    for i, sent in enumerate(rows[:11]):  # every input value, in its own column
        assert {c: found[i][c] for c in FEATURE_NAMES} == pytest.approx(sent), i
    assert single.json()["prediction"] == found[0]["prediction"]
    assert single.json()["probabilities"]["Obesity_Type_I"] == pytest.approx(found[0]["p_Obesity_Type_I"])
    assert [r["request_id"] for r in found[1:11]] == [generated] * 10
    assert [r["prediction"] for r in found[1:11]] == [p["prediction"] for p in batch.json()["predictions"]]
    assert sorted(r["request_id"] for r in found[11:]) == sorted(ids)
    assert {(r["model_name"], r["model_version"]) for r in found} == {("obesity_full", "1")}
    assert all(r["latency_ms"] > 0 and r["backend"] in ("onnx", "sklearn") for r in found)


def test_a_request_is_followed_from_the_access_log_to_the_prediction_log(registry, rows):
    with serving(registry, "access_log=true", "monitor.flush_interval_s=0.2") as base:
        mine = httpx.post(f"{base}/predict", json=rows[0], headers={"X-Request-ID": "follow-me-7"})
        theirs = httpx.post(f"{base}/predict", json=rows[1])
    generated = theirs.headers["x-request-id"]
    assert mine.status_code == theirs.status_code == 200
    access = [line for line in (registry / f"serve-{base.rpartition(':')[2]}.log").read_text()
              .splitlines() if '"POST /predict HTTP/1.1" 200' in line]
    assert [line.rsplit(" ", 1)[1] for line in access] == ["follow-me-7", generated]
    found = {r["request_id"]: r for r in logged(f"sqlite:///{registry}/predictions.db")}
    assert found["follow-me-7"]["prediction"] == mine.json()["prediction"]
    assert found[generated]["prediction"] == theirs.json()["prediction"]


def test_inputs_can_be_left_out_of_the_log(registry, rows, tmp_path):
    url = f"sqlite:///{tmp_path}/log.db"
    cfg = compose_serve(registry, f"registry.prediction_log={url}", "monitor.log_inputs=false")
    with TestClient(app=create_app(cfg)) as client:
        assert client.post("/predict", json=rows[0]).status_code == 200
    [row] = logged(url)
    assert all(row[name] is None for name in FEATURE_NAMES) and row["prediction"]


def test_a_full_buffer_drops_and_counts_and_never_blocks(registry, rows, tmp_path):
    url = f"sqlite:///{tmp_path}/log.db"
    cfg = compose_serve(registry, f"registry.prediction_log={url}", "monitor.buffer_rows=5",
                    "monitor.flush_interval_s=3600")
    with TestClient(app=create_app(cfg)) as client:
        before = metric_value(client.get("/metrics").text, "obesity_prediction_log_dropped_rows_total")
        answer = client.post("/predict/batch", json={"rows": rows[:8]})
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 8
        text = client.get("/metrics").text
        assert metric_value(text, "obesity_prediction_log_dropped_rows_total") == before + 3
    assert len(logged(url)) == 5


def test_a_flush_returns_once_what_the_writer_was_writing_is_written(rows, tmp_path):
    """POST /feedback flushes the log and then looks the request up: a flush that found the
    buffer empty while the writer thread was still writing its rows would let the lookup miss
    them. A flush waits for a write in progress."""
    from types import SimpleNamespace

    import msgspec

    from obesity.serving.prediction_log import PredictionLog
    from obesity.serving.schema import Person, RowPrediction

    url = f"sqlite:///{tmp_path}/log.db"
    log = PredictionLog(url, 3600, 100, True, None)
    model = SimpleNamespace(name="m", version="1", predictor=SimpleNamespace(backend="onnx"))
    log.record("r1", model, [msgspec.convert(rows[0], Person)],
               [RowPrediction("Normal_Weight", dict.fromkeys(CLASSES, 1 / 7))], 0.1)
    writing, release = threading.Event(), threading.Event()
    write = log._write

    def slow_write(batch):
        writing.set()
        release.wait(60)
        write(batch)

    log._write = slow_write  # type: ignore[method-assign]
    writer = threading.Thread(target=log.flush)  # as the writer thread would
    writer.start()
    assert writing.wait(60)
    found = []
    caller = threading.Thread(target=lambda: (log.flush(), found.append(len(logged(url)))))
    caller.start()
    wait_until(lambda: bool(found), timeout=2)  # a flush that did not wait returns at once
    release.set()
    for thread in (writer, caller):
        thread.join(60)
    assert found == [1]  # it returned after the row was written, not before
    log.stop()


def test_a_log_database_that_cannot_be_written_fails_no_request(registry, rows, tmp_path, capfd):
    (tmp_path / "log.db").mkdir()  # a folder where the file should be
    cfg = compose_serve(registry, f"registry.prediction_log=sqlite:///{tmp_path}/log.db",
                    "monitor.flush_interval_s=0.05")
    app = create_app(cfg)
    with TestClient(app=app) as client:
        log, tries = app.state.prediction_log, []
        write = log._write  # counted, not replaced: each flush with rows tries it once
        log._write = lambda batch: tries.append(1) or write(batch)
        for row in rows[:20]:
            assert client.post("/predict", json=row).status_code == 200
        # the rows wait in the buffer: every flush tries them again and fails again
        assert wait_until(lambda: len(tries) >= 5, 60)
    assert app.state.prediction_log.written == 0
    assert capfd.readouterr().err.count("cannot write") == 1  # said once, not at every flush


def test_metrics_count_requests_and_predictions_by_class_and_version(registry, rows):
    with TestClient(app=create_app(compose_serve(registry))) as client:
        before = client.get("/metrics").text
        answers = [client.post("/predict", json=row).json()["prediction"] for row in rows[:12]]
        client.post("/predict", json={"Gender": "Robot"})
        text = client.get("/metrics").text
    for cls in set(answers):
        name = (f'obesity_predictions_total{{model="obesity_full",predicted_class="{cls}",'
                f'version="1"}}')
        assert metric_value(text, name) - metric_value(before, name) == answers.count(cls)
    assert 'obesity_served_version{alias="champion",backend=' in text
    ok = 'obesity_http_requests_total{app_name="obesity",method="POST",path="/predict",status_code="200"}'
    bad = ok.replace('"200"', '"400"')
    assert metric_value(text, ok) - metric_value(before, ok) == 12
    assert metric_value(text, bad) - metric_value(before, bad) == 1
    timed = ok.replace("requests_total", "request_duration_seconds_count")
    assert metric_value(text, timed) - metric_value(before, timed) == 12
    # answered: none in progress (the gauge is labelled 200 while a request runs)
    assert f'{ok.replace("requests_total", "requests_in_progress")} 0.0' in text.splitlines()


@pytest.mark.slow
def test_sigterm_under_load_loses_no_answered_row(registry, rows, tmp_path):
    url = f"sqlite:///{tmp_path}/log.db"
    port = local_servers.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "obesity.serve", f"paths.root={ROOT}", f"paths.outputs={registry}",
         f"port={port}", "load_wait_s=60", f"registry.prediction_log={url}",
         "monitor.flush_interval_s=5"],  # most rows are still in the buffer at SIGTERM
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    local_servers.wait_for(lambda: httpx.get(f"{base}/ready").status_code == 200, "obesity.serve",
                           proc, timeout=90)
    answered = []
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=5) as http:
            i = 0
            while not stop.is_set():
                try:
                    answer = http.post("/predict", json=rows[(worker + i) % len(rows)])
                except httpx.HTTPError:
                    return  # the server went away
                if answer.status_code == 200:
                    answered.append(answer.headers["x-request-id"])
                i += 1

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    assert wait_until(lambda: len(answered) >= 200 or proc.poll() is not None, 120), len(answered)
    assert proc.poll() is None, "the service died under load"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    stop.set()
    for thread in threads:
        thread.join()
    # uvicorn shuts down gracefully, then re-raises the signal (exit -15), as a process should
    output = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in output
    assert sorted(r["request_id"] for r in logged(url)) == sorted(answered)

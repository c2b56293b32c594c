"""Benchmark: this service vs `mlflow models serve` on the same champion, same loads.

    python scripts/bench_serve.py [--seconds 10] [--concurrency 8] [--outputs DIR]

Without --outputs it trains the default model (rf, 300 trees) into a tmp store and promotes it.
Both servers get one worker process; the load generator is a minimal keep-alive HTTP/1.1
client (asyncio streams, one connection per concurrent user) so that the client, not the
server, is the lightest part. Prints req/s, p50 and p99 latency per scenario and the ratios.
Goals (issue 4): single-row req/s >= 100x mlflow, p99 <= 20 ms; 1000-row batches >= 2x.
Also the batch over ONE connection, next to the same rows through ONNX Runtime in this process
(the champion's twin, the service's own feeding code): what HTTP, JSON and validation add
(goal, issue 12: p50 <= 2x in-process). And the service with its prediction log and /metrics
on (the default) next to the same service with both off, single rows (goal, issue 15: >= 90% of
the throughput, p99 <= 20 ms), with each server's own CPU time a request (from /proc). And the
page (issue 17): its bytes, GET / under load, the batch as a CSV file next to the JSON batch.
And the stack's limit (issue 28): a bare Litestar + uvicorn + uvloop endpoint decoding the same
body into the same Struct and returning a constant, same client, in the same alternating rounds
(goal: the service with log and metrics >= 0.45 of it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from obesity.config.compose import compose
from obesity.testing import local_servers

ROOT = Path(__file__).resolve().parents[1]


def promote_default_model(outputs: Path) -> None:
    """The default training run (rf, 300 trees), registered and made champion."""
    from obesity.registry import promote
    from obesity.training import job as training

    cfg = compose([f"paths.outputs={outputs}"])
    print(promote.register_and_promote(cfg, training.run(cfg)), file=sys.stderr)


def test_rows(n: int) -> list[dict]:
    from obesity.data.load import load_dataset

    frame = load_dataset(ROOT / "data/raw/ObesityDataSet_raw_and_data_sinthetic.csv").frame
    features = frame.drop(columns=["NObeyesdad"])
    return json.loads(features.sample(n, replace=n > len(features), random_state=0)
                      .to_json(orient="records"))


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    import httpx

    local_servers.wait_for(lambda: httpx.get(url, timeout=2).status_code == 200, url, proc)


def request_bytes(port: int, path: str, body: bytes, content_type: str = "application/json",
                  method: str = "POST") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _user(port: int, payload: bytes, until: float, latencies: list, errors: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            tick = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - tick)
            if head[9:12] != b"200":
                errors.append(head[9:12])
    finally:
        writer.close()


def load(port: int, payload: bytes, seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    errors: list[bytes] = []

    async def run() -> float:
        start = time.perf_counter()
        until = start + seconds
        await asyncio.gather(*[_user(port, payload, until, latencies, errors)
                               for _ in range(concurrency)])
        return time.perf_counter() - start

    wall = asyncio.run(run())
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3
    return {"requests": len(latencies), "errors": len(errors), "rps": len(latencies) / wall,
            "p50": pick(0.50), "p99": pick(0.99)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process_onnx_ms(outputs: Path, rows: list[dict], repeats: int = 30) -> float:
    """Median ms to predict `rows` with the champion's ONNX twin in this process."""
    import statistics
    from types import SimpleNamespace

    from mlflow.tracking import MlflowClient

    from obesity.serving.predictors import load
    from obesity.stores import tracking

    cfg = compose([f"paths.outputs={outputs}"], config_name="serve")
    tracking.use_stores(cfg.registry)
    version = MlflowClient().get_model_version_by_alias(cfg.model_name, cfg.alias)
    predictor = load(version, cfg.alias, cfg).predictor
    objects = [SimpleNamespace(**row) for row in rows]
    walls = []
    for _ in range(repeats):
        tick = time.perf_counter()
        predictor.predict(objects)
        walls.append((time.perf_counter() - tick) * 1e3)
    return statistics.median(walls)


def page_figures(port: int, rows: list[dict], batch: dict, seconds: float) -> None:
    """The page's cost (issue 17): its bytes, GET / under load, and the same rows as a CSV file
    (POST /predict/csv, what the page's upload sends) next to the JSON batch."""
    import csv
    import io

    import httpx

    base = f"http://127.0.0.1:{port}"
    sizes = {path: len(httpx.get(base + path).content)
             for path in ("/", "/static/page.js", "/static/page.css")}
    page = load(port, request_bytes(port, "/", b"", method="GET"), seconds, 8)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    as_csv = load(port, request_bytes(port, "/predict/csv", out.getvalue().encode(), "text/csv"),
                  seconds, 1)
    each = ", ".join(f"{path} {n / 1024:.1f}" for path, n in sizes.items())
    print(f"the page: {sum(sizes.values()) / 1024:.1f} KiB in all ({each}); "
          f"GET / {page['rps']:.0f} req/s over 8 connections, p50 {page['p50']:.2f} ms, "
          f"p99 {page['p99']:.2f} ms ({page['errors']} errors)")
    print(f"{len(rows)} rows as CSV (POST /predict/csv), one connection: p50 {as_csv['p50']:.1f} ms, "
          f"p99 {as_csv['p99']:.1f} ms ({as_csv['errors']} errors); "
          f"{as_csv['p50'] / batch['p50']:.2f}x the JSON batch's p50")


def bare_endpoint(port: int) -> None:
    """The stack's limit: Litestar on uvicorn + uvloop, one route that decodes the same body into
    the same 16-field Struct (the service's `Person`) and returns a constant: no model, no log,
    no metrics, no middleware. `python scripts/bench_serve.py --bare PORT`."""
    import uvicorn
    from litestar import Litestar, post

    from obesity.serving.schema import Person

    @post("/predict", status_code=200)
    async def predict(data: Person) -> dict[str, str]:  # type: ignore[valid-type]
        return {"prediction": "Normal_Weight"}

    uvicorn.run(Litestar([predict], signature_namespace={"Person": Person}), host="127.0.0.1",
                port=port, log_level="warning", access_log=False, loop="uvloop")


def main() -> None:
    if sys.argv[1:2] == ["--bare"]:
        return bare_endpoint(int(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario and server")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--outputs", type=Path, help="a store that already has a champion")
    parser.add_argument("--rounds", type=int, default=4, help="on/off rounds (log and metrics)")
    args = parser.parse_args()

    outputs = args.outputs or Path(tempfile.mkdtemp(prefix="bench_serve_"))
    if args.outputs is None:
        promote_default_model(outputs)
    env = {**local_servers.VENV_ENV,
           "MLFLOW_TRACKING_URI": compose([f"paths.outputs={outputs}"]).registry.tracking_uri}
    ours, theirs, quiet, bare = (local_servers.free_port() for _ in range(4))
    servers = {
        "obesity.serve": subprocess.Popen(
            [sys.executable, "-m", "obesity.serve", f"paths.root={ROOT}",
             f"paths.outputs={outputs}", f"port={ours}", "log_level=warning"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        "obesity.serve, no log or metrics": subprocess.Popen(
            [sys.executable, "-m", "obesity.serve", f"paths.root={ROOT}",
             f"paths.outputs={outputs}", f"port={quiet}", "log_level=warning",
             "registry.prediction_log=null", "monitor.metrics=false"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        "bare Litestar endpoint": subprocess.Popen(
            [sys.executable, __file__, "--bare", str(bare)], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        "mlflow models serve": subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/obesity_full@champion",
             "-p", str(theirs), "--env-manager", "local", "-w", "1"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
    }
    try:
        wait_ready(f"http://127.0.0.1:{ours}/ready", servers["obesity.serve"])
        wait_ready(f"http://127.0.0.1:{quiet}/ready", servers["obesity.serve, no log or metrics"])
        wait_ready(f"http://127.0.0.1:{theirs}/ping", servers["mlflow models serve"])
        wait_ready(f"http://127.0.0.1:{bare}/schema/openapi.json", servers["bare Litestar endpoint"])
        one, many = test_rows(1)[0], test_rows(args.batch)
        scenarios = {
            "single row": (
                request_bytes(ours, "/predict", json.dumps(one).encode()),
                request_bytes(theirs, "/invocations", json.dumps({"dataframe_records": [one]}).encode())),
            f"{args.batch}-row batch": (
                request_bytes(ours, "/predict/batch", json.dumps({"rows": many}).encode()),
                request_bytes(theirs, "/invocations", json.dumps({"dataframe_records": many}).encode())),
        }
        print(f"champion of {outputs}; {args.concurrency} connections, {args.seconds:.0f} s each")
        print(f"{'scenario':<18}{'server':<22}{'requests':>9}{'errors':>7}{'req/s':>10}"
              f"{'p50 ms':>9}{'p99 ms':>9}")
        for name, (ours_payload, theirs_payload) in scenarios.items():
            results = {"obesity.serve": load(ours, ours_payload, args.seconds, args.concurrency),
                       "mlflow models serve": load(theirs, theirs_payload, args.seconds,
                                                   args.concurrency)}
            for server, r in results.items():
                print(f"{name:<18}{server:<22}{r['requests']:>9}{r['errors']:>7}{r['rps']:>10.1f}"
                      f"{r['p50']:>9.2f}{r['p99']:>9.2f}")
            a, b = results["obesity.serve"], results["mlflow models serve"]
            print(f"{name:<18}{'ratio':<22}{'':>16}{a['rps'] / b['rps']:>9.1f}x"
                  f"{b['p50'] / a['p50']:>8.1f}x{b['p99'] / a['p99']:>8.1f}x")
        # on vs off alternate, several rounds: on 2 shared cores one 8 s load varies by ~15%
        single = json.dumps(one).encode()
        runs: dict[int, list[dict]] = {ours: [], quiet: [], bare: []}
        pids = {ours: servers["obesity.serve"].pid, quiet: servers["obesity.serve, no log or metrics"].pid,
                bare: servers["bare Litestar endpoint"].pid}
        for round_ in range(args.rounds):
            for port in ((ours, quiet, bare) if round_ % 2 == 0 else (bare, quiet, ours)):
                cpu = cpu_seconds(pids[port])
                result = load(port, request_bytes(port, "/predict", single), args.seconds,
                              args.concurrency)
                # the server's own CPU per request: what the log and metrics cost it, free of
                # the client that shares the cores (throughput is not)
                result["cpu_us"] = (cpu_seconds(pids[port]) - cpu) / result["requests"] * 1e6
                runs[port].append(result)
        on, off = ({key: statistics.median(r[key] for r in runs[port])
                    for key in ("rps", "p99", "cpu_us")} for port in (ours, quiet))
        print(f"\nsingle row, median of {args.rounds} alternating rounds: prediction log and /metrics "
              f"on {on['rps']:.1f} req/s, p99 {on['p99']:.2f} ms, {on['cpu_us']:.0f} us server CPU "
              f"a request; both off {off['rps']:.1f} req/s, p99 {off['p99']:.2f} ms, "
              f"{off['cpu_us']:.0f} us; on / off = {on['rps'] / off['rps']:.1%} of the throughput, "
              f"{on['cpu_us'] / off['cpu_us']:.2f}x the CPU a request")
        limit = {key: statistics.median(r[key] for r in runs[bare]) for key in ("rps", "cpu_us")}
        for port, label in ((ours, "on"), (quiet, "off"), (bare, "bare")):
            print(f"  {label:>4}: req/s {[round(r['rps']) for r in runs[port]]}, us CPU a request "
                  f"{[round(r['cpu_us']) for r in runs[port]]}")
        print(f"goal on / off >= 90%: {'met' if on['rps'] / off['rps'] >= 0.9 else 'missed'}; "
              f"the service (log and metrics on) / the bare endpoint ({limit['rps']:.1f} req/s, "
              f"{limit['cpu_us']:.0f} us CPU a request) = {on['rps'] / limit['rps']:.2f} "
              f"(goal >= 0.45: {'met' if on['rps'] / limit['rps'] >= 0.45 else 'missed'})")
        alone = load(ours, scenarios[f"{args.batch}-row batch"][0], args.seconds, 1)
        onnx_ms = in_process_onnx_ms(outputs, many)
        print(f"\n{args.batch}-row batch, one connection: obesity.serve p50 {alone['p50']:.1f} ms, "
              f"p99 {alone['p99']:.1f} ms; ONNX Runtime in-process {onnx_ms:.1f} ms (median); "
              f"p50 / in-process = {alone['p50'] / onnx_ms:.2f}x")
        page_figures(ours, many, alone, args.seconds)
    finally:
        for proc in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
        if args.outputs is None:  # its own store (tens of MB): gone with the run
            shutil.rmtree(outputs, ignore_errors=True)


if __name__ == "__main__":
    main()

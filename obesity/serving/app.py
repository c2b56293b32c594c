"""The Litestar prediction service: strict input, one error shape, hot-swapped champion.

Endpoints: POST /predict, POST /predict/batch, POST /predict/csv, GET /health, /ready, /model,
the OpenAPI document under /schema, GET /, a page for people (obesity.serving.page), and POST
/feedback (and /batch, /csv), the truth that comes back later (obesity.serving.feedback). The
model lives in a `ModelHolder` created in the lifespan; a poller follows the registry alias and
swaps the model atomically. Inference is sync CPU work: in a worker thread, but for one row of an
ONNX model (quicker than the hop to a thread). Refusals: obesity.serving.http_errors; the
OpenAPI document and its viewer: obesity.serving.api_docs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec
from litestar import Litestar, MediaType, Request, Response, Router, get, head, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ServiceUnavailableException
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.static_files import create_static_files_router

from obesity.config import checks as config_checks
from obesity.config.compose import sweep_command
from obesity.config.schemas import ServeConfig
from obesity.serving import api_docs, auth, csv_table, feedback, http_metrics, metrics, page
from obesity.serving import request_id as request_ids
from obesity.serving.holder import ModelHolder
from obesity.serving.http_errors import (
    ERRORS,
    ApiError,
    checked_body,
    error_spec,
    http_error,
    internal_error,
)
from obesity.serving.prediction_log import PredictionLog
from obesity.serving.predictors import ServedModel
from obesity.serving.request_id import request_id
from obesity.serving.schema import (
    Batch,
    BatchPrediction,
    Health,
    ModelInfo,
    ModelRef,
    Person,
    Prediction,
    RowPrediction,
)

log = logging.getLogger(__name__)


def no_model_detail(cfg: ServeConfig) -> str:
    return (f"no model yet: {cfg.model_name}@{cfg.alias} does not exist. Train and promote one, "
            f"e.g. `{sweep_command(cfg.data.name)}` (its end registers the best trial and "
            f"makes it {cfg.alias}) or `python -m obesity.registry promote VERSION`")


def _current(state: State) -> ServedModel:
    model = state.holder.current  # one read: the request finishes on this model, whatever swaps
    if model is None:
        raise ServiceUnavailableException(detail=state.holder.problem or state.no_model)
    return model


def _predictions(model: ServedModel, rows: list[Any], request: Request) -> list[RowPrediction]:
    """Predict `rows`, count the answers for /metrics and hand them to the prediction log."""
    tick = time.perf_counter()
    labels, probabilities = model.predictor.predict(rows)
    classes = model.predictor.classes
    answers = [RowPrediction(label, dict(zip(classes, map(float, p), strict=True)))
               for label, p in zip(labels, probabilities, strict=True)]
    latency_ms = (time.perf_counter() - tick) * 1000
    for label, n in Counter(map(str, labels)).items():  # one update per class, not per row
        metrics.PREDICTIONS.labels(model.name, model.version, label).inc(n)
    prediction_log = request.app.state.get("prediction_log")
    if prediction_log is not None:
        prediction_log.record(request_id(request), model, rows, answers, latency_ms)
    return answers


@post("/predict", status_code=200, before_request=checked_body(Person),
      responses=ERRORS, summary="Predict the obesity level of one person")
async def predict(data: Person, state: State, request: Request) -> Prediction:  # type: ignore[valid-type]
    model = _current(state)
    if model.predictor.backend == "onnx":  # one row: quicker than handing it to a thread
        row = _predictions(model, [data], request)[0]
    else:  # sklearn's forest takes ms for one row: never on the event loop
        row = (await anyio.to_thread.run_sync(_predictions, model, [data], request))[0]
    return Prediction(row.prediction, row.probabilities, ModelRef(model.name, model.version))


@post("/predict/batch", status_code=200, sync_to_thread=True, before_request=checked_body(Batch),
      responses=ERRORS, summary="Predict many persons at once, in order")
def predict_batch(data: Batch, state: State, request: Request) -> BatchPrediction:
    model = _current(state)
    return BatchPrediction(_predictions(model, data.rows, request),
                           ModelRef(model.name, model.version))


@post("/predict/csv", status_code=200, media_type=csv_table.MEDIA_TYPE,
      operation_class=api_docs.CsvOperation, summary="Predict a CSV file: the same file, predictions added",
      description="Each row gets the columns `prediction` and `probability_<class>` (replaced "
                  "if the file has them). A bad cell is named by its column and line.",
      responses={**ERRORS, 415: error_spec("Content type is not text/csv")})
async def predict_csv(state: State, request: Request) -> Response[str]:
    if request.content_type[0] != csv_table.MEDIA_TYPE:
        raise ApiError(415, f"send the file as {csv_table.MEDIA_TYPE} (got "
                            f"{request.content_type[0] or 'none'})")
    body = await request.body()  # over the body limit: 413 from Litestar
    return await anyio.to_thread.run_sync(_predict_csv, state, request, body)


def _predict_csv(state: State, request: Request, body: bytes) -> Response[str]:
    try:
        table = csv_table.read(body, state.batch_limit)
    except csv_table.CsvRejected as rejected:
        raise ApiError(rejected.status, rejected.detail, rejected.errors) from None
    model = _current(state)
    answers = _predictions(model, table.persons, request)
    return Response(csv_table.write(table, answers), media_type=csv_table.MEDIA_TYPE,
                    headers={"x-model-name": model.name, "x-model-version": model.version})


@get("/", sync_to_thread=False, media_type=MediaType.HTML, include_in_schema=False)
def index(state: State) -> Response[str]:
    """The page for people: a form from the data contract, a CSV upload, the served version."""
    holder = state.holder
    return Response(page.render(holder.current, holder.problem or state.no_model, state.batch_limit),
                    headers={"content-security-policy": page.CSP})


@get("/health", sync_to_thread=False, summary="The process is alive")
def health() -> Health:
    return Health("alive")


@head(["/", "/health"], sync_to_thread=False, include_in_schema=False,
      media_type=MediaType.TEXT)
def alive_head() -> None:
    """HEAD / and HEAD /health: 200 with no body, for uptime checkers that only ask HEAD (Litestar
    answers a GET-only path's HEAD with 405)."""


@get("/ready", sync_to_thread=False, responses={503: ERRORS[503]},
     summary="A model is loaded and requests will be answered")
def ready(state: State) -> ModelRef:
    model = _current(state)
    return ModelRef(model.name, model.version)


@get("/model", sync_to_thread=False, responses={503: ERRORS[503]},
     summary="The served model: version, metrics, data version, input schema")
def model_info(state: State) -> ModelInfo:
    model = _current(state)
    tags = model.tags
    metrics = {}
    for key, value in tags.items():
        if key.startswith(("test_", "cv_")):
            with contextlib.suppress(ValueError):
                metrics[key] = float(value)
    return ModelInfo(
        name=model.name, version=model.version, alias=model.alias,
        backend=model.predictor.backend,  # type: ignore[arg-type]
        validation_status=tags.get("validation_status", "unknown"),
        data_md5=tags.get("data_md5", "unknown"), metrics=metrics, run_id=model.run_id,
        loaded_at=model.loaded_at, input_schema=msgspec.json.schema(Person),
        integrity=model.integrity.status,  # type: ignore[arg-type]
        integrity_detail=model.integrity.detail,
        card="/model/card" if model.card else None,
    )


@get("/model/card", sync_to_thread=False, media_type="text/markdown; charset=utf-8",
     responses={404: error_spec("The served version has no model card"),
                503: ERRORS[503]},
     summary="The served version's model card (markdown): intended use, data, metrics, limits")
def model_card(state: State) -> str:
    model = _current(state)
    if model.card is None:
        raise ApiError(404, f"{model.name} version {model.version} has no model card")
    return model.card


async def _follow_alias(holder: ModelHolder, first: asyncio.Future, interval: float) -> None:
    """Finish the first load, then check the alias every `interval` seconds. ModelHolder
    reports (once) what goes wrong; nothing here may stop the service."""
    with contextlib.suppress(Exception):
        await first
    if holder.current is None and holder.problem is None:
        log.warning("%s", no_model_detail(holder.cfg))
    while True:
        await asyncio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(holder.refresh)
        except Exception:  # a bug, not a registry problem (those the holder reports itself)
            log.exception("checking %s@%s failed", holder.cfg.model_name, holder.cfg.alias)


async def _stamp(message: Any, scope: Any) -> None:
    request_ids.stamp(message, scope)


async def _stamp_counted(message: Any, scope: Any) -> None:
    """The request id on every response; a response no route handled is counted (Litestar's
    Prometheus middleware only wraps routes)."""
    request_ids.stamp(message, scope)
    if message["type"] == "http.response.start" and "route_handler" not in scope:
        metrics.UNROUTED.labels(scope.get("method", "-"), str(message["status"])).inc()


class MetricsController(PrometheusController):
    """GET /metrics in Prometheus' text format: for scrapers, not part of the API document."""

    include_in_schema = False


def _prediction_log(cfg: ServeConfig) -> PredictionLog | None:
    url = cfg.registry.prediction_log
    if not url:
        log.warning("no prediction log: registry.prediction_log is not set (registry=server: "
                    "PREDICTION_LOG_URL)")
        return None
    m = cfg.monitor
    prediction_log = PredictionLog(str(url), m.flush_interval_s, m.buffer_rows, m.log_inputs,
                                   m.retention_days)
    prediction_log.start()
    return prediction_log


def create_app(cfg: ServeConfig) -> Litestar:
    """The service for `cfg` (configs/serve.yaml): model name/alias, limits, reload interval.
    ConfigError, listing every bad value, before anything listens."""
    config_checks.check(cfg)
    tokens = auth.load_tokens(cfg.auth)  # a short token or an unreadable file fails now
    if not tokens:
        log.warning("POST /feedback answers 403: no token is configured (set %s or "
                    "auth.tokens_file; docs/monitoring.md)", cfg.auth.tokens_env or "auth.tokens_env")
    elif not cfg.registry.prediction_log:
        log.warning("POST /feedback answers 503: labels are stored beside the prediction log, "
                    "and registry.prediction_log is not set")
    if not cfg.registry.verify_key:
        log.warning("models are not signature-checked: registry.verify_key (OBESITY_VERIFY_KEY) is "
                    "not set, so a version whose manifest was rewritten in the registry would be "
                    "served; GET /model says 'unsigned' (docs/serving.md: signed models)")

    @contextlib.asynccontextmanager
    async def model_lifespan(app: Litestar) -> AsyncIterator[None]:
        """Listen at once (or after up to `load_wait_s` for the first model): /health answers
        while the model loads in a worker thread, /ready says 503 until it is in place; a store
        that cannot be read, or a slow load, never keeps the service from answering."""
        holder = app.state.holder = ModelHolder(cfg)
        prediction_log = app.state.prediction_log = _prediction_log(cfg)
        if prediction_log is not None:  # labels live beside the predictions they label
            from obesity.feedback.store import LabelStore

            app.state.label_store = LabelStore(prediction_log.url)
        first = asyncio.ensure_future(anyio.to_thread.run_sync(holder.refresh))
        if cfg.load_wait_s > 0:
            await asyncio.wait({first}, timeout=cfg.load_wait_s)
        poller = asyncio.create_task(_follow_alias(holder, first, cfg.reload_interval_s))
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            if prediction_log is not None:  # a clean shutdown writes every answered row
                await anyio.to_thread.run_sync(prediction_log.stop)
                app.state.label_store.close()

    # a token for predictions only when configured: a guard, even one that lets everything
    # through, costs each request a call and a copy of its handler
    predictions = Router("/", route_handlers=[predict, predict_batch, predict_csv],
                         guards=[auth.predictions_guard] if cfg.auth.predictions else [])
    handlers: list[Any] = [predictions, health, ready, model_info,
                           model_card, index, alive_head, feedback.feedback,
                           feedback.feedback_batch, feedback.feedback_csv, api_docs.file_handler(),
                           create_static_files_router("/static", [page.STATIC_DIR],
                                                      include_in_schema=False)]
    middleware: list[Any] = []
    before_send = [_stamp_counted if cfg.monitor.metrics else _stamp]
    if cfg.monitor.metrics:
        prometheus = PrometheusConfig(app_name="obesity", prefix="obesity_http", group_path=True,
                                      exclude=["/metrics"],
                                      middleware_class=http_metrics.LeanPrometheusMiddleware)
        handlers.append(MetricsController)
        middleware.append(prometheus.middleware)
    return Litestar(
        route_handlers=handlers,
        middleware=middleware,
        before_send=before_send,
        lifespan=[model_lifespan],
        # what requests read, as plain values: an OmegaConf access parses interpolations on
        # every read, which made GET / measurably slower
        state=State({"cfg": cfg, "batch_limit": cfg.batch_limit, "body_limit": cfg.body_limit_bytes,
                     "no_model": no_model_detail(cfg), "tokens": tokens,
                     "tokens_env": cfg.auth.tokens_env,
                     "label_batch_limit": cfg.label_batch_limit}),
        request_max_body_size=cfg.body_limit_bytes,
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        plugins=[api_docs.StrictStructSchemaPlugin()],
        openapi_config=OpenAPIConfig(title="obesity prediction service", version="1",
                                     path="/schema", render_plugins=[api_docs.render_plugin()]),
    )

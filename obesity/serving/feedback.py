"""POST /feedback, /feedback/batch, /feedback/csv: the truth for served predictions, behind a
bearer token (obesity.serving.auth). Stored all or nothing in the label store beside the
prediction log (obesity.feedback.store); refusals name the label, the line or the request id:
400 bad label, 404 no such request or row, 409 labelled already (`?replace=true` replaces it,
the old label kept), 413 too many, 401/403 the token."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import msgspec
from litestar import Request, post
from litestar.datastructures import State

from obesity.errors import StoreError
from obesity.feedback import labels_csv
from obesity.feedback.store import Label, LabelsRefused
from obesity.serving import metrics
from obesity.serving.auth import labels_guard
from obesity.serving.http_errors import ERRORS, ApiError, error_spec
from obesity.serving.schema import LabelBatch, LabelIn, LabelsStored, error_at_path

CSV = "text/csv"
RESPONSES = {
    400: ERRORS[400],
    401: error_spec("No token, or not a valid one"),
    403: error_spec("The service has no token configured: labels are off"),
    404: error_spec("A label names a request id (or row) the prediction log does not hold"),
    409: error_spec("A row has a label already (send ?replace=true to replace it)"),
    413: ERRORS[413],
    415: error_spec("Wrong content type"),
    503: error_spec("The service records no predictions (no prediction log), or it cannot be "
                    "reached"),
}
COMMON: dict[str, Any] = {"status_code": 201, "guards": [labels_guard], "responses": RESPONSES}


@post("/feedback", summary="The true class of one answered prediction", **COMMON)
async def feedback(request: Request, state: State, replace: bool = False) -> LabelsStored:
    one = _decode(await _body(request, "application/json"), LabelIn)
    return await _store(state, [Label(one.request_id, one.label, one.row)], ["the label"], replace)


@post("/feedback/batch", summary="True classes of many answered predictions, all or none",
      **COMMON)
async def feedback_batch(request: Request, state: State, replace: bool = False) -> LabelsStored:
    batch = _decode(await _body(request, "application/json"), LabelBatch)
    if len(batch.labels) > state.label_batch_limit:
        raise ApiError(413, f"a batch holds at most {state.label_batch_limit} labels (got "
                            f"{len(batch.labels)})")
    labels = [Label(x.request_id, x.label, x.row) for x in batch.labels]
    return await _store(state, labels, [f"labels[{i}]" for i in range(len(labels))], replace)


@post("/feedback/csv", summary="True classes as a CSV file: request_id,label[,row]", **COMMON)
async def feedback_csv(request: Request, state: State, replace: bool = False) -> LabelsStored:
    body = await _body(request, CSV)
    try:
        labels, where = labels_csv.read(body.decode("utf-8-sig"), state.label_batch_limit)
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except LabelsRefused as refused:
        raise ApiError(refused.status, str(refused)) from None
    return await _store(state, labels, where, replace)


async def _body(request: Request, media_type: str) -> bytes:
    if request.content_type[0] != media_type:
        raise ApiError(415, f"send the body as {media_type} (got {request.content_type[0] or 'none'})")
    return await request.body()  # over the body limit: 413 from Litestar


def _decode(body: bytes, kind: type) -> Any:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid labels", [error_at_path(str(exc))]) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None


async def _store(state: State, labels: list[Label], where: list[str], replace: bool) -> LabelsStored:
    store = state.get("label_store")
    if store is None:
        raise ApiError(503, "this service records no predictions (registry.prediction_log is "
                            "not set), so there is nothing to label")
    return await anyio.to_thread.run_sync(_store_sync, state, store, labels, where, replace)


def _store_sync(state: State, store: Any, labels: list[Label], where: list[str],
                replace: bool) -> LabelsStored:
    state.prediction_log.flush()  # what this replica answered a moment ago is findable now
    try:
        stored = store.add(labels, replace=replace, source="http", where=where)
    except LabelsRefused as refused:
        raise ApiError(refused.status, str(refused)) from None
    except StoreError as exc:
        raise ApiError(503, str(exc)) from None
    for label, n in Counter(lab.label for lab in labels).items():
        metrics.LABELS.labels(label).inc(n)
    return LabelsStored(stored.stored, stored.replaced)

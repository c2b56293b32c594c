"""The HTTP contract of the prediction service: request and response bodies, and input checks.

`Person` is generated from the data contract (obesity/data/contract.py), so the service and the
training data validation can never disagree on a column, a level or a range. msgspec decodes a
valid body in one pass; only when it fails does `body_errors` walk the body to name EVERY bad
field (msgspec itself stops at the first).
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from obesity.data.contract import CLASSES, FEATURES, Categorical, Numeric

MAX_MESSAGE = 80  # characters of a client's value echoed back in an error message


def _field_type(column: Numeric | Categorical) -> Any:
    if isinstance(column, Numeric):
        words = f"{column.description} ({column.scale})" if column.scale else column.description
        return Annotated[float, Meta(ge=column.low, le=column.high, description=words)]
    return Annotated[Literal[column.levels], Meta(description=column.description or column.name)]


FIELD_TYPES: dict[str, Any] = {c.name: _field_type(c) for c in FEATURES}
LEVELS: dict[str, tuple[str, ...]] = {c.name: c.levels for c in FEATURES if isinstance(c, Categorical)}

Person = msgspec.defstruct(
    "Person",
    list(FIELD_TYPES.items()),
    forbid_unknown_fields=True,
    kw_only=True,
    module=__name__,
)
Person.__doc__ = "One person: the 16 raw feature columns, typed and range-checked."


class Batch(msgspec.Struct, forbid_unknown_fields=True):
    """Several persons (at most the service's `batch_limit`: 413 beyond); predictions come back
    in the same order."""

    # No schema maximum: the configured batch_limit is the one limit (checked before predicting).
    rows: Annotated[list[Person], Meta(min_length=1)]  # type: ignore[valid-type]


class ModelRef(msgspec.Struct):
    name: str
    version: str


class RowPrediction(msgspec.Struct):
    prediction: Literal[CLASSES]  # type: ignore[valid-type]
    probabilities: dict[str, float]


class Prediction(RowPrediction):
    model: ModelRef


class BatchPrediction(msgspec.Struct):
    predictions: list[RowPrediction]
    model: ModelRef


class ModelInfo(msgspec.Struct):
    name: str
    version: str
    alias: str
    backend: Literal["onnx", "sklearn"]
    validation_status: str
    data_md5: str
    metrics: dict[str, float]
    run_id: str
    loaded_at: str
    input_schema: dict[str, Any]
    # signed | unsigned | unbound: how far its files are vouched for (obesity.registry.manifest)
    integrity: Literal["signed", "unsigned", "unbound"] = "unbound"
    integrity_detail: str = ""
    card: str | None = None  # where the served version's model card is (GET), if it has one


class Health(msgspec.Struct):
    status: str


class FieldError(msgspec.Struct, omit_defaults=True):
    field: str
    message: str
    line: int | None = None  # the line of an uploaded CSV file (POST /predict/csv)


class ErrorBody(msgspec.Struct):
    """The one shape of every error the service returns."""

    status: int
    error: str
    detail: str
    errors: list[FieldError] = []


class MalformedBody(ValueError):
    """Bytes that are not one JSON document (not UTF-8, truncated, NaN literals, too deep)."""


class OutOfRange(str):
    """A JSON number no float64 can hold (`1e400`, a 5000-digit integer), kept as its text."""


def _number(text: str) -> float | OutOfRange:
    # the digits are not converted when there are too many: int() refuses > 4300 of them
    if len(text) > 400:
        return OutOfRange(text)
    value = float(text)
    return value if math.isfinite(value) else OutOfRange(text)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_leniently(body: bytes) -> Any:
    """The body as Python objects for naming bad fields: unlike msgspec it keeps numbers out of
    float range (as `OutOfRange`), so the field holding one can be named. Raises MalformedBody
    naming what is wrong with bytes that are not JSON at all."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the body is not valid UTF-8: byte 0x{body[exc.start]:02x} at "
                            f"position {exc.start} ({exc.reason})") from None
    try:
        return json.loads(text, parse_float=_number, parse_int=_number, parse_constant=_no_constant)
    except RecursionError:
        raise MalformedBody("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError is one
        raise MalformedBody(f"malformed JSON: {clip(str(exc))}") from None


_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


def error_at_path(message: str) -> FieldError:
    """msgspec's error (`Expected float, got str - at $.rows[0].Age`) as a named field error."""
    match = _PATH.search(message)
    if match is None:
        return FieldError("body", clip(message))
    return FieldError(match["path"] or "body", clip(message[:match.start()]))


def clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


def _describe(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return clip(repr(value))


def person_errors(obj: Any, where: str = "") -> list[FieldError]:
    """Every problem of one person object, each named by its field path."""
    if not isinstance(obj, dict):
        return [FieldError(where.rstrip(".") or "body",
                           f"expected an object with the 16 fields, got {type(obj).__name__}")]
    errors = []
    for name, kind in FIELD_TYPES.items():
        if name not in obj:
            errors.append(FieldError(where + name, "required field is missing"))
            continue
        value = obj[name]
        if isinstance(value, OutOfRange):
            errors.append(FieldError(where + name, f"number out of range for a float "
                                                   f"(got {clip(str(value))})"))
            continue
        if name in LEVELS:
            if value not in LEVELS[name]:  # msgspec's own message would echo the whole value
                errors.append(FieldError(where + name, f"must be one of {', '.join(LEVELS[name])} "
                                                       f"(got {_describe(value)})"))
            continue
        try:
            msgspec.convert(value, kind)
        except msgspec.ValidationError as exc:
            message = str(exc).split(" - at ")[0]
            errors.append(FieldError(where + name, f"{message} (got {_describe(value)})"))
    errors += [FieldError(clip(where + str(key)), "unknown field")
               for key in obj if key not in FIELD_TYPES]
    return errors


def batch_errors(obj: Any) -> list[FieldError]:
    """Every problem of a batch body; a bad row is named by its index (`rows[3].Age`)."""
    if not isinstance(obj, dict):
        return [FieldError("body", f"expected an object {{\"rows\": [...]}}, got {type(obj).__name__}")]
    errors = [FieldError(clip(str(key)), "unknown field") for key in obj if key != "rows"]
    rows = obj.get("rows")
    if not isinstance(rows, list):
        return [*errors, FieldError("rows", "required: a list of row objects")]
    if not rows:
        return [*errors, FieldError("rows", "needs at least one row")]
    for i, row in enumerate(rows):
        errors += person_errors(row, f"rows[{i}].")
    return errors


class LabelIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The truth for one answered row: its request's `X-Request-ID` and, for a batch or a CSV
    file, the row's index in it."""

    request_id: Annotated[str, Meta(min_length=1, max_length=128,
                                    description="the X-Request-ID of the prediction's answer")]
    label: Annotated[str, Meta(description=f"the true class: one of {', '.join(CLASSES)}")]
    row: Annotated[int, Meta(ge=0, description="the row in its request (0 for /predict)")] = 0


class LabelBatch(msgspec.Struct, forbid_unknown_fields=True):
    """Several labels, stored together or not at all."""

    labels: Annotated[list[LabelIn], Meta(min_length=1)]


class LabelsStored(msgspec.Struct):
    stored: int
    replaced: int  # labels that replaced an earlier one (kept in the history)

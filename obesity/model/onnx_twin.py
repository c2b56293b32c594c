"""The ONNX twin of a registered pipeline: convert with skl2onnx, verify, keep it with the version.

The twin is served through ONNX Runtime (a row in a small fraction of a 300-tree forest's time:
docs/benchmarks.md) only when it gives the same labels and probabilities (within TOLERANCE) as
the sklearn pipeline on the version's held-out test split. This module converts and verifies;
obesity/registry/twin.py keeps a twin with its version.

Two converters are registered here, once per process:
- `AddBMI`: our own feature step. Its parser passes every column through and adds `BMI`, so the
  ColumnTransformer after it still finds its columns by name.
- HistGradientBoostingClassifier: skl2onnx 1.20's converter puts a Python bool into the integer
  attribute `nodes_missing_value_tracks_true` (`AttributeProto.ints: Expected an int, got a
  boolean`); a thin wrapper turns those into ints before the node is added.
Numeric inputs are float64, as in the CSV; BMI is computed in float64 and every numeric column is
cast to float32 after it, which is what sklearn's trees do with their input.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from obesity.data.contract import NUMERIC_FEATURES

if TYPE_CHECKING:  # converting and verifying need them; serving a twin does not load them
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from obesity.model.features import AddBMI

log = logging.getLogger(__name__)
CLASSES_KEY = "classes"
ML_OPSET = 3  # the ai.onnx.ml opset skl2onnx writes tree ensembles in (the main opset: config)


@dataclass(frozen=True)
class Verification:
    rows: int
    labels_equal: bool
    max_probability_diff: float
    tolerance: float  # the largest accepted max_probability_diff

    @property
    def ok(self) -> bool:
        return self.labels_equal and self.max_probability_diff <= self.tolerance


@cache
def _register_converters() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import FloatTensorType
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from skl2onnx.operator_converters.random_forest import (
        convert_sklearn_random_forest_classifier,
    )
    from skl2onnx.proto import onnx_proto
    from sklearn.ensemble import HistGradientBoostingClassifier

    from obesity.model.features import AddBMI

    def parse_bmi(scope: Any, model: AddBMI, inputs: list, custom_parsers: Any = None) -> list:
        operator = scope.declare_local_operator("ObesityAddBMI", model)
        operator.inputs = list(inputs)
        for var in inputs:
            kind = FloatTensorType if var.raw_name in NUMERIC_FEATURES else type(var.type)
            operator.outputs.append(scope.declare_local_variable(var.raw_name, kind([None, 1])))
        operator.outputs.append(scope.declare_local_variable("BMI", FloatTensorType([None, 1])))
        return list(operator.outputs)

    def shape_bmi(operator: Any) -> None:  # shapes were fixed by the parser
        pass

    def convert_bmi(scope: Any, operator: Any, container: Any) -> None:
        model: AddBMI = operator.raw_operator
        by_name = {var.raw_name: var for var in operator.inputs}
        # one output per input, then the BMI column (the last output, written below)
        for var, out in zip(operator.inputs, operator.outputs[:-1], strict=True):
            if var.raw_name in NUMERIC_FEATURES:
                container.add_node("Cast", var.full_name, out.full_name, to=onnx_proto.TensorProto.FLOAT,
                                   name=scope.get_unique_operator_name("Cast"))
            else:
                container.add_node("Identity", var.full_name, out.full_name,
                                   name=scope.get_unique_operator_name("Identity"))
        height, weight = by_name[model.height].full_name, by_name[model.weight].full_name
        square = scope.get_unique_variable_name("height_sq")
        bmi64 = scope.get_unique_variable_name("bmi64")
        container.add_node("Mul", [height, height], square, name=scope.get_unique_operator_name("Mul"))
        container.add_node("Div", [weight, square], bmi64, name=scope.get_unique_operator_name("Div"))
        container.add_node("Cast", bmi64, operator.outputs[-1].full_name,
                           to=onnx_proto.TensorProto.FLOAT, name=scope.get_unique_operator_name("Cast"))

    update_registered_converter(AddBMI, "ObesityAddBMI", shape_bmi, convert_bmi, parser=parse_bmi)

    def convert_hgb(scope: Any, operator: Any, container: Any) -> None:
        add_node = container.add_node

        def add_node_with_int_flags(*args: Any, **attrs: Any) -> Any:
            flags = attrs.get("nodes_missing_value_tracks_true")
            if flags is not None:
                attrs["nodes_missing_value_tracks_true"] = [int(f) for f in flags]
            return add_node(*args, **attrs)

        container.add_node = add_node_with_int_flags
        try:
            convert_sklearn_random_forest_classifier(scope, operator, container)
        finally:
            del container.add_node  # back to the class's method

    update_registered_converter(
        HistGradientBoostingClassifier, "SklearnHistGradientBoostingClassifier",
        calculate_linear_classifier_output_shapes, convert_hgb,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False],
                 "raw_scores": [True, False]},
    )


def input_types(columns: list[str], double: bool) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    numeric = DoubleTensorType if double else FloatTensorType
    return [(c, numeric([None, 1]) if c in NUMERIC_FEATURES else StringTensorType([None, 1]))
            for c in columns]


def convert(pipeline: Pipeline, columns: list[str], opset: int) -> bytes:
    """The pipeline as a serialized ONNX model: one input per raw column, outputs label and
    probabilities (a plain tensor, columns in `pipeline.classes_` order)."""
    from skl2onnx import to_onnx

    from obesity.model.features import AddBMI

    if len(pipeline.classes_) < 2:  # checked first: ONNX Runtime aborts the process on such a twin
        raise ValueError(f"the model knows {len(pipeline.classes_)} class: a one-class model "
                         "cannot be twinned")
    _register_converters()
    # With a BMI step the raw numerics come in as float64 (see module docstring); without one,
    # sklearn's first float32 cast happens in the estimator, so float32 inputs are exact.
    double = isinstance(pipeline.steps[0][1], AddBMI)
    onx = to_onnx(pipeline, initial_types=input_types(columns, double),
                  options={id(pipeline.steps[-1][1]): {"zipmap": False}},
                  target_opset={"": opset, "ai.onnx.ml": ML_OPSET})
    entry = onx.metadata_props.add()  # the probability columns' order, for the service
    entry.key, entry.value = CLASSES_KEY, json.dumps([str(c) for c in pipeline.classes_])
    return onx.SerializeToString()


def classes(sess: Any) -> list[str]:
    return json.loads(sess.get_modelmeta().custom_metadata_map[CLASSES_KEY])


KINDS = {"tensor(double)": np.float64, "tensor(float)": np.float32, "tensor(string)": object}


def input_kinds(sess: Any) -> list[tuple[str, Any]]:
    """The twin's inputs: (raw column name, numpy dtype), in input order."""
    return [(i.name, KINDS[i.type]) for i in sess.get_inputs()]


def feeds(columns: Mapping[str, Any], kinds: list[tuple[str, Any]]) -> dict[str, np.ndarray]:
    """ONNX Runtime inputs, one [n, 1] array per raw column, from a frame or any mapping of
    column name -> values (the service passes lists built from request rows)."""
    return {name: np.asarray(columns[name], dtype=dtype).reshape(-1, 1) for name, dtype in kinds}


def session(model_bytes: bytes, threads: int = 1) -> Any:
    """An ONNX Runtime session of the twin; `threads` > 1 only pays for batches of many rows
    (one row is microseconds of work: threads only add latency)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def verify(pipeline: Pipeline, model_bytes: bytes, X: pd.DataFrame, tolerance: float) -> Verification:
    """Compare the twin with the pipeline on `X`: same labels, probabilities within `tolerance`."""
    sess = session(model_bytes)
    labels, probabilities = sess.run(None, feeds(X, input_kinds(sess)))
    expected_labels = pipeline.predict(X)
    expected = pipeline.predict_proba(X)
    return Verification(
        rows=len(X),
        labels_equal=bool(np.array_equal(np.asarray(labels).ravel(), expected_labels)),
        max_probability_diff=float(np.max(np.abs(probabilities - expected))),
        tolerance=tolerance,
    )

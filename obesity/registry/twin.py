"""A registered version's ONNX twin, kept with it: converted and verified on the version's
test split (obesity/model/onnx_twin.py), an artifact of the version's run (`onnx/model.onnx`),
and tags `onnx` (verified | mismatch | failed), `onnx_max_prob_diff`, `onnx_rows_checked`."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from obesity.config.schemas import RegistryConfig
from obesity.errors import first_line

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient
    from sklearn.pipeline import Pipeline

    from obesity.model.onnx_twin import Verification

log = logging.getLogger(__name__)

ARTIFACT_DIR = "onnx"
ARTIFACT = f"{ARTIFACT_DIR}/model.onnx"


def attach(client: MlflowClient, pipeline: Pipeline, version: ModelVersion, X_test: pd.DataFrame,
           registry_cfg: RegistryConfig) -> Verification | None:
    """Convert, verify on the test split and keep the twin with `version` (artifact + tags), at
    the registry config's `onnx_opset` and `onnx_tolerance`.

    Never raises for a model skl2onnx cannot convert: the version is tagged `onnx=failed` and is
    served by sklearn.
    """
    from obesity.model.onnx_twin import convert, verify

    try:
        model_bytes = convert(pipeline, list(X_test.columns), registry_cfg.onnx_opset)
        result = verify(pipeline, model_bytes, X_test, registry_cfg.onnx_tolerance)
    except Exception as exc:  # a converter gap is a slower service, not a failed promotion
        why = first_line(exc)
        log.warning("no ONNX twin for %s version %s: %s", version.name, version.version, why)
        client.set_model_version_tag(version.name, version.version, "onnx", "failed")
        client.set_model_version_tag(version.name, version.version, "onnx_error", why[:500])
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "model.onnx")
        path.write_bytes(model_bytes)
        client.log_artifact(version.run_id, str(path), ARTIFACT_DIR)
    status = "verified" if result.ok else "mismatch"
    for key, value in {"onnx": status, "onnx_max_prob_diff": f"{result.max_probability_diff:.3g}",
                       "onnx_rows_checked": str(result.rows)}.items():
        client.set_model_version_tag(version.name, version.version, key, value)
    log.info("ONNX twin of %s version %s: %s (labels equal: %s, max |dp| %.2g on %d test rows)",
             version.name, version.version, status, result.labels_equal,
             result.max_probability_diff, result.rows)
    return result

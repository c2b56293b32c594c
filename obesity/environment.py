"""What this project asks of its libraries through the environment, in one visible place.

Nothing here runs on import: each entrypoint's runtime (obesity/runtime.py) sets them when it
starts, before MLflow or Evidently is imported, and gives them back when it closes; the code that
opens MLflow's store or runs Evidently calls `quiet_libraries()` again for those who use the
package from Python. Values a user has set are kept.
"""

from __future__ import annotations

import os

DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # no usage reports from MLflow
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # logs, not progress bars
    # requirements are passed explicitly (stores.tracking.model_requirements): no uv project hunt
    "MLFLOW_UV_AUTO_DETECT": "false",
    "DO_NOT_TRACK": "1",  # Evidently's usage telemetry
}


def quiet_libraries() -> list[str]:
    """Set DEFAULTS in this process's environment where the user has not; the names set now."""
    unset = [key for key in DEFAULTS if key not in os.environ]
    for key in unset:
        os.environ[key] = DEFAULTS[key]
    return unset

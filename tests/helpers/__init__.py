"""What the tests share: paths, configs, real runs and stores, a real service, made-up people.
Imported by name (`from tests.helpers import compose_train`); fixtures stay in conftest.py."""

from tests.helpers.configs import FAST, compose_monitor, compose_serve, compose_train
from tests.helpers.paths import CONFIGS, RAW_CSV, RAW_MD5, ROOT, write_lines
from tests.helpers.people import as_json, other_population
from tests.helpers.servers import finished, metric_value, serving, wait_until
from tests.helpers.stores import (
    STUDY,
    SWEEP,
    load_study,
    mlflow_client,
    register,
    registry_cli,
    rf_champion,
    run_cli,
    run_sweep,
)

__all__ = ["CONFIGS", "FAST", "RAW_CSV", "RAW_MD5", "ROOT", "STUDY", "SWEEP", "as_json",
           "compose_monitor", "compose_serve", "compose_train", "finished", "load_study", "metric_value",
           "mlflow_client", "other_population", "register", "registry_cli", "rf_champion",
           "run_cli", "run_sweep", "serving", "wait_until", "write_lines"]

"""`python -m obesity.monitor`: is the served traffic still like the training data?

Exit code: 0 no drift, 3 drift, 4 insufficient data, 5 the served version is degraded (its
labelled rows score significantly below its test-split estimate, whatever the drift); errors: 1,
with one line. The report and
summary land in the run dir (outputs/monitoring/<date>/<time>/) and in MLflow (configs/monitor.yaml).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from obesity.config.compose import CONFIG_DIR, hydra_cli
from obesity.config.schemas import EXECUTION_WHITELIST
from obesity.errors import exit_on_error


@hydra.main(config_path=str(CONFIG_DIR), config_name="monitor", execution_whitelist=EXECUTION_WHITELIST)
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from obesity.config.compose import typed
    from obesity.config.schemas import MonitorJobConfig
    from obesity.monitoring import job

    with exit_on_error():
        check = job.run(typed(cfg, MonitorJobConfig), Path(HydraConfig.get().runtime.output_dir))
    reports = [check.out_dir / name for name in ("report.html", "performance.html")]
    verdict = check.status + (",degraded" if check.performance == "degraded" else "")
    print(" ".join([f"{verdict}:", str(check.out_dir / "summary.json"),
                    *(str(r) for r in reports if r.is_file())]))
    sys.exit(check.exit_code)


if __name__ == "__main__":
    hydra_cli(main)

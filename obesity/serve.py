"""`python -m obesity.serve`: the prediction service (configs/serve.yaml) under uvicorn."""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from obesity import config as _config  # noqa: F401  (registers the schemas)
from obesity.errors import ObesityError

log = logging.getLogger("obesity.serve")


# The whitelist covers instantiate() and the logging config (handler factories).
@hydra.main(config_path=str(_config.CONFIG_DIR), config_name="serve",
            execution_whitelist=_config.EXECUTION_WHITELIST)
def main(cfg: DictConfig) -> None:
    import uvicorn

    from obesity import config_checks, http_limits
    from obesity.app import create_app

    try:
        config_checks.check(cfg)
        app = create_app(cfg)
    except ObesityError as exc:
        log.error("%s", exc)
        sys.exit(1)
    log.info("serving %s@%s on http://%s:%d (OpenAPI at /schema)", cfg.model_name, cfg.alias,
             cfg.host, cfg.port)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=cfg.log_level,
                access_log=cfg.access_log, loop="uvloop",
                http=http_limits.protocol(cfg.header_timeout_s),
                timeout_keep_alive=cfg.keep_alive_timeout_s,
                limit_concurrency=cfg.limit_concurrency)


if __name__ == "__main__":
    main()

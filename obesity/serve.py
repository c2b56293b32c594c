"""`python -m obesity.serve`: the prediction service (configs/serve.yaml) under uvicorn."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from obesity.config.compose import CONFIG_DIR, hydra_cli
from obesity.config.schemas import EXECUTION_WHITELIST
from obesity.errors import exit_on_error

log = logging.getLogger(__name__)


# The whitelist covers instantiate() and the logging config (handler factories).
@hydra.main(config_path=str(CONFIG_DIR), config_name="serve", execution_whitelist=EXECUTION_WHITELIST)
def main(cfg: DictConfig) -> None:
    import uvicorn

    from obesity.config.compose import typed
    from obesity.config.schemas import ServeConfig
    from obesity.serving import http_limits, request_id
    from obesity.serving.app import create_app

    with exit_on_error():
        serve = typed(cfg, ServeConfig)
        app = create_app(serve)  # ConfigError first: bad values named before anything listens
    log.info("serving %s@%s on http://%s:%d (OpenAPI at /schema)", serve.model_name, serve.alias,
             serve.host, serve.port)
    uvicorn.run(app, host=serve.host, port=serve.port, log_level=serve.log_level.value,
                access_log=serve.access_log, log_config=request_id.uvicorn_log_config(), loop="uvloop",
                http=http_limits.protocol(serve.header_timeout_s),
                timeout_keep_alive=serve.keep_alive_timeout_s,
                limit_concurrency=serve.limit_concurrency)


if __name__ == "__main__":
    hydra_cli(main)

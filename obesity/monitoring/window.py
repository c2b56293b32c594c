"""The window of traffic a drift report looks at: the last rows of the service's prediction log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from obesity.data.contract import FEATURE_NAMES
from obesity.errors import ConfigError
from obesity.stores import locations


@dataclass(frozen=True)
class Window:
    frame: pd.DataFrame  # the inputs (contract columns) and the served prediction, oldest first
    without_inputs: int  # rows of the same span logged with monitor.log_inputs=false
    source: str  # the log, credentials redacted

    def __len__(self) -> int:
        return len(self.frame)


def log_url(url: str | None) -> str:
    """The prediction log's URL, or a ConfigError saying there is none to read."""
    if not url:
        raise ConfigError("registry.prediction_log is not set: the service records nothing, so "
                          "there is no traffic to check (set it, or PREDICTION_LOG_URL with "
                          "registry=server)")
    return url


def read_window(url: str | None, model_name: str, rows: int, since_hours: float | None,
                columns: list[str]) -> Window:
    """The last `rows` rows answered for `model_name` (of the last `since_hours` hours) whose
    `columns` were logged. A log that does not exist yet is an empty window, not an error: a
    scheduled check before the first request has nothing to judge."""
    from sqlalchemy import MetaData, and_, func, select

    from obesity.stores.traffic import PREDICTIONS, predictions_table, reading

    url = log_url(url)
    source = locations.redact(url)
    empty = Window(pd.DataFrame(columns=[*FEATURE_NAMES, "prediction"]), 0, source)
    with reading(url, PREDICTIONS) as engine:
        if engine is None:
            return empty
        log = predictions_table(MetaData())
        where = [log.c.model_name == model_name]
        if since_hours is not None:
            where.append(log.c.at >= datetime.now(UTC) - timedelta(hours=since_hours))
        logged = and_(*where, *(log.c[c].is_not(None) for c in columns))
        query = (select(*(log.c[c] for c in (*FEATURE_NAMES, "prediction")))
                 .where(logged).order_by(log.c.id.desc()).limit(rows))
        with engine.connect() as connection:
            frame = pd.read_sql(query, connection).iloc[::-1].reset_index(drop=True)
            frame.columns = [str(c) for c in frame.columns]  # SQLAlchemy's quoted_name
            bare = and_(*where, log.c[columns[0]].is_(None))
            without = connection.execute(
                select(func.count()).select_from(log).where(bare)).scalar_one()
    return Window(frame, int(without), source)

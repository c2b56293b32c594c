"""What `GET /metrics` reports beside Litestar's request counts and latencies (Prometheus).

Created once per process: prometheus_client keeps one registry, and a service (or a test) may
create several apps.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from datetime import datetime

from prometheus_client import Counter, Gauge

PREDICTIONS = Counter("obesity_predictions", "Answered predictions (rows), by model version and class",
                      ["model", "version", "predicted_class"])
LOG_DROPPED = Counter("obesity_prediction_log_dropped_rows",
                      "Rows the prediction log dropped: its buffer was full")
LOG_WRITTEN = Counter("obesity_prediction_log_written_rows", "Rows written to the prediction log")
SERVED = Gauge("obesity_served_version", "The version being served (1 for the current one)",
               ["model", "alias", "version", "backend"])
UNROUTED = Counter("obesity_http_unrouted_requests",
                   "Requests answered before any route matched (404, 405, a bad Host), by status; "
                   "obesity_http_requests_total counts the routed ones",
                   ["method", "status_code"])
LABELS = Counter("obesity_feedback_labels", "Labels stored through POST /feedback, by class",
                 ["label"])

# The monitor's last verdict on the served version, read from the version's tags at each poll
# of the registry (obesity.monitoring.job writes them), so that an alert rule can fire on it.
_SERVED = ["model", "version"]
VERDICT = Gauge("obesity_monitor_status",
                "1 for the monitor's last verdict on the served version, by check (drift: "
                "drift|no_drift|insufficient_data; performance: ok|degraded|insufficient)",
                [*_SERVED, "check", "status"])
CHECKED = Gauge("obesity_monitor_checked_timestamp_seconds",
                "When the monitor last checked the served version (Unix time), by check",
                [*_SERVED, "check"])
DRIFT_SHARE = Gauge("obesity_monitor_drift_share",
                    "Share of drifted columns at the last drift check of the served version",
                    _SERVED)
REALIZED = Gauge("obesity_monitor_realized",
                 "The served version's score on its labelled traffic at the last check, with "
                 "the bounds of its interval (bound: estimate|low|high)",
                 [*_SERVED, "metric", "bound"])
REALIZED_ROWS = Gauge("obesity_monitor_labelled_rows",
                      "Labelled rows the last performance check of the served version scored",
                      _SERVED)
_REALIZED = re.compile(r"^(?P<estimate>[\d.]+) \[(?P<low>[\d.]+), (?P<high>[\d.]+)\]$")


def show_verdicts(model: str, version: str, tags: Mapping[str, str]) -> None:
    """Set the verdict gauges from a version's tags; a series the tags no longer give is removed
    (what a check has not said is absent). A series that stays is never absent in between, so a
    scrape during a poll cannot see an alert's series vanish for a moment."""
    wanted: dict[Gauge, dict[tuple[str, ...], float]] = {gauge: {} for gauge in _VERDICT_GAUGES}
    for check in ("drift", "performance"):
        if status := tags.get(f"{check}_status"):
            wanted[VERDICT][(model, version, check, status)] = 1
        with contextlib.suppress(ValueError):
            at = datetime.fromisoformat(tags.get(f"{check}_checked_at", ""))
            wanted[CHECKED][(model, version, check)] = at.timestamp()
    with contextlib.suppress(ValueError):
        wanted[DRIFT_SHARE][(model, version)] = float(tags.get("drift_share", ""))
    with contextlib.suppress(ValueError):
        wanted[REALIZED_ROWS][(model, version)] = int(tags.get("realized_rows", ""))
    for metric in ("accuracy", "f1_macro"):
        if found := _REALIZED.match(tags.get(f"realized_{metric}", "")):
            for bound, value in found.groupdict().items():
                wanted[REALIZED][(model, version, metric, bound)] = float(value)
    for gauge, values in wanted.items():
        for labels, value in values.items():
            gauge.labels(*labels).set(value)
        shown = {tuple(sample.labels.values()) for family in gauge.collect()
                 for sample in family.samples}  # labels in the gauge's own order
        for labels in shown - values.keys():
            gauge.remove(*labels)


_VERDICT_GAUGES = (VERDICT, CHECKED, DRIFT_SHARE, REALIZED, REALIZED_ROWS)

"""What `GET /metrics` reports beside Litestar's request counts and latencies (Prometheus).

Created once per process: prometheus_client keeps one registry, and a service (or a test) may
create several apps.
"""

from __future__ import annotations

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

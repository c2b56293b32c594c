"""The monitor's verdict gauges follow a version's tags: set, replaced, removed, never stale."""

from __future__ import annotations

from prometheus_client import REGISTRY

from obesity.serving.metrics import show_verdicts

MODEL = "unit_gauges"


def shown() -> dict[tuple, float]:
    """Every verdict sample of MODEL: (name, labels other than the model) -> value."""
    return {(s.name, *sorted((k, v) for k, v in s.labels.items() if k != "model")): s.value
            for family in REGISTRY.collect() if family.name.startswith("obesity_monitor")
            for s in family.samples if s.labels.get("model") == MODEL}


def test_the_gauges_say_what_the_tags_say_and_nothing_older():
    show_verdicts(MODEL, "3", {"drift_status": "drift", "drift_share": "0.5625",
                               "drift_checked_at": "2026-12-02T10:00:00+00:00",
                               "performance_status": "ok", "realized_rows": "120",
                               "realized_accuracy": "0.9100 [0.8500, 0.9600]",
                               "realized_f1_macro": "-"})
    first = shown()
    assert first[("obesity_monitor_status", ("check", "drift"), ("status", "drift"),
                  ("version", "3"))] == 1
    assert first[("obesity_monitor_drift_share", ("version", "3"))] == 0.5625
    assert first[("obesity_monitor_checked_timestamp_seconds", ("check", "drift"),
                  ("version", "3"))] == 1796205600.0
    assert first[("obesity_monitor_realized", ("bound", "low"), ("metric", "accuracy"),
                  ("version", "3"))] == 0.85
    assert not any(key[0] == "obesity_monitor_realized" and ("metric", "f1_macro") in key
                   for key in first)  # "-": no figure this time
    assert len(first) == 8  # 2 statuses, share, check time, 3 accuracy bounds, rows

    # the next check: no drift, too few rows for a share; the old status and share are gone
    show_verdicts(MODEL, "3", {"drift_status": "insufficient_data", "performance_status": "ok"})
    assert shown() == {
        ("obesity_monitor_status", ("check", "drift"), ("status", "insufficient_data"),
         ("version", "3")): 1,
        ("obesity_monitor_status", ("check", "performance"), ("status", "ok"), ("version", "3")): 1}
    show_verdicts(MODEL, "4", {})  # a version never checked: no verdict at all
    assert shown() == {}

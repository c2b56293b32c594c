"""What a trial's job hands back to the sweeper besides its objective value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pruned:
    """What a pruned trial's job returns: a value, not an exception (Hydra writes every job
    exception into the job's log as "Job failed" with a traceback)."""

    reason: str

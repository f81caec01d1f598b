"""``--schedule``: a cron expression (UTC) for runs that do not wait for complete periods.

On a tick every period with a delivery not yet published runs, even if some required feed is
still missing (publication deadlines); between ticks only complete periods run.
"""

from __future__ import annotations

import datetime as dt

from croniter import croniter


class Schedule:
    def __init__(self, expression: str):
        if not croniter.is_valid(expression):
            raise ValueError(f"not a cron expression: {expression!r}")
        self.expression = expression

    def next_after(self, timestamp: float) -> float:
        """The first tick strictly after ``timestamp`` (seconds since the epoch, UTC)."""
        start = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
        return croniter(self.expression, start).get_next(float)

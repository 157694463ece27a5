"""The retention timer: the worker's leader applies ``footprint.retention`` every
``FOOTPRINT_RETENTION_INTERVAL_SECONDS``.

In the worker, not the API: the worker is already the one writer of the footprint stores and
Faust elects one leader among the workers (``on_leader``), so one run happens at a time however
many processes serve; under ``footprint run`` the worker lives in the API's process and shares
its embedded ClickHouse. Found by the app's autodiscovery (``streams/app.py``).
"""

from __future__ import annotations

import asyncio
import logging

from footprint import retention
from footprint.settings import get_settings
from streams.app import app

__all__ = ["apply_retention"]

log = logging.getLogger(__name__)
_settings = get_settings()


@app.timer(_settings.retention_interval_seconds, on_leader=True)
async def apply_retention() -> None:
    """Drop or delete what is past its retention; make the coming months' partitions."""
    try:
        steps = await asyncio.to_thread(retention.run, _settings)
    except Exception:  # a store that is down: the next run retries
        log.exception("retention run failed")
        return
    removed = sum(s.rows for s in steps if s.action != "make partitions")
    if removed:
        log.info("retention removed %d rows", removed)

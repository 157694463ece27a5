"""The capture's settings: what the middleware records and what the ingest API accepts.

A part of the one ``Settings`` object (``footprint/settings.py`` inherits it): read from the
same ``FOOTPRINT_*`` variables, declared here so ``settings.py`` stays a page.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings

from footprint.settings_types import ENV_PREFIX, CsvList, FutureSpan, Origins, PastSpan

__all__ = ["CaptureSettings"]

log = logging.getLogger(__name__)


class CaptureSettings(BaseSettings):
    """The capture's fields and their checks (``Settings`` gives them their source)."""

    exclude_paths: CsvList = [
        "/health",
        "/docs",
        "/redoc",
        "/openapi.json",
        "/static",
        "/favicon.ico",
        "/metrics",
        "/ws",
        "/api/footprints",
        "/api/event",
        "/api/stats",
        "/api/stream",
        "/api/v2",
    ]
    site: str = Field(
        "",
        max_length=512,
        description="The site (domain) the middleware records footprints under; empty: the "
        "request's Host",
    )
    event_max_age: PastSpan = Field(
        timedelta(days=7),
        description="How long before it is sent a footprint may be dated (7d, 12h, P30D); "
        "older ones get a 422 at the API and a dead letter on the topic. History is imported "
        "with `footprint backfill`",
    )
    event_max_ahead: FutureSpan = Field(
        timedelta(minutes=5),
        description="How far ahead of when it is sent a footprint may be dated (at most 5 min)",
    )
    buffer_max_events: int = Field(100_000, ge=1)
    delivery_process: bool = Field(
        False,
        description="the middleware's footprints built and sent to Kafka by a child process "
        "it starts: the API process only captures (the raw IP and user agent never leave it)",
    )
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_batch_footprints: int = Field(1000, ge=1)
    trusted_proxies: int = Field(
        0,
        ge=0,
        le=32,
        description="Reverse proxies in front of the API (or the site) that append to "
        "X-Forwarded-For; the visitor is the n-th hop from the right. 0: the socket peer",
    )
    trust_forwarded_for: bool | None = Field(
        None, description="Deprecated: true means FOOTPRINT_TRUSTED_PROXIES=1"
    )
    cors_origins: Origins = Field(
        [],
        description="origins allowed to POST /api/footprints for any site (* for all); a "
        "registered site's own origin may always post that site's footprints",
    )
    auto_register_sites: bool | None = Field(
        None,
        description="register a site on its first footprint instead of refusing it (422); "
        "unset: true in development (FOOTPRINT_ENV=development, a loopback address)",
    )
    sites_refresh_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="how often each API process re-reads the sites, keys and shared links",
    )

    @field_validator("site")
    @classmethod
    def _site(cls, v: str) -> str:
        return v.strip().lower()

    @model_validator(mode="after")
    def _deprecated_forwarded_for(self) -> CaptureSettings:
        # It trusted the leftmost hop, which any client writes; one proxy is what it meant.
        if self.trust_forwarded_for and "trusted_proxies" not in self.model_fields_set:
            log.warning(
                "%sTRUST_FORWARDED_FOR is deprecated: set %sTRUSTED_PROXIES to the number of "
                "proxies in front of the API (taking it as 1)",
                ENV_PREFIX,
                ENV_PREFIX,
            )
            self.trusted_proxies = 1
        return self

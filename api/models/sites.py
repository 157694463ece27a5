"""The sites registry's answers: a site, its new key or shared link (shown once), the list."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.models.common import Answer, IsoTime
from footprint.site_keys import normalise_domain

__all__ = ["NewKey", "NewLink", "NewSite", "SiteIn", "SiteList", "SiteOut", "SitePatch"]

_RETENTION = (
    "Whole UTC days this site's raw footprints are kept, instead of "
    "FOOTPRINT_RAW_RETENTION_DAYS (see Data lifecycle); null: that default"
)


class SiteIn(BaseModel):
    """A site to register: its domain, as the browser's ``Host`` shows it."""

    domain: str = Field(
        max_length=300,
        description="A host name: example.com, blog.example.com, localhost; no scheme, path or "
        "port. Stored lower-case (IDNA for non-ASCII names).",
        examples=["example.com"],
    )

    raw_retention_days: int | None = Field(
        None, ge=1, le=36_500, strict=True, description=_RETENTION
    )

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        return normalise_domain(v)


class SitePatch(BaseModel):
    """What of a site may change: how long its raw footprints are kept."""

    model_config = ConfigDict(extra="forbid")

    raw_retention_days: int | None = Field(ge=1, le=36_500, strict=True, description=_RETENTION)


class NewSite(Answer):
    """The site registered, with its first API key: shown this once, only its hash is kept."""

    domain: str
    api_key: str = Field(description="Bearer key reading this site's stats (fp_…).")
    key_id: int = Field(description="The key's id, to revoke it.")


class NewKey(Answer):
    """A new API key of a site: shown this once."""

    domain: str
    api_key: str = Field(description="Bearer key reading this site's stats (fp_…).")
    key_id: int = Field(description="The key's id, to revoke it.")


class NewLink(Answer):
    """A new shared link of a site: a read-only view of its stats, shown this once."""

    domain: str
    link_id: int = Field(description="The link's id, to revoke it.")
    token: str = Field(description="The link's token (fpl_…), sent as ?link= or a bearer.")
    url: str = Field(description="The dashboard with the link, relative to the API's base.")


class SiteOut(Answer):
    """A registered site (no keys: they are never shown again)."""

    domain: str
    created_at: IsoTime
    keys: int = Field(description="Live (not revoked) API keys.")
    shared_links: int = Field(description="Live (not revoked) shared links.")
    raw_retention_days: int | None = Field(description=_RETENTION)


class SiteList(Answer):
    """Every registered site."""

    sites: list[SiteOut]

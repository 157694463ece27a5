"""The sites registry's answers: a site, its new key or shared link (shown once), the list."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from api.models.common import Answer, IsoTime
from footprint.site_keys import normalise_domain

__all__ = ["NewKey", "NewLink", "NewSite", "SiteIn", "SiteList", "SiteOut"]


class SiteIn(BaseModel):
    """A site to register: its domain, as the browser's ``Host`` shows it."""

    domain: str = Field(
        max_length=300,
        description="A host name: example.com, blog.example.com, localhost; no scheme, path or "
        "port. Stored lower-case (IDNA for non-ASCII names).",
        examples=["example.com"],
    )

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        return normalise_domain(v)


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


class SiteList(Answer):
    """Every registered site."""

    sites: list[SiteOut]

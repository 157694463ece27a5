"""``POST /api/event``: the body of Plausible's Events API, as its docs and its tracker send it.

The documented keys (``name``, ``url``, ``domain``, ``referrer``, ``props``, ``revenue``,
``interactive``) and the one-letter keys of Plausible's own tracker (``n``, ``u``, ``d``, ``r``,
``p``, ``$``, ``i``, ``h``) are both accepted; other keys (``v``, ``sd``, ``e``…) are ignored,
as Plausible ignores what it does not know.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictBool, StrictStr

__all__ = ["PlausibleEvent"]


def _keys(*names: str) -> Any:
    # The long name first: it is the one an error's location shows.
    return Field(validation_alias=AliasChoices(*names), serialization_alias=names[0])


class PlausibleEvent(BaseModel):
    """A page view or custom event in the shape of Plausible's Events API."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: Annotated[StrictStr, _keys("name", "n")] = Field(
        description='The event name; "pageview" is a page view.'
    )
    url: Annotated[StrictStr, _keys("url", "u")] = Field(
        description="The page's full URL: its path is the footprint's link, its utm_* the UTM."
    )
    domain: Annotated[StrictStr, _keys("domain", "d")] = Field(
        description="The site's domain, as the site is known to Footprint."
    )
    referrer: Annotated[StrictStr | None, _keys("referrer", "r")] = Field(
        None, description="Where the visitor came from (query and fragment are dropped)."
    )
    props: Annotated[dict[str, Any] | None, _keys("props", "p")] = Field(
        None,
        description="Custom properties: up to 30, keys up to 300 characters, values up to "
        "2000; numbers and booleans are kept as text, null values are left out, objects and "
        "arrays are refused.",
    )
    revenue: Annotated[Any, _keys("revenue", "$")] = Field(
        None, description="Not supported: an event with revenue is refused (400)."
    )
    interactive: Annotated[StrictBool | None, _keys("interactive", "i")] = Field(
        None, description="Accepted and not stored (Footprint has no interactive flag)."
    )
    hash_mode: Annotated[Any, _keys("hashMode", "h")] = Field(
        None, description="Truthy: the URL's fragment is part of the page (hash-based routing)."
    )

"""The types of ``FOOTPRINT_*`` values: what a server URL, a list or a time span must look like.

Each is an annotated type whose validator refuses nonsense with a message; ``Settings``
(``footprint/settings.py``) declares its fields with them, and ``load_settings`` puts the
variable's name in front of the message.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator
from pydantic_settings import NoDecode

from footprint.schema_types import MAX_AHEAD

__all__ = [
    "ENV_PREFIX",
    "ClickHouseUrl",
    "CsvList",
    "FutureSpan",
    "JwtSecret",
    "KafkaUrl",
    "Origins",
    "PastSpan",
    "PostgresUrl",
    "RedisUrl",
    "check_url",
    "split_csv",
]

# Every setting is read from an environment variable with this prefix.
ENV_PREFIX = "FOOTPRINT_"


def check_url(value: str | None, schemes: tuple[str, ...], *, need_host: bool = True) -> str | None:
    """``value`` if a URL of one of ``schemes`` (with a host and a numeric port); unset: None."""
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ValueError(
            f"scheme must be one of {', '.join(s + '://' for s in schemes)} (got {value!r})"
        )
    if need_host:
        try:
            parts.port  # noqa: B018 - raises on a non-numeric port
        except ValueError as e:
            raise ValueError(f"invalid port in {value!r}") from e
        if not parts.hostname:
            raise ValueError(f"no host in {value!r}")
    return value


def _kafka(value: str | None) -> str | None:
    # A bare host:port list is what Kafka's own tools take: the scheme is implied.
    if value and "://" not in value:
        value = "kafka://" + value
    if value:
        scheme, rest = value.split("://", 1)
        if scheme != "kafka":
            raise ValueError(f"scheme must be kafka:// (got {value!r})")
        for part in rest.split(","):
            check_url("kafka://" + part, ("kafka",))
    return value


def _clickhouse(value: str | None) -> str | None:
    if value and value.startswith("chdb:"):
        return check_url(value, ("chdb",), need_host=False)  # a path, not a server
    return check_url(value, ("clickhouse",))


def split_csv(value: object) -> object:
    """A comma-separated string as its non-empty items; anything else as it is."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _origins(value: list[str]) -> list[str]:
    for origin in value:
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError(f"an origin is * or scheme://host[:port] (got {origin!r})")
    return [o.rstrip("/") for o in value]


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


def _at_most_max_ahead(value: timedelta) -> timedelta:
    if value > MAX_AHEAD:
        raise ValueError("must be at most 5 minutes (later footprints would expire windows)")
    return value


def _jwt_secret(value: str | None) -> str | None:
    if value and len(value) < 32:
        raise ValueError("must be at least 32 characters (an HMAC key shorter is guessable)")
    return value or None


KafkaUrl = Annotated[str | None, AfterValidator(_kafka)]
PostgresUrl = Annotated[
    str | None, AfterValidator(lambda v: check_url(v, ("postgresql", "postgres")))
]
ClickHouseUrl = Annotated[str | None, AfterValidator(_clickhouse)]
RedisUrl = Annotated[str | None, AfterValidator(lambda v: check_url(v, ("redis", "rediss")))]
# NoDecode: the environment holds "a,b", not the JSON pydantic-settings expects of a list.
CsvList = Annotated[list[str], NoDecode, BeforeValidator(split_csv)]
Origins = Annotated[list[str], NoDecode, BeforeValidator(split_csv), AfterValidator(_origins)]
PastSpan = Annotated[timedelta, AfterValidator(_not_negative)]
FutureSpan = Annotated[timedelta, AfterValidator(_not_negative), AfterValidator(_at_most_max_ahead)]
JwtSecret = Annotated[str | None, AfterValidator(_jwt_secret)]

"""When Footprint refuses to start for want of a secret, and the secrets it knows are published.

Outside development (``FOOTPRINT_ENV=production``, or an API bound to a non-loopback address) a
secret that is missing, or one of the values this repository publishes, stops start-up with a
message naming the variable (``Settings.enforce_secrets``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

__all__ = ["DEV_JWT_SECRET", "KNOWN_SECRETS", "is_loopback", "secret_problems"]

# `footprint run` and `footprint token` use it when FOOTPRINT_JWT_SECRET is unset: development only.
DEV_JWT_SECRET = "footprint-development-secret-not-for-production"

# Secret settings, and the values of each that this repository publishes (code, docs, examples,
# the compose file and its history). Anyone can read those, so outside development they count as
# no secret at all. One line per secret setting.
KNOWN_SECRETS: dict[str, tuple[str, ...]] = {
    "jwt_secret": (
        DEV_JWT_SECRET,
        "change-me-in-production-0123456789abcdef",  # docker-compose.yml's former default
        "paste-the-output-of-openssl-rand-hex-32-here",  # .env.example
    ),
}


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name, "" or "*": reachable from elsewhere as far as we know


def secret_problems(value_of: Callable[[str], str | None], prefix: str) -> list[str]:
    """What is wrong with each secret setting (``value_of(name)``): missing or published."""
    problems = []
    for name, known in KNOWN_SECRETS.items():
        value = value_of(name)
        variable = f"{prefix}{name.upper()}"
        if not value:
            problems.append(f"{variable} is not set")
        elif value in known:
            problems.append(f"{variable} is a value published with Footprint")
    return problems

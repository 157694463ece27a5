"""The JSON Schema of a footprint message, for producers in any language.

``python -m schemas.export`` writes ``schemas/footprint.schema.json`` from the model; a unit test
checks that the published file is what the model says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from footprint.schema import Footprint

__all__ = ["footprint_schema", "main"]

SCHEMA_ID = "https://footprint.dev/schemas/footprint.schema.json"


def footprint_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one footprint message value."""
    schema = Footprint.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "description": (
            "One Kafka message value on the footprints topic: this object, or a JSON array of "
            "them (a pack). Any key or none; unknown fields are ignored. "
            + (Footprint.__doc__ or "").split("\n\n")[0].strip()
        ),
    }


def main() -> None:
    """Write the schema beside this module."""
    path = Path(__file__).with_name("footprint.schema.json")
    path.write_text(json.dumps(footprint_schema(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

"""Event records shared by the API and the worker, one class per event."""

from footprint.schema import Footprint, FootprintIn

__all__ = ["Footprint", "FootprintIn"]

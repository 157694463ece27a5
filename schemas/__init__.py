"""Event records shared by the API and the worker, one class per event."""

from schemas.footprint import Footprint, FootprintIn

__all__ = ["Footprint", "FootprintIn"]

"""Per-frame part parsing: the Parser interface and its backends."""

from openhuman.parsing.base import BACKENDS, Parser

__all__ = ["BACKENDS", "Parser"]

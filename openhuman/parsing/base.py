"""The parser interface and the backend registry.

`Parser.from_config(cfg)` builds a backend once (models, text embeddings); `parser(frame)` is
cheap to call per frame and returns a `PartParse` with per-pixel body14 labels/probabilities.
Backends are registered explicitly in `BACKENDS`; their modules are imported only when built.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator

from openhuman.errors import InputError
from openhuman.parsing.config import ParserConfig
from openhuman.types import Frame, PartParse


class Parser(ABC):
    """Per-frame human part parser."""

    num_classes: int = 15
    """Channels of PartParse.probs (body14 by default)."""
    stateful: bool = False
    """True when the parser carries temporal state between frames (e.g. mediapipe's video-mode
    landmark smoothing): the pipeline then builds one instance per view."""

    @classmethod
    def from_config(cls, cfg: ParserConfig) -> Parser:
        """Build the backend named by `cfg.backend`."""
        try:
            builder = BACKENDS[cfg.backend]
        except KeyError:
            raise InputError(f"unknown parser backend {cfg.backend!r}; choose one of {', '.join(BACKENDS)}") from None
        return builder(cfg)

    @abstractmethod
    def __call__(self, frame: Frame) -> PartParse:
        """Parse one frame."""

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget temporal state (call between unrelated clips or views)."""

    def parse_stream(self, frames: Iterable[Frame]) -> Iterator[PartParse]:
        for frame in frames:
            yield self(frame)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release native resources."""


def _build_mediapipe(cfg: ParserConfig) -> Parser:
    from openhuman.parsing.mediapipe_backend import MediapipeParser

    return MediapipeParser.from_config(cfg)


def _build_schnet(cfg: ParserConfig) -> Parser:
    from openhuman.parsing.schnet.backend import SchnetParser

    return SchnetParser.from_config(cfg)


def _build_clipsam(cfg: ParserConfig) -> Parser:
    from openhuman.parsing.clipsam.backend import ClipSamParser

    return ClipSamParser.from_config(cfg)


BACKENDS: dict[str, Callable[[ParserConfig], Parser]] = {
    "mediapipe": _build_mediapipe,
    "schnet": _build_schnet,
    "clipsam": _build_clipsam,
}

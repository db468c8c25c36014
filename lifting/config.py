"""Multi-view lifting and export configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class LiftingConfig:
    source: Literal["auto", "depth", "mesh", "hull"] = "auto"
    """Where 3D points come from: depth maps, user point clouds/meshes, or a visual hull; auto
    picks the first available in that order."""
    voxel_size: float = 0.01
    """Voxel downsampling size in metres."""
    visibility_tolerance: float = 0.02
    """A point is visible in a view if its depth is within this many metres of the z-buffer."""
    temporal_window: int = 3
    """Frames voted over for 4D label consistency (1 = none)."""


@dataclass
class ExportConfig:
    formats: list[Literal["ply", "npz", "png", "rle", "overlay", "preview"]] = field(
        default_factory=lambda: ["ply", "npz", "png", "rle", "overlay", "preview"]
    )
    """What to write."""
    query_only: bool = False
    """Also write point clouds holding only the queried part's points."""

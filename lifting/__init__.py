"""Multi-view lifting of 2D part labels onto 3D/4D human point clouds, and export.

Public API: `Lifter` (one synchronised frame -> `LabeledPointCloud`), `TemporalLabelSmoother`
(4D label consistency), `LiftingConfig`, and in `lifting.export`: `write_ply / read_ply`,
`write_npz / read_npz`, `SequenceWriter`, `render_preview`. Heavy libraries (open3d, trimesh,
scikit-image, OpenCV) are imported only when a function needs them.
"""

from lifting.config import ExportConfig, LiftingConfig
from lifting.export import SequenceWriter, read_npz, read_ply, render_preview, write_npz, write_ply
from lifting.lifter import Lifter, empty_cloud
from lifting.temporal import TemporalLabelSmoother

__all__ = [
    "ExportConfig",
    "Lifter",
    "LiftingConfig",
    "SequenceWriter",
    "TemporalLabelSmoother",
    "empty_cloud",
    "read_npz",
    "read_ply",
    "render_preview",
    "write_npz",
    "write_ply",
]

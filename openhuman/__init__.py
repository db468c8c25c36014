"""openhuman4d: video/4D open-vocabulary human parsing.

Importing this package loads no model and reads no file.
"""

from openhuman.errors import CheckpointError, InputError, OpenHumanError
from openhuman.types import CameraView, Frame, LabeledPointCloud, PartMasks, PartParse

__version__ = "0.1.0"
__all__ = [
    "CameraView", "CheckpointError", "Frame", "InputError", "LabeledPointCloud", "OpenHumanError",
    "PartMasks", "PartParse", "__version__",
]  # fmt: skip

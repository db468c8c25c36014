"""Synthetic multi-view 4D captures of a mocap-driven humanoid with exact ground truth.

`generate_capture(out_dir, SynthConfig(clips=("walk",), views=4, frames=60))` writes a capture
directory (videos, cameras, depth, per-pixel body14 ids, labelled 3D surface points);
`list_clips()` names the DeepMimic clips pybullet ships. Importing this package loads neither
pybullet nor any file.
"""

from openhuman.synth.generate import SynthConfig, SynthScene, generate_capture
from openhuman.synth.motion import list_clips

__all__ = ["SynthConfig", "SynthScene", "generate_capture", "list_clips"]

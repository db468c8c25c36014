"""The body14 part ontology, its mappings to other taxonomies (data in configs/ontology.yaml),
left/right helpers, colours and mediapipe's pose landmark names."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

BODY14: tuple[str, ...] = (
    "background", "head", "torso",
    "left upper arm", "right upper arm", "left forearm", "right forearm", "left hand", "right hand",
    "left thigh", "right thigh", "left shin", "right shin", "left foot", "right foot",
)  # fmt: skip
NUM_CLASSES = len(BODY14)
PART_ID = {name: i for i, name in enumerate(BODY14)}

# body14 id -> id of the mirrored part (left <-> right); unsided parts map to themselves.
LR_SWAP = np.array([0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13], dtype=np.int16)
LEFT_IDS = (3, 5, 7, 9, 11, 13)
RIGHT_IDS = (4, 6, 8, 10, 12, 14)

# Finer parts, children of a body14 part: (name, body14 parent id).
FINE_PARTS: tuple[tuple[str, int], ...] = (
    ("none", 0),
    ("left thumb", 7), ("left index finger", 7), ("left middle finger", 7), ("left ring finger", 7),
    ("left little finger", 7),
    ("right thumb", 8), ("right index finger", 8), ("right middle finger", 8), ("right ring finger", 8),
    ("right little finger", 8),
    ("left eye", 1), ("right eye", 1), ("nose", 1), ("mouth", 1),
)  # fmt: skip

# mediapipe Pose's 33 landmarks, in order. "left" is the person's left.
POSE_LANDMARKS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip
LANDMARK_ID = {name: i for i, name in enumerate(POSE_LANDMARKS)}

# One colour per body14 part (RGB), chosen to be distinguishable; left parts warm, right cool.
PALETTE = np.array(
    [
        [0, 0, 0], [255, 200, 0], [128, 128, 128],
        [255, 80, 80], [80, 80, 255], [255, 140, 60], [60, 160, 255], [200, 0, 60], [0, 60, 200],
        [255, 100, 200], [100, 220, 255], [180, 60, 180], [60, 180, 180], [120, 0, 0], [0, 0, 120],
    ],
    dtype=np.uint8,
)  # fmt: skip


@dataclass(frozen=True)
class Taxonomy:
    """Another label set and the map from body14 ids into it."""

    name: str
    classes: tuple[str, ...]
    from_body14: np.ndarray
    """int64 [15]: body14 id -> this taxonomy's id."""

    def convert(self, body14_labels: np.ndarray) -> np.ndarray:
        """Map an array of body14 ids (any shape; values outside 0..14 are kept as given)."""
        labels = np.asarray(body14_labels)
        out = labels.astype(np.int64, copy=True)
        valid = (labels >= 0) & (labels < NUM_CLASSES)
        out[valid] = self.from_body14[labels[valid].astype(np.int64)]
        return out


@lru_cache(maxsize=1)
def _ontology_data() -> dict:
    with open(CONFIG_DIR / "ontology.yaml", encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if tuple(data["body14"]) != BODY14:
        raise RuntimeError("configs/ontology.yaml body14 list disagrees with openhuman.ontology.BODY14")
    return data


def taxonomy(name: str) -> Taxonomy:
    """`taxonomy("pascal_person_part")` or `taxonomy("lip")`."""
    data = _ontology_data()
    if name not in data or name == "body14":
        known = [k for k in data if k != "body14"]
        raise ValueError(f"unknown taxonomy {name!r}; known: {', '.join(known)}")
    entry = data[name]
    return Taxonomy(name, tuple(entry["classes"]), np.asarray(entry["from_body14"], dtype=np.int64))

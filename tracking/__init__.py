"""Temporal association: person and part tracks, keyframe propagation, label smoothing."""

from tracking.config import TrackingConfig
from tracking.metrics import SequenceEvaluator, SequenceScores, boundary_f, evaluate_sequence, region_j
from tracking.persons import Detection, PersonTracker, Track, detections_from_parse
from tracking.propagate import FlowEstimator, Motion
from tracking.smoothing import ProbSmoother
from tracking.view_tracker import TrackerStats, ViewTracker

__all__ = [
    "Detection",
    "FlowEstimator",
    "Motion",
    "PersonTracker",
    "ProbSmoother",
    "SequenceEvaluator",
    "SequenceScores",
    "Track",
    "TrackerStats",
    "TrackingConfig",
    "ViewTracker",
    "boundary_f",
    "detections_from_parse",
    "evaluate_sequence",
    "region_j",
]

"""Temporal association: person and part tracks, keyframe propagation, label smoothing."""

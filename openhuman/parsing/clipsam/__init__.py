"""Training-free CLIP+SAM parsing backend."""

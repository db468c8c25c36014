"""SCHNet: SAM image encoder with CLIP semantics injected at every stage."""

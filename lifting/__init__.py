"""Multi-view lifting of 2D part labels onto 3D/4D human point clouds, and export."""

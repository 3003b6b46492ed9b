"""Architecture awareness: which build of an image fits which host (archspec decides)."""

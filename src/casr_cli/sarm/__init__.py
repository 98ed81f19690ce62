"""SARM: self-similarity aware refinement across tiles (paper sec. 3.2)."""

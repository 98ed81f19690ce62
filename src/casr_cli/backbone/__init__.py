"""Backbones: the single <= x4 restoration model applied at every chain step."""

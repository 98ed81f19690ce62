"""Pretrained image encoders that install offline from PyPI (for lite's perceptual loss
and SARM's global embedding)."""

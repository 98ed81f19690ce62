"""The luma weights every layer shares, so that one constant says what "luminance" means.

:data:`LUMA`: ITU-R BT.601's (R, G, B) weights as JPEG (JFIF's Y), Pillow's ``L`` mode and MATLAB's
``rgb2gray`` use them, on full-range values; the degradations, SDAM's structure map, the adaptive
estimate, the foreign-model adapter and NIQE's grey all read it.  :data:`Y_STUDIO`: the same weights
scaled to BT.601's studio range (``16 + Y_STUDIO . RGB`` with RGB in [0, 1] gives Y in 16..235), the
Y that PSNR-Y / SSIM-Y tables in the literature are computed on (:mod:`casr_cli.eval.metrics`).
"""

from __future__ import annotations

LUMA: tuple[float, float, float] = (0.299, 0.587, 0.114)
Y_STUDIO: tuple[float, float, float] = (65.481, 128.553, 24.966)

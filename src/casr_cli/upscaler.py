"""The public engine: :class:`Upscaler` loads a model by name and upscales PIL images or
arrays, on top of the engine core (:mod:`casr_cli.engine.core`), which plans and runs a
chain over row stores and imports nothing from models, image IO or the CLI.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .engine.canvas import MemoryStore, RowStore
from .engine.chain import ChainPlan
from .engine.core import DEFAULT_MAX_PIXELS, Engine, EngineOptions
from .engine.deblock import BlockGrid
from .engine.settings import SizeRequest, UpscaleSettings
from .engine.stages import StageSwitches
from .engine.step import ProgressEvent, ProgressFn
from .engine.tiling import TileSpec
from .errors import CasrError, UsageError

__all__ = ["DEFAULT_MAX_PIXELS", "EngineOptions", "ProgressEvent", "ProgressFn", "Upscaler"]


class Upscaler(Engine):
    """Load a model once, upscale many images.

    >>> up = Upscaler.load("bicubic")
    >>> out = up.upscale(np_image, scale=18)      # or a PIL image; same type back
    """

    @classmethod
    def load(cls, name: str | None = None, device: str = "auto", switches: StageSwitches | None = None,
             detail: float | tuple[float, ...] | None = None, *, tile: TileSpec | int | None = None,
             **options) -> Upscaler:
        """``Upscaler.load("bicubic", device="cpu", tile=TileSpec(256, 32))``; ``name`` is a
        built-in or downloaded model name or a model file (casr export or any spandrel SR
        model, see docs/models.md); ``switches`` turns stages off for ablations; ``detail``
        (0..1, or a tuple, one per chain step, the last repeating) is lite's detail control
        (the same as ``switches.detail``); ``options``: the other fields of
        :class:`~casr_cli.engine.settings.UpscaleSettings` (``max_pixels``, ``tmp_dir``, ...)."""
        switches = switches or StageSwitches()
        if detail is not None:
            switches = replace(switches, detail=detail)
        if isinstance(tile, TileSpec):
            options.update(tile=tile.size, tile_overlap=tile.overlap)
        elif tile is not None:  # a size alone (as --tile takes it): the model's overlap
            options.update(tile=tile)
        try:  # the API's messages speak its terms (scale=, device=, detail=), the CLI's (from_settings) flags
            return cls.from_settings(UpscaleSettings(model=name, device=device, switches=switches, **options))
        except CasrError as e:
            raise e.in_api_terms() from e.__cause__

    @classmethod
    def from_settings(cls, settings: UpscaleSettings) -> Upscaler:
        """The upscaler ``settings`` ask for: the model loaded once, its tiling with the
        settings' put in, the settings' size (if any) checked against it."""
        from .engine.settings import check_tmp_dir
        from .models import load_model

        check_tmp_dir(settings.tmp_dir, settings.names)  # a folder that is not there fails now, not at the first spill
        model = load_model(settings.model, device=settings.device, switches=settings.switches)
        options = settings.engine_options(model.tile)
        if settings.size is not None:
            settings.size.check_steps(model.s_max)
        return cls(model, options)

    def plan(self, in_size: tuple[int, int], size: SizeRequest | None = None, *, scale: float | None = None,
             width: int | None = None, height: int | None = None, chain: tuple[float, ...] | None = None,
             fixed_detail: bool = False) -> ChainPlan:
        """The chain for an image of ``in_size`` (height, width): ``size``, or one made of
        ``scale``/``width``/``height``/``chain`` (:class:`~casr_cli.engine.settings.SizeRequest`),
        checked against this model; ``fixed_detail``: for a run given its own detail schedule (the
        planner's chain, as ``--detail`` gets, not the adaptive default's even split)."""
        try:  # the API's terms (scale=, max_pixels=), where the CLI's planner says --scale
            if size is None:
                size = SizeRequest(scale=scale, width=width, height=height, chain=chain)
            size.check_steps(self.model.s_max)
            return self.plan_size(_image_size(in_size), size, fixed_detail=fixed_detail)
        except CasrError as e:
            raise e.in_api_terms() from e.__cause__

    def choose_detail(self, pixels: np.ndarray, plan, quantization=None, *, quality=None, block_grid=None,
                      transposed: bool = False):
        """What lite's adaptive detail picks for ``pixels`` (H, W[, C]) on ``plan``: a
        :class:`~casr_cli.adaptive.schedule.DetailChoice` (the estimate and one T per chain step), or None
        for a model whose detail is not adaptive (``--detail`` given, or no detail control).
        ``quantization``: the input's JPEG tables (Pillow's ``im.quantization``), None for a
        picture that is no JPEG; ``block_grid`` (a :class:`~casr_cli.engine.deblock.BlockGrid`;
        None: at (0, 0)) and ``transposed`` (EXIF-turned by 90 degrees): where the JPEG's blocks lie in
        ``pixels``, for the double-compression check; ``quality``: an
        :class:`~casr_cli.adaptive.estimate.InputQuality` already measured (then ``pixels`` is not looked at).
        To run the schedule on ``plan``, give :meth:`upscale` its chain too (``chain=plan.factors``): a per-call
        ``detail`` otherwise runs the planner's chain, as ``--detail`` does."""
        if not self.model.adaptive:
            return None
        from .adaptive.estimate import estimate
        from .adaptive.schedule import choose

        if quality is None:
            phase = (0, 0) if block_grid is None else block_grid.phase
            quality = estimate(pixels, quantization, phase, transposed)
        return choose(quality, plan.factors)

    @staticmethod
    def found_grid(choice) -> BlockGrid | None:
        """The block grid of a decoded JPEG that lite's estimate found in pixels that came without JPEG
        tables (``choice.quality.jpeg_phase``, :func:`~casr_cli.adaptive.estimate.pixel_jpeg`), or None."""
        phase = None if choice is None else choice.quality.jpeg_phase
        return None if phase is None else BlockGrid(tuple(int(p) for p in phase))

    def upscale(self, image, *, scale: float | None = None, width: int | None = None, height: int | None = None,
                chain: tuple[float, ...] | None = None, progress: ProgressFn | None = None,
                block_grid: BlockGrid | None | str = "auto", detail: tuple[float, ...] | None = None):
        """Upscale a PIL image or a numpy array (H, W[, C]; uint8, uint16 or float in [0, 1]).

        Returns the same kind: PIL in, PIL out (mode kept); arrays keep dtype and layout.
        Channels: 1 or 3 colour channels, plus optionally alpha (2 or 4 channels), last.
        PIL's 16-bit grey modes (``I;16``, ``I``: 0..65535) and ``F`` ([0, 1]) are 16-bit grey.
        Anything else raises an :class:`~casr_cli.errors.InvalidImageError` subclass
        (``ImageTypeError``, ``ImageDtypeError``, ``ImageShapeError``, ``ImageValueError``)
        naming the offending property; see :mod:`casr_cli.io.pixels`.
        A PIL image opened from a file is turned upright by its EXIF orientation first, as
        ``casr upscale`` turns the file.
        ``block_grid``: the image is a decoded JPEG with its blocks there (``BlockGrid()``
        for an upright one): every step after the first gets its residual block lines
        smoothed (:mod:`casr_cli.engine.deblock`).  ``"auto"`` (the default): the grid of a
        PIL image opened from a JPEG file (``im.format`` JPEG or MPO), EXIF turn followed, as ``casr
        upscale`` smooths that file; for anything else the grid of a decoded JPEG that lite's adaptive
        detail finds in the pixels (:meth:`found_grid`), else none.  ``None``: nothing smoothed.  A PIL
        JPEG's quantisation tables also tell lite's adaptive detail its quality, and its
        pixels on its block grid whether it was saved before at a lower one (:meth:`choose_detail`;
        an array is measured on its pixels alone).  ``detail``: this call's
        detail schedule (one T per chain step), instead of the adaptive one or the model's; the chain is
        then the planner's, as for ``Upscaler.load(name, detail=...)`` and ``casr upscale --detail``.
        Errors speak the API's terms (``scale=``, ``width=``, ``max_pixels=``)."""
        from .io.reading import JPEG_FORMATS, TURNED, _orientation, jpeg_tables
        from .io.pixels import pil_block_grid, to_pixels

        is_jpeg = getattr(image, "format", None) in JPEG_FORMATS and hasattr(image, "quantization")
        file_grid = pil_block_grid(image)  # where a PIL JPEG's blocks lie (None for anything else)
        auto_grid = isinstance(block_grid, str)
        if (auto_grid and block_grid != "auto") or not (auto_grid or block_grid is None
                                                         or isinstance(block_grid, BlockGrid)):
            raise UsageError(f"block_grid must be a BlockGrid, None or 'auto', got {block_grid!r}",
                             hint="BlockGrid() for an upright JPEG's blocks at (0, 0)")
        if progress is not None and not callable(progress):
            raise UsageError(f"progress must be a function of one event, got {progress!r}")
        if auto_grid:
            block_grid = file_grid
        arr, restore = to_pixels(image)
        plan = self.plan(arr.shape[:2], scale=scale, width=width, height=height, chain=chain,
                         fixed_detail=detail is not None)
        if detail is None:
            choice = self.choose_detail(arr, plan, jpeg_tables(image) if is_jpeg else None, block_grid=file_grid,
                                        transposed=is_jpeg and _orientation(image) in TURNED)
            detail = None if choice is None else choice.schedule
            if auto_grid and block_grid is None:  # a decoded JPEG found in the pixels: its grid
                block_grid = self.found_grid(choice)
        result = self.run(MemoryStore.wrap(arr), plan, progress=progress, block_grid=block_grid, detail=detail)
        try:
            out = result.read(0, result.shape[0]).copy()
        finally:
            result.close()
        return restore(out)

    def _save_intermediates(self, src: RowStore, k: int) -> None:
        """Write step ``k``'s input and, when the model has SDAM, what SDAM makes of it."""
        from pathlib import Path

        from .io.writing import to_8bit, write_image

        d = Path(self.options.intermediates)
        d.mkdir(parents=True, exist_ok=True)
        arr = src.read(0, src.shape[0])
        write_image(d / f"step{k}_input.png", arr)
        analyse = getattr(self.model.sdam, "analyse", None)
        if analyse is None:
            return
        color = 1 if src.shape[2] in (1, 2) else 3
        lr = torch.from_numpy(to_8bit(np.ascontiguousarray(arr[:, :, :color])).astype(np.float32) / 255)
        lr = lr.permute(2, 0, 1)[None].expand(-1, 3, -1, -1).to(self.model.device, self.model.dtype)
        for name, pic in analyse(lr).items():
            img = (pic[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
            write_image(d / f"step{k}_{name}.png", img)


def _image_size(in_size) -> tuple[int, int]:
    """``(height, width)`` as two positive whole numbers, else the API's UsageError."""
    try:
        h, w = in_size
        ok = all(not isinstance(v, bool) and isinstance(v, (int, np.integer)) and v >= 1 for v in (h, w))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UsageError(f"an image size is (height, width) in whole pixels >= 1, got {in_size!r}")
    return int(h), int(w)

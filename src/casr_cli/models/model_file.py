"""Reading a model file safely and saying what it is.

A file given as ``--model PATH`` is one of:

* one of casr's own exports (safetensors whose metadata holds ``casr_<kind>_config``,
  see :mod:`casr_cli.nn.weights_io`): ``lite`` (a backbone from ``casr train --stage 1
  --export``), ``ssn``, ``sarm`` or ``turbo``;
* a foreign super-resolution model that spandrel recognises (ESRGAN/Real-ESRGAN, SRVGG
  Compact, SPAN, SwinIR, HAT, DAT, ...), as ``.safetensors`` or a pickled ``.pth``;
* anything else: a :class:`~casr_cli.errors.ModelFileError` (one line, exit 2).

Nothing here executes code from a file: ``.safetensors`` are read by safetensors, pickles
only by ``torch.load(weights_only=True)`` (torch's restricted unpickler: tensors and plain
containers; any other global is refused).  TorchScript archives are refused. spandrel (and
with it torchvision) is imported only here, only when a foreign file is loaded.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ModelFileError

SAFETENSORS = (".safetensors",)
PICKLES = (".pth", ".pt", ".ckpt", ".bin")
SUFFIXES = SAFETENSORS + PICKLES
CASR_KINDS = ("lite", "ssn", "sarm", "turbo", "degradation")
INSTALL_HINT = ('foreign models need spandrel and a torchvision built for this torch: '
                'pip install torch==2.14.1 torchvision==0.29.1 -e ".[models]" (see README)')


@dataclass(frozen=True)
class ModelFileInfo:
    """What ``casr models FILE`` prints about a foreign model."""

    path: str
    architecture: str
    scale: int
    input_channels: int
    output_channels: int
    parameters: int
    dtypes: tuple[str, ...]  # those the model supports; casr picks per device (see foreign.compute_dtype)
    size_minimum: int
    size_multiple_of: int
    size_square: bool
    purpose: str
    tags: tuple[str, ...]

    def as_dict(self) -> dict:
        return asdict(self)


def looks_like_path(spec: str) -> bool:
    return Path(spec).suffix.lower() in SUFFIXES or "/" in spec or "\\" in spec or Path(spec).exists()


FOREIGN = "foreign"


@dataclass(frozen=True)
class FileKind:
    """What a model file is, decided once (:func:`file_kind`): one of casr's own exports
    (``kind`` ``lite``/``ssn``/``sarm``/``turbo``, with the config stored in it), or
    ``foreign``: anything else, for spandrel to load or refuse (:func:`load_descriptor`)."""

    path: Path
    kind: str
    config_json: str | None = None  # a casr export's config, as stored

    @property
    def casr(self) -> bool:
        return self.kind != FOREIGN

    @property
    def label(self) -> str:
        """As ``casr models FILE`` names it."""
        return f"casr {self.kind} export" if self.casr else "foreign model (spandrel)"

    def config(self) -> dict:
        """A casr export's stored config (raises ``ValueError`` for one that does not parse)."""
        return json.loads(self.config_json)


def file_kind(path: str | Path) -> FileKind:
    """What the file at ``path`` is, from its suffix and (a ``.safetensors``) its metadata,
    read once.  A file that is not there is a :class:`~casr_cli.errors.ModelFileError`."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError("a folder, not a model file", path=path, hint="give a .safetensors or .pth file")
    if not path.is_file():
        raise ModelFileError("model file not found", path=path)
    if path.suffix.lower() in SAFETENSORS:
        from ..nn.weights_io import read_metadata

        try:
            meta = read_metadata(path)
        except Exception:  # not a readable safetensors file: the foreign loader says why
            meta = {}
        for kind in CASR_KINDS:
            if f"casr_{kind}_config" in meta:
                return FileKind(path, kind, meta[f"casr_{kind}_config"])
    return FileKind(path, FOREIGN)


def read_state_dict(path: Path) -> dict:
    """Tensors of a model file, without running anything stored in it."""
    if not path.is_file():
        raise ModelFileError("model file not found", path=path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ModelFileError(f"not a model file (suffix {suffix or 'none'}; expected .safetensors or .pth)", path=path)
    if suffix in SAFETENSORS:
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:
            raise ModelFileError(f"cannot read safetensors: {_short(e)}", path=path) from e
    return _read_pickle(path)


def _read_pickle(path: Path) -> dict:
    import pickle

    import torch

    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise ModelFileError(f"truncated or corrupt model file: {_short(e)}", path=path) from e
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            raise ModelFileError("a TorchScript archive, not a state dict (refused: it holds code)", path=path,
                                 hint="convert it to .safetensors with the tool that made it")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ModelFileError(f"refused: the pickle asks for more than tensors ({_short(e)})", path=path,
                             hint="only weights are loaded (torch.load weights_only=True); use a .safetensors file") from e
    except Exception as e:
        raise ModelFileError(f"truncated or not a model file: {_short(e)}", path=path) from e
    if not isinstance(obj, dict):
        raise ModelFileError(f"not a state dict (a pickled {type(obj).__name__})", path=path)
    return obj


def _short(e: BaseException, n: int = 160) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= n else text[:n - 3] + "..."


def import_spandrel():
    try:
        import spandrel
    except Exception as e:  # ImportError, or torchvision failing to load against this torch
        raise ModelFileError(f"spandrel cannot be imported ({_short(e, 100)})", hint=INSTALL_HINT) from e
    return spandrel


def load_descriptor(path: str | Path):
    """The spandrel ``ImageModelDescriptor`` of a foreign SR file (on the CPU, fp32, eval)."""
    path = Path(path)
    state = read_state_dict(path)
    if not state:
        raise ModelFileError("the file holds no tensors", path=path)
    spandrel = import_spandrel()
    try:
        desc = spandrel.ModelLoader("cpu").load_from_state_dict(state)
    except spandrel.UnsupportedModelError as e:
        hint = (f"{path.name} reads like a casr training checkpoint: export it first (casr train ... --export FILE)"
                if path.name.endswith(("_ckpt.pt", "-ckpt.pt")) else None)
        raise ModelFileError(f"unsupported architecture: spandrel {spandrel.__version__} does not recognise "
                             f"these {len(state)} tensors (first: {next(iter(state))})", path=path, hint=hint) from e
    except Exception as e:
        raise ModelFileError(f"spandrel could not build the model: {_short(e)}", path=path) from e
    if not isinstance(desc, spandrel.ImageModelDescriptor) or desc.purpose != "SR" or desc.scale < 2:
        raise ModelFileError(f"{desc.architecture.name} is a {desc.purpose} model at x{desc.scale}, "
                             "not an image super-resolution model of scale >= 2", path=path)
    if desc.input_channels not in (1, 3, 4) or desc.output_channels not in (1, 3, 4):
        raise ModelFileError(f"{desc.architecture.name}: {desc.input_channels} -> {desc.output_channels} channels "
                             "(casr handles 1, 3 or 4)", path=path)
    desc.model.eval()
    return desc


def describe(desc, path: str | Path) -> ModelFileInfo:
    req = desc.size_requirements
    dtypes = ("float32",) + (("float16",) if desc.supports_half else ()) + (("bfloat16",) if desc.supports_bfloat16 else ())
    return ModelFileInfo(str(path), desc.architecture.name, int(desc.scale), int(desc.input_channels),
                         int(desc.output_channels), sum(p.numel() for p in desc.model.parameters()), dtypes,
                         int(req.minimum), int(req.multiple_of), bool(req.square), str(desc.purpose),
                         tuple(desc.tags))


def casr_file_error(kind: str, path: Path) -> ModelFileError:
    """The one-line answer for a casr export that is not a whole model by itself."""
    from ..adaptive.degradation_net import DEFAULT_WEIGHTS as DEGRADATION_WEIGHTS
    from . import lite

    what = {
        "ssn": ("a casr SSN export (lite's superpixel network), not a model",
                f"lite's SDAM runs the one at {lite.SSN}; as --model give a backbone export or lite"),
        "sarm": ("a casr SARM export (a refinement stage), not a model",
                 f"lite runs one with --sarm when it lies at {lite.SARM} (none ships, docs/sarm.md); as --model give "
                 "a backbone export or lite"),
        "degradation": ("a casr degradation estimator (the adaptive default's learned gate), not a model",
                        f"lite's adaptive detail reads the one at {DEGRADATION_WEIGHTS}; as --model give a backbone "
                        "export or lite"),
        "turbo": ("a casr turbo adapter export, not a model by itself",
                  "use --model turbo with CASR_TURBO_ADAPTERS pointing at it"),
    }[kind]
    return ModelFileError(what[0], path=path, hint=what[1])

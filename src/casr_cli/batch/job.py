"""Batch planning for the CLI: which files to read and where each result goes.
Pure functions over paths; nothing here reads pixels."""

from __future__ import annotations

import fnmatch
import glob
import os
import string
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import OutputExistsError, UsageError
from ..io.reading import READ_EXTENSIONS, READABLE
from ..io.writing import EXTENSION, FORMATS, output_format
from ..io.stdio import STDIO

DEFAULT_SUFFIX = "_x{scale}"
WRITE_EXTENSIONS = frozenset(f".{k}" for k in FORMATS)  # an input of another format gets a .png output


@dataclass(frozen=True)
class Job:
    input: Path
    output: Path
    relative: Path  # the input's path below the directory it was found in (for -o DIR)
    label: str | None = None  # what records and messages call the input ("-": standard input), if not its path
    to_stdout: bool = False  # -o -: the image goes to standard output
    intermediates: Path | None = None  # --save-intermediates: this input's own folder (intermediates_folders)

    @property
    def name(self) -> str:
        return self.label if self.label is not None else str(self.input)


@dataclass(frozen=True)
class Scan:
    """What the input arguments hold: the images to read, as (file, path relative to its
    root), and the files of folders and globs that are not in a format casr reads."""

    files: list[tuple[Path, Path]]
    skipped: list[Path]
    stdin: bool = False  # "-" was given (and read into ``files``' only entry)
    outputs: tuple[Path, ...] = ()  # files of folders and globs that casr wrote (io.metadata), left out
    named: frozenset[str] = frozenset()  # real paths of the files given by name (never left out)
    missing: tuple[tuple[str, str], ...] = ()  # (argument, what is wrong): a path that is not there, a glob with no match


def readable_name(path: Path) -> bool:
    """Whether a folder scan or glob picks ``path``: a :data:`~casr_cli.io.reading.READ_FORMATS`
    extension (any case)."""
    return path.suffix.lower() in READ_EXTENSIONS


def glob_root(pattern: str) -> Path:
    """The folder a glob's matches lie under: its components before the first wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def walk_files(root: Path, recursive: bool, unreadable: list[Path]) -> list[Path]:
    """The files of folder ``root`` (``recursive``: and of its subfolders), sorted: hidden entries (``.name``,
    files and folders) left out, links to folders not followed (a link loop cannot run away), links to files
    and links whose target is gone kept (a gone one's job says so).  Folders that cannot be listed are added
    to ``unreadable``."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: unreadable.append(Path(e.filename)),
                                                followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        out += [Path(dirpath) / n for n in filenames if not n.startswith(".")]
    return sorted(out)


def glob_files(pattern: str, unreadable: list[Path]) -> list[Path]:
    """The files a glob matches, sorted (links whose target is gone included).  ``**`` (any depth of folders)
    is walked with :func:`walk_files`' rules (links to folders not followed, hidden folders left out), so
    a link loop in the tree cannot multiply the paths; other patterns are Python's glob."""
    if "**" not in pattern:
        return sorted(Path(m) for m in glob.glob(pattern) if Path(m).is_file() or Path(m).is_symlink()
                      and not Path(m).exists())
    root = glob_root(pattern)
    pats = Path(pattern).parts[len(root.parts) if root != Path(".") else 0:]

    def match(parts: tuple[str, ...], pats: tuple[str, ...]) -> bool:
        if not pats:
            return not parts
        if pats[0] == "**":
            return any(match(parts[i:], pats[1:]) for i in range(len(parts) + 1))
        return bool(parts) and fnmatch.fnmatchcase(parts[0], pats[0]) and match(parts[1:], pats[1:])

    return [f for f in walk_files(root, True, unreadable) if match(f.relative_to(root).parts, tuple(pats))]


def scan_inputs(items: list[str], recursive: bool = False, stdin: Path | None = None,
                include_outputs: bool = False) -> Scan:
    """Files, directories and globs -> a :class:`Scan`, files in a stable order.

    Directories contribute their files (``recursive``: also subfolders; hidden files and folders,
    ``.name``, are left out, links to folders are not followed: :func:`walk_files`); globs are
    expanded by us, so quoted patterns work in scripts
    (``**`` matches any depth of folders, as in shells and Python's glob).  Of both, files
    with an extension casr does not read are counted in ``skipped``, and files casr wrote
    (its mark, :func:`~casr_cli.io.reading.is_casr_output`) in ``outputs`` unless
    ``include_outputs``: never dropped silently.  A file given by name is always tried (it
    is read by its content).  ``-`` stands for standard input, already spooled to
    ``stdin``.  A path that is not there or cannot be read, a glob that matches no file and a folder that
    cannot be listed are ``missing``: each gets an error record and the rest go on; when nothing else is
    found, the first of them raises."""
    from ..io.reading import is_casr_output

    found: list[tuple[Path, Path]] = []
    skipped: list[Path] = []
    outputs: list[Path] = []
    named: set[str] = set()
    missing: list[tuple[str, str, UsageError]] = []

    def pick(files, root: Path) -> None:
        for f in files:
            if not readable_name(f):
                skipped.append(f)
            elif not include_outputs and is_casr_output(f):
                outputs.append(f)
            else:
                found.append((f, f.relative_to(root)))

    if STDIO in items:
        if len(items) > 1:
            raise UsageError("'-' (standard input) is one image: give it as the only input")
        if stdin is None:
            raise UsageError("'-' (standard input) is not supported here")
        return Scan([(stdin, Path("stdin" + stdin.suffix))], [], stdin=True)
    unreadable: list[Path] = []
    for item in items:
        p = Path(item)
        try:
            is_dir, exists = p.is_dir(), p.exists() or p.is_symlink()
        except OSError as e:  # a folder on the way that cannot be entered (PermissionError)
            if not glob.has_magic(item):
                missing.append((item, f"cannot be read: {e.strerror or e}", UsageError(
                    f"cannot be read: {e.strerror or e}", path=item)))
                continue
            is_dir = exists = False
        if is_dir:
            pick(walk_files(p, recursive, unreadable), p)
        elif exists:
            found.append((p, Path(p.name)))
            named.add(os.path.realpath(p))
        elif glob.has_magic(item):
            matches = glob_files(item, unreadable)
            if not matches:
                missing.append((item, "no file matches the pattern", UsageError(f"no file matches {item!r}")))
                continue
            pick(matches, glob_root(item))
        else:
            missing.append((item, "no such file or directory", UsageError("no such file or directory", path=item)))
    for d in dict.fromkeys(unreadable):  # never silently empty: each folder that could not be listed, said
        missing.append((str(d), "a folder casr cannot list (permission denied)",
                        UsageError("a folder casr cannot list (permission denied)", path=d)))
    seen, unique = set(), []
    for f, rel in found:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append((f, rel))
    skipped = sorted({os.path.realpath(f): f for f in skipped}.values())
    outputs = sorted({os.path.realpath(f): f for f in outputs if os.path.realpath(f) not in seen}.values())
    if not unique and missing:
        raise missing[0][2]
    if not unique:
        more = f"; {len(skipped)} file(s) skipped, not {READABLE}" if skipped else ""
        more += f"; {len(outputs)} casr output(s) skipped (--include-outputs upscales them)" if outputs else ""
        raise UsageError(f"no input images found{more}", hint=f"give files, directories or globs of {READABLE} images")
    return Scan(unique, skipped, outputs=tuple(outputs), named=frozenset(named),
                missing=tuple((item, what) for item, what, _ in missing))


SUFFIX_FIELDS = ("scale", "model", "width", "height")


def suffix_fields(template: str) -> set[str]:
    """The placeholders a ``--suffix`` template uses; anything but the four names (an
    attribute, an index, a positional field) is a usage error."""
    hint = "placeholders: {scale} {model} {width} {height}"
    try:
        parsed = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise UsageError(f"bad --suffix {template!r}: {e}", hint=hint) from e
    names = {f for f, _, _ in parsed}
    shaped = next((f"{{{f}{'!' + conv if conv else ''}{':' + spec if spec else ''}}}" for f, spec, conv in parsed
                   if spec or conv), None)
    if shaped:  # the values are written as casr writes them (2.5, not 2.500): no format of one's own
        raise UsageError(f"bad --suffix {template!r}: a placeholder takes no format or conversion ({shaped})",
                         hint=hint)
    unknown = names - set(SUFFIX_FIELDS)
    if unknown:
        raise UsageError(f"bad --suffix {template!r}: unknown placeholder {{{sorted(unknown)[0]}}}", hint=hint)
    return names


def format_suffix(template: str, *, scale: float, model: str, width: int | None = None, height: int | None = None) -> str:
    """The suffix for one output (``width``/``height``: its size; None leaves them empty)."""
    suffix_fields(template)
    s = f"{scale:.4f}".rstrip("0").rstrip(".")
    try:
        out = template.format(scale=s, model=model, width=width or "", height=height or "")
    except (KeyError, IndexError, ValueError) as e:
        raise UsageError(f"bad --suffix {template!r}: {e}", hint="placeholders: {scale} {model} {width} {height}") from e
    if any(sep and sep in out for sep in (os.sep, os.altsep, "/")):
        raise UsageError(f"--suffix must not contain a path separator, got {template!r}", hint="use -o DIR to choose a folder")
    return out


def many_inputs(items: list[str]) -> bool:
    """Whether the input arguments can stand for several files (several arguments, a
    directory or a glob): then ``-o`` names a directory, however many files they hold today."""
    return len(items) > 1 or any(Path(i).is_dir() or (not Path(i).exists() and glob.has_magic(i)) for i in items)


def output_extension(f: Path, fmt: str | None) -> str:
    """An output's extension: ``fmt``'s, else the input's when casr writes that format, else ``.png`` (a GIF
    input: a PNG output)."""
    if fmt:
        return EXTENSION[output_format(None, fmt)]
    return f.suffix if f.suffix.lower() in WRITE_EXTENSIONS else ".png"


def plan_jobs(inputs: list[tuple[Path, Path]], output: str | None, suffix: str | Callable[[Path], str],
              fmt: str | None, output_is_dir: bool = False) -> list[Job]:
    """Output path of every input.  ``output`` is a file for one input, else (or with
    ``output_is_dir``) a directory (created; sub-folders mirror the inputs').  No ``output``:
    next to each input.  ``suffix``: one for all, or a function of the input file.  The
    extension: ``fmt``'s, else the input's when casr writes that format, else ``.png``."""
    out_dir = None
    single_file = None
    if output == STDIO:
        if output_is_dir or len(inputs) != 1:
            raise UsageError("-o - writes one image to standard output: give one input file",
                             hint="use -o DIR for several inputs, a folder or a glob")
        if not fmt:
            raise UsageError("-o - (standard output) needs --format", hint="e.g. -o - --format png")
        f, rel = inputs[0]
        return [Job(f, Path(STDIO), rel, to_stdout=True)]
    if output is not None:
        o = Path(output)
        is_dir = output_is_dir or o.is_dir() or output.endswith(("/", os.sep)) or len(inputs) > 1
        if is_dir:
            if o.exists() and not o.is_dir():
                raise UsageError(f"-o {output} names a folder, but {o} is a file" if output.endswith(("/", os.sep))
                                 else "-o must be a directory when there are several inputs", path=o)
            if not o.exists() and not output.endswith(("/", os.sep)) and o.suffix.lower() in WRITE_EXTENSIONS | READ_EXTENSIONS:
                raise UsageError(f"-o {output} names an image file, but several inputs, a folder or a glob need an "
                                 "output folder", hint=f"give a folder: -o {o.with_suffix('')}/")
            out_dir = o
        else:
            single_file = o
            named = output_format(o, None) if o.suffix.lower().lstrip(".") in FORMATS else None
            if fmt and named and output_format(None, fmt) != named:
                better = o.with_suffix(EXTENSION[output_format(None, fmt)])
                raise UsageError(f"--format {fmt} contradicts the output name {o} (a {named} name)",
                                 hint=f"leave out --format, or name the output {better}")
            output_format(o, fmt)  # validates the extension early
    jobs = []
    for f, rel in inputs:
        e = output_extension(f, fmt)
        sfx = suffix(f) if callable(suffix) else suffix
        if single_file is not None:
            out = single_file
        elif out_dir is not None:
            out = out_dir / rel.parent / f"{rel.stem}{sfx}{e}"
        else:
            out = f.with_name(f"{f.stem}{sfx}{e}")
        jobs.append(Job(f, out, rel))
    first: dict[str, Job] = {}
    for j in jobs:
        other = first.setdefault(os.path.abspath(j.output), j)
        if other is not j:
            hint = ("run them separately, or name them by a glob from a folder above both (with -o DIR the outputs "
                    "mirror the folders below the glob's fixed part)" if out_dir is not None else
                    "leave out --format (each output keeps its input's extension), or run them separately")
            raise UsageError(f"{other.input} and {j.input} would write the same output file", path=j.output,
                             hint=hint)
    return jobs


def check_output(job: Job, all_inputs: set[str], overwrite: bool) -> None:
    if job.to_stdout:
        return
    out = os.path.realpath(job.output)
    if out in all_inputs:
        raise OutputExistsError("output would overwrite an input image; casr never does that", path=job.output,
                                hint="choose another -o or --suffix")
    if job.output.exists() and not overwrite:
        raise OutputExistsError("output exists", path=job.output, hint="use --overwrite or --skip-existing")


def intermediates_folders(jobs: list[Job], root: str) -> list[Job]:
    """``jobs`` with the folder each saves its steps' pictures in under ``root`` (``--save-intermediates``): the
    input's path below its folder without the extension (``d1/a``), with it where two would meet (``x_png``,
    ``x_jpg``); two inputs still meeting (``c1/a.png`` and ``c2/a.png`` named on the command line) are a usage
    error before any work, as two outputs are.  ``root`` must be a folder or not exist yet."""
    base = Path(root)
    if base.exists() and not base.is_dir():
        raise UsageError(f"--save-intermediates {root}: not a folder", hint="give a folder (it is made if missing)")
    plain = [j.relative.with_suffix("") for j in jobs]
    twice = {p for p in plain if plain.count(p) > 1}
    folders = [p.with_name(p.name + j.relative.suffix.lower().replace(".", "_")) if p in twice else p
               for p, j in zip(plain, jobs)]
    first: dict[Path, Job] = {}
    for f, j in zip(folders, jobs):
        other = first.setdefault(f, j)
        if other is not j:
            raise UsageError(f"{other.input} and {j.input} would save their intermediates in one folder", path=base / f,
                             hint="run them separately, or name them by a glob from a folder above both")
    return [replace(j, intermediates=base / f) for f, j in zip(folders, jobs)]

"""Writing an output so that nothing partial is ever left under its name: a temporary file
next to it, renamed into place only when the write succeeds, with the process id in its name so
a later run removes the leftovers of a writer that died (kill -9), and a probe that finds an
unwritable folder before any pixel is computed."""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import tempfile
from pathlib import Path


def _file_mode(path: Path) -> int:
    """The permissions ``path`` gets when written: its current ones when it exists (as a shell
    redirection keeps them), else what ``open`` would give a new file (0o666 less the umask)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


TEMP_SUFFIX = ".casr-tmp"


#: how much of the output's name a temporary file's name keeps: with the dot, the process id, tempfile's 8
#: characters and TEMP_SUFFIX it stays under the 255 bytes a file name may have, however long the output's is
TEMP_NAME_BYTES = 200


def _temp_stem(path: Path) -> str:
    """The output's name as the temporary files carry it: at most :data:`TEMP_NAME_BYTES` bytes of it."""
    raw = os.fsencode(path.name)
    return path.name if len(raw) <= TEMP_NAME_BYTES else os.fsdecode(raw[:TEMP_NAME_BYTES])


def _temp_prefix(path: Path) -> str:
    """Hidden, named for the output and the writing process: ``.a_x2.png.<pid>.``."""
    return f".{_temp_stem(path)}.{os.getpid()}."


def check_writable(path: Path) -> None:
    """Raise :class:`~casr_cli.errors.OutputWriteError` naming ``path`` unless a file can be
    written next to it (its folder made if missing): tried with a temporary file, before any
    pixel is computed."""
    from ..errors import OutputWriteError

    above = next((p for p in path.parents if os.path.lexists(p)), None)
    if above is not None and not above.is_dir():  # mkdir would say "File exists"
        raise OutputWriteError(f"cannot write the output: {above} is a file, not a folder", path=path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
        try:
            os.close(fd)
        finally:  # also on Ctrl-C between the two calls: the probe never outlives the check
            os.unlink(tmp)
    except OSError as e:
        raise OutputWriteError(f"cannot write the output: {e.strerror or e}", path=path) from e


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temporaries(path: Path) -> int:
    """Remove the temporary files of ``path`` left by casr processes that died before they
    could (kill -9, a power cut): those whose writer's process id is gone; returns how many."""
    removed = 0
    stem = _temp_stem(path)
    for tmp in path.parent.glob(f".{glob.escape(stem)}.*{TEMP_SUFFIX}"):
        pid = tmp.name[len(stem) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed += 1
    return removed


@contextlib.contextmanager
def atomic_path(path: Path, replace: bool = True):
    """A temporary name next to ``path``; renamed onto it only if the block succeeds.
    The result has the permissions a plain write would give (mkstemp's files are 0o600).
    The name carries the process id, so a later run can tell a dead writer's leftovers
    (:func:`remove_stale_temporaries`) from another live process's file.  ``replace=False``:
    a file that appeared at ``path`` meanwhile (another process's output) is never replaced
    (:func:`publish_new`); an :class:`~casr_cli.errors.OutputExistsError` says so."""
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, _file_mode(path))
        if replace:
            os.replace(tmp, path)
        else:
            publish_new(Path(tmp), path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def publish_new(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` only if no file has it: a hard link (which fails on an existing name,
    atomically) then the temporary name removed.  Where the file system has no hard links, a check and a
    rename (a race of a few microseconds)."""
    from ..errors import OutputExistsError

    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError("output exists: another process wrote it while this one ran", path=path,
                                hint="use --overwrite to replace it, or --skip-existing") from None
    except OSError:  # no hard links here (some network and FAT file systems)
        if os.path.lexists(path):
            raise OutputExistsError("output exists: another process wrote it while this one ran", path=path,
                                    hint="use --overwrite to replace it, or --skip-existing") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)

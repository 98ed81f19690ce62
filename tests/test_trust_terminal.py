"""What a person sees on a terminal (issue 26): summary lines and progress bars drawn through
one console, so a run of 1 file and of 50 files ends with the summary lines alone, each
once, none glued to a bar, no stale bars.  casr runs in a pseudo-terminal (``pty``); a
small emulator replays what it wrote (carriage returns, cursor moves, line erases) and the
final screen is compared with a golden transcript, timings normalised."""

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SRC = str(Path(__file__).resolve().parents[1] / "src")
COLUMNS = 120

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")


def in_terminal(args: list[str], cwd: Path, timeout: float = 240) -> tuple[int, bytes]:
    """Run ``python -m casr_cli ARGS`` with standard output and error on one pseudo-terminal
    COLUMNS wide; returns the exit status and every byte it wrote there."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
    env = {**os.environ, "PYTHONPATH": SRC, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": "40"}
    for k in ("NO_COLOR", "FORCE_COLOR", "CASR_DEBUG"):
        env.pop(k, None)
    p = subprocess.Popen([sys.executable, "-m", "casr_cli", *args], stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=slave, cwd=cwd, env=env, close_fds=True)
    os.close(slave)
    out = bytearray()
    while True:
        r, _, _ = select.select([master], [], [], timeout)
        if not r:
            p.kill()
            raise AssertionError("casr hung in the terminal:\n" + out.decode(errors="replace"))
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return p.wait(timeout), bytes(out)


CSI = re.compile(rb"\x1b\[([?0-9;]*)([A-Za-z])")


def screen(raw: bytes) -> list[str]:
    """The lines left on a terminal after ``raw`` (text, CR, LF, ESC[nA/B/C/D/G/K, the rest
    of CSI ignored), without trailing blanks."""
    lines: list[list[str]] = [[]]
    row = col = 0
    i = 0
    text = raw
    while i < len(text):
        m = CSI.match(text, i)
        if m:
            arg, op = m.group(1).decode(), m.group(2).decode()
            n = int(arg) if arg.isdigit() else None
            if op == "A":
                row = max(0, row - (n or 1))
            elif op == "B":
                row += n or 1
            elif op == "C":
                col += n or 1
            elif op == "D":
                col = max(0, col - (n or 1))
            elif op == "G":
                col = (n or 1) - 1
            elif op == "K":
                while len(lines) <= row:
                    lines.append([])
                if arg in ("", "0"):
                    del lines[row][col:]
                elif arg == "2":
                    lines[row] = []
                elif arg == "1":
                    lines[row][:col] = [" "] * min(col, len(lines[row]))
            i = m.end()
            continue
        b = text[i:i + 1]
        if b == b"\x1b":  # another escape (OSC, charset): skip its introducer
            i += 2
            continue
        if b == b"\n":
            row += 1
            col = 0
        elif b == b"\r":
            col = 0
        elif b in (b"\x07", b"\x08"):
            col = max(0, col - 1) if b == b"\x08" else col
        else:
            # one UTF-8 character
            j = i + 1
            while j < len(text) and 0x80 <= text[j] < 0xC0:
                j += 1
            ch = text[i:j].decode("utf-8", "replace")
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            if col >= COLUMNS:  # the terminal wraps
                row += 1
                col = 0
                while len(lines) <= row:
                    lines.append([])
                line = lines[row]
            while len(line) < col:
                line.append(" ")
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
            i = j
            continue
        i += 1
    out = ["".join(x).rstrip() for x in lines]
    while out and not out[-1]:
        out.pop()
    return out


def normalise(lines: list[str]) -> list[str]:
    return [re.sub(r"\d+\.\d+ s\)", "T s)", x) for x in lines]


def test_one_file_on_a_terminal_ends_with_its_summary_alone(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "a.png")
    rc, raw = in_terminal(["upscale", "a.png", "-s", "4", "-m", "lite", "--device", "cpu"], tmp_path)
    assert rc == 0, raw.decode(errors="replace")
    assert b"tiles" in raw  # bars were drawn while it ran ...
    assert normalise(screen(raw)) == ["a.png -> a_x4.png (512x384, chain 4, T s)"]  # ... and nothing else is left
    assert raw.count(b"a.png -> a_x4.png") == 1


def test_fifty_files_on_a_terminal_end_with_fifty_summaries(tmp_path, photo):
    d = tmp_path / "in"
    d.mkdir()
    for k in range(50):
        Image.fromarray(np.roll(photo, k, axis=1)[:24, :32]).save(d / f"f{k:02d}.png")
    rc, raw = in_terminal(["upscale", "in", "-s", "2", "-m", "bicubic", "-o", "out"], tmp_path)
    assert rc == 0, raw.decode(errors="replace")
    golden = [f"in/f{k:02d}.png -> out/f{k:02d}_x2.png (64x48, chain 2, T s)" for k in range(50)]
    assert normalise(screen(raw)) == golden
    for k in range(50):
        assert raw.count(f"in/f{k:02d}.png -> ".encode()) == 1  # each summary once, never redrawn


def test_an_error_and_a_warning_on_a_terminal_read_as_lines(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "a.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    Image.fromarray(np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)])).save(tmp_path / "c.png")
    rc, raw = in_terminal(["upscale", "a.png", "bad.png", "c.png", "-s", "2", "-m", "bicubic", "-f", "jpg",
                           "-o", "out"], tmp_path)
    assert rc == 1
    assert normalise(screen(raw)) == [
        "a.png -> out/a_x2.jpg (256x192, chain 2, T s)",
        "casr: error: not an image, or a format casr cannot read (bad.png)",
        "casr: hint: casr reads PNG, JPEG, WebP, TIFF, BMP or GIF",
        "c.png -> out/c_x2.jpg (256x192, chain 2, T s)",
        "casr: warning: JPEG has no alpha channel: alpha dropped (use PNG, WebP or TIFF to keep it) (out/c_x2.jpg)",
    ]

"""Faults a batch survives (issue 26): the disk filling up mid-write, a read-only output,
kill -9 mid-batch then ``--skip-existing``, two casr processes writing into one folder.
Nothing partial is left, nothing finished is lost, no input is touched.  Each case runs casr
in subprocesses (seconds each): all are ``slow``, out of the quick lane.  The slower cases
(1000 files with flat memory) are in benchmarks/faults.py."""

import json
import signal
from pathlib import Path

import pytest
from PIL import Image

from fault_setup import casr, digests, partial, readable, tmpfs, wait_mid_batch, write_inputs


pytestmark = pytest.mark.slow


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.rglob("*") if partial(p))


@pytest.fixture
def inputs(tmp_path, photo):
    return write_inputs(tmp_path / "in", photo, 6)


@pytest.fixture
def tiny_disk(tmp_path):
    with tmpfs(tmp_path / "full", "size=1m") as d:
        if d is None:
            pytest.skip("a small tmpfs cannot be mounted here (needs root)")
        yield d


def test_disk_full_mid_write_leaves_nothing_partial(inputs, tiny_disk):
    """x4 of 96x128 as PNG at level 0 is ~590 KB: the 1 MiB disk holds one output, not two."""
    before = digests(inputs)
    p = casr(inputs, "-s", 4, "-m", "bicubic", "-o", tiny_disk, "--compression", 0, "--json")
    out, err = p.communicate(timeout=300)
    recs = [json.loads(x) for x in out.splitlines()]
    ok = [r for r in recs if r["status"] == "ok"]
    failed = [r for r in recs if r["status"] == "error"]
    assert p.returncode == 1 and len(recs) == 6 and ok and failed
    for r in failed:
        assert "No space left" in r["error"] or "disk is full" in r["error"]
        assert r["error"].endswith(f"({r['output']})") and "casr-tmp" not in r["error"]
    assert leftovers(tiny_disk) == []
    assert sorted(p.name for p in tiny_disk.iterdir()) == sorted(Path(r["output"]).name for r in ok)
    assert all(readable(tiny_disk / Path(r["output"]).name) for r in ok)
    assert digests(inputs) == before


def test_kill_9_mid_batch_then_skip_existing_resumes_to_the_exact_set(inputs, tmp_path, photo):
    write_inputs(inputs, photo, 6, tile=3)  # larger inputs: each takes a while, so the kill lands mid-batch
    before = digests(inputs)
    out = tmp_path / "out"
    p = casr(inputs, "-s", 6, "-m", "bicubic", "-o", out, "-q")
    wait_mid_batch(p, out, "p*_x6.png", 200)  # one output done and the next one being written
    assert p.poll() is None, "finished before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    done_before = {x.name for x in out.glob("p*_x6.png")}
    assert 0 < len(done_before) < 6 and all(readable(out / n) for n in done_before)
    r = casr(inputs, "-s", 6, "-m", "bicubic", "-o", out, "--skip-existing", "--json")
    stdout, _ = r.communicate(timeout=300)
    assert r.returncode == 0
    recs = [json.loads(x) for x in stdout.splitlines()]
    assert sorted(Path(x["output"]).name for x in recs if x["status"] == "skipped") == sorted(done_before)
    assert len([x for x in recs if x["status"] == "ok"]) == 6 - len(done_before)
    assert sorted(x.name for x in out.iterdir()) == [f"p{k}_x6.png" for k in range(6)]  # no stale temporary file
    assert all(readable(out / f"p{k}_x6.png") for k in range(6))
    assert digests(inputs) == before


def test_two_processes_writing_into_one_folder(inputs, tmp_path):
    before = digests(inputs)
    out = tmp_path / "out"
    ps = [casr(inputs, "-s", 3, "-m", "bicubic", "-o", out, "--skip-existing", "--json") for _ in range(2)]
    results = [p.communicate(timeout=300) for p in ps]
    assert [p.returncode for p in ps] == [0, 0], [e for _, e in results]
    recs = [json.loads(x) for o, _ in results for x in o.splitlines()]
    assert len(recs) == 12  # every input accounted for by each process
    assert sorted(x.name for x in out.iterdir()) == [f"p{k}_x3.png" for k in range(6)]
    assert all(Image.open(out / f"p{k}_x3.png").size == (384, 288) for k in range(6))
    assert digests(inputs) == before

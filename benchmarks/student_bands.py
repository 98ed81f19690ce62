"""How much fine detail a lite end draws against its teacher, on held-out teacher shards.

Per end: the mean local energy of the two detail bands of ``training.texture.band_energy`` (fine, next),
the texture loss to the teacher's outputs and the L1 to them, each end run on the whole shard region
through SDAM and the colour anchor as in training and cut to its centre (``training.validation.region_centre``).
The first line gives the teacher's and the HR's band energies.  Hand-run, not a test.

    python benchmarks/student_bands.py --teacher-dir runs/teacher-x4plus lite-real-gan lite-real-fidelity STUDENT
"""

from __future__ import annotations

import argparse
import json


def mean(rows: list[list[float]]) -> list[float]:
    return [sum(c) / len(rows) for c in zip(*rows)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ends", nargs="+", help="lite files or shipped lite names")
    ap.add_argument("--teacher-dir", required=True, help="the teacher shards (python -m casr_cli.training.teacher)")
    ap.add_argument("--held-out", type=int, default=4, help="the first N shards (what --preset distill holds out)")
    ap.add_argument("--margin", type=int, default=8, help="the shards' LR context (teacher_margin)")
    ap.add_argument("--anchor-sigma", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    from casr_cli.backbone.lite import load_lite
    from casr_cli.models.lite import shipped_or_file
    from casr_cli.training.lite import build, lite_config
    from casr_cli.training.step_batch import StepRunner
    from casr_cli.training.validation import region_centre
    from casr_cli.training.teacher import load_shards, split_shards
    from casr_cli.training.texture import band_energy, texture_loss

    torch.set_num_threads(args.threads)
    _, held = split_shards(load_shards(args.teacher_dir), args.held_out)
    samples = [(sh, *(torch.from_numpy(sh[k]).float() / 255 for k in ("lr", "teacher", "hr"))) for sh in held]

    def energy(x: torch.Tensor) -> list[float]:
        return band_energy(x).mean((0, 2, 3)).tolist()

    print(json.dumps({"teacher": mean([energy(t) for _, _, t, _ in samples]),
                      "hr": mean([energy(h) for _, _, _, h in samples])}))
    _, sdam = build(lite_config("default"))
    for end in args.ends:
        step = StepRunner(load_lite(shipped_or_file(end) or end).eval(), sdam, args.anchor_sigma)
        rows = []
        with torch.no_grad():
            for sh, lr, teacher, hr in samples:
                s = float(sh["scale"])
                out = region_centre(step, lr, s, round(s * args.margin), hr.shape[-2:])
                rows.append(energy(out) + [texture_loss(out, teacher).item(), F.l1_loss(out, teacher).item()])
        fine, nxt, tex, l1 = mean(rows)
        print(json.dumps({"end": end, "fine": fine, "next": nxt, "texture_loss": tex, "l1_teacher": l1}), flush=True)


if __name__ == "__main__":
    main()

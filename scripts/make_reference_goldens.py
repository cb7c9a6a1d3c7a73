"""Capture golden outputs of the reference ``wavemix`` package for the equivalence tests.

The reference package imports only with ``numpy<2`` (it imports a private NumPy module), so this script
builds an isolated virtual environment for it, then re-runs itself there. For each case it seeds the
reference model's weights (BatchNorm statistics too, so eval-mode BN is exercised), runs it in eval mode
on a seeded input and writes ``tests/golden/reference_<case>.pt`` with the constructor arguments, the
state dict, the input and the output.

    python scripts/make_reference_goldens.py                   # venv in ~/.cache/wavemixer/reference-venv
    python scripts/make_reference_goldens.py --venv /tmp/ref   # or elsewhere
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REFERENCE_REQUIREMENTS = ["wavemix==0.2.4", "numpy<2"]
OUT_DIR = Path(__file__).resolve().parents[1] / "tests" / "golden"

# (case name, task, reference constructor kwargs, input shape). Sizes keep every level's map even, which
# the reference requires; small widths keep each file a few hundred kB at most.
CASES: list[tuple[str, str, dict, tuple[int, ...]]] = [
    ("cls_l1_patchify", "classification",
     dict(num_classes=7, depth=2, final_dim=16, ff_channel=24, mult=2, level=1, initial_conv="pachify", patch_size=4),
     (2, 3, 32, 32)),
    ("cls_l2_strided_s2", "classification",
     dict(num_classes=5, depth=2, final_dim=16, ff_channel=16, mult=2, level=2, initial_conv="strided", stride=2),
     (2, 3, 32, 48)),
    ("cls_l3_strided_s1", "classification",
     dict(num_classes=10, depth=2, final_dim=24, ff_channel=16, mult=3, level=3, initial_conv="strided", stride=1),
     (2, 3, 16, 24)),
    ("cls_l4_patchify_p2", "classification",
     dict(num_classes=3, depth=2, final_dim=32, ff_channel=32, mult=2, level=4, initial_conv="pachify", patch_size=2),
     (1, 3, 32, 64)),
    ("seg_l1_s2", "segmentation", dict(num_classes=6, depth=2, final_dim=16, ff_channel=16, level=1, stride=2),
     (1, 3, 16, 24)),
    ("seg_l2_s1", "segmentation", dict(num_classes=4, depth=1, final_dim=16, ff_channel=8, level=2, stride=1),
     (1, 3, 8, 12)),
    ("seg_l3_s2", "segmentation", dict(num_classes=5, depth=2, final_dim=16, ff_channel=16, level=3, stride=2),
     (1, 3, 32, 64)),
    ("seg_l4_s2", "segmentation", dict(num_classes=20, depth=1, final_dim=32, ff_channel=32, level=4, stride=2),
     (1, 3, 64, 64)),
    ("sr_l1", "super_resolution", dict(depth=2, final_dim=16, ff_channel=16, level=1), (2, 3, 8, 12)),
    ("sr_l2", "super_resolution", dict(depth=1, final_dim=16, ff_channel=24, level=2), (1, 3, 8, 8)),
    ("sr_l3", "super_resolution", dict(depth=1, final_dim=16, ff_channel=16, level=3), (1, 3, 16, 8)),
    ("sr_l4", "super_resolution", dict(depth=2, final_dim=16, ff_channel=16, level=4, mult=1), (1, 3, 16, 16)),
]  # fmt: skip


def _ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    import torch  # the same torch version as the project, so outputs differ only by the model code

    torch_req = f"torch=={torch.__version__.split('+')[0]}"
    check = subprocess.run([str(python), "-c", "import wavemix, torch"], capture_output=True)
    if check.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", torch_req, *REFERENCE_REQUIREMENTS], check=True)
    return python


def _seed_batchnorm(model, generator) -> None:
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            m.weight.data.copy_(1 + 0.2 * torch.randn(n, generator=generator))
            m.bias.data.copy_(0.2 * torch.randn(n, generator=generator))


def _generate(out_dir: Path) -> None:
    import torch
    import wavemix
    from wavemix import SemSegment, classification, sisr

    classes = {"classification": classification.WaveMix, "segmentation": SemSegment.WaveMix,
               "super_resolution": sisr.WaveMix}  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, (name, task, kwargs, shape) in enumerate(CASES):
        torch.manual_seed(1000 + index)
        model = classes[task](**kwargs)
        generator = torch.Generator().manual_seed(2000 + index)
        _seed_batchnorm(model, generator)
        model.eval()
        x = torch.randn(*shape, generator=generator)
        with torch.no_grad():
            y = model(x)
        record = dict(
            task=task, kwargs=kwargs, state_dict=model.state_dict(), input=x, output=y,
            reference_version=str(getattr(wavemix, "__version__", "0.2.4")), torch_version=str(torch.__version__),
        )  # fmt: skip
        path = out_dir / f"reference_{name}.pt"
        torch.save(record, path)
        print(f"{path.name}: {task} {kwargs} input {tuple(shape)} -> output {tuple(y.shape)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, default=Path.home() / ".cache" / "wavemixer" / "reference-venv")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        _generate(args.out)
        return
    python = _ensure_venv(args.venv)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the reference pins its DWT to cuda:0 when it sees a GPU
    subprocess.run([str(python), __file__, "--inside", "--out", str(args.out)], check=True, env=env)


if __name__ == "__main__":
    main()

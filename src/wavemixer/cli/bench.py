"""``wavemixer bench``: parameters, MACs, inference and training speed and peak memory, side by side.

Each of our models is measured next to the reference ``wavemix`` package's model of the same
configuration (run by ``--reference-python``, or a venv under ``~/.cache/wavemixer/reference-venv`` that
``--create-reference-env`` creates once: about 5.5 GB, several minutes) and any timm/torchvision baselines,
one fresh process per measurement, rounds interleaved. Examples::

    wavemixer bench wavemix_lite_144_7_cifar10 -b 32 --precision fp32 bf16 --variants opt ckpt
    wavemixer bench wavemix_192_16_tinyimagenet timm:resnet18:num_classes=200 -b 16 --img-size 64
    wavemixer bench 'wavemix_256_16_l4:final_dim=128,depth=8' --img-size 128 --channels-last

``--suite peers`` measures WaveMix, its token-mixer variants and peer architectures (timm ResNet,
ConvMixer, MLP-Mixer, PoolFormer, ViT, ConvNeXt) built at the same parameter count, interleaved in one
sweep, at ~40k, ~0.5M and ~3M parameters; ``--resolutions`` repeats one scale at other input sizes::

    wavemixer bench --suite peers --mode train -b 32 --threads 1 --resolutions 64 128
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

from wavemixer.bench.runner import VARIANTS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="benchmark models against the reference package and baselines", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument(
        "models", nargs="*", help="registry names (name:key=value,... overrides), ref:NAME, timm:NAME, tv:NAME"
    )
    p.add_argument("--suite", choices=["peers"], help="a predefined sweep instead of MODELS (see above)")
    p.add_argument("--scales", nargs="+", default=["40k", "500k", "3m"], help="--suite peers: parameter scales")
    p.add_argument("--mixers", nargs="+", help="--suite peers: WaveMix mixer variants (default: all of them)")
    p.add_argument("--families", nargs="+", help="--suite peers: peer families (default: all)")
    p.add_argument(
        "--resolutions", nargs="*", type=int, default=[], help="--suite peers: input sizes for the 40k scale's sweep"
    )
    p.add_argument("-b", "--batch-size", type=int, default=32, help="batch size (halved and retried on out of memory)")
    p.add_argument("--img-size", type=int, help="square input size (default: each model's registered input size)")
    p.add_argument("--mode", choices=["infer", "train", "both"], default="both")
    p.add_argument(
        "--precision",
        nargs="+",
        choices=["fp32", "bf16", "fp16"],
        default=["fp32"],
        help="fp32, or autocast to bf16/fp16 (several: one sweep each, ratios also against ref fp32)",
    )
    p.add_argument("--channels-last", action="store_true", help="NHWC memory layout for models and inputs")
    p.add_argument("--device", default=None, help="cpu or cuda[:k] (default: cuda when available)")
    p.add_argument("--variants", nargs="*", default=[], choices=list(VARIANTS),
                   help="extra rows for our models: opt = eval-time path (BN folded; inference), "
                        "ckpt = gradient checkpointing (training), lowmem = set_memory_efficient() (training), "
                        "ckpt+lowmem = both (training), "
                        "onnx = ONNX Runtime on the BN-folded export (inference, fp32), "
                        "compile = torch.compile")  # fmt: skip
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per process")
    p.add_argument("--iters", type=int, default=5, help="timed steps per process")
    p.add_argument("--rounds", type=int, default=2, help="processes per measurement, interleaving ours and reference")
    p.add_argument("--threads", type=int, help="torch threads per worker (default: torch's choice)")
    p.add_argument("--no-reference", action="store_true", help="do not run the reference package")
    p.add_argument("--reference-python", help="interpreter that imports wavemix (default: cached reference venv)")
    p.add_argument(
        "--create-reference-env",
        action="store_true",
        help="create the cached reference venv if missing (~/.cache/wavemixer/reference-venv, about 5.5 GB)",
    )
    p.add_argument("--out", type=Path, default=Path("results"), help="parent folder of the results folder")
    p.add_argument("--tag", default="", help="word added to the results folder's name")
    p.add_argument(
        "--force", action="store_true", help="replace the results wavemixer wrote in an existing results folder"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from wavemixer.bench import (
        BenchSettings,
        aggregate,
        ensure_reference_python,
        format_markdown,
        resolve_models,
        results_dir_name,
        run_sweep,
        write_results,
    )  # fmt: skip
    from wavemixer.bench.peers_suite import PEERS_FILES
    from wavemixer.bench.report import RESULT_FILES
    from wavemixer.bench.runner import machine_description
    from wavemixer.checks import check_int
    from wavemixer.cli import check_common_options
    from wavemixer.files import check_can_create, claim
    from wavemixer.written_files import MANIFEST, read_manifest, recording, remove_recorded

    check_common_options(args, allow_auto_device=False)
    for option, value, low in (("--warmup", args.warmup, 0), ("--iters", args.iters, 1), ("--rounds", args.rounds, 1)):
        check_int(option, value, ge=low)
    if args.img_size is not None:
        check_int("--img-size", args.img_size, ge=1)
    if not re.fullmatch(r"[A-Za-z0-9._-]*", args.tag):  # a word of the folder name, not a path
        raise ValueError(f"--tag must be a word of letters, digits, '.', '_' or '-', got {args.tag!r}")
    if args.out.exists() and not args.out.is_dir():  # said now, not after the (long) sweep
        raise ValueError(f"--out {args.out} is a file; give the folder that holds the results folders")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if bool(args.models) == bool(args.suite):
        raise ValueError("give model names or --suite peers (one of the two)")
    if args.suite:
        from wavemixer.bench.peers_suite import suite_entries

        entries = suite_entries(args.scales, families=args.families, mixers=args.mixers, resolutions=args.resolutions)
        args.tag = args.tag or "peers"
    else:
        entries = resolve_models(
            args.models, img_size=args.img_size, reference=not args.no_reference, variants=args.variants
        )
    ref_python = None
    if any(e.source == "reference" for e in entries):
        ref_python = str(ensure_reference_python(args.reference_python, create=args.create_reference_env))
    settings = BenchSettings(
        batch_size=args.batch_size, modes=("infer", "train") if args.mode == "both" else (args.mode,),
        precisions=tuple(args.precision), channels_last=args.channels_last, device=device, warmup=args.warmup,
        iters=args.iters, rounds=args.rounds, threads=args.threads, reference_python=ref_python,
    )  # fmt: skip
    machine = machine_description(device)
    label = "cpu" if device == "cpu" else machine
    folder = args.out / results_dir_name(
        label, settings.precisions, settings.channels_last, torch.__version__, args.tag
    )
    files = [*RESULT_FILES, *(PEERS_FILES if args.suite else ())]
    _refuse_results_folder(folder, files, args.force)  # before the (long) sweep
    check_can_create(folder, "--out")
    print(f"wavemixer bench on {machine}: {len(entries)} models, {settings.rounds} rounds", file=sys.stderr)
    records = run_sweep(entries, settings, log=lambda line: print(line, file=sys.stderr, flush=True))
    rows = aggregate(records)
    meta = dict(
        machine=machine, command="wavemixer bench " + shlex.join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else []),
        device=device, torch=torch.__version__, threads=settings.threads or torch.get_num_threads(),
        layout="channels_last" if settings.channels_last else "NCHW", precisions=",".join(settings.precisions),
        warmup=settings.warmup, iters=settings.iters, rounds=settings.rounds, reference_python=ref_python or "",
    )  # fmt: skip
    with claim(folder, "results folder", "choose another --out or --tag"):
        _refuse_results_folder(folder, files, args.force)  # again, now that no other process writes here
        # the last sweep's files go first: a plot this sweep does not draw must not stay beside its tables
        earlier = [f for f in read_manifest(folder) or [] if f != MANIFEST]
        remove_recorded(folder, [*earlier, MANIFEST])  # the manifest last, so a failed removal leaves it whole
        with recording(folder, files):
            paths = write_results(folder, rows, records, meta)
            if args.suite:
                from wavemixer.bench.peers_suite import write_peers_results

                paths.update(write_peers_results(folder, rows, meta))
    print((folder / "peers.md").read_text() if args.suite else format_markdown(rows))
    print(f"results: {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    failed = [r for r in rows if r.get("error") and r["source"] != "reference"]
    return 1 if failed and len(failed) == len([r for r in rows if r["source"] != "reference"]) else 0


def _refuse_results_folder(folder: Path, files: list[str], force: bool) -> None:
    """A results folder with results in it is replaced only with ``--force``, and then only what wavemixer wrote."""
    from wavemixer.written_files import holds_outputs, refuse_replacing_unrecorded

    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"results folder {folder} exists and is not a folder; choose another --out or --tag")
    if holds_outputs(folder) and not force:
        raise FileExistsError(f"results folder {folder} already exists; pass --force to overwrite it, or --tag WORD")
    refuse_replacing_unrecorded(folder, files, what="--out or --tag", option="--force")

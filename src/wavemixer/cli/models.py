"""``wavemixer models``: the registry table, or with ``--peers`` the comparison peers' families."""

from __future__ import annotations

import argparse
import json
import sys

from wavemixer.registry import get_spec, list_models


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered model variants", description=__doc__)
    p.add_argument(
        "pattern", nargs="?", default="*", help="name filter: a substring (mnist) or a shell pattern ('wavemix_lite*')"
    )
    p.add_argument("--task", choices=["classification", "segmentation", "super_resolution"], help="only this task")
    p.add_argument("--pretrained", action="store_true", help="only variants whose weights ship in the package")
    p.add_argument("--format", choices=["table", "markdown", "json"], default="table", help="output format")
    p.add_argument(
        "--peers",
        action="store_true",
        help="list the comparison peers instead (train one with --model peer:FAMILY --model-arg params=N)",
    )
    p.set_defaults(func=run)


def _as_pattern(pattern: str) -> str:
    """A shell pattern as given; a plain word matches anywhere in the name."""
    return pattern if any(ch in pattern for ch in "*?[") else f"*{pattern}*"


def rows(pattern: str = "*", task: str | None = None, pretrained: bool = False) -> list[dict]:
    from wavemixer.hub import packaged_weights_dir

    pattern = _as_pattern(pattern)
    out = []
    for name in list_models(pattern, task=task):  # type: ignore[arg-type]
        spec = get_spec(name)
        has_weights = packaged_weights_dir(name) is not None
        if pretrained and not has_weights:
            continue
        out.append(
            dict(
                name=name,
                task=spec.task,
                params=spec.num_params,
                gmacs=spec.gmacs,
                input_size="x".join(map(str, spec.input_size)),
                dataset=spec.dataset,
                published=spec.published,
                metric=spec.metric,
                weights=has_weights,
                source=spec.source,
            )
        )
    return out


def peer_rows(pattern: str = "*", task: str | None = None) -> list[dict]:
    """The peer families (:mod:`wavemixer.bench.peer_families`); listing them needs neither timm nor torchvision."""
    from fnmatch import fnmatchcase

    from wavemixer.bench.peers import PEER_PREFIX, all_peer_families

    pattern = _as_pattern(pattern)
    families = all_peer_families().values()
    return [
        dict(
            name=f"{PEER_PREFIX}{f.name}",
            task=f.task,
            source=f.source,
            depths=None if f.depths is None else list(f.depths),
        )
        for f in families
        if (task is None or f.task == task)
        and (fnmatchcase(f.name, pattern) or fnmatchcase(PEER_PREFIX + f.name, pattern))
    ]


def _print_peers(table: list[dict], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(table, indent=2))
        return
    depth = {r["name"]: "fixed" if r["depths"] is None else "/".join(map(str, r["depths"])) for r in table}
    if fmt == "markdown":
        print("| name | task | library class | depth at 40k / 0.5M / 3M |\n|---|---|---|---|")
        for r in table:
            print(f"| `{r['name']}` | {r['task']} | {r['source']} | {depth[r['name']]} |")
        return
    header = f"{'name':30s} {'task':14s} {'depth':7s} library class"
    print(header + "\n" + "-" * len(header))
    for r in table:
        print(f"{r['name']:30s} {r['task']:14s} {depth[r['name']]:7s} {r['source']}")
    print("\ndepth: blocks (per stage) at the ~40k / ~0.5M / ~3M budgets; width is solved to --model-arg params=N")


def format_markdown(table: list[dict]) -> str:
    lines = [
        "| name | task | params | GMACs @ input | dataset | published | weights |",
        "|---|---|---:|---:|---|---|---|",
    ]
    for r in table:
        pub = "" if r["published"] is None else f"{r['published']} ({r['metric']})"
        lines.append(
            f"| `{r['name']}` | {r['task']} | {r['params']:,} | {r['gmacs']:g} @ {r['input_size']} | {r['dataset']} "
            f"| {pub} | {'yes' if r['weights'] else ''} |"
        )
    return "\n".join(lines)


def _say_if_empty(table: list[dict], args: argparse.Namespace, what: str) -> None:
    """An empty listing says so on stderr (the listing itself stays parseable), naming the filters."""
    if not table:
        filters = [f"pattern {args.pattern!r}"] if args.pattern != "*" else []
        filters += [f"--task {args.task}"] * bool(args.task) + ["--pretrained"] * bool(args.pretrained)
        print(f"wavemixer models: no {what} matches {' and '.join(filters) or 'at all'}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.peers:
        if args.pretrained:
            raise ValueError("--pretrained does not apply to --peers: peers ship no weights")
        table = peer_rows(args.pattern, args.task)
        _print_peers(table, args.format)
        _say_if_empty(table, args, "peer")
        return 0
    table = rows(args.pattern, args.task, args.pretrained)
    _say_if_empty(table, args, "model")
    if args.format == "json":
        print(json.dumps(table, indent=2))
    elif args.format == "markdown":
        print(format_markdown(table))
    else:
        header = f"{'name':36s} {'task':16s} {'params':>12s} {'GMACs':>9s} {'input':>11s}  {'dataset':16s} published"
        print(header)
        print("-" * len(header))
        for r in table:
            pub = "" if r["published"] is None else f"{r['published']} {r['metric']}"
            mark = " *" if r["weights"] else ""
            print(
                f"{r['name']:36s} {r['task']:16s} {r['params']:>12,d} {r['gmacs']:>9.3f} {r['input_size']:>11s}  "
                f"{r['dataset']:16s} {pub}{mark}"
            )
        if any(r["weights"] for r in table):
            print("\n* weights ship with the package: wavemixer.create_model(name, pretrained=True)")
    return 0

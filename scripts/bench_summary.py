"""Print the target table of docs/benchmarks.md from ``wavemixer bench`` results folders.

python scripts/bench_summary.py results/bench-l1-cpu-fp32+bf16-nchw-pt2.14.1 results/bench-l3-...
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def _row(rows: list[dict], model: str, mode: str, precision: str) -> dict | None:
    return next((r for r in rows if r["model"] == model and r["mode"] == mode and r["precision"] == precision), None)


def _cell(row: dict | None, key: str, ratio: str, unit: str = "ms") -> str:
    if row is None:
        return "n/a"
    if row["error"]:
        return "crashes"
    value = float(row[key])
    shown = f"{value:.0f} {unit}"
    return f"{shown} ({float(row[ratio]):.2f}×)" if row.get(ratio) else shown


def main(folders: list[str]) -> None:
    print("| model (input, batch) | train fp32: ours vs ref | train bf16 ours ÷ ref fp32 | ref train bf16 "
          "| infer fp32 ours | infer fp32 eval path | infer bf16 eval path ÷ ref fp32 | ref infer fp32 "
          "| train mem ours | train mem ckpt | ref train mem |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for folder in folders:
        rows = list(csv.DictReader((Path(folder) / "results.csv").open()))
        for ours in [r for r in rows if r["source"] == "wavemixer" and r["variant"] == ""]:
            if ours["mode"] != "train" or ours["precision"] != "fp32":
                continue
            name, group = ours["model"], ours["group"]
            ref = f"reference {group}"
            ref_train = _row(rows, ref, "train", "fp32")
            cells = [
                f"`{name}` ({ours['input_size']}, b{ours['batch_size']})",
                f"{_cell(ours, 'ms_median', 'ms_ratio_vs_ref')} vs {_cell(ref_train, 'ms_median', '')}",
                _cell(_row(rows, name, "train", "bf16"), "ms_median", "ms_ratio_vs_ref_fp32"),
                _cell(_row(rows, ref, "train", "bf16"), "ms_median", ""),
                _cell(_row(rows, name, "infer", "fp32"), "ms_median", "ms_ratio_vs_ref"),
                _cell(_row(rows, f"{name} [opt]", "infer", "fp32"), "ms_median", "ms_ratio_vs_ref"),
                _cell(_row(rows, f"{name} [opt]", "infer", "bf16"), "ms_median", "ms_ratio_vs_ref_fp32"),
                _cell(_row(rows, ref, "infer", "fp32"), "ms_median", ""),
                _cell(ours, "peak_mem_mb", "mem_ratio_vs_ref", "MB"),
                _cell(_row(rows, f"{name} [ckpt]", "train", "fp32"), "peak_mem_mb", "mem_ratio_vs_ref", "MB"),
                _cell(ref_train, "peak_mem_mb", "", "MB"),
            ]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])

"""``wavemixer bench`` end to end on a tiny configuration, plus its pairing, ratio and retry logic."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch

from wavemixer.bench import aggregate, reference_kwargs, resolve_models, results_dir_name
from wavemixer.bench import runner as bench_runner
from wavemixer.cli import main
from wavemixer.reference import reference_kwargs_to_config
from wavemixer.registry import get_spec


def test_bench_cli_end_to_end(tmp_path: Path, capsys) -> None:
    status = main([
        "bench", "wavemix_lite_64_6_cifar10:depth=1,final_dim=16", "--img-size", "32", "-b", "16",
        "--precision", "fp32", "bf16", "--variants", "opt", "ckpt", "lowmem", "onnx",
        "--warmup", "1", "--iters", "2", "--rounds", "1",
        "--threads", "1", "--no-reference", "--out", str(tmp_path), "--tag", "test",
    ])  # fmt: skip
    assert status == 0
    (folder,) = tmp_path.iterdir()
    assert folder.name.startswith("bench-test-cpu-fp32+bf16-nchw-pt")
    rows = list(csv.DictReader((folder / "results.csv").open()))
    seen = {(r["model"], r["mode"], r["precision"]) for r in rows}
    base = "wavemix_lite_64_6_cifar10:depth=1,final_dim=16"
    assert {(base, m, p) for m in ("infer", "train") for p in ("fp32", "bf16")} <= seen
    assert (f"{base} [opt]", "infer", "fp32") in seen and (f"{base} [ckpt]", "train", "bf16") in seen
    assert (f"{base} [lowmem]", "train", "fp32") in seen and (f"{base} [onnx]", "infer", "fp32") in seen
    assert not any(r["mode"] == "train" and ("[opt]" in r["model"] or "[onnx]" in r["model"]) for r in rows)
    assert not any(r["mode"] == "infer" and "[lowmem]" in r["model"] for r in rows)
    assert (f"{base} [onnx]", "infer", "bf16") not in seen  # the exported graph is fp32
    for r in rows:
        assert r["error"] == ""
        # batch 16 at 32x32: every activation map is 1 MB or more, well above the RSS resolution
        assert float(r["ms_median"]) > 0 and float(r["peak_mem_mb"]) > 0 and float(r["samples_per_s"]) > 0
        assert float(r["ms_p25"]) <= float(r["ms_median"]) <= float(r["ms_p75"])
    plain = next(r for r in rows if r["model"] == base and r["mode"] == "infer" and r["precision"] == "fp32")
    # depth 1, width 16 of the 0.5M model: 6,846 parameters, 2,777,248 MACs at 32x32; its Haar DWT 12 operations
    # per 2x2 patch of its 4 reduced channels at 16x16: 12 * 4 * 16 * 16 = 12,288 (rounded as the table does)
    assert (float(plain["params_m"]), float(plain["gmacs"]), float(plain["dwt_mflops"])) == (0.007, 0.0028, 0.012)
    markdown = (folder / "results.md").read_text()
    assert "Training step" in markdown and "Inference" in markdown and "MACs" in markdown
    assert (folder / "raw.json").is_file()
    assert "| model |" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["wavemix_lite_144_7_cifar10", "wavemix_192_16_tinyimagenet", "wavemix_256_16_l4",
                                  "wavemix_seg_256_16_l4", "wavemix_sr_144_4_x2"])  # fmt: skip
def test_reference_kwargs_round_trip(name: str) -> None:
    spec = get_spec(name)
    config = dict(spec.build().config)
    kwargs = reference_kwargs(spec.task, config)
    back = reference_kwargs_to_config(spec.task, **kwargs)
    for key, value in back.items():
        expected = config[key] if config.get(key) is not None else config["final_dim"]
        assert (tuple(value) if isinstance(value, list) else value) == (
            tuple(expected) if isinstance(expected, list) else expected
        ), key


def test_no_reference_for_configurations_it_cannot_build() -> None:
    with pytest.raises(ValueError, match="scale"):
        reference_kwargs("super_resolution", dict(get_spec("wavemix_sr_144_4_x4").build().config))
    with pytest.raises(ValueError, match="in_chans"):
        reference_kwargs("classification", dict(get_spec("wavemix_lite_8_5_fmnist").build().config))
    entries = resolve_models(["wavemix_lite_32_7_cifar10_tiny", "timm:resnet18:num_classes=10"], img_size=32)
    assert [e.source for e in entries] == ["wavemixer", "timm"]
    assert entries[1].kwargs == {"num_classes": 10} and entries[1].input_size == (3, 32, 32)


def test_resolve_pairs_ours_reference_and_variants() -> None:
    entries = resolve_models(["wavemix_lite_144_7_cifar10:depth=2"], variants=["opt"])
    assert [(e.source, e.variant) for e in entries] == [("wavemixer", ""), ("reference", ""), ("wavemixer", "opt")]
    assert entries[1].kwargs["depth"] == 2 and entries[1].kwargs["initial_conv"] == "strided"
    assert {e.group for e in entries} == {"wavemix_lite_144_7_cifar10:depth=2"}


def test_bench_carries_mixer_and_wavelet_and_skips_the_reference(capsys) -> None:
    from wavemixer.bench.worker import build_model

    entries = resolve_models(["wavemix_lite_144_7_cifar10:mixer=random,wavelet=db2,depth=1"])
    assert [e.source for e in entries] == ["wavemixer"]  # the reference package has only the Haar DWT
    assert "mixer" in capsys.readouterr().err
    assert (entries[0].kwargs["mixer"], entries[0].kwargs["wavelet"]) == ("random", "db2")
    model = build_model(dict(source="wavemixer", task=entries[0].task, kwargs=entries[0].kwargs))
    assert (model.blocks[0].mixer, model.blocks[0].wavelet) == ("random", "db2")


def _record(label: str, source: str, mode: str, precision: str, ms: float, mem: float, batch: int = 8) -> dict:
    return dict(label=label, group="g", source=source, variant="", mode=mode, precision=precision, round=0,
                batch_size=batch, input_size="3x32x32", times_ms=[ms, ms], median_ms=ms, peak_mem_mb=mem,
                params=1000)  # fmt: skip


def test_aggregate_ratios() -> None:
    records = [
        _record("ours", "wavemixer", "train", "fp32", 60.0, 80.0),
        _record("ref", "reference", "train", "fp32", 100.0, 100.0),
        _record("ours", "wavemixer", "train", "bf16", 25.0, 50.0),
        dict(_record("ref", "reference", "train", "bf16", 0, 0), error="RuntimeError: crash"),
        _record("ours", "wavemixer", "infer", "fp32", 10.0, 40.0, batch=4),  # smaller batch after an OOM retry
        _record("ref", "reference", "infer", "fp32", 10.0, 40.0),
    ]
    del records[3]["median_ms"]
    rows = {(r["model"], r["mode"], r["precision"]): r for r in aggregate(records)}
    assert rows["ours", "train", "fp32"]["ms_ratio_vs_ref"] == 0.6
    assert rows["ours", "train", "fp32"]["mem_ratio_vs_ref"] == 0.8
    assert rows["ours", "train", "bf16"]["ms_ratio_vs_ref"] is None  # the reference failed at bf16
    assert rows["ours", "train", "bf16"]["ms_ratio_vs_ref_fp32"] == 0.25
    assert rows["ref", "train", "bf16"]["error"].startswith("RuntimeError")
    assert rows["ours", "infer", "fp32"]["ms_ratio_vs_ref"] == 2.0  # per sample: 10 ms / 4 vs 10 ms / 8


def test_out_of_memory_retries_with_half_batch(monkeypatch) -> None:
    calls = []

    def fake_run_job(job, python, *, env, timeout_s):
        calls.append(job["batch_size"])
        if job["batch_size"] > 2:
            return bench_runner.EXIT_OOM, dict(error="out of memory", oom=True)
        return 0, dict(times_ms=[1.0], median_ms=1.0, peak_mem_mb=1.0, batch_size=job["batch_size"], params=1)

    monkeypatch.setattr(bench_runner, "run_job", fake_run_job)
    entries = resolve_models(["wavemix_lite_64_6_cifar10"], reference=False)
    settings = bench_runner.BenchSettings(batch_size=8, modes=("train",), rounds=2)
    records = bench_runner.run_sweep(entries, settings, log=lambda line: None)
    assert calls == [8, 4, 2, 2]  # the second round starts at the batch that fitted
    assert [r["batch_size"] for r in records] == [2, 2]


def test_train_only_sweep_counts_macs(monkeypatch) -> None:
    """Without an inference pass in the sweep, the training pass counts the MACs (once per model)."""
    jobs: list[dict] = []

    def fake_run_job(job, python, *, env, timeout_s):
        jobs.append(job)
        return 0, dict(times_ms=[1.0], median_ms=1.0, peak_mem_mb=1.0, batch_size=job["batch_size"], params=1)

    monkeypatch.setattr(bench_runner, "run_job", fake_run_job)
    entries = resolve_models(["wavemix_lite_64_6_cifar10"], reference=False)
    settings = bench_runner.BenchSettings(batch_size=2, modes=("train",), precisions=("fp32", "bf16"), rounds=2)
    bench_runner.run_sweep(entries, settings, log=lambda line: None)
    assert [job["count_macs"] for job in jobs] == [True, False, False, False]


def test_results_dir_name_records_the_setup() -> None:
    assert results_dir_name("NVIDIA H100 80GB HBM3", ["bf16"], True, "2.14.1+cu130") == (
        "bench-nvidia_h100_80gb_hbm3-bf16-nhwc-pt2.14.1"
    )


@pytest.mark.skipif(not os.environ.get("WAVEMIXER_REFERENCE_PYTHON"), reason="set WAVEMIXER_REFERENCE_PYTHON")
def test_bench_against_reference(tmp_path: Path) -> None:
    """With the reference interpreter available: ratios are produced; its bf16 training step crashes."""
    status = main([
        "bench", "wavemix_lite_144_7_cifar10:depth=1,final_dim=16", "--img-size", "16", "-b", "2", "--mode", "train",
        "--precision", "fp32", "bf16", "--warmup", "1", "--iters", "1", "--rounds", "1", "--out", str(tmp_path),
    ])  # fmt: skip
    assert status == 0
    rows = list(csv.DictReader(next(tmp_path.iterdir()).joinpath("results.csv").open()))
    ours = next(r for r in rows if r["source"] == "wavemixer" and r["precision"] == "fp32")
    assert float(ours["ms_ratio_vs_ref"]) > 0
    ref_bf16 = next(r for r in rows if r["source"] == "reference" and r["precision"] == "bf16")
    assert "should be the same" in ref_bf16["error"]


def test_cpu_allocator_peak_sees_transient_tensors() -> None:
    """The CPU memory number follows live tensors: two 8 MiB temporaries alive together read 16 MiB."""
    from wavemixer.bench.worker import _allocator_peak_mb

    def step() -> None:
        a = torch.ones(2 * 2**20)  # 8 MiB of float32
        b = torch.ones(2 * 2**20)
        del a, b
        c = torch.ones(2**20)  # 4 MiB, after both were freed: does not raise the peak
        del c

    peak = _allocator_peak_mb(step)
    assert peak is not None and 16.0 <= peak < 16.5


def test_synthetic_train_step_trains_the_model() -> None:
    from wavemixer.bench.synthetic_step import synthetic_train_step

    model, step = synthetic_train_step("wavemix_lite_8_10_mnist", 4, "bf16")
    before = [p.detach().clone() for p in model.parameters()]
    step()
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    with pytest.raises(ValueError, match="fp32 or bf16"):
        synthetic_train_step("wavemix_lite_8_10_mnist", 4, "fp16")

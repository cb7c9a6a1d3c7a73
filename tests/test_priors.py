"""The prior measurements of issue 24 on models whose answers are known by construction."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from wavemixer.bench.priors import (
    Erf,
    effective_receptive_field,
    feature_extractor,
    mass_centroid,
    mass_radius,
    measure_priors,
    plot_erfs,
    rescale_images,
    scale_robustness,
    shift_images,
    shift_robustness,
    write_table,
)
from wavemixer.data.splits import carve_validation, class_balanced_subset


# ------------------------------------------------------------------------------------------ subsets
@pytest.fixture
def labels() -> list[int]:
    """10 classes of unequal size (class c has 20 + 3c images), shuffled."""
    ys = [c for c in range(10) for _ in range(20 + 3 * c)]
    return [ys[i] for i in torch.randperm(len(ys), generator=torch.Generator().manual_seed(0)).tolist()]


def test_subset_is_class_balanced_and_fixed_per_seed(labels: list[int]) -> None:
    subset = class_balanced_subset(labels, 5, seed=1)
    assert subset == sorted(set(subset))
    assert Counter(labels[i] for i in subset) == dict.fromkeys(range(10), 5)
    assert class_balanced_subset(labels, 5, seed=1) == subset
    assert class_balanced_subset(torch.tensor(labels), 5, seed=1) == subset  # any label container
    assert class_balanced_subset(np.array(labels), 5, seed=1) == subset
    assert class_balanced_subset(labels, 5, seed=2) != subset
    # a seed's small subset lies inside its larger one: the curve's points differ only in added images
    assert set(subset) <= set(class_balanced_subset(labels, 15, seed=1))


def test_subset_names_the_class_short_of_images(labels: list[int]) -> None:
    with pytest.raises(ValueError, match=r"^class 0 has 20 images available, fewer than the 21"):
        class_balanced_subset(labels, 21, seed=0)
    with pytest.raises(ValueError, match="class 10 has 0 images"):
        class_balanced_subset(labels, 1, seed=0, num_classes=11)
    with pytest.raises(ValueError, match="per_class"):
        class_balanced_subset(labels, 0, seed=0)


def test_validation_is_carved_from_the_rest(labels: list[int]) -> None:
    subset = class_balanced_subset(labels, 15, seed=3)
    val = carve_validation(labels, subset, seed=3, per_class=5)
    assert not set(val) & set(subset)
    assert Counter(labels[i] for i in val) == dict.fromkeys(range(10), 5)
    assert carve_validation(labels, subset, seed=3, per_class=5) == val
    # stratified: a share of what each class has left (class c: 20 + 3c - 15 images left)
    val = carve_validation(labels, subset, seed=3, fraction=0.4)
    assert not set(val) & set(subset)
    assert Counter(labels[i] for i in val) == {c: round(0.4 * (5 + 3 * c)) for c in range(10)}
    with pytest.raises(ValueError, match="class 0 has 5 images available"):
        carve_validation(labels, subset, seed=3, per_class=6)
    with pytest.raises(ValueError, match="exactly one"):
        carve_validation(labels, subset, seed=3, per_class=5, fraction=0.1)


# ------------------------------------------------------------------------------------------ shift
class _TopLeftPixel(nn.Module):
    """Class 0 when the top-left pixel of channel 0 exceeds 0.5, class 1 otherwise: position-bound."""

    def forward(self, x: Tensor) -> Tensor:
        v = x[:, 0, 0, 0]
        return torch.stack([v - 0.5, 0.5 - v], dim=1)


class _EvenGridMean(nn.Module):
    """Class 0 when the mean over the even-even pixel grid of channel 0 is positive: decimation by 2."""

    def forward(self, x: Tensor) -> Tensor:
        m = x[:, 0, ::2, ::2].mean(dim=(1, 2))
        return torch.stack([m, -m], dim=1)


class _Classifier(nn.Module):
    """``body`` as ``forward_features`` (the map the ERF reads), then global average pooling and a linear head."""

    def __init__(self, body: nn.Module, channels: int) -> None:
        super().__init__()
        self.body, self.head = body, nn.Linear(channels, 10)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x).mean(dim=(-2, -1)))


def _gap_model(dropout: float = 0.0) -> _Classifier:
    """Per-pixel map, global average pooling, linear head: exactly invariant to circular shifts. No biases,
    which would outweigh the pooled noise of random test images and predict one class for all."""
    torch.manual_seed(0)
    model = _Classifier(nn.Sequential(nn.Conv2d(3, 8, 1, bias=False), nn.ReLU(), nn.Dropout(dropout)), 8)
    nn.init.zeros_(model.head.bias)
    return model


def test_shift_images_moves_content_down_right() -> None:
    x = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    assert torch.equal(shift_images(x, 1, 2), torch.roll(x, (1, 2), (-2, -1)))
    padded = shift_images(x, 1, 2, "pad_zeros")
    assert torch.equal(padded[..., 1:, 2:], x[..., :3, :2])
    assert padded[..., :1, :].eq(0).all() and padded[..., :, :2].eq(0).all()
    reflected = shift_images(x, 1, 0, "pad_reflect")
    assert torch.equal(reflected[..., 0, :], x[..., 1, :]) and torch.equal(reflected[..., 1:, :], x[..., :3, :])


def test_gap_model_is_exactly_circular_shift_consistent() -> None:
    model = _gap_model(dropout=0.5).train()  # eval mode must be used inside (dropout off) and undone after
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 12, 12, generator=g), torch.randint(0, 10, (32,), generator=g)
    result = shift_robustness(model, (x, y), modes=("circular",))
    assert model.training and model.body[2].training
    assert len(set(model.eval()(x).argmax(1).tolist())) >= 3  # predictions that depend on the image
    assert result.images == 32 and len(result.rows) == 4 * 3
    assert all(r.consistency == 1.0 and r.accuracy == result.accuracy for r in result.rows)
    summary = result.summary()
    assert summary["circular_consistency_odd"] == summary["circular_consistency_even"] == 100.0


def test_position_bound_model_changes_under_every_shift() -> None:
    x = -torch.ones(4, 1, 8, 8)
    x[:, 0, 0, 0] = 1.0  # class 0 only while the marked pixel stays at the top left
    result = shift_robustness(_TopLeftPixel(), (x, torch.zeros(4, dtype=torch.long)), modes=("circular", "pad_zeros"))
    assert result.accuracy == 1.0
    assert len(result.rows) == 2 * 4 * 3
    assert all(r.consistency == 0.0 and r.accuracy == 0.0 for r in result.rows)


def test_decimation_is_consistent_for_even_shifts_only() -> None:
    x = -torch.ones(3, 1, 8, 8)
    x[:, :, ::2, ::2] = 1.0  # the even-even grid says class 0; any odd shift moves the other phase onto it
    summary = shift_robustness(_EvenGridMean(), x, modes=("circular",)).summary()
    assert "accuracy" not in summary  # no labels: consistency only
    assert summary["circular_consistency_even"] == 100.0
    assert summary["circular_consistency_odd"] == 0.0
    # the same on random images through a stride-2 conv without antialiasing: even shifts permute its
    # outputs, odd ones show it the other pixels, independent of the first on noise (1x1 kernel; no biases,
    # which would outweigh the pooled noise and fix the prediction)
    torch.manual_seed(0)
    strided = _Classifier(nn.Conv2d(3, 8, 1, stride=2, bias=False), 8)
    nn.init.zeros_(strided.head.bias)
    result = shift_robustness(strided, torch.randn(64, 3, 16, 16), modes=("circular",))
    assert result.mean(kind="circular", amounts=[2, 4]) == 1.0
    assert result.mean(kind="circular", amounts=[1, 3]) < 0.5


def test_loader_batches_and_max_images_give_the_same_counts() -> None:
    model = _TopLeftPixel()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(10, 1, 6, 6, generator=g), torch.randint(0, 2, (10,), generator=g)
    whole = shift_robustness(model, (x, y), shifts=(1, 2))
    loader = [(x[:4], y[:4]), (x[4:8], y[4:8]), (x[8:], y[8:])]
    assert shift_robustness(model, loader, shifts=(1, 2)) == whole
    assert shift_robustness(model, loader, shifts=(1, 2), max_images=6) == shift_robustness(
        model, (x[:6], y[:6]), shifts=(1, 2)
    )


# ------------------------------------------------------------------------------------------ scale
def test_rescale_keeps_size_and_identity_at_one() -> None:
    x = torch.randn(2, 3, 15, 17)
    assert rescale_images(x, 1.0) is x
    for factor in (0.75, 1.25):
        assert rescale_images(x, factor).shape == x.shape


def test_rescale_up_crops_the_centre_and_down_pads_with_fill() -> None:
    ring = torch.zeros(1, 1, 32, 32)
    ring[..., :2, :] = ring[..., -2:, :] = ring[..., :, :2] = ring[..., :, -2:] = 1.0
    assert rescale_images(ring, 1.25).abs().max() == 0  # the 2.5-px ring lies in the 4 px cropped each side
    blob = torch.zeros(1, 1, 32, 32)
    blob[..., 12:20, 12:20] = 1.0
    up = rescale_images(blob, 1.25)  # centred: symmetric, and the blob grown from 8 to 10 px
    assert torch.allclose(up, up.flip(-1)) and torch.allclose(up, up.flip(-2))
    assert up[0, 0, 16].gt(0.5).sum() == 10
    down = rescale_images(torch.ones(1, 2, 32, 32), 0.75, fill=-3.0)  # 24 px, 4 px of fill each side
    assert down[..., 4:28, 4:28].eq(1).all()
    inner = torch.zeros(32, 32, dtype=torch.bool)
    inner[4:28, 4:28] = True
    assert down[..., ~inner].eq(-3).all()


def test_scale_robustness_reports_both_factors() -> None:
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)
    summary = scale_robustness(_gap_model(), (x, y)).summary()
    assert set(summary) == {"accuracy"} | {f"scale_{f}_{m}" for f in (0.75, 1.25) for m in ("consistency", "accuracy")}
    const = torch.full((2, 1, 8, 8), 2.0)  # a constant image stays constant at 1.25x: consistency 1
    assert scale_robustness(_EvenGridMean(), const, factors=(1.25,)).rows[0].consistency == 1.0
    # a position-bound model: the marked corner pixel goes to the fill at 0.75x and is cropped away at 1.25x
    corner = -torch.ones(4, 1, 32, 32)
    corner[:, 0, 0, 0] = 1.0
    assert scale_robustness(_TopLeftPixel(), (corner, torch.zeros(4, dtype=torch.long))).summary() == {
        "accuracy": 100.0,
        "scale_0.75_consistency": 0.0,
        "scale_0.75_accuracy": 0.0,
        "scale_1.25_consistency": 0.0,
        "scale_1.25_accuracy": 0.0,
    }


# ------------------------------------------------------------------------------------------ ERF
def _support(erf: Erf) -> tuple[slice, ...]:
    rows, cols = torch.nonzero(erf.map, as_tuple=True)
    return slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1)


@pytest.mark.parametrize("convs, side", [(1, 3), (2, 5)])
def test_erf_of_stacked_3x3_convs(convs: int, side: int) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(*(nn.Conv2d(3, 3, 3, padding=1) for _ in range(convs)))
    erf = effective_receptive_field(model, torch.randn(2, 3, 15, 15))
    assert erf.unit == (7, 7) and erf.feature_size == (15, 15) and erf.map.shape == (15, 15)
    half = side // 2
    window = (slice(7 - half, 8 + half),) * 2
    assert _support(erf) == window and erf.map[window].gt(0).all()  # non-zero exactly on side x side
    assert mass_centroid(erf.map) == pytest.approx((7, 7), abs=1.5)


def test_erf_reads_the_centre_token_of_a_token_model() -> None:
    class Tokens(nn.Module):  # 4x4 patches as tokens behind one class token, timm's layout
        num_prefix_tokens = 1

        def __init__(self) -> None:
            super().__init__()
            self.patch = nn.Conv2d(3, 6, 4, stride=4)

        def forward_features(self, x: Tensor) -> Tensor:
            tokens = self.patch(x).flatten(2).transpose(1, 2)
            return torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)

    torch.manual_seed(0)
    erf = effective_receptive_field(Tokens(), torch.randn(2, 3, 32, 32))
    assert erf.unit == (4, 4) and erf.feature_size == (8, 8)
    assert _support(erf) == (slice(16, 20), slice(16, 20))  # token (4, 4) sees pixels 16..19


def test_erf_of_peer_vit_reads_before_its_final_layernorm() -> None:
    pytest.importorskip("timm")
    from wavemixer.bench.peers import PeerModel

    torch.manual_seed(0)
    peer = PeerModel(family="vit", width=16, depth=1, num_classes=10, img_size=32)
    fn, prefix = feature_extractor(peer)
    x = torch.randn(2, 3, 32, 32)
    assert prefix == 1 and fn(x).shape == (2, 65, 16)
    # after the LayerNorm every token sums to zero over channels: a channel-sum ERF there would be empty
    assert peer.model.forward_features(x).sum(-1).abs().max() < 1e-4
    erf = effective_receptive_field(peer, x)
    assert erf.feature_size == (8, 8) and erf.map[16:20, 16:20].sum() > 0
    assert all(p.grad is None for p in peer.parameters())  # input gradients only


def test_erf_of_a_wavemix_model_uses_its_features() -> None:
    from wavemixer import WaveMix

    torch.manual_seed(0)
    model = WaveMix(num_classes=10, depth=1, final_dim=16, level=1, stem="strided", stride=1, dropout=0.0)
    erf = effective_receptive_field(model, torch.randn(2, 3, 32, 32))
    assert erf.feature_size == (32, 32) and erf.unit == (16, 16)
    assert erf.map[16, 16] > 0 and torch.isfinite(erf.map).all()
    # by hand: the transposed conv (k4, s2, p1) gives unit 16 from coefficients 7-8, Haar reads stem pixels
    # 14-17 for them, and the stem's two 3x3 convs widen that to 12-19 (the residual adds pixel 16 alone)
    assert _support(erf) == (slice(12, 20), slice(12, 20))
    assert 0 < erf.radius(0.5) <= erf.radius(0.9) < 4


def test_mass_radius_on_a_hand_made_map() -> None:
    m = torch.zeros(5, 5)
    m[2, 2] = 0.52
    m[1, 2] = m[3, 2] = m[2, 1] = m[2, 3] = 0.1
    m[1, 1] = m[1, 3] = m[3, 1] = m[3, 3] = 0.02
    assert mass_centroid(m) == pytest.approx((2, 2))
    assert mass_radius(m, 0.5) == pytest.approx(0.0, abs=1e-9)  # the centre alone holds 52 %
    assert mass_radius(m, 0.9) == pytest.approx(1.0)  # with its 4 neighbours: 92 %
    assert mass_radius(m, 0.95) == pytest.approx(math.sqrt(2))  # the corners are needed
    pair = torch.zeros(4, 4)
    pair[1, 1] = pair[1, 2] = 1.0  # centred between two pixels
    assert mass_centroid(pair) == pytest.approx((1, 1.5)) and mass_radius(pair, 0.5) == pytest.approx(0.5)
    assert math.isnan(mass_radius(torch.zeros(3, 3), 0.5))


# ------------------------------------------------------------------------------------------ reports
def test_measure_plot_and_tables(tmp_path) -> None:
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(6, 3, 16, 16, generator=g), torch.randint(0, 10, (6,), generator=g)
    models = {"gap": _gap_model(), "conv": _Classifier(nn.Conv2d(3, 8, 3, padding=1), 8)}
    rows, erfs = measure_priors(models, (x, y), shift_kwargs={"shifts": (1, 2)})
    assert rows["gap"]["circular_consistency_odd"] == 100.0 and rows["gap"]["erf_r90"] == 0.0  # 1x1 conv
    assert rows["conv"]["erf_r90"] == erfs["conv"].radius(0.9) > 0 and rows["conv"]["images"] == 6
    assert {"accuracy", "pad_zeros_accuracy_even", "scale_0.75_accuracy", "erf_r50"} <= set(rows["conv"])
    csv_path, md_path = write_table(rows, tmp_path / "priors", columns=["accuracy", "erf_r50"])
    assert csv_path.read_text().splitlines()[0] == "model,accuracy,erf_r50"
    md = md_path.read_text().splitlines()
    assert md[0] == "| model | accuracy | erf_r50 |" and md[2].startswith("| gap | ") and len(md) == 4
    png = plot_erfs(erfs, tmp_path / "erf.png", title="untrained")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_priors_script_measures_a_run_on_its_own_test_split(tmp_path) -> None:
    """``scripts/priors.py`` on a committed run folder: its clean accuracy is the one ``wavemixer eval`` gives
    (the same split, preprocessing and model), and every table and picture is written."""
    import csv
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    run = repo / "tests" / "golden" / "old_run" / "digits-run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo / "src")}
    cmd = [sys.executable, str(repo / "scripts" / "priors.py"), f"digits={run}", "--out", str(tmp_path), "--erf-images",
           "16", "--device", "cpu"]  # fmt: skip
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=tmp_path)
    with (tmp_path / "priors.csv").open() as fh:
        (row,) = list(csv.DictReader(fh))
    expected = json.loads((repo / "tests" / "golden" / "old_run" / "expected.json").read_text())["eval_test"]
    assert float(row["accuracy"]) == pytest.approx(expected["top1"], abs=0.01)
    assert float(row["erf_r90"]) > float(row["erf_r50"]) > 0
    measures = {f"{mode}_consistency_{parity}" for mode in ("circular", "pad_zeros") for parity in ("odd", "even")}
    assert measures | {"scale_0.75_accuracy", "scale_1.25_accuracy"} <= set(row)
    for name in ("priors.md", "priors-full.csv", "priors-full.md", "erf.png", "erf-untrained.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    first = (tmp_path / "priors-full.csv").read_text()
    again = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=tmp_path)
    assert "digits: measured before" in again.stdout  # an interrupted grid continues where it stopped
    assert (tmp_path / "priors-full.csv").read_text() == first
    other = subprocess.run([*cmd[:-4], "--erf-images", "8", *cmd[-2:]], env=env, check=True, capture_output=True,
                           text=True, cwd=tmp_path)  # fmt: skip
    assert "measured before" not in other.stdout  # other options: measured again


def test_seeds_of_a_model_become_mean_and_std_and_one_erf_map(tmp_path) -> None:
    from wavemixer.bench.priors import Erf, mean_erf_maps, seed_means, write_seed_table

    rows = {"resnet-s1": {"accuracy": 70.0, "erf_r50": 2.0}, "resnet-s2": {"accuracy": 74.0, "erf_r50": 4.0},
            "wavemix-s2-convtranspose-s1": {"accuracy": 69.0, "erf_r50": float("nan")}}  # fmt: skip
    means = seed_means(rows)
    assert means["resnet"]["accuracy"] == (72.0, pytest.approx(2 * math.sqrt(2)), 2)  # sample std of 70, 74
    assert means["wavemix-s2-convtranspose"] == {"accuracy": (69.0, 0.0, 1)}  # a NaN radius is left out
    csv_path, md_path = write_seed_table(means, tmp_path / "mean", columns=["accuracy", "erf_r50"])
    assert csv_path.read_text().splitlines()[0] == "model,seeds,accuracy_mean,accuracy_std,erf_r50_mean,erf_r50_std"
    md = md_path.read_text().splitlines()
    assert (
        md[2] == "| resnet | 2 | 72.00 ± 2.83 | 3.00 ± 1.41 |"
        and md[3] == "| wavemix-s2-convtranspose | 1 | 69.00 |  |"
    )
    point, wide = torch.zeros(5, 5), torch.ones(5, 5)
    point[2, 2] = 10.0  # a seed with a larger gain weighs no more than the other
    erfs = {f"m-s{i}": Erf(m, (2, 2), (5, 5), 4) for i, m in enumerate((point, wide), start=1)}
    (mean,) = mean_erf_maps(erfs).values()
    assert float(mean.sum()) == pytest.approx(1.0) and float(mean[2, 2]) == pytest.approx(0.5 + 0.5 / 25)

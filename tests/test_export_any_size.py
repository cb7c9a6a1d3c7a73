"""Graphs for every input size: torch.export with symbolic H/W, ONNX Runtime, TorchScript trace, FX tracing.

Each graph is traced at one size and run at sizes of other parities (odd x odd, and 96x80, whose level-3
maps are odd where 32x32's are not); outputs must match the eager model.
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.fx.experimental._config as fx_config

from wavemixer import WaveMix, WaveMixSegmentation, WaveMixSR
from wavemixer.cli import main
from wavemixer.dwt import haar_packed
from wavemixer.export import check_sizes, export_model, export_program

FAMILIES = {
    "classification": lambda: WaveMix(num_classes=5, depth=1, final_dim=16, level=3),
    "segmentation": lambda: WaveMixSegmentation(num_classes=4, depth=1, final_dim=16, level=2),
    "segmentation_patchify": lambda: WaveMixSegmentation(
        num_classes=4, depth=1, final_dim=16, level=2, stem="patchify"
    ),
    "super_resolution": lambda: WaveMixSR(scale=2, depth=1, final_dim=16, level=2),
}
SIZES = [(37, 45), (96, 80), (33, 32)]  # odd x odd; even but odd at level 3; mixed


def _model(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return FAMILIES[family]().eval()


def _assert_runs_at_other_sizes(run, model, batch: int = 1) -> None:
    for h, w in SIZES:
        x = torch.randn(batch, model.in_chans, h, w)
        with torch.no_grad():
            torch.testing.assert_close(run(x), model(x), rtol=1e-4, atol=1e-5, msg=f"at {h}x{w}")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_torch_export_with_symbolic_height_and_width(family):
    model = _model(family)
    program = export_program(model, torch.randn(2, 3, 32, 32))
    _assert_runs_at_other_sizes(program.module(), model, batch=3)


@pytest.mark.parametrize("family", ["classification", "segmentation", "super_resolution"])
def test_onnx_graph_runs_in_onnxruntime_at_every_parity(tmp_path, family):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = _model(family)
    export_model(model, tmp_path / "m.onnx", "onnx", input_size=(3, 32, 32), verify=False)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    _assert_runs_at_other_sizes(lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0]), model)


# TorchScript is the format these tests check; torch deprecates tracing it (the format stays documented)
@pytest.mark.filterwarnings("ignore:`torch\\.jit\\.\\w+` is deprecated:FutureWarning")
@pytest.mark.parametrize("family", ["classification", "segmentation", "super_resolution"])
def test_torchscript_trace_runs_at_every_parity(tmp_path, family):
    model = _model(family)
    export_model(model, tmp_path / "m.pt", "torchscript", input_size=(3, 32, 32), verify=False)
    _assert_runs_at_other_sizes(torch.jit.load(str(tmp_path / "m.pt")), model)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fx_symbolic_trace_and_feature_extractors(family):
    from timm.models._features_fx import create_feature_extractor as timm_feature_extractor
    from torchvision.models.feature_extraction import create_feature_extractor

    model = _model(family)
    graph = torch.fx.symbolic_trace(model)
    _assert_runs_at_other_sizes(graph, model)
    with pytest.raises(ValueError, match="3-channel images"):  # the eager input check survives in the graph
        graph(torch.randn(1, 1, 32, 32))
    x = torch.randn(1, 3, 37, 45)
    with torch.no_grad():
        expected = model.blocks[0](model.stem(x))  # the output of module blocks.0 (its residual branch)
        for build in (create_feature_extractor, timm_feature_extractor):
            features = build(model, return_nodes={"blocks.0": "block0"}).eval()(x)["block0"]
            torch.testing.assert_close(features, expected)


def test_bilinear_upsampler_exports_for_every_size():
    model = WaveMix(num_classes=5, depth=1, final_dim=16, level=2, upsample="bilinear").eval()
    _assert_runs_at_other_sizes(export_program(model, torch.randn(2, 3, 32, 32)).module(), model)


def test_size_dependent_head_is_refused_at_export_time():
    # stride 3: the decoder (x8) output is larger than some inputs and smaller than others
    model = WaveMixSegmentation(num_classes=2, depth=1, final_dim=16, level=1, stride=3).eval()
    with pytest.raises(ValueError, match=r"cannot be exported for every input size: .*--static"):
        export_program(model, torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize(
    "bad, message",
    [
        ([[[[0.0]]]], "expected a torch.Tensor image batch"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "convert and scale them first"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.bool), "convert and scale them first"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.float64), r"call model.to\(torch.float64\)"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.float16), r"differs from the model's weights \(torch.float32\)"),
    ],
)
def test_wrong_input_types_get_one_line_errors(bad, message):
    model = WaveMix(num_classes=3, depth=1, final_dim=16, level=1).eval()
    with pytest.raises(TypeError, match=message):
        model(bad)


def test_other_float_dtype_runs_under_autocast():
    model = WaveMix(num_classes=3, depth=1, final_dim=16, level=1).eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x.bfloat16())
    assert out.shape == (1, 3)
    torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=2e-2)


def test_cli_export_writes_a_checked_graph(tmp_path, capsys):
    out = tmp_path / "mnist.pt2"
    assert main(["export", "--model", "wavemix_lite_8_10_mnist", "--pretrained", str(out)]) == 0
    line = capsys.readouterr().out
    # the packaged model's 28x28, then (28 + 5) x (28 + 13) and 3 x 28 by 2 x 28 + 1: odd and mixed parity
    assert check_sizes(28, 28) == [(28, 28), (33, 41), (84, 57)] and check_sizes(1, 1, min_size=4)[0] == (4, 4)
    assert "any batch x height x width" in line and all(f"{s} max|err|" in line for s in ("28x28", "33x41", "84x57"))
    program = torch.export.load(str(out))
    model = __import__("wavemixer").create_model("wavemix_lite_8_10_mnist", pretrained=True).eval()
    x = torch.randn(2, 1, 31, 17)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-4, atol=1e-4)
    assert main(["export", "--model", "wavemix_lite_8_10_mnist", str(out)]) == 2  # no overwrite without --force
    assert "pass --force" in capsys.readouterr().err


def test_cli_refuses_torchscript_script_and_names_the_alternatives(tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["export", "--model", "wavemix_lite_8_10_mnist", str(out), "--format", "torchscript-script"]) == 2
    err = capsys.readouterr().err
    assert "torch.jit.script" in err and "--format torchscript" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_missing_onnxruntime_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnxscript")
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    assert main(["export", "--model", "wavemix_lite_8_10_mnist", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "wavemixer[onnx]"' in err
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


class _Haar(torch.nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x):
        return haar_packed(x, self.mode)


@pytest.mark.parametrize("mode", ["zero", "symmetric", "periodic", "reflect", "antisymmetric", "smooth"])
def test_traced_odd_size_extension_matches_pywavelets_for_every_mode(mode):
    pywt = pytest.importorskip("pywt")
    dims = {2: torch.export.Dim("h", min=2), 3: torch.export.Dim("w", min=2)}
    example = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    with fx_config.patch(backed_size_oblivious=True):  # as export_program does: 1-sample levels stay symbolic
        program = torch.export.export(_Haar(mode), (example,), dynamic_shapes=(dims,))
    for h, w in [(5, 7), (6, 9), (8, 8)]:
        x = torch.randn(h, w, dtype=torch.float64)
        ll, (ch, cv, cd) = pywt.dwt2(x.numpy(), "haar", mode=mode)
        expected = torch.from_numpy(__import__("numpy").stack([ll, ch, cv, cd]))
        torch.testing.assert_close(program.module()(x[None, None])[0], expected)


# TorchScript is the format this test exports; torch deprecates tracing it (the format stays documented)
@pytest.mark.filterwarnings("ignore:`torch\\.jit\\.\\w+` is deprecated:FutureWarning")
def test_export_verification_reports_a_graph_that_disagrees(tmp_path, monkeypatch):
    import wavemixer.export as export

    monkeypatch.setattr(export, "_runner", lambda fmt, path, opset: lambda x: torch.zeros(x.shape[0], 5))
    with pytest.raises(ValueError, match=r"disagrees with the eager model at 32x32 \(max error"):
        export_model(_model("classification"), tmp_path / "m.pt", "torchscript", input_size=(3, 32, 32))


def test_a_graph_onnxruntime_cannot_load_is_one_line(tmp_path, monkeypatch):
    """Opsets newer than the installed onnxruntime runs ended in its multi-line InvalidGraph traceback."""
    ort = pytest.importorskip("onnxruntime")

    def refuse(*args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 10 : INVALID_GRAPH : No Op registered for Gelu\n  at node 3")

    monkeypatch.setattr(ort, "InferenceSession", refuse)
    reason = "[ONNXRuntimeError] : 10 : INVALID_GRAPH : No Op registered for Gelu"  # its first line only
    message = re.escape(f"onnxruntime {ort.__version__} cannot load the exported opset-18 graph ({reason}); export a")
    with pytest.raises(ValueError, match=message):
        export_model(_model("classification"), tmp_path / "m.onnx", "onnx", input_size=(3, 32, 32))

"""Compilers and exporters: torch.compile (fullgraph), torch.export and ONNX Runtime parity."""

from __future__ import annotations

import copy

import pytest
import torch

from wavemixer import WaveMix, WaveMixSegmentation, WaveMixSR

# db2 mixers on tiny inputs run levels past the input size on purpose
# (tests/test_mixers.py::test_level_beyond_the_input_size_warns_once checks the warning itself).
pytestmark = pytest.mark.filterwarnings("ignore:Level value of .* is too high:UserWarning")

FAMILIES = {
    "classification": lambda: WaveMix(num_classes=5, depth=2, final_dim=16, level=3),
    "segmentation": lambda: WaveMixSegmentation(num_classes=4, depth=1, final_dim=16, level=2),
    "super_resolution": lambda: WaveMixSR(scale=2, depth=1, final_dim=16, level=2),
    # bilinear upsampling runs as matrix products on CPU (wavemixer.upsampling): it must trace too
    "bilinear": lambda: WaveMix(num_classes=5, depth=2, final_dim=16, level=2, upsample="bilinear"),
    # the general filter bank (boundary extension as small matrix products) and a cropped, longer-filter block
    "db2_symmetric": lambda: WaveMix(num_classes=5, depth=2, final_dim=16, level=2, wavelet="db2", mode="symmetric"),
}
INPUT = (2, 3, 32, 32)


def _without_dropout(model: torch.nn.Module) -> torch.nn.Module:
    """Dropout off, so that a compiled training step (its own random numbers) can equal the eager one."""
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


def _assert_same_training_step(model: torch.nn.Module, x: torch.Tensor, **compile_kw) -> None:
    """Compiled and eager copies of ``model``: the same outputs and every parameter's gradient.

    The loss weighs the outputs randomly (a plain sum leaves most gradients at zero); gradients agree to
    1e-4 of the largest one, since the biases in front of a BatchNorm have gradients that are rounding noise.
    """
    eager = copy.deepcopy(model)
    out = torch.compile(model, fullgraph=True, **compile_kw)(x)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
    (out * weights).sum().backward()
    expected = eager(x)
    (expected * weights).sum().backward()
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    scale = max(q.grad.abs().max().item() for q in eager.parameters())
    for (name, p), q in zip(model.named_parameters(), eager.parameters(), strict=True):
        assert p.grad is not None, name
        assert (p.grad - q.grad).abs().max().item() <= 1e-4 * scale, name


def test_inductor_compile_fullgraph_forward_and_backward():
    model = WaveMix(num_classes=3, depth=1, final_dim=16, level=2, stem="strided", stride=1)
    x = torch.randn(2, 3, 16, 16)
    compiled = torch.compile(model, fullgraph=True)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
    _assert_same_training_step(_without_dropout(model.train()), x)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_compile_fullgraph_traces_training(family):
    model = _without_dropout(FAMILIES[family]().train())
    _assert_same_training_step(model, torch.randn(*INPUT), backend="aot_eager")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_torch_export(family):
    model = FAMILIES[family]().eval()
    x = torch.randn(*INPUT)
    batch = torch.export.Dim("batch", min=1, max=64)
    exported = torch.export.export(model, (x,), dynamic_shapes={"x": {0: batch}})
    x5 = torch.randn(5, *INPUT[1:])
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x5), model(x5), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_onnx_runtime_parity(tmp_path, family):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = FAMILIES[family]().eval()
    x = torch.randn(*INPUT)
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, (x,), path, dynamo=True, dynamic_shapes={"x": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x3 = torch.randn(3, *INPUT[1:])
    (out,) = session.run(None, {session.get_inputs()[0].name: x3.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out), model(x3), rtol=1e-4, atol=1e-5)

"""torch.compile together with gradient checkpointing and the memory-efficient path, in training mode.

The aot_eager backend traces exactly what inductor would (dynamo + AOTAutograd) without compiling kernels,
so these stay fast; ``fullgraph=True`` makes any graph break (such as an ``.item()``) an error.
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch

from wavemixer import WaveMix
from wavemixer.train import TrainConfig, train


def _pair(**flags):
    torch.manual_seed(0)
    plain = WaveMix(num_classes=3, depth=2, final_dim=16, level=2, stem="strided", stride=1, dropout=0.0).train()
    model = copy.deepcopy(plain)
    if flags.get("grad_checkpointing"):
        model.set_grad_checkpointing(True)
    if flags.get("memory_efficient"):
        model.set_memory_efficient(True)
    return plain, model


def _step(model, x):
    model.zero_grad(set_to_none=True)
    model(x).square().mean().backward()
    return [p.grad.clone() for p in model.parameters()]


def _assert_same_gradients(compiled, plain, x, tol=1e-5):
    for got, want in zip(_step(compiled, x), _step(plain, x)):
        torch.testing.assert_close(got, want, rtol=tol, atol=tol / 10)


def test_compiled_grad_checkpointing_matches_eager_and_updates_batchnorm_once():
    plain, model = _pair(grad_checkpointing=True)
    x = torch.randn(4, 3, 16, 16)
    _assert_same_gradients(torch.compile(model, fullgraph=True, backend="aot_eager"), plain, x)
    for got, want in zip(model.buffers(), plain.buffers()):  # running stats: one update, not two
        torch.testing.assert_close(got, want, rtol=0, atol=1e-7)


def test_compiled_memory_efficient_path_has_no_graph_break():
    plain, model = _pair(memory_efficient=True)
    x = torch.randn(4, 3, 16, 16)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    _assert_same_gradients(compiled, plain, x, tol=1e-4)
    assert model._invertible_norms  # the memory-saving path ran inside the graph
    with torch.no_grad():  # a gamma at zero: the next eager check switches to the ordinary path
        model.blocks[0].levels[0].norm.weight[0] = 0.0
        plain.blocks[0].levels[0].norm.weight[0] = 0.0
    assert model.refresh_memory_plan() is False
    _assert_same_gradients(compiled, plain, x, tol=1e-4)
    assert not model._invertible_norms


@pytest.mark.parametrize("option", ["grad_checkpointing", "memory_efficient"])
def test_train_compile_with_memory_options(tmp_path, monkeypatch, option):
    calls: list[object] = []
    compile_eagerly = functools.partial(torch.compile, backend="aot_eager")

    def counted(model, *args, **kwargs):  # the engine must really compile (once), and only when asked
        calls.append(model)
        return compile_eagerly(model, *args, **kwargs)

    monkeypatch.setattr(torch, "compile", counted)
    kw = dict(epochs=1, subset=128, batch_size=32, model_args={"depth": 1}, threads=1, quiet=True, seed=3)
    plain = train(TrainConfig(output=str(tmp_path / "plain"), **kw))
    assert calls == []
    compiled = train(TrainConfig(output=str(tmp_path / "compiled"), compile=True, **{option: True}, **kw))
    assert len(calls) == 1
    assert compiled["test"]["loss"] == pytest.approx(plain["test"]["loss"], rel=1e-3)

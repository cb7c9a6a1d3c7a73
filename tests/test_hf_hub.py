"""One saved folder, three loaders (wavemixer, timm hf-hub:/local-dir:, PyTorchModelHubMixin); Hub calls offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import wavemixer
from wavemixer import WaveMix, WaveMixSegmentation
from wavemixer.hub import CONFIG_NAME, WEIGHTS_NAME, from_pretrained, push_to_hub, save_pretrained
from wavemixer.optional_deps import MissingDependencyError

huggingface_hub = pytest.importorskip("huggingface_hub")
hub_constants = pytest.importorskip("huggingface_hub.constants")

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Never the network: the Hub client answers from local caches or fails."""
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)


def _custom_classifier() -> WaveMix:
    # no registered variant: timm rebuilds it from model_args over the base variant
    torch.manual_seed(0)
    return WaveMix(num_classes=5, depth=2, final_dim=16, level=2, in_chans=1, stem="strided", stride=1).eval()


def _saved(tmp_path: Path, model=None, **kwargs) -> Path:
    model = model if model is not None else _custom_classifier()
    kwargs.setdefault("preprocessing", dict(mean=[0.5], std=[0.25], input_size=[1, 20, 20]))
    kwargs.setdefault("labels", list("abcde"))
    return save_pretrained(model, tmp_path / "saved", **kwargs)


def _hub_cache(tmp_path: Path, folder: Path, repo: str = "someone/wavemix-test") -> Path:
    """A Hugging Face cache holding ``folder`` as ``repo`` at COMMIT, with refs/main pointing there."""
    cache = tmp_path / "hf-cache"
    root = cache / f"models--{repo.replace('/', '--')}"
    shutil.copytree(folder, root / "snapshots" / COMMIT)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(COMMIT)
    return cache


def test_timm_loads_a_saved_folder_as_local_dir(tmp_path):
    timm = pytest.importorskip("timm")
    model = _custom_classifier()
    folder = _saved(tmp_path, model)
    loaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    x = torch.randn(2, 1, 20, 20)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    data = timm.data.resolve_model_data_config(loaded)
    assert (tuple(data["input_size"]), tuple(data["mean"]), tuple(data["std"])) == ((1, 20, 20), (0.5,), (0.25,))
    assert list(loaded.pretrained_cfg["label_names"]) == list("abcde")
    ours = from_pretrained(f"local-dir:{folder}")  # timm's spelling works here too
    torch.testing.assert_close(ours(x), model(x), rtol=0, atol=0)
    assert timm.data.resolve_model_data_config(ours)["input_size"] == (1, 20, 20)


def test_timm_loads_from_a_hub_cache(tmp_path):
    timm = pytest.importorskip("timm")
    model = _custom_classifier()
    cache = _hub_cache(tmp_path, _saved(tmp_path, model))
    loaded = timm.create_model("hf-hub:someone/wavemix-test", pretrained=True, cache_dir=cache).eval()
    x = torch.randn(1, 1, 20, 20)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_pytorch_model_hub_mixin_loads_a_saved_folder(tmp_path):
    class HubWaveMix(WaveMix, huggingface_hub.PyTorchModelHubMixin):
        pass

    model = _custom_classifier()
    loaded = HubWaveMix.from_pretrained(_saved(tmp_path, model)).eval()
    assert loaded.config == model.config
    x = torch.randn(1, 1, 20, 20)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_from_pretrained_reads_a_hub_cache_with_revision(tmp_path):
    seg = WaveMixSegmentation(num_classes=3, depth=1, final_dim=16, level=1).eval()
    cache = _hub_cache(tmp_path, save_pretrained(seg, tmp_path / "seg"))
    x = torch.randn(1, 3, 16, 16)
    for name, revision in (("hf-hub:someone/wavemix-test", None), (f"hf-hub:someone/wavemix-test@{COMMIT}", None),
                           ("hf-hub:someone/wavemix-test", COMMIT)):  # fmt: skip
        loaded = from_pretrained(name, revision=revision, cache_dir=cache, local_files_only=True)
        torch.testing.assert_close(loaded(x), seg(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="revision"):
        from_pretrained(f"hf-hub:someone/wavemix-test@{COMMIT}", revision="main", cache_dir=cache)


def test_hub_arguments_reach_snapshot_download(tmp_path, monkeypatch):
    folder = _saved(tmp_path)
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    from_pretrained("hf-hub:someone/repo@v1", cache_dir=tmp_path / "c", token="hf_secret", force_download=True)
    repo, kwargs = calls[0]
    assert repo == "someone/repo"
    assert kwargs["revision"] == "v1" and kwargs["token"] == "hf_secret" and kwargs["cache_dir"] == tmp_path / "c"
    assert kwargs["force_download"] and sorted(kwargs["allow_patterns"]) == sorted([CONFIG_NAME, WEIGHTS_NAME])


def test_push_to_hub_uploads_a_loadable_folder(tmp_path, monkeypatch):
    uploaded, created, tokens = tmp_path / "uploaded", [], []

    class FakeApi:
        def __init__(self, token=None):
            tokens.append(token)

        def create_repo(self, repo_id, **kwargs):
            created.append((repo_id, kwargs))

        def upload_folder(self, *, repo_id, folder_path, revision, commit_message, create_pr):
            shutil.copytree(folder_path, uploaded)
            return huggingface_hub.CommitInfo(
                commit_url=f"https://huggingface.co/{repo_id}/commit/{COMMIT}", commit_message=commit_message,
                commit_description="", oid=COMMIT, pr_url=None,
            )  # fmt: skip

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    model = _custom_classifier()
    url = push_to_hub(model, "someone/new-model", token="hf_secret", private=True, labels=list("abcde"))
    assert url.endswith(COMMIT) and tokens == ["hf_secret"]
    assert created == [("someone/new-model", dict(private=True, exist_ok=True))]
    assert {p.name for p in uploaded.iterdir()} == {CONFIG_NAME, WEIGHTS_NAME, "README.md"}
    assert "library_name: wavemixer" in (uploaded / "README.md").read_text()
    x = torch.randn(1, 1, 20, 20)
    torch.testing.assert_close(from_pretrained(uploaded)(x), model(x), rtol=0, atol=0)


def test_config_json_speaks_to_every_loader(tmp_path):
    config = json.loads((_saved(tmp_path, model_name=None) / CONFIG_NAME).read_text())
    assert config["architecture"] == "wavemix_192_16" and config["model_class"] == "WaveMix"
    assert config["model_args"] == config["config"] and config["depth"] == 2  # timm; the mixin (top level)
    assert config["pretrained_cfg"]["input_size"] == [1, 20, 20] and config["label_names"] == list("abcde")
    named = json.loads((_saved(tmp_path / "n", wavemixer.create_model("wavemix_lite_8_5_fmnist"),
                                model_name="wavemix_lite_8_5_fmnist") / CONFIG_NAME).read_text())  # fmt: skip
    assert named["architecture"] == "wavemix_lite_8_5_fmnist"


def test_packaged_format_1_folders_still_load():
    model = from_pretrained("wavemix_lite_8_10_mnist")
    assert model.pretrained_config["format_version"] == 1 and model.pretrained_cfg["input_size"] == (1, 28, 28)


def test_missing_huggingface_hub_names_the_extra(monkeypatch):
    import sys

    class NoHub:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "huggingface_hub":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    for name in [m for m in sys.modules if m.split(".")[0] == "huggingface_hub"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [NoHub(), *sys.meta_path])
    with pytest.raises(MissingDependencyError, match=r'pip install "wavemixer\[hub\]"'):
        from_pretrained("hf-hub:someone/repo")
    with pytest.raises(MissingDependencyError, match=r'pip install "wavemixer\[hub\]"'):
        push_to_hub(_custom_classifier(), "someone/repo")

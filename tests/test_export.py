"""Exported U-Nets give the model's output, load without segkit's class, fail clearly."""

from __future__ import annotations

import warnings

import pytest
import torch

from segkit import export
from segkit.export import ExportError
from segkit.unet import UNet


def small_model() -> UNet:
    torch.manual_seed(0)
    model = UNet(in_channels=3, num_classes=1, base=4, depth=2)
    with torch.no_grad():  # give BatchNorm running statistics that differ from a batch's
        model.train()
        model(torch.randn(4, 3, 24, 32) * 3 + 1)
    return model


@pytest.mark.parametrize("suffix", [".pt2", ".ts"])
def test_export_round_trip_gives_the_same_logits_and_restores_the_mode(tmp_path, suffix):
    model = small_model()
    x = torch.randn(1, 3, 24, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the export must not print TracerWarnings
        path = export.export_model(model, x, tmp_path / f"unet{suffix}")
        loaded = export.load_exported(path)
    assert path.is_file()
    assert model.training  # the mode the model came in with
    diff = export.verify_export(model, loaded, torch.randn(1, 3, 24, 32))
    assert diff < 1e-5
    assert model.training
    model.eval()
    with torch.no_grad():
        assert loaded(x).shape == (1, 1, 24, 32)


def test_loaded_torchscript_runs_without_the_unet_class(tmp_path):
    path = export.export_model(small_model(), torch.randn(1, 3, 24, 32), tmp_path / "u.ts")
    loaded = export.load_exported(path)
    assert not isinstance(loaded, UNet)
    assert isinstance(loaded, torch.jit.ScriptModule)


def test_verify_export_catches_a_model_exported_in_train_mode(tmp_path):
    model = small_model()
    x = torch.randn(1, 3, 24, 32)

    class TrainModeBN(torch.nn.Module):  # what a careless export records: batch statistics
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, y):
            self.inner.train()
            with torch.no_grad():
                out = self.inner(torch.cat([y, y.flip(-1)]))[:1]
            self.inner.eval()
            return out

    with pytest.raises(ExportError, match="train mode"):
        export.verify_export(model, TrainModeBN(small_model()), x)


def test_bad_suffix_and_missing_file_are_explained(tmp_path):
    with pytest.raises(ExportError, match=".pt2"):
        export.export_model(small_model(), torch.randn(1, 3, 24, 32), tmp_path / "u.onnx")
    with pytest.raises(ExportError, match="not found"):
        export.load_exported(tmp_path / "missing.pt2")


def test_onnx_is_optional():
    if export.onnx_available():
        pytest.skip("onnx and onnxruntime are installed here")
    with pytest.raises(ExportError, match="pip install onnx onnxruntime"):
        export.export_onnx(small_model(), torch.randn(1, 3, 24, 32), "never.onnx")


def test_onnx_round_trip(tmp_path):
    if not export.onnx_available():
        pytest.skip("the optional packages onnx and onnxruntime are not installed")
    model = small_model()
    x = torch.randn(1, 3, 24, 32)
    path = export.export_onnx(model, x, tmp_path / "u.onnx")
    assert export.onnx_max_abs_difference(model, path, x) < 1e-4
    assert model.training

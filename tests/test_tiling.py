"""Tiled prediction of large images (segkit.tiling, segkit.predict.predict_tiled)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segkit.predict import predict_mask
from segkit.tiling import sliding_window_logits, upsample_in_bands, window_starts
from segkit.unet import UNet


def test_windows_cover_the_image_and_end_at_its_edge():
    assert window_starts(200, 64, 0.25) == [0, 48, 96, 136]
    assert window_starts(64, 64, 0.25) == [0] and window_starts(30, 64, 0.5) == [0]


def test_one_window_is_exactly_the_whole_image_pass():
    torch.manual_seed(0)
    model = UNet(in_channels=1, num_classes=3, base=4, depth=2).eval()
    x = torch.randn(1, 1, 32, 48)
    with torch.no_grad():
        assert torch.equal(sliding_window_logits(model, x, (32, 48)), model(x))
        assert torch.equal(sliding_window_logits(model, x, (64, 64)), model(x))


def test_blending_of_overlapping_windows_reproduces_a_pixelwise_model():
    """A model that looks at one pixel at a time gives the same logits in any tiling: the
    weights of overlapping windows add up right everywhere, edges included."""
    torch.manual_seed(0)
    model = nn.Conv2d(3, 2, kernel_size=1).eval()
    x = torch.randn(1, 3, 101, 77)
    with torch.no_grad():
        tiled = sliding_window_logits(model, x, (32, 24), overlap=0.4, batch_size=3)
        assert torch.allclose(tiled, model(x), atol=1e-5)


def test_a_unet_tiled_agrees_with_the_whole_pass_and_sees_only_windows():
    torch.manual_seed(0)
    model = UNet(in_channels=3, num_classes=1, base=4, depth=2).eval()
    seen = []
    model.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape[-2:])))
    image = torch.rand(3, 192, 256)
    info = {"size": [64, 64], "mean": [0.5] * 3, "std": [0.25] * 3, "source_size": [64, 64]}
    x = (image[None] - 0.5) / 0.25
    with torch.no_grad():
        logits = model(x)[0, 0]
    cut = logits.median()  # an untrained model: threshold where half the pixels are "object"
    whole = (logits > cut).long().numpy()
    seen.clear()
    tiled = predict_mask(model, image, info, threshold=torch.sigmoid(cut).item())
    assert set(seen) == {(64, 64)}                                # larger than trained on
    assert tiled.shape == (192, 256) and 0.3 < tiled.mean() < 0.7
    assert (tiled == whole).mean() > 0.95
    seen.clear()
    small = predict_mask(model, image[:, :64, :64], info)        # as large as trained on
    assert seen == [(64, 64)]
    with torch.no_grad():
        assert (small == (model(x[..., :64, :64])[0, 0] > 0).long().numpy()).all()


def test_upsampling_in_bands_matches_interpolate():
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 30, 20)
    expected = F.interpolate(logits, size=(95, 61), mode="bilinear", align_corners=False)
    banded = upsample_in_bands(logits, (95, 61), band_pixels=500)
    assert (banded == expected[0].argmax(0)).float().mean() > 0.999
    binary = upsample_in_bands(logits[:, :1], (95, 61), band_pixels=300)
    assert (binary == (expected[0, 0] > 0).long()).float().mean() > 0.999

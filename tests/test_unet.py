"""Tests of segkit.unet: parameter counts, shapes for any input size, config, errors."""

from __future__ import annotations

import json

import pytest
import torch

from segkit.errors import DataError, SegkitError
from segkit.unet import (
    ChannelMismatchError,
    DoubleConv,
    Down,
    OutConv,
    UNet,
    Up,
    count_parameters,
    pad_or_crop_to,
)


@pytest.fixture(autouse=True)
def plain_cpu_kernels():
    """oneDNN builds a kernel for every new input shape (about 0.5 s each on 2 cores);
    these tests try many shapes on tiny models, where the plain kernels are faster."""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = enabled


def test_classic_unet_has_31_037_698_parameters():
    # milesial Pytorch-UNet, UNet(n_channels=3, n_classes=2, bilinear=False)
    assert count_parameters(UNet(in_channels=3, num_classes=2, base=64, depth=4)) == 31_037_698


def test_width_32_has_about_a_quarter_of_the_parameters():
    n = count_parameters(UNet(base=32))
    assert n == 7_763_074
    assert round(n / 1e6, 2) == 7.76


def test_bilinear_halves_the_deepest_layers_like_milesial():
    # milesial UNet(3, 2, bilinear=True): factor 2 on down4/up1..up3
    assert count_parameters(UNet(bilinear=True)) == 17_263_042


def test_count_parameters_trainable_only():
    model = UNet(base=4, depth=2)
    total = count_parameters(model)
    for p in model.inc.parameters():
        p.requires_grad_(False)
    frozen = sum(p.numel() for p in model.inc.parameters())
    assert frozen > 0
    assert count_parameters(model) == total - frozen
    assert count_parameters(model, trainable_only=False) == total


@pytest.mark.parametrize("depth", [3, 4, 5])
@pytest.mark.parametrize("bilinear", [False, True])
@pytest.mark.parametrize("size", [(101, 75), (64, 96), (33, 47)])
def test_output_has_the_input_size_for_any_size(depth, bilinear, size):
    model = UNet(in_channels=3, num_classes=3, base=4, depth=depth, bilinear=bilinear).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 3, *size)


@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("bilinear", [False, True])
def test_kernel_size_and_grayscale_input(kernel_size, bilinear):
    model = UNet(in_channels=1, num_classes=1, base=4, depth=4, kernel_size=kernel_size,
                 bilinear=bilinear).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 101, 75))
    assert out.shape == (1, 1, 101, 75)
    assert model.inc.double_conv[0].kernel_size == (kernel_size, kernel_size)


def test_bigger_kernel_has_more_parameters():
    n3 = count_parameters(UNet(base=8, kernel_size=3))
    n5 = count_parameters(UNet(base=8, kernel_size=5))
    assert n5 > 2 * n3  # 25 vs 9 weights per conv kernel


def test_smallest_input_is_two_to_the_depth():
    # documented minimum: H and W >= 2**depth (every MaxPool must leave a pixel)
    model = UNet(base=4, depth=4).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 16, 16)).shape == (1, 2, 16, 16)
        assert model(torch.randn(1, 3, 17, 16)).shape == (1, 2, 17, 16)
        assert UNet(base=4, depth=3).eval()(torch.randn(1, 3, 17, 9)).shape == (1, 2, 17, 9)
    with pytest.raises(DataError, match="at least 16; got 17x9"):
        model(torch.randn(1, 3, 17, 9))


def test_train_mode_single_image_with_1x1_bottleneck_explains_batchnorm():
    model = UNet(base=4, depth=3).train()
    with pytest.raises(DataError, match="BatchNorm needs more than one value"):
        model(torch.randn(1, 3, 8, 8))
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 2, 8, 8)  # a batch of two is fine


def test_wrong_input_channels_and_missing_batch_axis_are_explained():
    model = UNet(in_channels=3, base=4, depth=2)
    with pytest.raises(DataError, match="in_channels=3 but the images have 1 channels"):
        model(torch.randn(2, 1, 32, 32))
    with pytest.raises(DataError, match=r"unsqueeze\(0\)"):
        model(torch.randn(3, 32, 32))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="odd"):
        UNet(kernel_size=4)
    with pytest.raises(ValueError, match="depth"):
        UNet(depth=0)


def test_config_round_trip_rebuilds_the_same_model():
    model = UNet(in_channels=1, num_classes=4, base=8, depth=3, kernel_size=5, bilinear=True)
    assert model.config == {"in_channels": 1, "num_classes": 4, "base": 8, "depth": 3,
                            "kernel_size": 5, "bilinear": True}
    assert type(model.config) is dict
    json.dumps(model.config)  # plain values: storable in a checkpoint or a JSON file
    copy = UNet(**model.config)
    copy.load_state_dict(model.state_dict())  # same architecture: strict load works
    model.eval(), copy.eval()
    x = torch.randn(1, 1, 24, 40)
    with torch.no_grad():
        assert torch.equal(model(x), copy(x))


def test_default_config():
    assert UNet().config == {"in_channels": 3, "num_classes": 2, "base": 64, "depth": 4,
                             "kernel_size": 3, "bilinear": False}


def test_eval_mode_output_is_deterministic_and_independent_of_the_batch():
    torch.manual_seed(0)
    model = UNet(base=4, depth=3).eval()
    x = torch.randn(3, 3, 40, 30)
    with torch.no_grad():
        a, b = model(x), model(x)
        alone = model(x[:1])
    assert torch.equal(a, b)
    # eval-mode BatchNorm uses running statistics, so an image's output does not
    # depend on the other images of the batch (in train mode it would)
    torch.testing.assert_close(alone, a[:1])


def test_up_block_channel_mismatch_explains_the_skip_arithmetic():
    up = Up(16, 8)  # expects 16 channels below and 8 in the skip: 8 up + 8 skip = 16
    x1 = torch.randn(1, 16, 4, 4)
    skip = torch.randn(1, 4, 8, 8)  # wrong: 4 channels
    with pytest.raises(RuntimeError) as info:
        up(x1, skip)
    assert str(info.value) == (
        "Up block expected 16 channels after concatenating skip (4) and upsampled (8) maps "
        "but got 12; the conv after the concatenation must take skip + upsampled channels")
    assert isinstance(info.value, (ChannelMismatchError, SegkitError))


def test_up_block_wrong_deeper_map_channels():
    with pytest.raises(ChannelMismatchError, match="deeper map to have 16 channels"):
        Up(16, 8)(torch.randn(1, 32, 4, 4), torch.randn(1, 8, 8, 8))
    # bilinear: the upsampling keeps the channels, so the concat check catches it
    with pytest.raises(ChannelMismatchError, match=r"skip \(8\) and upsampled \(16\)"):
        Up(16, 8, bilinear=True)(torch.randn(1, 16, 4, 4), torch.randn(1, 8, 8, 8))


def test_up_block_pads_to_the_skip_size():
    up = Up(8, 4).eval()
    out = up(torch.randn(1, 8, 6, 4), torch.randn(1, 4, 13, 9))
    assert out.shape == (1, 4, 13, 9)


def test_blocks_shapes():
    x = torch.randn(2, 3, 20, 14)
    assert DoubleConv(3, 8).eval()(x).shape == (2, 8, 20, 14)
    assert DoubleConv(3, 8, mid_ch=5).double_conv[0].out_channels == 5
    assert Down(3, 8).eval()(x).shape == (2, 8, 10, 7)
    assert OutConv(3, 1)(x).shape == (2, 1, 20, 14)
    conv = DoubleConv(3, 8).double_conv[0]
    assert conv.bias is None and conv.padding == (1, 1)


def test_pad_or_crop_to():
    x = torch.ones(1, 1, 4, 5)
    padded = pad_or_crop_to(x, 7, 6)
    assert padded.shape == (1, 1, 7, 6)
    assert padded.sum() == 20  # zeros added, nothing lost
    assert padded[0, 0, 1:5, 0:5].sum() == 20  # 3 extra rows: 1 on top, 2 below
    cropped = pad_or_crop_to(torch.arange(36.).reshape(1, 1, 6, 6), 4, 4)
    assert cropped.shape == (1, 1, 4, 4)
    assert cropped[0, 0, 0, 0] == 7  # centre crop starts at row 1, column 1


def test_one_output_channel_for_binary():
    model = UNet(num_classes=1, base=4, depth=2).eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1, 32, 32)


def test_gradients_reach_the_first_layer():
    model = UNet(base=4, depth=2).train()
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    assert model.inc.double_conv[0].weight.grad is not None
    assert model.inc.double_conv[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("bilinear", [False, True])
def test_torchscript_compiles_the_unet_and_matches_it_at_any_size(bilinear):
    import warnings

    torch.manual_seed(0)
    model = UNet(3, 2, base=4, depth=3, bilinear=bilinear).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer PyTorch marks TorchScript deprecated
        scripted = torch.jit.script(model)
    for size in [(32, 48), (37, 45)]:  # the second needs the padding at every join
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            assert torch.equal(scripted(x), model(x))
    with pytest.raises(DataError, match="unsqueeze"):  # eager mode keeps its checks
        model(torch.randn(3, 32, 48))

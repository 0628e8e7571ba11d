"""Tests of segkit.shapes: the shape-tracing table of lesson 02."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from segkit.errors import DataError
from segkit.shapes import ShapeRow, format_shapes, print_shapes, trace_shapes
from segkit.unet import UNet, Up


@pytest.fixture(autouse=True)
def plain_cpu_kernels():
    """oneDNN builds a kernel for every new input shape (about 0.5 s each on 2 cores);
    these tests try many shapes on tiny models, where the plain kernels are faster."""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = enabled


def small_unet(**kw) -> UNet:
    torch.manual_seed(0)
    return UNet(**{"base": 8, "depth": 4, **kw})


def test_block_rows_in_call_order_with_shapes():
    rows = trace_shapes(small_unet(), (1, 3, 64, 96))
    assert [r.name for r in rows] == ["inc", "downs.0", "downs.1", "downs.2", "downs.3",
                                      "ups.0", "ups.1", "ups.2", "ups.3", "outc"]
    assert [r.block for r in rows] == ["DoubleConv"] + ["Down"] * 4 + ["Up"] * 4 + ["OutConv"]
    assert rows[0].input_shapes == ((1, 3, 64, 96),)
    assert rows[0].output_shape == (1, 8, 64, 96)
    assert rows[4].output_shape == (1, 128, 4, 6)  # the bottleneck
    assert rows[5].input_shapes == ((1, 128, 4, 6), (1, 64, 8, 12))  # deeper map + skip
    assert [r.out_channels for r in rows] == [8, 16, 32, 64, 128, 64, 32, 16, 8, 2]


def test_parameters_column_matches_the_modules():
    model = small_unet()
    rows = trace_shapes(model, (1, 3, 32, 32))
    assert rows[1].parameters == sum(p.numel() for p in model.downs[0].parameters())
    assert sum(r.parameters for r in rows) == sum(p.numel() for p in model.parameters())


def test_up_rows_show_the_skip_channel_arithmetic():
    rows = trace_shapes(small_unet(), (1, 3, 64, 64))
    ups = [r for r in rows if r.block == "Up"]
    assert [r.note for r in ups] == [
        "64 up + 64 skip = 128 -> 64",
        "32 up + 32 skip = 64 -> 32",
        "16 up + 16 skip = 32 -> 16",
        "8 up + 8 skip = 16 -> 8",
    ]
    assert all(r.note == "" for r in rows if r.block != "Up")


def test_bilinear_up_rows():
    rows = trace_shapes(small_unet(bilinear=True, depth=2), (1, 3, 32, 32))
    assert [r.note for r in rows if r.block == "Up"] == ["16 up + 16 skip = 32 -> 8",
                                                         "8 up + 8 skip = 16 -> 8"]


def test_odd_sizes_show_the_padding():
    rows = trace_shapes(small_unet(), (1, 3, 101, 75))
    ups = [r for r in rows if r.block == "Up"]
    assert ups[0].up_shape == (1, 64, 12, 8)
    assert ups[0].note == "64 up + 64 skip = 128 -> 64; up 12x8 padded to 12x9"
    assert ups[-1].note == "8 up + 8 skip = 16 -> 8; up 100x74 padded to 101x75"
    assert rows[-1].output_shape == (1, 2, 101, 75)


def test_modes_are_restored_and_no_gradients_are_kept():
    model = small_unet().train()
    model.inc.double_conv[1].eval()  # a mixed state (a frozen BatchNorm) must survive too
    trace_shapes(model, (1, 3, 16, 16))  # one 16x16 image: only possible in eval mode
    assert model.training and model.downs[0].training
    assert not model.inc.double_conv[1].training
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    trace_shapes(model, (1, 3, 16, 16))
    assert not any(m.training for m in model.modules())


def test_hooks_are_removed():
    model = small_unet()
    trace_shapes(model, (1, 3, 16, 16))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_hooks_are_removed_when_the_forward_fails():
    model = small_unet()
    with pytest.raises(DataError, match="in_channels=3"):
        trace_shapes(model, (1, 1, 16, 16))  # wrong channels
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert model.training


def test_all_modules():
    rows = trace_shapes(small_unet(depth=2), (1, 3, 16, 16), modules="all")
    names = [r.name for r in rows]
    assert names[:3] == ["inc", "inc.double_conv", "inc.double_conv.0"]
    assert "ups.0.up" in names and "outc.conv" in names
    conv = rows[names.index("inc.double_conv.0")]
    assert conv.block == "Conv2d" and conv.output_shape == (1, 8, 16, 16)


def test_example_tensor_and_single_block():
    up = Up(16, 8)
    rows = trace_shapes(up, (torch.zeros(1, 16, 4, 4), torch.zeros(1, 8, 9, 9)))
    assert len(rows) == 1 and rows[0].name == "(model)"
    assert rows[0].note == "8 up + 8 skip = 16 -> 8; up 8x8 padded to 9x9"
    rows = trace_shapes(small_unet(depth=2), torch.zeros(2, 3, 20, 20))
    assert rows[0].input_shapes == ((2, 3, 20, 20),)


def test_other_models_work_too():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())
    rows = trace_shapes(model, (1, 3, 5, 5))
    assert [(r.name, r.output_shape) for r in rows] == [("0", (1, 4, 3, 3)), ("1", (1, 36))]
    assert "channels" not in format_shapes(rows)  # no Up block, no channels column


def test_bad_arguments():
    with pytest.raises(ValueError, match="blocks"):
        trace_shapes(small_unet(), (1, 3, 16, 16), modules="some")
    with pytest.raises(TypeError, match="input_size"):
        trace_shapes(small_unet(), "1x3x16x16")


def test_table_text_is_exact_and_deterministic(capsys):
    torch.manual_seed(0)
    model = UNet(base=4, depth=2)
    text = format_shapes(trace_shapes(model, (1, 3, 17, 16)))
    assert text == format_shapes(trace_shapes(UNet(base=4, depth=2), (1, 3, 17, 16)))
    assert not re.search(r"0x[0-9a-f]{6,}", text)  # no memory addresses
    expected = "\n".join([
        "layer    block       input                          output          out ch  params  channels",
        "inc      DoubleConv  (1, 3, 17, 16)                 (1, 4, 17, 16)       4     268",
        "downs.0  Down        (1, 4, 17, 16)                 (1, 8, 8, 8)         8     896",
        "downs.1  Down        (1, 8, 8, 8)                   (1, 16, 4, 4)       16   3,520",
        "ups.0    Up          (1, 16, 4, 4) + (1, 8, 8, 8)   (1, 8, 8, 8)         8   2,280  8 up + 8 skip = 16 -> 8",
        "ups.1    Up          (1, 8, 8, 8) + (1, 4, 17, 16)  (1, 4, 17, 16)       4     580  4 up + 4 skip = 8 -> 4; up 16x16 padded to 17x16",
        "outc     OutConv     (1, 4, 17, 16)                 (1, 2, 17, 16)       2      10",
    ])
    assert text == expected
    print_shapes(model, (1, 3, 17, 16))
    assert capsys.readouterr().out == expected + "\ntotal parameters: 7,554\n"


def test_shape_row_output_shape_property():
    row = ShapeRow("x", "Conv2d", ((1, 3, 4, 4),), ((1, 8, 4, 4),), 8, 224)
    assert row.output_shape == (1, 8, 4, 4)
    assert ShapeRow("y", "Foo", ()).output_shape == ()

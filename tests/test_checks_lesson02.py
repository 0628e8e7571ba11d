"""Lesson 02's checks pass the solution, meet the stubs, and name each catalogued mistake.

The classes below are what students write: the solution (as in solutions/02_unet.ipynb),
the stubs the lesson holds, and wrong versions, each with the mistake its check must name.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from check_helpers import NOT_DONE, assert_hint, failure, register
from segkit import unet as ref
from segkit.checks import core, lesson02
from segkit.checks.core import ExerciseNotDone
from segkit.shapes import decoder_table, print_shapes
from segkit.viz import draw_unet


# --------------------------------------------------------------------------- the solution


class DoubleConv(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_ch, out_ch))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, in_ch // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_ch, out_ch)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        dy = x2.shape[2] - x1.shape[2]
        dx = x2.shape[3] - x1.shape[3]
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class UNet(nn.Module):
    def __init__(self, in_channels=3, num_classes=2, base=64, depth=4):
        super().__init__()
        ch = [base * 2 ** i for i in range(depth + 1)]
        self.inc = DoubleConv(in_channels, ch[0])
        self.downs = nn.ModuleList([Down(ch[i], ch[i + 1]) for i in range(depth)])
        self.ups = nn.ModuleList([Up(ch[i + 1], ch[i]) for i in reversed(range(depth))])
        self.outc = nn.Conv2d(ch[0], num_classes, kernel_size=1)

    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)


def test_the_solution_passes_every_check(capsys):
    state = torch.random.get_rng_state()
    lesson02.check_double_conv(DoubleConv)
    lesson02.check_down(Down)
    lesson02.check_up(Up)
    lesson02.check_unet(UNet)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" — ")[0] for line in out] == [
        "✅ DoubleConv keeps H and W and matches segkit's block",
        "✅ Down halves H and W and matches segkit's block",
        "✅ Up halves, pads, concatenates and matches segkit's block",
        "✅ UNet matches segkit's parameter counts and output shapes",
    ]
    assert "31,037,698 parameters at base 64" in out[3]
    assert all(core.passed(name) for name in ("DoubleConv", "Down", "Up", "UNet"))
    assert torch.equal(torch.random.get_rng_state(), state)  # the notebook's RNG is untouched


def test_segkit_blocks_pass_too():
    """The reference passes its own checks (what `checks.use` falls back on)."""
    lesson02.check_double_conv(ref.DoubleConv)
    lesson02.check_down(ref.Down)
    lesson02.check_up(ref.Up)
    lesson02.check_unet(ref.UNet)


def test_other_correct_choices_pass():
    class FunctionalRelu(nn.Module):  # F.relu in forward, padding="same", no inplace
        def __init__(self, in_ch, out_ch):
            super().__init__()
            self.c1 = nn.Conv2d(in_ch, out_ch, 3, padding="same", bias=False)
            self.b1 = nn.BatchNorm2d(out_ch)
            self.c2 = nn.Conv2d(out_ch, out_ch, 3, padding="same", bias=False)
            self.b2 = nn.BatchNorm2d(out_ch)

        def forward(self, x):
            return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))))

    class UpFirst(Up):  # concatenating [upsampled, skip] is as good
        def forward(self, x1, x2):
            x1 = self.up(x1)
            x1 = F.pad(x1, [0, x2.shape[3] - x1.shape[3], 0, x2.shape[2] - x1.shape[2]])
            return self.conv(torch.cat([x1, x2], dim=1))

    lesson02.check_double_conv(FunctionalRelu)
    assert "cat [x1, x2]" in str(lesson02.check_up(UpFirst).detail)


# --------------------------------------------------------------------------- stubs


def stub_class(name):
    class Stub(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()
            # YOUR CODE HERE
            raise NotImplementedError(f"Exercise {name}: write your code here")
    return Stub


@pytest.mark.parametrize("name, check", [
    ("DoubleConv", lesson02.check_double_conv),
    ("Down", lesson02.check_down),
    ("Up", lesson02.check_up),
    ("UNet", lesson02.check_unet),
])
def test_stubs_are_not_done(name, check):
    with pytest.raises(ExerciseNotDone, match=f"Exercise `{name}` is not done yet"):
        check(stub_class(name))


def test_a_stub_in_forward_is_not_done_either():
    class HalfDone(nn.Module):
        def __init__(self, in_ch, out_ch):
            super().__init__()
            self.up = nn.ConvTranspose2d(in_ch, in_ch // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_ch, out_ch)

        def forward(self, x1, x2):
            # YOUR CODE HERE
            raise NotImplementedError("Exercise Up: write your code here")

    with pytest.raises(ExerciseNotDone):
        lesson02.check_up(HalfDone)


def test_a_class_that_is_not_a_module_is_named():
    def double_conv(in_ch, out_ch):  # a function where a class was expected
        return torch.zeros(1)

    assert_hint(failure(lesson02.check_double_conv, double_conv), "not-a-module",
                "nn.Module", "super().__init__()")


# --------------------------------------------------------------------------- DoubleConv


def double_conv(in_ch, out_ch, *, padding=1, bias=False, bn=True, relu=(True, True),
                order="conv-bn-relu", second_out=None, mid=None):
    """A DoubleConv class with one thing changed."""
    mid = out_ch if mid is None else mid
    second_out = out_ch if second_out is None else second_out

    def layers(cin, cout, with_relu):
        conv = nn.Conv2d(cin, cout, 3, padding=padding, bias=bias)
        norm = [nn.BatchNorm2d(cout)] if bn else []
        act = [nn.ReLU()] if with_relu else []
        return [conv, *act, *norm] if order == "conv-relu-bn" else [conv, *norm, *act]

    return nn.Sequential(*layers(in_ch, mid, relu[0]), *layers(mid, second_out, relu[1]))


def variant(**changes):
    class Wrong(nn.Module):
        def __init__(self, in_ch, out_ch):
            super().__init__()
            self.net = double_conv(in_ch, out_ch, **changes)

        def forward(self, x):
            return self.net(x)
    return Wrong


DOUBLE_CONV_MISTAKES = [
    (dict(padding=0), "conv-no-padding", ["`padding`", "lost 4 rows"]),
    (dict(bn=False), "missing-batchnorm", ["BatchNorm2d", "0 nn.BatchNorm2d"]),
    (dict(relu=(False, False)), "missing-relu", ["ReLU", "after both BatchNorms"]),
    (dict(relu=(True, False)), "missing-relu", ["ReLU", "after the second BatchNorm"]),
    (dict(relu=(False, True)), "missing-relu", ["ReLU", "after the first BatchNorm"]),
    (dict(second_out=3), "wrong-out-channels", ["(2, 3, 17, 23)", "out_ch"]),
    (dict(bias=True), "conv-bias-before-batchnorm", ["`bias`", "16 of them"]),
    (dict(mid=3), "doubleconv-param-count", ["parameters", "Conv2d(3->3"]),
    (dict(order="conv-relu-bn"), "doubleconv-order", ["conv -> BatchNorm -> ReLU"]),
]


@pytest.mark.parametrize("changes, mistake, words", DOUBLE_CONV_MISTAKES)
def test_double_conv_mistakes(changes, mistake, words):
    assert_hint(failure(lesson02.check_double_conv, variant(**changes)), mistake, *words)


def test_double_conv_second_conv_built_from_in_ch_crashes_with_the_line():
    class Wrong(nn.Module):
        def __init__(self, in_ch, out_ch):
            super().__init__()
            self.c1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
            self.c2 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
            self.b1, self.b2 = nn.BatchNorm2d(out_ch), nn.BatchNorm2d(out_ch)

        def forward(self, x):
            return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))))

    error = failure(lesson02.check_double_conv, Wrong)
    assert error.mistake == "crashed"
    assert "to have 3 channels, but got 8 channels" in error.hint
    assert "self.c2" in error.hint


# --------------------------------------------------------------------------- Down


class DownNoPool(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = DoubleConv(in_ch, out_ch)

    def forward(self, x):
        return self.conv(x)


class DownConvFirst(DownNoPool):
    def forward(self, x):
        return F.max_pool2d(self.conv(x), 2)


class DownCeil(DownNoPool):
    def forward(self, x):
        return self.conv(F.max_pool2d(x, 2, ceil_mode=True))


class DownAvg(DownNoPool):
    def forward(self, x):
        return self.conv(F.avg_pool2d(x, 2))


class DownWrongChannels(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.net = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_ch, in_ch))

    def forward(self, x):
        return self.net(x)


class DownStrided(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_ch, in_ch, 2, stride=2), DoubleConv(in_ch, out_ch))

    def forward(self, x):
        return self.net(x)


DOWN_MISTAKES = [
    (DownNoPool, "down-no-pool", ["max pooling", "17x23"]),
    (DownCeil, "down-wrong-size", ["rounds down", "(2, 8, 9, 12)"]),
    (DownWrongChannels, "wrong-out-channels", ["out_ch", "(2, 4, 8, 11)"]),
    (DownStrided, "down-param-count", ["parameters", "max pooling"]),
    (DownConvFirst, "conv-before-pool", ["pool first"]),
    (DownAvg, "down-mismatch", ["max pooling"]),
]


@pytest.mark.parametrize("student, mistake, words", DOWN_MISTAKES)
def test_down_mistakes(student, mistake, words):
    assert_hint(failure(lesson02.check_down, student), mistake, *words)


# --------------------------------------------------------------------------- Up


def up_variant(*, up_out=None, up_in=None, conv_in=None, pad="milesial", upsample="tconv",
               kernel=2, stride=2):
    class Wrong(nn.Module):
        def __init__(self, in_ch, out_ch):
            super().__init__()
            if upsample == "tconv":
                self.up = nn.ConvTranspose2d(in_ch if up_in is None else up_in(in_ch, out_ch),
                                             in_ch // 2 if up_out is None else up_out(in_ch),
                                             kernel_size=kernel, stride=stride)
            else:
                self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_ch if conv_in is None else conv_in(in_ch, out_ch), out_ch)

        def forward(self, x1, x2):
            x1 = self.up(x1)
            dy, dx = x2.shape[2] - x1.shape[2], x2.shape[3] - x1.shape[3]
            if pad == "milesial":
                x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
            elif pad == "top-left":
                x1 = F.pad(x1, [dx - dx // 2, dx // 2, dy - dy // 2, dy // 2])
            elif pad == "crop-skip":
                x2 = x2[:, :, :x1.shape[2], :x1.shape[3]]
            elif pad == "resize":
                x1 = F.interpolate(x1, size=x2.shape[2:], mode="nearest")
            elif pad == "swapped":  # the height's amounts where the width's go
                x1 = F.pad(x1, [dy // 2, dy - dy // 2, dx // 2, dx - dx // 2])
            elif pad == "swapped-tuple":
                x1 = F.pad(x1, (0, dy, 0, dx))
            return self.conv(torch.cat([x2, x1], dim=1))
    return Wrong


UP_MISTAKES = [
    # the sea/sky project's mistake: the conv after torch.cat built for the channels before it
    (up_variant(conv_in=lambda i, o: i // 2), "up-conv-in-channels",
     ["8 (skip) + 8 (upsampled) = 16", "build it for that"]),
    (up_variant(conv_in=lambda i, o: o * 3), "up-conv-in-channels", ["takes 24 channels"]),
    (up_variant(pad="none"), "up-no-pad-to-skip", ["Sizes of tensors must match", "F.pad"]),
    (up_variant(pad="crop-skip"), "up-no-pad-to-skip", ["(2, 8, 10, 8)", "skip's size"]),
    (up_variant(up_out=lambda i: i), "up-not-halving-channels", ["in_ch // 2", "16 // 2 = 8"]),
    (up_variant(upsample="bilinear"), "up-not-halving-channels", ["nn.Upsample keeps"]),
    (up_variant(up_in=lambda i, o: 2 * i), "up-transposed-in-channels", ["takes 32 channels"]),
    (up_variant(kernel=3, stride=1), "up-wrong-upsample", ["(2, 8, 6, 8)", "stride 2"]),
    (up_variant(pad="top-left"), "up-pad-differs", ["bottom", "right"]),
    (up_variant(pad="resize"), "up-pad-differs", ["F.pad"]),
    (up_variant(pad="swapped"), "up-pad-order", ["dy = 1, dx = 0", "LAST dimension"]),
    (up_variant(pad="swapped-tuple"), "up-pad-order", ["width"]),
]


@pytest.mark.parametrize("student, mistake, words", UP_MISTAKES)
def test_up_mistakes(student, mistake, words):
    assert_hint(failure(lesson02.check_up, student), mistake, *words)


# --------------------------------------------------------------------------- UNet


class UNetDepthPlusOne(UNet):
    def __init__(self, in_channels=3, num_classes=2, base=64, depth=4):
        super().__init__(in_channels, num_classes, base, depth + 1)


class UNetFixedBase(UNet):
    def __init__(self, in_channels=3, num_classes=2, base=64, depth=4):
        super().__init__(in_channels, num_classes, 64, depth)


class UNetOutBias(UNet):
    def __init__(self, in_channels=3, num_classes=2, base=64, depth=4):
        super().__init__(in_channels, num_classes, base, depth)
        self.outc = nn.Conv2d(base, num_classes, kernel_size=3, padding=1)


class UNetSigmoid(UNet):  # returns probabilities: the same shape, different values
    def forward(self, x):
        return torch.sigmoid(super().forward(x))


class UNetFlat(UNet):  # one value per image instead of per pixel
    def forward(self, x):
        return super().forward(x).mean(dim=(2, 3))


class UpNoPad(Up):
    def forward(self, x1, x2):
        x1 = self.up(x1)
        return self.conv(torch.cat([x2, x1], dim=1))


class UNetNoPad(UNet):
    """Built with an Up that does not pad: fine on 64x96, broken on 101x75."""

    def __init__(self, in_channels=3, num_classes=2, base=64, depth=4):
        super().__init__(in_channels, num_classes, base, depth)
        ch = [base * 2 ** i for i in range(depth + 1)]
        self.ups = nn.ModuleList([UpNoPad(ch[i + 1], ch[i]) for i in reversed(range(depth))])


class UNetNoSkips(UNet):
    """Gives every Up its own upsampled map as the 'skip': the right shapes, no skips."""

    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            skip = skips.pop()
            x = up(x, torch.zeros_like(skip))
        return self.outc(x)


UNET_MISTAKES = [
    (UNetDepthPlusOne, "unet-depth-off-by-one", ["depth=5", "Down blocks"]),
    (UNetFixedBase, "unet-param-count", ["UNet(in_channels=3, num_classes=1, base=16",
                                         "segkit's: inc"]),
    (UNetOutBias, "unet-param-count", ["1x1"]),
    (UNetFlat, "unet-output-shape", ["into (2, 1),", "one logit per class and pixel"]),
    (UNetNoPad, "unet-odd-size", ["101 -> 50 -> 25 -> 12 -> 6", "Sizes of tensors"]),
    (UNetSigmoid, "unet-wiring", ["differs from segkit's", "no sigmoid"]),
    (UNetNoSkips, "unet-wiring", ["skip"]),
]


@pytest.mark.parametrize("student, mistake, words", UNET_MISTAKES)
def test_unet_mistakes(student, mistake, words):
    assert_hint(failure(lesson02.check_unet, student), mistake, *words)


# ------------------------------------------- pictures: segkit.shapes / segkit.viz on the lesson's classes


def test_decoder_table_shows_the_skip_arithmetic_of_both_models():
    for model in (UNet(3, 1, 16, 4), ref.UNet(3, 1, 16, 4)):
        table = decoder_table(model, (1, 3, 101, 75)).splitlines()
        assert table[0].split()[:3] == ["layer", "from", "below"]
        assert table[1].split()[:8] == ["ups.0", "256", "128", "128", "128", "+", "128", "="]
        assert table[1].endswith("12x8 -> 12x9 (padded)")
        assert table[4].endswith("100x74 -> 101x75 (padded)")


def test_print_shapes_notes_the_skip_arithmetic_of_a_students_up_block(capsys):
    print_shapes(UNet(3, 1, 16, 4), (1, 3, 101, 75))
    lines = capsys.readouterr().out.splitlines()
    up0 = next(line for line in lines if line.startswith("ups.0"))
    assert up0.endswith("128 up + 128 skip = 256 -> 128; up 12x8 padded to 12x9")


def test_draw_unet_draws_every_block():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = draw_unet(UNet(3, 1, 8, 3), (1, 3, 32, 48))
    labels = [t.get_text() for t in ax.texts]
    assert "8" in labels and "64" in labels and "32+32→32" in labels and "8+8→8" in labels
    assert "32x48" in labels and "4x6" in labels
    plt.close(ax.figure)


# --------------------------------------------------------------- layers PyTorch cannot see


class DoubleConvInList(nn.Module):
    """The layers in a plain Python list: they run, but the block has no parameters."""

    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.layers = [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch),
                       nn.ReLU(), nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
                       nn.BatchNorm2d(out_ch), nn.ReLU()]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class DoubleConvInDict(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.parts = {"conv1": nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
                      "bn1": nn.BatchNorm2d(out_ch),
                      "conv2": nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
                      "bn2": nn.BatchNorm2d(out_ch)}

    def forward(self, x):
        p = self.parts
        return F.relu(p["bn2"](p["conv2"](F.relu(p["bn1"](p["conv1"](x))))))


class DownInTuple(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.steps = (nn.MaxPool2d(2), DoubleConv(in_ch, out_ch))

    def forward(self, x):
        return self.steps[1](self.steps[0](x))


class UpInList(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.parts = [nn.ConvTranspose2d(in_ch, in_ch // 2, 2, stride=2), DoubleConv(in_ch, out_ch)]

    def forward(self, x1, x2):
        x1 = self.parts[0](x1)
        dy, dx = x2.shape[2] - x1.shape[2], x2.shape[3] - x1.shape[3]
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.parts[1](torch.cat([x2, x1], dim=1))


class UNetDownsInList(UNet):
    """Builds the Downs in a plain list: the encoder's weights are lost to PyTorch."""

    def __init__(self, in_channels=3, num_classes=2, base=64, depth=4):
        nn.Module.__init__(self)
        ch = [base * 2 ** i for i in range(depth + 1)]
        self.inc = DoubleConv(in_channels, ch[0])
        self.downs = [Down(ch[i], ch[i + 1]) for i in range(depth)]
        self.ups = nn.ModuleList([Up(ch[i + 1], ch[i]) for i in reversed(range(depth))])
        self.outc = nn.Conv2d(ch[0], num_classes, kernel_size=1)


class UNetBlocksInList(UNet):
    def __init__(self, in_channels=3, num_classes=2, base=64, depth=4):
        nn.Module.__init__(self)
        ch = [base * 2 ** i for i in range(depth + 1)]
        self.inc = DoubleConv(in_channels, ch[0])
        self.downs = nn.ModuleList([Down(ch[i], ch[i + 1]) for i in range(depth)])
        self.ups = []
        for i in reversed(range(depth)):
            self.ups.append(Up(ch[i + 1], ch[i]))
        self.outc = nn.Conv2d(ch[0], num_classes, kernel_size=1)


class DoubleConvWithAlias(DoubleConv):
    """A list that only names registered layers again is fine."""

    def __init__(self, in_ch, out_ch):
        super().__init__(in_ch, out_ch)
        self.convs = [self.double_conv[0], self.double_conv[3]]


REGISTERED = [(DoubleConvInList, lesson02.check_double_conv),
              (DoubleConvInDict, lesson02.check_double_conv),
              (DownInTuple, lesson02.check_down), (UpInList, lesson02.check_up),
              (UNetDownsInList, lesson02.check_unet), (UNetBlocksInList, lesson02.check_unet)]


@pytest.mark.parametrize("student, check", REGISTERED, ids=[s.__name__ for s, _ in REGISTERED])
def test_layers_in_a_plain_container_are_said_to_be_unregistered(student, check):
    error = failure(check, student)
    assert_hint(error, "layers-not-registered", "plain Python", "self.", "nn.ModuleList",
                ".parameters()")
    assert "BatchNorm2d after each conv" not in error.hint


def test_a_list_naming_registered_layers_again_is_fine():
    lesson02.check_double_conv(DoubleConvWithAlias)


def test_up_pads_height_and_width_each_their_own_amount():
    """The issue's case: dy and dx swapped in F.pad passes when dy == dx (the worked
    example's skips) and fails on every draw, where one of them is odd and the other even."""
    for seed in range(5):
        error = failure(lambda s: lesson02.check_up(s, seed=seed), up_variant(pad="swapped"))
        assert error.mistake == "up-pad-order" and error.seed == seed


# --------------------------------------------------------------------------- the corpus


class HalfDoneUp(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, in_ch // 2, kernel_size=2, stride=2)

    def forward(self, x1, x2):
        raise NotImplementedError("Exercise Up: write your code here")


class DoubleConvSecondFromInCh(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.c1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.c2 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.b1, self.b2 = nn.BatchNorm2d(out_ch), nn.BatchNorm2d(out_ch)

    def forward(self, x):
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))))


_CHECKS = {"DoubleConv": lesson02.check_double_conv, "Down": lesson02.check_down,
           "Up": lesson02.check_up, "UNet": lesson02.check_unet}
for _cls, _ref in [(DoubleConv, ref.DoubleConv), (Down, ref.Down), (Up, ref.Up),
                   (UNet, ref.UNet)]:
    register(_CHECKS[_cls.__name__], _cls, None, f"solution_{_cls.__name__}")
    register(_CHECKS[_cls.__name__], _ref, None, f"segkit_{_cls.__name__}")
    register(_CHECKS[_cls.__name__], stub_class(_cls.__name__), NOT_DONE,
             f"stub_{_cls.__name__}")
register(lesson02.check_double_conv, DoubleConvWithAlias, None)
register(lesson02.check_up, HalfDoneUp, NOT_DONE)
register(lesson02.check_double_conv, DoubleConvSecondFromInCh, "crashed")
for _i, (_changes, _mistake, _) in enumerate(DOUBLE_CONV_MISTAKES):
    register(lesson02.check_double_conv, variant(**_changes), _mistake, f"double_conv_{_i}")
for _student, _mistake, _ in DOWN_MISTAKES:
    register(lesson02.check_down, _student, _mistake)
for _i, (_student, _mistake, _) in enumerate(UP_MISTAKES):
    register(lesson02.check_up, _student, _mistake, f"up_{_i}")
for _student, _mistake, _ in UNET_MISTAKES:
    register(lesson02.check_unet, _student, _mistake)
for _student, _check in REGISTERED:
    register(_check, _student, "layers-not-registered")

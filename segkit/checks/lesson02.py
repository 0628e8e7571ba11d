"""Checks of lesson 02 (the U-Net), and the picture of the U the lesson draws.

The student builds the four blocks of ``segkit.unet`` and these checks compare them with
segkit's reference blocks, on shapes and on outputs with known (copied) weights:

========================  ==================================================================
check                     mistakes it names (``CheckFailed.mistake``)
========================  ==================================================================
``check_double_conv``     ``conv-no-padding``, ``missing-batchnorm``, ``missing-relu``,
                          ``wrong-out-channels``, ``conv-bias-before-batchnorm``,
                          ``doubleconv-param-count``, ``doubleconv-order``
``check_down``            ``down-no-pool``, ``down-wrong-size``, ``wrong-out-channels``,
                          ``down-param-count``, ``conv-before-pool``, ``down-mismatch``
``check_up``              ``up-not-halving-channels``, ``up-transposed-in-channels``,
                          ``up-conv-in-channels`` (the decoder conv built for the wrong
                          number of channels after the concatenation, the sea/sky
                          project's mistake),
                          ``up-wrong-upsample``, ``up-no-pad-to-skip``, ``wrong-out-channels``,
                          ``up-pad-differs``, ``up-mismatch``
``check_unet``            ``unet-depth-off-by-one``, ``unet-param-count``,
                          ``unet-output-shape``, ``unet-odd-size``, ``unet-wiring``
========================  ==================================================================

Every check also names ``not-a-module`` (the class builds something that is not an
``nn.Module``); crashes are reported by ``run_check`` (``crashed``).

"Known weights": the check builds segkit's block and the student's block for the same
configuration, gives segkit's block random weights and BatchNorm statistics, copies them
into the student's block (convolutions, transposed convolutions and BatchNorms paired in
the order ``forward`` runs them, whatever their names or the order of ``__init__``) and
compares the outputs in eval mode. Where the two blocks
cannot be paired (a different number or shape of layers) the shape checks decide alone.

Every check works on blocks it builds itself, inside ``torch.random.fork_rng``: the
notebook's objects and its random numbers are left as they were.

The lesson's pictures are in segkit proper: ``segkit.shapes.decoder_table`` and
``segkit.viz.draw_unet``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from segkit.checks.core import check, close, expect, expect_equal, fail, shape_of, shape_text
from segkit.unet import DoubleConv as RefDoubleConv
from segkit.unet import Down as RefDown
from segkit.unet import UNet as RefUNet
from segkit.unet import Up as RefUp
from segkit.unet import count_parameters

__all__ = ["check_double_conv", "check_down", "check_up", "check_unet"]

_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d)


# --------------------------------------------------------------------------- helpers


def _layers(module: nn.Module, kind: type | tuple[type, ...] = _LAYERS) -> list[nn.Module]:
    """The layers of ``kind`` inside ``module``, in the order they were created."""
    return [m for m in module.modules() if isinstance(m, kind)]


def _count(module: nn.Module) -> int:
    return count_parameters(module, trainable_only=False)


def _run(fn: Callable[..., Any], *args: Any) -> tuple[Any, RuntimeError | None]:
    """``fn(*args)``, or the RuntimeError it raised (a stub's NotImplementedError goes on)."""
    try:
        return fn(*args), None
    except NotImplementedError:
        raise
    except RuntimeError as exc:
        return None, exc


def _randomize(model: nn.Module) -> None:
    """Random weights and BatchNorm statistics (under the caller's seed)."""
    with torch.no_grad():
        for m in _layers(model):
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
            else:
                fan_in = m.weight[0].numel() if isinstance(m, nn.Conv2d) else \
                    m.weight.shape[0] * m.weight[0, 0].numel()
                m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1)


def _run_order(module: nn.Module, *inputs: torch.Tensor) -> list[nn.Module] | None:
    """The conv / transposed conv / BatchNorm layers of ``module`` in the order ``forward``
    runs them (eval mode, no gradients), or None when ``forward`` raises or runs a layer
    twice. Attribute names and the order of ``__init__`` do not matter, only what runs."""
    seen: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(m)) for m in _layers(module)]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(*inputs)
    except NotImplementedError:
        raise
    except Exception:  # noqa: BLE001 - a forward that fails is judged by the shape checks
        return None
    finally:
        for hook in hooks:
            hook.remove()
        module.train(was_training)
    if len(set(map(id, seen))) != len(seen) or len(seen) != len(_layers(module)):
        return None  # a layer used twice, or one never used: no one-to-one pairing
    return seen


def _pairable(a: nn.Module, b: nn.Module) -> bool:
    """Can ``a``'s weights be copied into ``b`` and mean the same thing?"""
    if type(a) is not type(b) or b.weight is None or a.weight.shape != b.weight.shape:
        return False
    if isinstance(a, nn.BatchNorm2d):
        return b.running_mean is not None and abs(a.eps - b.eps) <= 1e-12
    return (a.stride == b.stride and (a.padding == b.padding or b.padding == "same")
            and (a.bias is None or b.bias is not None))


def _copy_weights(ref: nn.Module, student: nn.Module, *inputs: torch.Tensor) -> bool:
    """Copy ``ref``'s conv / transposed conv / BatchNorm weights into ``student``'s.

    Layers are paired in the order their ``forward`` runs them on ``inputs``. A conv bias
    the student has and ``ref`` lacks is set to zero. Returns False (and copies nothing)
    when the layers don't pair.
    """
    src, dst = _run_order(ref, *inputs), _run_order(student, *inputs)
    if src is None or dst is None or len(src) != len(dst):
        return False
    if not all(_pairable(a, b) for a, b in zip(src, dst)):
        return False
    with torch.no_grad():
        for a, b in zip(src, dst):
            b.weight.copy_(a.weight)
            if isinstance(a, nn.BatchNorm2d):
                b.bias.copy_(a.bias)
                b.running_mean.copy_(a.running_mean)
                b.running_var.copy_(a.running_var)
            elif b.bias is not None:
                b.bias.copy_(a.bias if a.bias is not None else torch.zeros_like(b.bias))
    return True


def _same(a: torch.Tensor | None, b: torch.Tensor) -> bool:
    """Same shape and values, within a tolerance scaled to the values' size."""
    tol = 1e-4 * max(1.0, float(b.abs().max()))
    return isinstance(a, torch.Tensor) and close(a, b, abs_tol=tol)


def _build(cls: Any, *args: Any, what: str) -> nn.Module:
    block = cls(*args)
    expect(isinstance(block, nn.Module), f"{what} is a {type(block).__name__}, not an nn.Module",
           mistake="not-a-module")
    return block


def _param_text(module: nn.Module) -> str:
    """'conv 3->8 3x3 (216) + BN 8 (16) + ...' for a hint."""
    parts = []
    for m in _layers(module):
        n = sum(p.numel() for p in m.parameters())
        if isinstance(m, nn.BatchNorm2d):
            parts.append(f"BatchNorm2d({m.num_features}) {n:,}")
        else:
            name = "ConvTranspose2d" if isinstance(m, nn.ConvTranspose2d) else "Conv2d"
            k = "x".join(str(s) for s in m.kernel_size)
            bias = "" if m.bias is None else " +bias"
            parts.append(f"{name}({m.in_channels}->{m.out_channels}, {k}{bias}) {n:,}")
    return " + ".join(parts)


# --------------------------------------------------------------------------- DoubleConv

_DC_HINT = ("DoubleConv is nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False) -> "
            "nn.BatchNorm2d(out_ch) -> nn.ReLU, then nn.Conv2d(out_ch, out_ch, 3, padding=1, "
            "bias=False) -> nn.BatchNorm2d(out_ch) -> nn.ReLU.")


def _double_conv_variants(ref: RefDoubleConv, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of the usual wrong orders, with ``ref``'s weights (eval mode)."""
    c1, b1, _, c2, b2, _ = ref.double_conv
    return {
        "no-middle-relu": F.relu(b2(c2(b1(c1(x))))),
        "no-last-relu": b2(c2(F.relu(b1(c1(x))))),
        "no-relu": b2(c2(b1(c1(x)))),
        "relu-before-bn": b2(F.relu(c2(b1(F.relu(c1(x)))))),
    }


def _expect_double_conv_output(block: nn.Module, ref: nn.Module, x: torch.Tensor) -> None:
    """With ``ref``'s weights copied in, ``block`` must compute what ``ref`` computes; if
    not, which of the usual wrong orders does it compute?"""
    ref.eval()
    block.eval()
    with torch.no_grad():
        got = block(x)
        if _same(got, ref(x)):
            return
        which = next((k for k, v in _double_conv_variants(ref, x).items() if _same(got, v)),
                     None)
    differs = "with segkit's weights copied in, your DoubleConv's output differs from segkit's"
    if which in ("no-middle-relu", "no-last-relu", "no-relu") or (
            which is None and float(got.min()) < 0):
        where = {"no-middle-relu": "after the first BatchNorm",
                 "no-last-relu": "after the second BatchNorm",
                 "no-relu": "after both BatchNorms"}.get(which, "somewhere")
        fail(f"{differs}: a ReLU is missing {where}", mistake="missing-relu")
    if which == "relu-before-bn":
        fail(f"{differs}: the ReLU comes before the BatchNorm", mistake="doubleconv-order",
             hint="the order is conv -> BatchNorm -> ReLU (twice), as in milesial's "
                  "Pytorch-UNet. " + _DC_HINT)
    fail(differs, mistake="doubleconv-order",
         hint="check the order of the layers and that forward uses each once. " + _DC_HINT)


@check("DoubleConv", "DoubleConv keeps H and W and matches segkit's block", fixed_rng=True)
def check_double_conv(DoubleConv: Any) -> Any:  # noqa: N803 - the student's class
    """DoubleConv(3, 8) and DoubleConv(8, 8) against ``segkit.unet.DoubleConv``."""
    block = _build(DoubleConv, 3, 8, what="DoubleConv(3, 8)")
    x = torch.randn(2, 3, 17, 23)
    bns = _layers(block, nn.BatchNorm2d)
    convs = _layers(block, nn.Conv2d)
    expect(len(bns) == 2,
           f"DoubleConv(3, 8) has {len(bns)} nn.BatchNorm2d layers, expected 2 (one after "
           "each conv)", mistake="missing-batchnorm")
    expect(len(convs) == 2,
           f"DoubleConv(3, 8) has {len(convs)} nn.Conv2d layers, expected 2",
           mistake="doubleconv-param-count")
    out = block(x)
    shape = shape_of(out)
    if shape is not None and len(shape) == 4 and shape[2:] != (17, 23):
        lost = 17 - shape[2]
        fail(f"DoubleConv(3, 8) turned a (2, 3, 17, 23) input into {shape_text(shape)}: the map "
             f"lost {lost} rows and {23 - shape[3]} columns",
             mistake="conv-no-padding")
    expect(shape == (2, 8, 17, 23),
           f"DoubleConv(3, 8) turned a (2, 3, 17, 23) input into {shape_text(shape)}, expected "
           "(2, 8, 17, 23)", mistake="wrong-out-channels")
    ref = RefDoubleConv(3, 8)
    got, want = _count(block), _count(ref)
    if got != want:
        with_bias = sum(c.out_channels for c in convs if c.bias is not None)
        if got - want == with_bias and with_bias:
            fail(f"DoubleConv(3, 8) has {got:,} parameters, expected {want:,}: "
                 f"{with_bias} of them are conv biases",
                 mistake="conv-bias-before-batchnorm")
        fail(f"DoubleConv(3, 8) has {got:,} parameters, expected {want:,}",
             mistake="doubleconv-param-count",
             hint=f"yours: {_param_text(block)}; expected: {_param_text(ref)}. "
                  + _DC_HINT)
    _randomize(ref)
    expect(_copy_weights(ref, block, x),
           "could not pair the layers of your DoubleConv with segkit's "
           f"(yours: {_param_text(block)})", mistake="doubleconv-order")
    _expect_double_conv_output(block, ref, x)
    square = _build(DoubleConv, 8, 8, what="DoubleConv(8, 8)")
    expect_equal(_count(square), _count(RefDoubleConv(8, 8)),
                 name="the parameter count of DoubleConv(8, 8)",
                 mistake="doubleconv-param-count")
    return f"{want:,} parameters in DoubleConv(3, 8); output (2, 8, 17, 23) keeps 17x23"


# --------------------------------------------------------------------------- Down

_DOWN_HINT = "Down is nn.MaxPool2d(2) followed by DoubleConv(in_ch, out_ch)."


@check("Down", "Down halves H and W and matches segkit's block", fixed_rng=True)
def check_down(Down: Any) -> Any:  # noqa: N803
    """Down(4, 8) on a 17x23 map against ``segkit.unet.Down``."""
    block = _build(Down, 4, 8, what="Down(4, 8)")
    x = torch.randn(2, 4, 17, 23)
    shape = shape_of(block(x))
    if shape is not None and len(shape) == 4 and shape[2:] == (17, 23):
        fail("Down(4, 8) kept the 17x23 size of its input: nothing halves it",
             mistake="down-no-pool")
    if shape is not None and len(shape) == 4 and shape[2:] != (8, 11):
        fail(f"Down(4, 8) turned a (2, 4, 17, 23) input into {shape_text(shape)}; the size "
             "should be 17 // 2 = 8 by 23 // 2 = 11",
             mistake="down-wrong-size")
    expect(shape == (2, 8, 8, 11),
           f"Down(4, 8) turned a (2, 4, 17, 23) input into {shape_text(shape)}, expected "
           "(2, 8, 8, 11)", mistake="wrong-out-channels",
           hint="the DoubleConv inside takes in_ch and gives out_ch channels. " + _DOWN_HINT)
    ref = RefDown(4, 8)
    got, want = _count(block), _count(ref)
    expect(got == want, f"Down(4, 8) has {got:,} parameters, expected {want:,}",
           mistake="down-param-count",
           hint=f"yours: {_param_text(block)}; expected: {_param_text(ref)}. The pooling "
                "has no parameters; everything is in the DoubleConv. " + _DOWN_HINT)
    _randomize(ref)
    expect(_copy_weights(ref, block, x), "could not pair the layers of your Down with "
           f"segkit's (yours: {_param_text(block)})", mistake="down-mismatch")
    ref.eval()
    block.eval()
    with torch.no_grad():
        got_out = block(x)
        if not _same(got_out, ref(x)):
            conv_first = F.max_pool2d(ref.maxpool_conv[1](x), 2)
            if _same(got_out, conv_first):
                fail("with segkit's weights copied in, your Down gives what DoubleConv "
                     "then pooling gives", mistake="conv-before-pool")
            fail("with segkit's weights copied in, your Down's output differs from "
                 "segkit's", mistake="down-mismatch",
                 hint="use max pooling (not average pooling or a strided conv). "
                      + _DOWN_HINT)
    return "(2, 4, 17, 23) -> (2, 8, 8, 11): max pooling rounds 17 and 23 down"


# --------------------------------------------------------------------------- Up

_UP_HINT = ("Up: self.up = nn.ConvTranspose2d(in_ch, in_ch // 2, kernel_size=2, stride=2); "
            "self.conv = DoubleConv(in_ch, out_ch); in forward: upsample x1, pad it to x2's H "
            "and W, torch.cat([x2, x1], dim=1), then self.conv.")


@check("Up", "Up halves, pads, concatenates and matches segkit's block", fixed_rng=True)
def check_up(Up: Any) -> str:  # noqa: N803
    """Up(16, 8) on even and odd sizes against ``segkit.unet.Up``."""
    block = _build(Up, 16, 8, what="Up(16, 8)")
    x1, x2 = torch.randn(2, 16, 4, 6), torch.randn(2, 8, 8, 12)  # even: 4x6 -> 8x12
    y1, y2 = torch.randn(2, 16, 5, 4), torch.randn(2, 8, 11, 9)  # odd: 5x4 -> 10x8, pad to 11x9
    _expect_up_channels(block, x1, x2)
    _expect_up_shapes(block, x1, x2, y1, y2)
    ref = RefUp(16, 8)
    got, want = _count(block), _count(ref)
    expect(got == want, f"Up(16, 8) has {got:,} parameters, expected {want:,}",
           mistake="up-mismatch",
           hint=f"yours: {_param_text(block)}; expected: {_param_text(ref)}. " + _UP_HINT)
    _randomize(ref)
    expect(_copy_weights(ref, block, x1, x2), "could not pair the layers of your Up with "
           f"segkit's (yours: {_param_text(block)})", mistake="up-mismatch")
    swapped = _match_with_either_cat_order(block, ref, x1, x2)
    if swapped is None:
        fail("with segkit's weights copied in, Up(16, 8)'s output differs from segkit's on "
             "x1 (2, 16, 4, 6), x2 (2, 8, 8, 12)", mistake="up-mismatch")
    with torch.no_grad():
        if not _same(block(y1, y2), ref(y1, y2)):
            fail("with segkit's weights copied in, Up(16, 8) matches segkit's on even sizes "
                 "but not on x1 (2, 16, 5, 4), x2 (2, 8, 11, 9): the padding differs",
                 mistake="up-pad-differs")
    order = "[x1, x2]" if swapped else "[x2, x1]"
    return f"16 -> 8 up + 8 skip = 16 -> 8; 5x4 -> 10x8 padded to 11x9; cat {order}"


def _expect_up_channels(block: nn.Module, x1: torch.Tensor, x2: torch.Tensor) -> None:
    """The up-conv halves in_ch; the conv after the concatenation takes in_ch back."""
    ups = _layers(block, nn.ConvTranspose2d)
    if not ups:
        fail("Up(16, 8) has no nn.ConvTranspose2d, so nothing halves the 16 channels of "
             "the deeper map before it meets the 8-channel skip",
             mistake="up-not-halving-channels",
             hint="upsample with nn.ConvTranspose2d(in_ch, in_ch // 2, kernel_size=2, "
                  "stride=2): it doubles H and W and halves the channels (16 -> 8), so "
                  "the concatenation gives 8 + 8 = 16 = in_ch. (nn.Upsample keeps the "
                  "channels: 16 + 8 = 24 would reach a conv built for 16.)")
    expect(ups[0].out_channels == 8, f"the ConvTranspose2d of Up(16, 8) gives "
           f"{ups[0].out_channels} channels, expected 16 // 2 = 8",
           mistake="up-not-halving-channels")
    expect(ups[0].in_channels == 16, f"the ConvTranspose2d of Up(16, 8) takes "
           f"{ups[0].in_channels} channels, but the deeper map that arrives has in_ch = 16",
           mistake="up-transposed-in-channels")
    ran = _run_order(block, x1, x2)  # None when forward fails, e.g. on those very channels
    convs = [m for m in ran if type(m) is nn.Conv2d] if ran else _layers(block, nn.Conv2d)
    expect(any(c.in_channels == 16 for c in convs),
           "the first conv after the concatenation in Up(16, 8) takes "
           f"{convs[0].in_channels if convs else 'no'} channels, but torch.cat gives "
           "8 (skip) + 8 (upsampled) = 16", mistake="up-conv-in-channels")


def _expect_up_shapes(block: nn.Module, x1: torch.Tensor, x2: torch.Tensor,
                      y1: torch.Tensor, y2: torch.Tensor) -> None:
    """Twice the size on even maps; padded to the skip's size on odd ones."""
    seen: list[tuple[int, ...]] = []
    tconv = _layers(block, nn.ConvTranspose2d)[0]
    handle = tconv.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    try:
        out = block(x1, x2)
    finally:
        handle.remove()
    if seen and seen[0] != (2, 8, 8, 12):
        fail(f"the ConvTranspose2d of Up(16, 8) turned (2, 16, 4, 6) into {shape_text(seen[0])}, "
             "expected (2, 8, 8, 12): twice the size", mistake="up-wrong-upsample")
    expect(shape_of(out) == (2, 8, 8, 12), f"Up(16, 8) turned x1 (2, 16, 4, 6) and x2 "
           f"(2, 8, 8, 12) into {shape_text(shape_of(out))}, expected (2, 8, 8, 12)",
           mistake="wrong-out-channels",
           hint="the output has out_ch channels and the skip's H and W. " + _UP_HINT)
    odd, err = _run(block, y1, y2)
    if err is not None and "Sizes of tensors must match" in str(err):
        fail("Up(16, 8) failed on x1 (2, 16, 5, 4) with skip x2 (2, 8, 11, 9): "
             f"torch.cat said `{err}`", mistake="up-no-pad-to-skip",
             hint="an 11x9 map pools to 5x4 (rounded down) and upsamples to 10x8, one row "
                  "and one column short of the skip. Pad the upsampled map to the skip's "
                  "size before torch.cat: dy = x2.shape[2] - x1.shape[2], dx = x2.shape[3] - "
                  "x1.shape[3], x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2]).")
    if err is not None:
        raise err
    expect(shape_of(odd) == (2, 8, 11, 9), f"Up(16, 8) turned x1 (2, 16, 5, 4) and x2 "
           f"(2, 8, 11, 9) into {shape_text(shape_of(odd))}, expected (2, 8, 11, 9): the "
           "skip's size",
           mistake="up-no-pad-to-skip")


def _swap_cat_halves(model: nn.Module, *inputs: torch.Tensor) -> None:
    """Swap the two input halves of the conv that follows each transposed conv: a model
    that concatenates [up, skip] then computes what one with [skip, up] computes."""
    ran = _run_order(model, *inputs) or []
    with torch.no_grad():
        for before, layer in zip(ran, ran[1:]):
            if isinstance(before, nn.ConvTranspose2d) and type(layer) is nn.Conv2d:
                half = layer.in_channels // 2
                layer.weight.copy_(torch.cat([layer.weight[:, half:], layer.weight[:, :half]], 1))


def _match_with_either_cat_order(model: nn.Module, ref: nn.Module,
                                 *inputs: torch.Tensor) -> bool | None:
    """After ``_copy_weights``: False when ``model`` gives ``ref``'s output, True when it
    does once the concatenation halves are swapped (``torch.cat([up, skip])``, as good),
    None when neither. Both in eval mode."""
    ref.eval()
    model.eval()
    with torch.no_grad():
        want = ref(*inputs)
        if _same(model(*inputs), want):
            return False
        _swap_cat_halves(model, *inputs)
        if _same(model(*inputs), want):
            return True
    return None


# --------------------------------------------------------------------------- UNet

_UNET_CONFIGS = [  # (in_channels, num_classes, base, depth)
    (3, 1, 16, 4),
    (1, 3, 8, 3),
]
_UNET_BIG = (3, 2, 64, 4)  # the classic size, checked last (the slowest to build)


def _build_on_meta(cls: Any, *args: Any, what: str) -> nn.Module:
    """``cls(*args)`` with its tensors on the "meta" device: shapes without memory or
    random initialisation, so counting the parameters of a 31M-parameter model is instant.
    Falls back to an ordinary build if the class cannot be built that way."""
    try:
        with torch.device("meta"):
            return _build(cls, *args, what=what)
    except NotImplementedError:
        raise
    except Exception:  # noqa: BLE001 - e.g. a model that reads a tensor's value in __init__
        return _build(cls, *args, what=what)


@functools.lru_cache(maxsize=None)
def _ref_count(in_ch: int, classes: int, base: int, depth: int) -> int:
    """Parameters of segkit's UNet for this configuration."""
    with torch.device("meta"):
        return _count(RefUNet(in_ch, classes, base, depth))


def _children_text(model: nn.Module) -> str:
    return ", ".join(f"{name} {_count(child):,}" for name, child in model.named_children())


def _check_count(UNet: Any, config: tuple[int, int, int, int]) -> int:  # noqa: N803
    """The student's parameter count for ``config``, failing with a diagnosis if it is off."""
    in_ch, classes, base, depth = config
    args = f"UNet(in_channels={in_ch}, num_classes={classes}, base={base}, depth={depth})"
    model = _build_on_meta(UNet, in_ch, classes, base, depth, what=args)
    got, want = _count(model), _ref_count(*config)
    if got != want:
        with torch.device("meta"):
            ref = RefUNet(*config)
        for other in (depth - 1, depth + 1):
            if other >= 1 and got == _ref_count(in_ch, classes, base, other):
                fail(f"{args} has {got:,} parameters, expected {want:,}: that is the "
                     f"count of a U-Net with depth={other}",
                     mistake="unet-depth-off-by-one",
                     hint=f"depth={depth} means {depth} Down blocks after inc and "
                          f"{depth} Up blocks: channels base * 2**i for i = 0..{depth} "
                          f"({', '.join(str(base * 2 ** i) for i in range(depth + 1))}).")
        fail(f"{args} has {got:,} parameters, expected {want:,}",
             mistake="unet-param-count",
             hint=f"per block, yours: {_children_text(model)}; segkit's: "
                  f"{_children_text(ref)}. inc = DoubleConv(in_channels, base); "
                  "Down i: ch[i] -> ch[i+1]; Up: ch[i+1] -> ch[i] from the bottom up; "
                  "outc = nn.Conv2d(base, num_classes, kernel_size=1).")
    return got


@check("UNet", "UNet matches segkit's parameter counts and output shapes", fixed_rng=True)
def check_unet(UNet: Any) -> Any:  # noqa: N803
    """Parameter counts, output shapes (101x75 too) and known weights vs ``segkit.unet.UNet``."""
    for config in _UNET_CONFIGS:
        _check_count(UNet, config)

    model = _build(UNet, 3, 1, 8, 4, what="UNet(3, 1, base=8, depth=4)")
    x = torch.randn(2, 3, 32, 48)
    out = model(x)
    expect(shape_of(out) == (2, 1, 32, 48),
           f"UNet(3, 1, base=8, depth=4) turned a (2, 3, 32, 48) batch into "
           f"{shape_text(shape_of(out))}, expected (2, 1, 32, 48): one logit per pixel",
           mistake="unet-output-shape")
    model.eval()
    y = torch.randn(1, 3, 101, 75)
    with torch.no_grad():
        odd, err = _run(model, y)
    if err is not None:
        fail(f"UNet(3, 1, base=8, depth=4) failed on a (1, 3, 101, 75) image: `{err}`",
             mistake="unet-odd-size",
             hint="101 -> 50 -> 25 -> 12 -> 6 and 75 -> 37 -> 18 -> 9 -> 4: max pooling "
                  "rounds down, so an upsampled map can be one pixel short of its skip. "
                  "Each Up pads it to the skip's size; make sure forward passes the right "
                  "skip to each Up (the last encoder output meets the first Up).")
    expect(shape_of(odd) == (1, 1, 101, 75),
           f"UNet(3, 1, base=8, depth=4) turned a (1, 3, 101, 75) image into "
           f"{shape_text(shape_of(odd))}, expected (1, 1, 101, 75)", mistake="unet-odd-size")
    gray = _build(UNet, 1, 3, 8, 3, what="UNet(1, 3, base=8, depth=3)").eval()
    with torch.no_grad():
        gout = gray(torch.randn(2, 1, 40, 24))
    expect(shape_of(gout) == (2, 3, 40, 24),
           f"UNet(1, 3, base=8, depth=3) turned a (2, 1, 40, 24) batch into "
           f"{shape_text(shape_of(gout))}, expected (2, 3, 40, 24)", mistake="unet-output-shape",
           hint="use the arguments: in_channels for the first DoubleConv, num_classes for "
                "the 1x1 conv at the end, depth for the number of Down and Up blocks.")

    ref = RefUNet(3, 1, 8, 4)
    _randomize(ref)
    if _copy_weights(ref, model, x):  # otherwise the layers do not pair one to one
        for inp in (x, y):
            expect(_match_with_either_cat_order(model, ref, inp) is not None,
                   "with segkit's weights copied in, your U-Net's output differs from "
                   f"segkit's on a {shape_text(shape_of(inp))} input", mistake="unet-wiring")
    big = _check_count(UNet, _UNET_BIG)
    return f"{big:,} parameters at base 64; 101x75 in, 101x75 out"

"""Checks of lesson 07 (inference): ``predict_full_size``, ``mask_to_png_array``, ``flip_tta``.

Each ``check_*`` function takes the student's function, runs it on small fixed inputs
and raises :class:`~segkit.checks.core.CheckFailed` with a hint that names the mistake.
The model the checks hand to the student's code is a stand-in for a U-Net
(:class:`_RecordingNet`: BatchNorm and a convolution, one output channel), fast and
deterministic, that remembers how it was called (train or eval mode, gradients on or
off, input shape). The ``reference_*`` functions are what ``checks.use`` falls back to
when an exercise was skipped.

Mistake ids used here:

- ``returns-none``: the function has no ``return``;
- ``not-an-array``: something else than a tensor or array came back;
- ``model-not-called``: the function never ran the model it was given;
- ``forgot-eval``: the model ran in train mode: BatchNorm then normalises with the
  statistics of the batch at hand (one image!) instead of its running averages;
- ``forgot-no-grad``: the model ran with gradients on: autograd keeps every activation
  for a backward pass that never comes (memory, time);
- ``not-resized-in``: the model saw the image at its own size, not the training size;
- ``returned-training-size``: the mask is at the training size, not the image's size;
- ``size-w-h-swapped``: (W, H) where (H, W) was meant;
- ``wrong-shape``: extra batch/channel axes or another shape;
- ``no-threshold``: logits or probabilities returned instead of a 0/1 mask;
- ``threshold-then-resize``: the mask was thresholded at the training size and then
  resized (bilinear: values between 0 and 1; nearest: blocky edges);
- ``mask-not-int64``: a bool, float or uint8 mask where int64 was asked for;
- ``argmax-one-channel``: ``argmax`` over a single output channel: always 0;
- ``logit-threshold-0.5``: logits compared with 0.5 (a probability threshold);
- ``wrong-mask``: the mask differs from the expected one for another reason;
- ``png-not-numpy``: a torch tensor where PIL needs a NumPy array;
- ``png-left-0-1``: the PNG array holds 0/1, which a viewer shows as black;
- ``png-wrong-dtype``: not uint8 (PIL cannot write int64, and float becomes mode 'F');
- ``png-wrong-values`` / ``png-inverted``: other values, or the car black on white;
- ``tta-not-flipped-back``: the prediction of the mirrored image was not mirrored back;
- ``tta-averaged-masks``: thresholded masks averaged (that is an AND or an OR);
- ``tta-no-flip``: only the original image (or only the mirrored one) was used;
- ``tta-wrong-axis``: flipped along the height (upside down) or the batch axis.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from segkit.checks.core import check, fail, show

__all__ = [
    "check_predict_full_size",
    "check_mask_to_png_array",
    "check_flip_tta",
    "reference_predict_full_size",
    "reference_mask_to_png_array",
    "reference_flip_tta",
]


# --------------------------------------------------------------------------- references


@torch.no_grad()
def reference_predict_full_size(model: nn.Module, image: torch.Tensor,
                                size: tuple[int, int]) -> torch.Tensor:
    """Mask (H, W) int64 of 0/1 for ``image`` (1, C, H, W) float32, normalised, at its own size.

    The image is resized to ``size`` = (h, w), the training size; the logits (1, 1, h, w)
    are resized back to (H, W) with bilinear interpolation and only then thresholded at 0
    (probability 0.5).
    """
    model.eval()
    height, width = image.shape[-2:]
    x = F.interpolate(image, size=tuple(size), mode="bilinear", align_corners=False,
                      antialias=True)
    logits = model(x)
    logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
    return (logits[0, 0] > 0).long()


def reference_mask_to_png_array(mask) -> np.ndarray:
    """(H, W) array or tensor of 0/1 -> (H, W) uint8 array of 0/255, ready for a PNG."""
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    return (np.asarray(mask) > 0).astype(np.uint8) * 255


@torch.no_grad()
def reference_flip_tta(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Mask (N, H, W) int64 of 0/1 from the average of the logits of ``x`` (N, C, H, W)
    and of its horizontal mirror, mirrored back. ``model`` is in eval mode."""
    logits = (model(x) + model(x.flip(-1)).flip(-1)) / 2
    return (logits[:, 0] > 0).long()


# --------------------------------------------------------------------------- helpers


class _RecordingNet(nn.Module):
    """Stand-in for a U-Net with one output channel: (N, 3, h, w) -> (N, 1, h, w) logits.

    BatchNorm (with running statistics far from those of any single batch, so train mode
    changes the output) then a 3x3 convolution, plus a fixed logit ramp from left to right
    (so the net is neither left-right nor up-down symmetric). ``calls`` records (training, grad_enabled, shape,
    input) for every forward pass.
    """

    def __init__(self, ramp: float = 0.0) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(3)
        self.conv = nn.Conv2d(3, 1, 3, padding=1, padding_mode="replicate")
        self.ramp = ramp
        with torch.no_grad():
            self.bn.running_mean.copy_(torch.tensor([0.3, -0.2, 0.1]))
            self.bn.running_var.copy_(torch.tensor([0.5, 2.0, 1.0]))
            self.conv.weight.zero_()
            self.conv.weight[0, :, 1, 1] = torch.tensor([2.0, 1.5, -1.0])
            self.conv.weight[0, 0, :, :] += torch.tensor([[0.2, 0.0, -0.2]] * 3)
            self.conv.weight[0, 1, :, :] += torch.tensor([[0.3] * 3, [0.0] * 3, [-0.1] * 3])
            self.conv.bias.fill_(0.1)
        self.calls: list[tuple[bool, bool, tuple[int, ...], torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled(), tuple(x.shape),
                           x.detach().clone()))
        out = self.conv(self.bn(x))
        if self.ramp:
            out = out + torch.linspace(self.ramp, -self.ramp, x.shape[-1])
        return out


def _as_tensor(value, name: str) -> torch.Tensor:
    if value is None:
        fail(f"{name} returned None.", mistake="returns-none",
             hint="the function computes the mask but does not `return` it.")
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    fail(f"{name} should return a tensor (or array), but it returned {show(value)}",
         mistake="not-an-array", hint="return the mask as a torch tensor.")


def _check_calls(net: _RecordingNet, exercise_size: tuple[int, int] | None) -> None:
    """The model was called, in eval mode, without gradients (and at the training size)."""
    if not net.calls:
        fail("the model was never called.", mistake="model-not-called")
    if any(training for training, _, _, _ in net.calls):
        fail("the model ran in train mode.", mistake="forgot-eval")
    if any(grad for _, grad, _, _ in net.calls):
        fail("the model ran with gradients on.", mistake="forgot-no-grad")
    if exercise_size is not None:
        for _, _, shape, _ in net.calls:
            if tuple(shape[-2:]) != tuple(exercise_size):
                swapped = tuple(shape[-2:]) == tuple(exercise_size)[::-1]
                fail(f"the model saw an input of shape {shape}; expected the training size "
                     f"(H, W) = {tuple(exercise_size)}.", mistake="not-resized-in",
                     hint=("height and width are swapped: torch sizes are (H, W)."
                           if swapped else
                           "resize the image to the training size first "
                           "(`F.interpolate(image, size=size, mode='bilinear')`): the network "
                           "learned the cars at that scale; fed a bigger image it sees "
                           "smaller-looking details and predicts worse."))


def _disagreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.long() != b.long()).float().mean())


# --------------------------------------------------------------------------- predict_full_size

_IMAGE_HW = (180, 260)   # (H, W) of the "new image"
_TRAIN_HW = (12, 16)     # the "training size": a scale factor of 15-16, blocky if resized late
_TOLERANCE = 0.005       # fraction of pixels a correct answer may differ by (interpolation details)


def _full_size_image() -> torch.Tensor:
    """(1, 3, 180, 260) float32: smooth ramps, so that every sensible resize agrees."""
    height, width = _IMAGE_HW
    ys = torch.linspace(-1, 1, height)[:, None].expand(height, width)
    xs = torch.linspace(-1, 1, width)[None, :].expand(height, width)
    return torch.stack([xs + 0.3, 0.8 * ys - 0.5 * xs ** 2, 0.5 * xs * ys])[None].float()


def _expect_full_size_shape(mask: torch.Tensor, name: str) -> None:
    """The mask has the image's (H, W), not the training size nor (W, H)."""
    height, width = _IMAGE_HW
    shape = tuple(mask.shape)
    if shape[-2:] == _TRAIN_HW:
        fail(f"{name} returned shape {shape}: the training size, not the image's "
             f"(H, W) = {_IMAGE_HW}.", mistake="returned-training-size")
    if shape[-2:] == (width, height):
        fail(f"{name} returned shape {shape}, expected {_IMAGE_HW}.",
             mistake="size-w-h-swapped",
             hint="height and width are swapped: torch sizes are (H, W), PIL sizes (W, H).")
    if shape != _IMAGE_HW:
        fail(f"{name} returned shape {shape}, expected (H, W) = {_IMAGE_HW}.",
             mistake="wrong-shape")


@check("predict_full_size", "predict_full_size on a 180x260 image")
def check_predict_full_size(predict_full_size):
    """``predict_full_size(model, image, size)`` -> (H, W) int64 0/1 mask at the image's size."""
    name = "predict_full_size(model, image, size)"
    net = _RecordingNet().train()  # a model straight out of training: train mode
    image = _full_size_image()
    out = predict_full_size(net, image.clone(), _TRAIN_HW)
    mask = _as_tensor(out, name)
    _check_calls(net, _TRAIN_HW)
    _expect_full_size_shape(mask, name)
    height, width = _IMAGE_HW

    # What the model gave for the student's own input, resized back the right way.
    net.eval()
    with torch.no_grad():
        small_logits = net(net.calls[0][3])
    logits = F.interpolate(small_logits, size=_IMAGE_HW, mode="bilinear",
                           align_corners=False)[0, 0]
    expected = (logits > 0).long()

    values = torch.unique(mask.float())
    if not bool(((values == 0) | (values == 1)).all()):
        probabilities = torch.sigmoid(logits)
        if (float(values.min()) < 0 or float(values.max()) > 1
                or float((mask.float() - probabilities).abs().max()) < 0.05):
            fail(f"{name} returned values from {float(values.min()):.3g} to "
                 f"{float(values.max()):.3g}, not a 0/1 mask.", mistake="no-threshold")
        fail(f"{name} returned {values.numel()} distinct values between 0 and 1, not a "
             "0/1 mask.", mistake="threshold-then-resize")
    if mask.dtype != torch.int64:
        fail(f"{name} returned dtype {str(mask.dtype).replace('torch.', '')}, expected "
             "int64.", mistake="mask-not-int64",
             hint="end with `.long()`: class-index masks are int64 everywhere in the course "
                  "(metrics, losses, saving).")
    if int(mask.sum()) == 0 and int(expected.sum()) > 0:
        fail(f"{name} returned an empty mask (all 0); the model finds the object in "
             f"{float(expected.float().mean()):.0%} of the pixels.",
             mistake="argmax-one-channel")
    wrong = _disagreement(mask, expected)
    if wrong <= _TOLERANCE:
        return f"{height}x{width} mask from a {_TRAIN_HW[0]}x{_TRAIN_HW[1]} prediction"
    blocky = F.interpolate((small_logits > 0).float(), size=_IMAGE_HW, mode="nearest")[0, 0]
    if _disagreement(mask, blocky) <= _TOLERANCE:
        fail(f"{name} differs from the expected mask in {wrong:.1%} of the pixels, along "
             "the object's edge, which is blocky.", mistake="threshold-then-resize",
             hint="you thresholded at the training size and then resized the mask (nearest): "
                  "every training pixel becomes a block of about 15x15. Resize the LOGITS "
                  "back to (H, W) with bilinear interpolation, then threshold.")
    if _disagreement(mask, logits > 0.5) <= _TOLERANCE:
        fail(f"{name} differs from the expected mask in {wrong:.1%} of the pixels.",
             mistake="logit-threshold-0.5")
    fail(f"{name} differs from the expected mask in {wrong:.1%} of the pixels.",
         mistake="wrong-mask")


# --------------------------------------------------------------------------- mask_to_png_array


def _example_mask() -> np.ndarray:
    mask = np.zeros((6, 9), dtype=np.int64)
    mask[1:5, 2:7] = 1
    mask[0, 0] = 1
    return mask


@check("mask_to_png_array", "mask_to_png_array")
def check_mask_to_png_array(mask_to_png_array):
    """``mask_to_png_array(mask)``: (H, W) int64 0/1 -> (H, W) uint8 0/255 that PIL saves."""
    name = "mask_to_png_array(mask)"
    mask = _example_mask()
    out = mask_to_png_array(mask.copy())
    if out is None:
        fail(f"{name} returned None.", mistake="returns-none",
             hint="the function builds the array but does not `return` it.")
    if isinstance(out, torch.Tensor):
        fail(f"{name} returned a torch tensor; PIL's Image.fromarray needs a NumPy array.",
             mistake="png-not-numpy")
    if not isinstance(out, np.ndarray):
        fail(f"{name} should return a NumPy array, but it returned {show(out)}",
             mistake="not-an-array", hint="build the result with NumPy, e.g. `mask * 255`.")
    if out.shape != mask.shape:
        fail(f"{name} returned shape {out.shape}, expected {mask.shape}.",
             mistake="wrong-shape", hint="keep the mask's (H, W) shape: one grey channel.")
    values = np.unique(out).tolist()
    if values == [0, 1]:
        fail(f"{name} returned the values {values}.", mistake="png-left-0-1")
    if out.dtype != np.uint8:
        fail(f"{name} returned dtype {out.dtype}, expected uint8.", mistake="png-wrong-dtype")
    if np.array_equal(out, (1 - mask) * 255):
        fail(f"{name} returned 255 for the background and 0 for the object.",
             mistake="png-inverted")
    if not np.array_equal(out, mask * 255):
        fail(f"{name} returned the values {values}; expected 0 where the mask is 0 and 255 "
             "where it is 1.", mistake="png-wrong-values")
    with tempfile.TemporaryDirectory() as folder:  # it really is a viewable 8-bit PNG
        path = Path(folder) / "mask.png"
        Image.fromarray(out).save(path)
        with Image.open(path) as png:
            back = np.asarray(png)
            mode = png.mode
    if mode != "L" or not np.array_equal(back, mask * 255):
        fail(f"the PNG written from {name} reads back as mode {mode!r} with values "
             f"{np.unique(back).tolist()}.", mistake="png-wrong-values",
             hint="return an (H, W) uint8 array of 0 and 255.")
    return "saves as an 8-bit grey PNG of 0 and 255"


# --------------------------------------------------------------------------- flip_tta


def _tta_inputs() -> tuple[_RecordingNet, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 16, 24, generator=generator)
    x = F.avg_pool2d(x, 3, stride=1, padding=1) * 2  # smooth, like an image
    return _RecordingNet(ramp=0.8).eval(), x


@check("flip_tta", "flip_tta on 2 images")
def check_flip_tta(flip_tta):
    """``flip_tta(model, x)`` -> (N, H, W) int64 0/1 mask from mirror-averaged predictions."""
    name = "flip_tta(model, x)"
    net, x = _tta_inputs()
    out = flip_tta(net, x.clone())
    mask = _as_tensor(out, name)
    _check_calls(net, None)
    n, _, height, width = x.shape
    if tuple(mask.shape) != (n, height, width):
        fail(f"{name} returned shape {tuple(mask.shape)}, expected (N, H, W) = "
             f"{(n, height, width)}.", mistake="wrong-shape",
             hint="the model returns (N, 1, H, W) logits: take channel 0 (`logits[:, 0]`) "
                  "before thresholding.")
    values = torch.unique(mask.float())
    if not bool(((values == 0) | (values == 1)).all()):
        fail(f"{name} returned values from {float(values.min()):.3g} to "
             f"{float(values.max()):.3g}, not a 0/1 mask.", mistake="no-threshold",
             hint="threshold the averaged logits at 0 (or averaged probabilities at 0.5), "
                  "then `.long()`.")
    if mask.dtype != torch.int64:
        fail(f"{name} returned dtype {str(mask.dtype).replace('torch.', '')}, expected "
             "int64.", mistake="mask-not-int64", hint="end with `.long()`.")
    with torch.no_grad():
        plain = net(x)[:, 0]
        mirrored = net(x.flip(-1))[:, 0]
        upside = net(x.flip(-2)).flip(-2)[:, 0]
    expected = ((plain + mirrored.flip(-1)) > 0).long()
    wrong = _disagreement(mask, expected)
    if wrong == 0:
        return "mirror-averaged, flipped back"
    candidates = [
        ("tta-not-flipped-back", (plain + mirrored) > 0,
         "the prediction for the mirrored image is mirrored too: flip it back "
         "(`model(x.flip(-1)).flip(-1)`) before averaging, or you average the left of "
         "the car with its right."),
        ("tta-averaged-masks", (plain > 0) & (mirrored.flip(-1) > 0),
         "you averaged thresholded masks: (m1 + m2) / 2 > 0.5 keeps only the pixels "
         "both agree on (an AND; with >= it is an OR). Average the logits (or the "
         "probabilities), then threshold once."),
        ("tta-averaged-masks", (plain > 0) | (mirrored.flip(-1) > 0),
         "you averaged thresholded masks: (m1 + m2) / 2 >= 0.5 keeps every pixel either "
         "one finds (an OR). Average the logits (or the probabilities), then threshold once."),
        ("tta-no-flip", plain > 0,
         "only the original image was used: also predict the mirrored image "
         "(`x.flip(-1)`), flip that prediction back and average."),
        ("tta-no-flip", mirrored.flip(-1) > 0,
         "only the mirrored image was used: average its (flipped-back) logits with "
         "those of the original image."),
        ("tta-wrong-axis", (plain + upside) > 0,
         "flip the width axis, `x.flip(-1)` (a left-right mirror); `flip(-2)` turns the "
         "image upside down, which the network never saw in training."),
    ]
    for mistake, variant, hint in candidates:
        if _disagreement(mask, variant) == 0:
            fail(f"{name} differs from the expected mask in {wrong:.1%} of the pixels.",
                 mistake=mistake, hint=hint)
    fail(f"{name} differs from the expected mask in {wrong:.1%} of the pixels.",
         mistake="wrong-mask",
         hint="average `model(x)` and `model(x.flip(-1)).flip(-1)` (logits), then "
              "threshold at 0 and take channel 0: `(avg[:, 0] > 0).long()`.")

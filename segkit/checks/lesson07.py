"""Checks of lesson 07 (inference): ``predict_full_size``, ``mask_to_png_array``, ``flip_tta``.

Each check runs the lesson's worked example (the same on every run) and a case drawn
fresh from a seed (an image of drawn size and training size, a mask of drawn size and
shape, a batch of drawn size), and raises :class:`~segkit.checks.core.CheckFailed` with a
hint that names the mistake.
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
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from segkit.checks import values
from segkit.checks.core import Check, fail, judge_each, judging

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
    (so the net is neither left-right nor up-down symmetric). ``calls`` records (training,
    grad_enabled, shape,
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


def _record_calls(net: _RecordingNet) -> list[dict[str, Any]]:
    """What the model saw: mode, gradients, input shape (and the first input itself)."""
    return [{"training": t, "grad": g, "shape": list(shape),
             "input": x.numpy() if i == 0 else None}
            for i, (t, g, shape, x) in enumerate(net.calls)]


def _as_mask(desc: dict[str, Any], name: str) -> np.ndarray:
    """The student's mask values, or the failure saying why they are not a mask."""
    if desc["kind"] == "none":
        fail(f"{name} returned None.", mistake="returns-none",
             hint="the function computes the mask but does not `return` it.")
    if desc["kind"] not in ("tensor", "ndarray") or desc.get("values") is None:
        fail(f"{name} should return a tensor (or array), but it returned {values.shown(desc)}",
             mistake="not-an-array", hint="return the mask as a torch tensor.")
    return values.array(desc)


def _check_calls(calls: list[dict[str, Any]], exercise_size: tuple[int, int] | None) -> None:
    """The model was called, in eval mode, without gradients (and at the training size)."""
    if not calls:
        fail("the model was never called.", mistake="model-not-called")
    if any(c["training"] for c in calls):
        fail("the model ran in train mode.", mistake="forgot-eval")
    if any(c["grad"] for c in calls):
        fail("the model ran with gradients on.", mistake="forgot-no-grad")
    if exercise_size is not None:
        for call in calls:
            if tuple(call["shape"][-2:]) != tuple(exercise_size):
                swapped = tuple(call["shape"][-2:]) == tuple(exercise_size)[::-1]
                fail(f"the model saw an input of shape {tuple(call['shape'])}; expected the "
                     f"training size (H, W) = {tuple(exercise_size)}.", mistake="not-resized-in",
                     hint=("height and width are swapped: torch sizes are (H, W)."
                           if swapped else
                           "resize the image to the training size first: the network learned "
                           "the cars at that scale; fed a bigger image it sees smaller-looking "
                           "details and predicts worse."))


def _disagreement(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    a, b = np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64)
    return float((a != b).mean())


# --------------------------------------------------------------------------- predict_full_size

_TOLERANCE = 0.005  # fraction of pixels a correct answer may differ by (interpolation details)


def _full_size_image(height: int, width: int, coeffs: list[float]) -> np.ndarray:
    """(1, 3, H, W) float32: smooth ramps, so that every sensible resize agrees."""
    a, b, c = coeffs
    ys = np.linspace(-1, 1, height)[:, None] * np.ones((1, width))
    xs = np.linspace(-1, 1, width)[None, :] * np.ones((height, 1))
    return np.stack([xs + a, b * ys - 0.5 * xs ** 2, c * xs * ys])[None].astype(np.float32)


def _draw_full_size(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example (a 180x260 image, training size 12x16), then an image and a
    training size of drawn, unequal sizes."""
    h, w = int(rng.integers(90, 201)), int(rng.integers(100, 281))
    if h == w:
        w += 1
    th, tw = (int(v) for v in rng.choice(np.arange(8, 21), size=2, replace=False))
    coeffs = [float(rng.uniform(0.1, 0.5)), float(rng.uniform(0.5, 1.0)),
              float(rng.uniform(0.3, 0.7))]
    return {"cases": [
        {"image": _full_size_image(180, 260, [0.3, 0.8, 0.5]), "size": [12, 16],
         "drawn": False},
        {"image": _full_size_image(h, w, coeffs), "size": [th, tw], "drawn": True}]}


def _ask_full_size(predict_full_size: Any, cases: dict[str, Any]) -> dict[str, Any]:
    answers = []
    for case in cases["cases"]:
        net = _RecordingNet().train()  # a model straight out of training: train mode
        out = predict_full_size(net, values.tensor(case["image"]), tuple(case["size"]))
        answers.append({"mask": values.describe(out), "calls": _record_calls(net)})
    return {"cases": answers}


def _expect_full_size_shape(shape: tuple[int, ...], name: str, image_hw: tuple[int, int],
                            train_hw: tuple[int, int]) -> None:
    """The mask has the image's (H, W), not the training size nor (W, H)."""
    if shape[-2:] == train_hw:
        fail(f"{name} returned shape {shape}: the training size, not the image's (H, W) = "
             f"{image_hw}.", mistake="returned-training-size")
    if shape[-2:] == image_hw[::-1]:
        fail(f"{name} returned shape {shape}, expected {image_hw}.", mistake="size-w-h-swapped",
             hint="height and width are swapped: torch sizes are (H, W), PIL sizes (W, H).")
    if shape != image_hw:
        fail(f"{name} returned shape {shape}, expected (H, W) = {image_hw}.",
             mistake="wrong-shape")


def _judge_full_size_case(case: dict[str, Any], answer: dict[str, Any]) -> str:
    name = "predict_full_size(model, image, size)"
    image_hw, train_hw = tuple(case["image"].shape[-2:]), tuple(case["size"])
    desc = answer["mask"]
    mask = _as_mask(desc, name)
    _check_calls(answer["calls"], train_hw)
    _expect_full_size_shape(tuple(desc["shape"]), name, image_hw, train_hw)
    net = _RecordingNet().eval()
    with torch.no_grad():  # what the model gave for the student's own input, resized back
        small_logits = net(torch.from_numpy(answer["calls"][0]["input"]))
    logits = F.interpolate(small_logits, size=image_hw, mode="bilinear",
                           align_corners=False)[0, 0]
    expected = (logits > 0).long().numpy()
    found = np.unique(mask.astype(np.float64))
    if not bool(((found == 0) | (found == 1)).all()):
        probabilities = torch.sigmoid(logits).numpy()
        if found.min() < 0 or found.max() > 1 or float(np.abs(mask - probabilities).max()) < 0.05:
            fail(f"{name} returned values from {found.min():.3g} to {found.max():.3g}, not a 0/1 "
                 "mask.", mistake="no-threshold")
        fail(f"{name} returned {found.size} distinct values between 0 and 1, not a 0/1 mask.",
             mistake="threshold-then-resize")
    if desc["dtype"] != "int64":
        fail(f"{name} returned dtype {desc['dtype']}, expected int64.", mistake="mask-not-int64",
             hint="class-index masks are int64 everywhere in the course (metrics, losses, "
                  "saving): `.long()`.")
    if int(mask.sum()) == 0 and int(expected.sum()) > 0:
        fail(f"{name} returned an empty mask (all 0); the model finds the object in "
             f"{float(expected.mean()):.0%} of the pixels.", mistake="argmax-one-channel")
    wrong = _disagreement(mask, expected)
    right_ways = [(F.interpolate(small_logits, size=image_hw, mode=mode, align_corners=corners)
                   [0, 0] > 0).long().numpy()  # every sensible way to resize the logits
                  for mode in ("bilinear", "bicubic") for corners in (False, True)]
    if min(_disagreement(mask, way) for way in right_ways) <= _TOLERANCE:
        return f"{image_hw[0]}x{image_hw[1]} mask from a {train_hw[0]}x{train_hw[1]} prediction"
    blocky = F.interpolate((small_logits > 0).float(), size=image_hw, mode="nearest")[0, 0]
    if _disagreement(mask, blocky.numpy()) <= _TOLERANCE:
        fail(f"{name} differs from the expected mask in {wrong:.1%} of the pixels, along the "
             "object's edge, which is blocky.", mistake="threshold-then-resize",
             hint="you thresholded at the training size and then resized the mask (nearest): "
                  "every training pixel becomes a block. Resize the LOGITS back to (H, W) with "
                  "bilinear interpolation, then threshold.")
    if _disagreement(mask, (logits > 0.5).numpy()) <= _TOLERANCE:
        fail(f"{name} differs from the expected mask in {wrong:.1%} of the pixels.",
             mistake="logit-threshold-0.5")
    fail(f"{name} differs from the expected mask in {wrong:.1%} of the pixels.",
         mistake="wrong-mask")


def _judge_full_size(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    return judge_each(cases["cases"], answers["cases"], _judge_full_size_case)[0]


check_predict_full_size = Check(
    "07", "predict_full_size", "predict_full_size on a 180x260 image",
    references=("segkit.checks.lesson07.reference_predict_full_size",),
    draw_cases=_draw_full_size, ask_student=_ask_full_size, judge_answers=_judge_full_size)


# --------------------------------------------------------------------------- mask_to_png_array


def _example_mask() -> np.ndarray:
    mask = np.zeros((6, 9), dtype=np.int64)
    mask[1:5, 2:7] = 1
    mask[0, 0] = 1
    return mask


def _draw_png(rng: np.random.Generator) -> dict[str, Any]:
    """The worked 6x9 mask, then a mask of drawn odd, unequal size and drawn object."""
    h, w = (int(v) for v in rng.choice([5, 7, 9, 11, 13], size=2, replace=False))
    mask = (rng.random((h, w)) < rng.uniform(0.2, 0.6)).astype(np.int64)
    mask.flat[rng.integers(h * w)] = 1
    mask.flat[rng.integers(h * w)] = 0 if mask.sum() > 1 else 1
    return {"cases": [{"mask": _example_mask(), "drawn": False},
                      {"mask": mask, "drawn": True}]}


def _ask_png(mask_to_png_array: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [values.describe(mask_to_png_array(np.array(c["mask"], copy=True)))
                      for c in cases["cases"]]}


def _judge_png_case(mask: np.ndarray, out: dict[str, Any]) -> None:
    name = "mask_to_png_array(mask)"
    if out["kind"] == "none":
        fail(f"{name} returned None.", mistake="returns-none",
             hint="the function builds the array but does not `return` it.")
    if out["kind"] == "tensor":
        fail(f"{name} returned a torch tensor; PIL's Image.fromarray needs a NumPy array.",
             mistake="png-not-numpy")
    if out["kind"] != "ndarray" or out.get("values") is None:
        fail(f"{name} should return a NumPy array, but it returned {values.shown(out)}",
             mistake="not-an-array", hint="build the result with NumPy.")
    array = values.array(out)
    if array.shape != mask.shape:
        fail(f"{name} returned shape {array.shape}, expected {mask.shape}.", mistake="wrong-shape",
             hint="keep the mask's (H, W) shape: one grey channel.")
    found = np.unique(array).tolist()
    if found == [0, 1]:
        fail(f"{name} returned the values {found}.", mistake="png-left-0-1")
    if out["dtype"] != "uint8":
        fail(f"{name} returned dtype {out['dtype']}, expected uint8.", mistake="png-wrong-dtype")
    if np.array_equal(array, (1 - mask) * 255):
        fail(f"{name} returned 255 for the background and 0 for the object.",
             mistake="png-inverted")
    if not np.array_equal(array, mask * 255):
        fail(f"{name} returned the values {found}; expected 0 where the mask is 0 and 255 where "
             "it is 1.", mistake="png-wrong-values")
    with tempfile.TemporaryDirectory() as folder:  # it really is a viewable 8-bit PNG
        path = Path(folder) / "mask.png"
        Image.fromarray(array.astype(np.uint8)).save(path)
        with Image.open(path) as png:
            back, mode = np.asarray(png), png.mode
    if mode != "L" or not np.array_equal(back, mask * 255):
        fail(f"the PNG written from {name} reads back as mode {mode!r} with values "
             f"{np.unique(back).tolist()}.", mistake="png-wrong-values",
             hint="return an (H, W) uint8 array of 0 and 255.")


def _judge_png(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    for case, out in zip(cases["cases"], answers["cases"], strict=True):
        with judging(case["drawn"]):
            _judge_png_case(case["mask"], out)
    return "saves as an 8-bit grey PNG of 0 and 255"


check_mask_to_png_array = Check(
    "07", "mask_to_png_array", "mask_to_png_array",
    references=("segkit.checks.lesson07.reference_mask_to_png_array",),
    draw_cases=_draw_png, ask_student=_ask_png, judge_answers=_judge_png)


# --------------------------------------------------------------------------- flip_tta


def _draw_tta(rng: np.random.Generator) -> dict[str, Any]:
    """The worked batch (2, 3, 16, 24), then a batch of drawn, odd and unequal size."""
    generator = torch.Generator().manual_seed(7)
    worked = torch.randn(2, 3, 16, 24, generator=generator)
    worked = (F.avg_pool2d(worked, 3, stride=1, padding=1) * 2).numpy()
    n = int(rng.integers(1, 4))
    h, w = (int(v) for v in rng.choice([9, 11, 13, 15, 17], size=2, replace=False))
    drawn = torch.from_numpy(rng.standard_normal((n, 3, h, w)).astype(np.float32))
    drawn = (F.avg_pool2d(drawn, 3, stride=1, padding=1) * 2).numpy()  # smooth, like an image
    return {"cases": [{"x": worked, "ramp": 0.8, "drawn": False},
                      {"x": drawn, "ramp": float(rng.uniform(0.5, 1.0)), "drawn": True}]}


def _ask_tta(flip_tta: Any, cases: dict[str, Any]) -> dict[str, Any]:
    answers = []
    for case in cases["cases"]:
        net = _RecordingNet(ramp=case["ramp"]).eval()
        out = flip_tta(net, values.tensor(case["x"]))
        answers.append({"mask": values.describe(out), "calls": _record_calls(net)})
    return {"cases": answers}


def _tta_candidates(plain, mirrored, upside) -> list[tuple[str, Any, str | None]]:
    return [
        ("tta-not-flipped-back", (plain + mirrored) > 0, None),
        ("tta-averaged-masks", (plain > 0) & (mirrored.flip(-1) > 0),
         "you averaged thresholded masks: (m1 + m2) / 2 > 0.5 keeps only the pixels both agree "
         "on (an AND; with >= it is an OR). Average the logits (or the probabilities), then "
         "threshold once."),
        ("tta-averaged-masks", (plain > 0) | (mirrored.flip(-1) > 0),
         "you averaged thresholded masks: (m1 + m2) / 2 >= 0.5 keeps every pixel either one "
         "finds (an OR). Average the logits (or the probabilities), then threshold once."),
        ("tta-no-flip", plain > 0,
         "only the original image was used: also predict the mirrored image, flip that "
         "prediction back and average."),
        ("tta-no-flip", mirrored.flip(-1) > 0,
         "only the mirrored image was used: average its (flipped-back) logits with those of "
         "the original image."),
        ("tta-wrong-axis", (plain + upside) > 0, None),
    ]


def _judge_tta_case(case: dict[str, Any], answer: dict[str, Any]) -> None:
    name = "flip_tta(model, x)"
    desc = answer["mask"]
    mask = _as_mask(desc, name)
    _check_calls(answer["calls"], None)
    n, _, height, width = case["x"].shape
    if tuple(desc["shape"]) != (n, height, width):
        fail(f"{name} returned shape {tuple(desc['shape'])}, expected (N, H, W) = "
             f"{(n, height, width)}.", mistake="wrong-shape",
             hint="the model returns (N, 1, H, W) logits: take channel 0 before thresholding "
                  "(the mask has no channel axis).")
    found = np.unique(mask.astype(np.float64))
    if not bool(((found == 0) | (found == 1)).all()):
        fail(f"{name} returned values from {found.min():.3g} to {found.max():.3g}, not a 0/1 "
             "mask.", mistake="no-threshold",
             hint="threshold the averaged logits at 0 (or averaged probabilities at 0.5).")
    if desc["dtype"] != "int64":
        fail(f"{name} returned dtype {desc['dtype']}, expected int64.", mistake="mask-not-int64",
             hint="class-index masks are int64 everywhere in the course: `.long()`.")
    net, x = _RecordingNet(ramp=case["ramp"]).eval(), torch.from_numpy(case["x"])
    with torch.no_grad():
        plain, mirrored = net(x)[:, 0], net(x.flip(-1))[:, 0]
        upside = net(x.flip(-2)).flip(-2)[:, 0]
    wrong = _disagreement(mask, ((plain + mirrored.flip(-1)) > 0).numpy())
    if wrong == 0:
        return
    for mistake, variant, hint in _tta_candidates(plain, mirrored, upside):
        if _disagreement(mask, variant.numpy()) == 0:
            fail(f"{name} differs from the expected mask in {wrong:.1%} of the pixels.",
                 mistake=mistake, hint=hint)
    fail(f"{name} differs from the expected mask in {wrong:.1%} of the pixels.",
         mistake="wrong-mask")


def _judge_tta(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    judge_each(cases["cases"], answers["cases"], _judge_tta_case)
    return "mirror-averaged, flipped back"


check_flip_tta = Check(
    "07", "flip_tta", "flip_tta on 2 images",
    references=("segkit.checks.lesson07.reference_flip_tta",),
    draw_cases=_draw_tta, ask_student=_ask_tta, judge_answers=_judge_tta)

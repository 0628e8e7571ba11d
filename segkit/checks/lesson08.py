"""Checks of lesson 08 (pretrained encoders and torchvision's segmentation models).

==========================  ===============================================================
check                       mistakes it names (``CheckFailed.mistake``)
==========================  ===============================================================
``check_encoder_features``  ``not-a-list``, ``missing-stem`` (four maps: the stem left
                            out), ``skips-reversed`` (deepest map first),
                            ``stem-after-maxpool`` (the stem map taken after the max
                            pooling: two maps at 1/4), ``wrong-number-of-maps``,
                            ``stem-no-relu``, ``features-mismatch``
``check_freeze_encoder``    ``params-generator`` (a generator, used up after one pass),
                            ``not-a-list``, ``encoder-not-frozen`` (some encoder tensors,
                            often the BatchNorm weights, still train), ``froze-decoder``,
                            ``optimizer-gets-frozen`` (the frozen parameters returned for
                            the optimizer), ``params-missing``, ``batchnorm-stats-update``
                            (BatchNorm running statistics still change in train mode)
==========================  ===============================================================

Both checks build their own small models inside ``torch.random.fork_rng`` (random weights,
nothing downloaded): the notebook's models and random numbers are left as they were.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from segkit import pretrained
from segkit.checks.core import expect, fail, run_check

__all__ = ["check_encoder_features", "check_freeze_encoder", "reference_encoder_features",
           "reference_freeze_encoder"]

reference_encoder_features = pretrained.encoder_features
reference_freeze_encoder = pretrained.freeze_encoder


def _shapes(maps: Any) -> list[tuple[int, ...]]:
    return [tuple(int(n) for n in m.shape) for m in maps]


def _fmt(shapes: list[tuple[int, ...]]) -> str:
    return "[" + ", ".join("(" + ", ".join(str(n) for n in s) + ")" for s in shapes) + "]"


# --------------------------------------------------------------------------- exercise 1


def _check_features_on(encoder_features: Callable, name: str, size: tuple[int, int]) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(8)
        resnet = pretrained.build_resnet(name).eval()
        x = torch.randn(2, 3, *size)
    with torch.no_grad():
        want = pretrained.encoder_features(resnet, x)
        got = encoder_features(resnet, x)
    what = f"encoder_features({name}, x) for x of shape {_fmt([tuple(x.shape)])[1:-1]}"
    if not isinstance(got, (list, tuple)) or not all(isinstance(m, torch.Tensor) for m in got):
        fail(f"{what} should return a list of 5 tensors, but it returned a "
             f"{type(got).__name__}", mistake="not-a-list",
             hint="collect the five maps in a list, shallowest first: "
                  "[stem, layer1, layer2, layer3, layer4].")
    got_s, want_s = _shapes(got), _shapes(want)
    if got_s == want_s[1:]:
        fail(f"{what} gave 4 maps {_fmt(got_s)}; expected 5 {_fmt(want_s)}",
             mistake="missing-stem",
             hint="the stem's output (relu(bn1(conv1(x))), at half the input size) is the "
                  "shallowest skip: without it the decoder has nothing at 1/2 size to add "
                  "detail from. Keep it as the first map, before the max pooling.")
    if got_s == want_s[::-1]:
        fail(f"{what} gave the maps deepest first: {_fmt(got_s)}", mistake="skips-reversed",
             hint="return the maps in the order the encoder makes them, shallowest first "
                  "(stem, layer1 .. layer4); the decoder walks them backwards itself. In the "
                  "wrong order each Up block would meet a skip of the wrong size and channels.")
    if len(got_s) == 5 and got_s[0][2:] == want_s[1][2:] and got_s[1:] == want_s[1:]:
        fail(f"{what}: the first map has shape {got_s[0]}, the size of layer1's; expected "
             f"{want_s[0]}", mistake="stem-after-maxpool",
             hint="take the stem map after conv1, bn1 and relu but BEFORE resnet.maxpool: "
                  "the max pooling halves it again, and then two skips have the same 1/4 "
                  "size while nothing is left at 1/2. (list(resnet.children())[:4] includes "
                  "the maxpool.)")
    if len(got_s) != 5:
        fail(f"{what} gave {len(got_s)} maps {_fmt(got_s)}; expected 5 {_fmt(want_s)}",
             mistake="wrong-number-of-maps",
             hint="one map per stage: the stem (before maxpool), then layer1, layer2, layer3 "
                  "and layer4, each fed with the one before.")
    if got_s != want_s:
        fail(f"{what} gave shapes {_fmt(got_s)}; expected {_fmt(want_s)}",
             mistake="features-mismatch",
             hint="each layer takes the previous map: layer1(maxpool(stem)), layer2(f1), "
                  "layer3(f2), layer4(f3). Did a stage get the wrong input?")
    if float(got[0].min()) < 0 and float(want[0].min()) >= 0:
        fail(f"{what}: the stem map has negative values (min {float(got[0].min()):.3f})",
             mistake="stem-no-relu",
             hint="the stem is conv1 -> bn1 -> relu: apply resnet.relu before keeping it.")
    for i, (g, w) in enumerate(zip(got, want)):
        if not torch.allclose(g, w, atol=1e-4, rtol=1e-4):
            fail(f"{what}: map {i} has the right shape but different values",
                 mistake="features-mismatch",
                 hint="use the resnet's own layers in order: conv1, bn1, relu (the stem), "
                      "maxpool, layer1, layer2, layer3, layer4; nothing else in between.")


def check_encoder_features(encoder_features: Callable) -> Any:
    """The five maps of resnet18 and resnet50 (64x96 and 65x97 inputs) match segkit's."""
    def body() -> str:
        _check_features_on(encoder_features, "resnet18", (64, 96))
        _check_features_on(encoder_features, "resnet50", (64, 96))
        _check_features_on(encoder_features, "resnet18", (65, 97))
        return "resnet18 and resnet50, 64x96 and 65x97"
    return run_check("encoder_features", "encoder_features", body)


# --------------------------------------------------------------------------- exercise 2


def check_freeze_encoder(freeze_encoder: Callable) -> Any:
    """Encoder frozen (gradients and BatchNorm statistics), decoder trains, list returned."""
    def body() -> str:
        with torch.random.fork_rng():
            torch.manual_seed(8)
            model = pretrained.ResNetUNet(num_classes=1, encoder="resnet18")
            x = torch.randn(2, 3, 64, 64)
        model.train()
        result = freeze_encoder(model)
        if isinstance(result, (types.GeneratorType, filter, map)) or (
                hasattr(result, "__next__") and not isinstance(result, (list, tuple))):
            fail("freeze_encoder(model) returned a generator (or iterator), not a list",
                 mistake="params-generator",
                 hint="a generator such as model.parameters() or (p for p in ...) is used up "
                      "after one pass: the optimizer would take it, and the next loop over it "
                      "(counting, clipping gradients) sees nothing. Return a list: "
                      "[p for p in model.parameters() if p.requires_grad].")
        if not isinstance(result, (list, tuple)):
            fail(f"freeze_encoder(model) should return a list of parameters, but it returned "
                 f"a {type(result).__name__}", mistake="not-a-list",
                 hint="return the parameters that still train, as a list, for the optimizer.")
        enc = list(model.encoder.parameters())
        still = [p for p in enc if p.requires_grad]
        expect(not still, f"{len(still)} of the encoder's {len(enc)} parameter tensors still "
                          "have requires_grad=True", mistake="encoder-not-frozen",
               hint="set requires_grad to False on EVERY parameter of model.encoder "
                    "(for p in model.encoder.parameters(): p.requires_grad_(False)), the "
                    "BatchNorm weights and biases included, not only the conv weights or "
                    "the last stages.")
        rest = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
        frozen_rest = [p for p in rest if not p.requires_grad]
        expect(not frozen_rest, f"{len(frozen_rest)} of the {len(rest)} parameter tensors of "
                                "the decoder and head are frozen too",
               mistake="froze-decoder",
               hint="freeze only model.encoder: model.requires_grad_(False) freezes the "
                    "decoder and the head too, and then nothing learns (the new head starts "
                    "random and must train).")
        ids = {id(p) for p in result}
        frozen_given = [p for p in result if isinstance(p, torch.Tensor) and not p.requires_grad]
        expect(not frozen_given, f"the returned list holds {len(frozen_given)} frozen "
                                 f"parameter tensors ({len(result)} in all)",
               mistake="optimizer-gets-frozen",
               hint="return only the parameters that still train "
                    "([p for p in model.parameters() if p.requires_grad]). PyTorch's optimizers "
                    "skip tensors without a gradient, so training would run, but the "
                    "optimizer's parameter count says the wrong thing, and if you unfreeze "
                    "later those tensors start training at this group's learning rate "
                    "without your deciding it.")
        missing = [p for p in rest if id(p) not in ids]
        expect(not missing, f"{len(missing)} of the {len(rest)} trainable parameter tensors "
                            "(decoder and head) are not in the returned list",
               mistake="params-missing",
               hint="return every parameter that still trains: the decoder's and the head's "
                    "([p for p in model.parameters() if p.requires_grad]).")
        bn = model.encoder.bn1
        before = bn.running_mean.clone()
        model.train()  # what fit() does at the start of every epoch
        with torch.no_grad():
            model(x)
        expect(torch.equal(before, bn.running_mean),
               "after freeze_encoder(model), model.train() and one forward pass, the encoder's "
               "BatchNorm running_mean changed", mistake="batchnorm-stats-update",
               hint="BatchNorm's running mean and variance are buffers, not parameters: "
                    "requires_grad=False does not stop them, and in train mode every forward "
                    "pass overwrites them with our small batches' statistics. Put the encoder "
                    "in eval mode AND set model.encoder_frozen = True, so that ResNetUNet keeps "
                    "it there when model.train() is called.")
        return f"{len(enc)} encoder tensors frozen, {len(rest)} train"
    return run_check("freeze_encoder", "freeze_encoder", body)

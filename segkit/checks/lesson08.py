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

from segkit import pretrained
from segkit.checks.core import check, expect, fail, shape_text

__all__ = ["check_encoder_features", "check_freeze_encoder", "reference_encoder_features",
           "reference_freeze_encoder"]

reference_encoder_features = pretrained.encoder_features
reference_freeze_encoder = pretrained.freeze_encoder


def _shapes(maps: Any) -> list[tuple[int, ...]]:
    return [tuple(int(n) for n in m.shape) for m in maps]


def _fmt(shapes: list[tuple[int, ...]]) -> str:
    return "[" + ", ".join(shape_text(s) for s in shapes) + "]"


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
             f"{type(got).__name__}", mistake="not-a-list")
    got_s, want_s = _shapes(got), _shapes(want)
    if got_s == want_s[1:]:
        fail(f"{what} gave 4 maps {_fmt(got_s)}; expected 5 {_fmt(want_s)}",
             mistake="missing-stem")
    if got_s == want_s[::-1]:
        fail(f"{what} gave the maps deepest first: {_fmt(got_s)}", mistake="skips-reversed")
    if len(got_s) == 5 and got_s[0][2:] == want_s[1][2:] and got_s[1:] == want_s[1:]:
        fail(f"{what}: the first map has shape {got_s[0]}, the size of layer1's; expected "
             f"{want_s[0]}", mistake="stem-after-maxpool")
    if len(got_s) != 5:
        fail(f"{what} gave {len(got_s)} maps {_fmt(got_s)}; expected 5 {_fmt(want_s)}",
             mistake="wrong-number-of-maps")
    if got_s != want_s:
        fail(f"{what} gave shapes {_fmt(got_s)}; expected {_fmt(want_s)}",
             mistake="features-mismatch")
    if float(got[0].min()) < 0 and float(want[0].min()) >= 0:
        fail(f"{what}: the stem map has negative values (min {float(got[0].min()):.3f})",
             mistake="stem-no-relu")
    for i, (g, w) in enumerate(zip(got, want)):
        if not torch.allclose(g, w, atol=1e-4, rtol=1e-4):
            fail(f"{what}: map {i} has the right shape but different values",
                 mistake="features-mismatch",
                 hint="use the resnet's own layers in order: conv1, bn1, relu (the stem), "
                      "maxpool, layer1, layer2, layer3, layer4; nothing else in between.")


@check("encoder_features", "encoder_features")
def check_encoder_features(encoder_features: Callable) -> Any:
    """The five maps of resnet18 and resnet50 (64x96 and 65x97 inputs) match segkit's."""
    _check_features_on(encoder_features, "resnet18", (64, 96))
    _check_features_on(encoder_features, "resnet50", (64, 96))
    _check_features_on(encoder_features, "resnet18", (65, 97))
    return "resnet18 and resnet50, 64x96 and 65x97"


# --------------------------------------------------------------------------- exercise 2


@check("freeze_encoder", "freeze_encoder")
def check_freeze_encoder(freeze_encoder: Callable) -> Any:
    """Encoder frozen (gradients and BatchNorm statistics), decoder trains, list returned."""
    with torch.random.fork_rng():
        torch.manual_seed(8)
        model = pretrained.ResNetUNet(num_classes=1, encoder="resnet18")
        x = torch.randn(2, 3, 64, 64)
    model.train()
    result = freeze_encoder(model)
    if isinstance(result, (types.GeneratorType, filter, map)) or (
            hasattr(result, "__next__") and not isinstance(result, (list, tuple))):
        fail("freeze_encoder(model) returned a generator (or iterator), not a list",
             mistake="params-generator")
    if not isinstance(result, (list, tuple)):
        fail(f"freeze_encoder(model) should return a list of parameters, but it returned "
             f"a {type(result).__name__}", mistake="not-a-list",
             hint="return the parameters that still train, as a list, for the optimizer.")
    enc = list(model.encoder.parameters())
    still = [p for p in enc if p.requires_grad]
    expect(not still, f"{len(still)} of the encoder's {len(enc)} parameter tensors still "
                      "have requires_grad=True", mistake="encoder-not-frozen")
    rest = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    frozen_rest = [p for p in rest if not p.requires_grad]
    expect(not frozen_rest, f"{len(frozen_rest)} of the {len(rest)} parameter tensors of "
                            "the decoder and head are frozen too",
           mistake="froze-decoder")
    ids = {id(p) for p in result}
    frozen_given = [p for p in result if isinstance(p, torch.Tensor) and not p.requires_grad]
    expect(not frozen_given, f"the returned list holds {len(frozen_given)} frozen "
                             f"parameter tensors ({len(result)} in all)",
           mistake="optimizer-gets-frozen")
    missing = [p for p in rest if id(p) not in ids]
    expect(not missing, f"{len(missing)} of the {len(rest)} trainable parameter tensors "
                        "(decoder and head) are not in the returned list",
           mistake="params-missing")
    bn = model.encoder.bn1
    before = bn.running_mean.clone()
    model.train()  # what fit() does at the start of every epoch
    with torch.no_grad():
        model(x)
    expect(torch.equal(before, bn.running_mean),
           "after freeze_encoder(model), model.train() and one forward pass, the encoder's "
           "BatchNorm running_mean changed", mistake="batchnorm-stats-update")
    return f"{len(enc)} encoder tensors frozen, {len(rest)} train"

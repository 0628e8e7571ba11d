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

import functools
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from segkit import pretrained
from segkit.checks import values
from segkit.checks.core import Check, fail, judge_each, shape_text

__all__ = ["check_encoder_features", "check_freeze_encoder", "reference_encoder_features",
           "reference_freeze_encoder"]

reference_encoder_features = pretrained.encoder_features
reference_freeze_encoder = pretrained.freeze_encoder


def _fmt(shapes: list[tuple[int, ...]]) -> str:
    return "[" + ", ".join(shape_text(s) for s in shapes) + "]"


def _fresh(make: Callable[[], torch.nn.Module], state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A new module from ``make`` holding a copy of ``state`` (built on the "meta" device,
    so no time goes into random initial weights that are replaced anyway)."""
    with torch.device("meta"):
        module = make()
    module.load_state_dict({k: v.clone() for k, v in state.items()}, assign=True)
    return module


@functools.lru_cache(maxsize=8)
def _seeded_state(kind: str, name: str, seed: int, classes: int = 1) -> dict[str, torch.Tensor]:
    """The weights torch gives a ResNet (or a ResNetUNet) for ``seed``, made once per process."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = pretrained.build_resnet(name) if kind == "resnet" else \
            pretrained.ResNetUNet(num_classes=classes, encoder=name)
    return module.state_dict()


def _resnet(name: str, seed: int) -> torch.nn.Module:
    """A random torchvision ResNet, the same for the same seed (nothing downloaded)."""
    return _fresh(lambda: pretrained.build_resnet(name),
                  _seeded_state("resnet", name, seed)).eval()


# --------------------------------------------------------------------------- exercise 1


def _draw_features(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example (resnet18 and resnet50 on 64x96, resnet18 on 65x97), then a
    resnet18 of drawn weights on a drawn odd, unequal size."""
    h, w = (int(v) for v in rng.choice(np.arange(33, 80, 2), size=2, replace=False))
    cases = [{"name": "resnet18", "x": [1, 3, 64, 96], "seed": 8, "drawn": False},
             {"name": "resnet50", "x": [1, 3, 64, 96], "seed": 8, "drawn": False},
             {"name": "resnet18", "x": [1, 3, 65, 97], "seed": 8, "drawn": False},
             {"name": "resnet18", "x": [int(rng.integers(1, 3)), 3, h, w],
              "seed": int(rng.integers(2**31)), "drawn": True}]
    for case in cases:
        case["images"] = rng.standard_normal(case["x"]).astype(np.float32)
    return {"cases": cases}


def _ask_features(encoder_features: Any, cases: dict[str, Any]) -> dict[str, Any]:
    answers = []
    for case in cases["cases"]:
        resnet = _resnet(case["name"], case["seed"])
        with torch.no_grad():
            answers.append(values.describe(encoder_features(resnet, values.tensor(case["images"]))))
    return {"cases": answers}


def _judge_features_case(case: dict[str, Any], got: dict[str, Any]) -> None:
    x = values.tensor(case["images"])
    with torch.no_grad():
        want = pretrained.encoder_features(_resnet(case["name"], case["seed"]), x)
    what = f"encoder_features({case['name']}, x) for x of shape {shape_text(tuple(x.shape))}"
    maps = got.get("items", []) if got["kind"] in ("list", "tuple") else None
    if maps is None or not all(m["kind"] == "tensor" for m in maps):
        fail(f"{what} should return a list of 5 tensors, but it returned "
             f"{values.shown(got)}", mistake="not-a-list")
    got_s = [tuple(m["shape"]) for m in maps]
    want_s = [tuple(w.shape) for w in want]
    if got_s == want_s[1:]:
        fail(f"{what} gave 4 maps {_fmt(got_s)}; expected 5 {_fmt(want_s)}", mistake="missing-stem")
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
    arrays = [values.array(m) for m in maps]
    if any(a is None for a in arrays):
        fail(f"{what}: the maps' values did not come back", mistake="check-error")
    if float(arrays[0].min()) < 0 <= float(want[0].min()):
        fail(f"{what}: the stem map has negative values (min {float(arrays[0].min()):.3f})",
             mistake="stem-no-relu")
    for i, (g, w) in enumerate(zip(arrays, want)):
        if not np.allclose(g, w.numpy(), atol=1e-4, rtol=1e-4):
            fail(f"{what}: map {i} has the right shape but different values",
                 mistake="features-mismatch",
                 hint="use the resnet's own layers in order: the stem (conv1, bn1, relu), "
                      "maxpool, layer1, layer2, layer3, layer4; nothing else in between.")


def _judge_features(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    judge_each(cases["cases"], answers["cases"], _judge_features_case)
    return "resnet18 and resnet50, 64x96 and 65x97"


check_encoder_features = Check(
    "08", "encoder_features", "encoder_features",
    references=("segkit.checks.lesson08.reference_encoder_features",
                "segkit.pretrained.encoder_features"),
    draw_cases=_draw_features, ask_student=_ask_features, judge_answers=_judge_features)


# --------------------------------------------------------------------------- exercise 2


def _draw_freeze(rng: np.random.Generator) -> dict[str, Any]:
    """The worked example (a binary resnet18 U-Net, a 64x64 batch), then one with a drawn
    number of classes, weights and batch size."""
    h, w = (int(v) for v in rng.choice(np.arange(32, 72, 8), size=2, replace=False))
    with torch.random.fork_rng(devices=[]):  # the batch the lesson's check has always used
        torch.manual_seed(8)
        pretrained.ResNetUNet(num_classes=1, encoder="resnet18")
        worked = torch.randn(2, 3, 64, 64).numpy()
    return {"cases": [
        {"classes": 1, "seed": 8, "x": worked, "drawn": False},
        {"classes": int(rng.integers(1, 4)), "seed": int(rng.integers(2**31)),
         "x": rng.standard_normal((2, 3, h, w)).astype(np.float32), "drawn": True}]}


def _unet(case: dict[str, Any]) -> pretrained.ResNetUNet:
    return _fresh(lambda: pretrained.ResNetUNet(num_classes=case["classes"], encoder="resnet18"),
                  _seeded_state("unet", "resnet18", case["seed"], case["classes"]))


def _ask_freeze(freeze_encoder: Any, cases: dict[str, Any]) -> dict[str, Any]:
    answers = []
    for case in cases["cases"]:
        model = _unet(case)
        model.train()
        result = freeze_encoder(model)
        names = {id(p): n for n, p in model.named_parameters()}
        kind = ("generator" if isinstance(result, (types.GeneratorType, filter, map))
                or (hasattr(result, "__next__") and not isinstance(result, (list, tuple)))
                else "list" if isinstance(result, (list, tuple)) else "other")
        returned = [names.get(id(p), "?") for p in result] if kind == "list" else []
        bn = model.encoder.bn1
        before = bn.running_mean.clone()
        model.train()  # what fit() does at the start of every epoch
        with torch.no_grad():
            model(values.tensor(case["x"]))
        answers.append({"kind": kind, "shown": values.shown(values.describe(result)),
                        "returned": returned,
                        "frozen": [n for n, p in model.named_parameters() if not p.requires_grad],
                        "stats_moved": not torch.equal(before, bn.running_mean)})
    return {"cases": answers}


def _judge_freeze_case(case: dict[str, Any], answer: dict[str, Any]) -> str:
    if answer["kind"] == "generator":
        fail("freeze_encoder(model) returned a generator (or iterator), not a list",
             mistake="params-generator")
    if answer["kind"] != "list":
        fail(f"freeze_encoder(model) should return a list of parameters, but it returned "
             f"{answer['shown']}", mistake="not-a-list",
             hint="return the parameters that still train, as a list, for the optimizer.")
    model = _unet(case)
    names = [n for n, _ in model.named_parameters()]
    encoder = [n for n in names if n.startswith("encoder.")]
    rest = [n for n in names if not n.startswith("encoder.")]
    frozen = set(answer["frozen"])
    still = [n for n in encoder if n not in frozen]
    if still:
        fail(f"{len(still)} of the encoder's {len(encoder)} parameter tensors still have "
             "requires_grad=True", mistake="encoder-not-frozen")
    frozen_rest = [n for n in rest if n in frozen]
    if frozen_rest:
        fail(f"{len(frozen_rest)} of the {len(rest)} parameter tensors of the decoder and head "
             "are frozen too", mistake="froze-decoder")
    given_frozen = [n for n in answer["returned"] if n in frozen]
    if given_frozen:
        fail(f"the returned list holds {len(given_frozen)} frozen parameter tensors "
             f"({len(answer['returned'])} in all)", mistake="optimizer-gets-frozen")
    missing = [n for n in rest if n not in answer["returned"]]
    if missing:
        fail(f"{len(missing)} of the {len(rest)} trainable parameter tensors (decoder and "
             "head) are not in the returned list", mistake="params-missing")
    if answer["stats_moved"]:
        fail("after freeze_encoder(model), model.train() and one forward pass, the encoder's "
             "BatchNorm running_mean changed", mistake="batchnorm-stats-update")
    return f"{len(encoder)} encoder tensors frozen, {len(rest)} train"


def _judge_freeze(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    return judge_each(cases["cases"], answers["cases"], _judge_freeze_case)[0]


check_freeze_encoder = Check(
    "08", "freeze_encoder", "freeze_encoder",
    references=("segkit.checks.lesson08.reference_freeze_encoder",
                "segkit.pretrained.freeze_encoder"),
    draw_cases=_draw_freeze, ask_student=_ask_freeze, judge_answers=_judge_freeze)

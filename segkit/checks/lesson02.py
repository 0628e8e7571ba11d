"""Checks of lesson 02 (the U-Net), and the picture of the U the lesson draws.

The student builds the four blocks of ``segkit.unet``; these checks compare them with
segkit's blocks, on shapes and on outputs with known weights:

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
                          ``up-wrong-upsample``, ``up-no-pad-to-skip``, ``up-pad-order``
                          (F.pad's amounts for height and width swapped: right only when
                          both differences are equal), ``wrong-out-channels``,
                          ``up-pad-differs``, ``up-mismatch``
``check_unet``            ``unet-depth-off-by-one``, ``unet-param-count``,
                          ``unet-output-shape``, ``unet-odd-size``, ``unet-wiring``
========================  ==================================================================

Every check also names ``not-a-module`` (the class builds something that is not an
``nn.Module``) and ``layers-not-registered`` (layers kept in a plain Python list, tuple
or dict, which PyTorch does not see); crashes are reported as ``crashed``.

The cases are drawn fresh each run (:class:`~segkit.checks.core.Check`): the lesson's
worked example (the sizes the ✅ line quotes) and blocks of drawn widths on inputs of odd
and unequal sizes; ``Up`` meets skips whose height and width differ in parity, so the
padding of one differs from the other's (dy != dx). "Known weights": ``ask`` gives the
student's layers random weights in the order ``forward`` runs them and reports them with
the outputs; the judge copies them into segkit's block (see :mod:`segkit.checks.modules`)
and compares the outputs in eval mode. A concatenation ``[up, skip]`` instead of
``[skip, up]`` is as good: the judge tries both halves of the next conv's weights.

The lesson's pictures are in segkit proper: ``segkit.shapes.decoder_table`` and
``segkit.viz.draw_unet``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segkit import unet
from segkit.checks import core, modules, values
from segkit.checks.core import Check, close, fail, judge_each, judging, shape_text

__all__ = ["check_double_conv", "check_down", "check_up", "check_unet"]


# --------------------------------------------------------------------------- asking a block

_MAX_KNOWN_WEIGHTS = 2_000_000  # parameters sent back for the known-weights comparison


def _randn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _odd_unequal(rng: np.random.Generator, low: int, high: int) -> tuple[int, int]:
    """(H, W), odd and unequal, in [low, high]."""
    odd = [n for n in range(low, high + 1) if n % 2]
    h, w = rng.choice(odd, size=2, replace=False)
    return int(h), int(w)


def _ask_block(cls: Any, args: list, inputs: list[list[np.ndarray]], seed: int,
               tconv_shapes: bool = False) -> dict[str, Any]:
    """Build ``cls(*args)``; its layers, the order they run, known weights, its outputs.

    ``inputs``: one list of arrays per call; the first must run (the run order is taken
    on it); the others may fail, which is recorded (``Up`` without padding, say).
    """
    block = cls(*args)
    answer: dict[str, Any] = {"built": modules.describe_module(block)}
    if not answer["built"]["module"] or answer["built"]["params"] > _MAX_KNOWN_WEIGHTS:
        return answer  # a block this big is the wrong size: its parameter count says so
    first = [values.tensor(x) for x in inputs[0]]
    order, error = values.call(modules.run_order, block, *first)
    layers = modules.layers_of(block)
    answer["order"], answer["order_error"] = order, error
    if order is not None:
        ran = [layers[i] for i in order]
        modules.randomize(ran, torch.Generator().manual_seed(seed))
        answer["weights"] = modules.weights_of(ran)
    shapes: list[list[int]] = []
    hooks = []
    if tconv_shapes:
        hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(list(o.shape)))
                 for m in layers if isinstance(m, nn.ConvTranspose2d)][:1]
    block.eval()
    outputs = []
    with torch.no_grad():
        for args_ in inputs:
            result, error = values.call(block, *[values.tensor(x) for x in args_])
            outputs.append(error or values.describe(result))
    for hook in hooks:
        hook.remove()
    answer["outputs"], answer["tconv_shapes"] = outputs, shapes
    return answer


def _ask_blocks(cls: Any, cases: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [_ask_block(cls, c["args"], c["inputs"], c["weights_seed"],
                                 tconv_shapes=c.get("tconv", False))
                      for c in cases["cases"]]}


# --------------------------------------------------------------------------- judging a block


def _built(answer: dict[str, Any], case: dict[str, Any], exercise: str) -> dict[str, Any]:
    """The block's description, or the failure when it is no module, hides its layers, or
    still holds the lesson's stub."""
    built = answer["built"]
    what = f"{exercise}({', '.join(map(str, case['args']))})"
    for record in [core.raised(answer.get("order_error"))] + [
            core.raised(out) for out in answer.get("outputs", [])]:
        if record and record.get("stub"):
            core.fail_for(record, exercise)
    with judging(case["drawn"]):
        if not built["module"]:
            fail(f"{what} is a {built['type']}, not an nn.Module", mistake="not-a-module")
        if built["unregistered"]:
            fail(f"{what} keeps layers in {', '.join(built['unregistered'])}, a plain Python "
                 f"container, so PyTorch does not see them: the block has "
                 f"{built['params']:,} parameters", mistake="layers-not-registered")
    return built


def _output(answer: dict[str, Any], index: int) -> dict[str, Any]:
    """The described output of call ``index``, or the crash it was."""
    if "outputs" not in answer:  # not run: more parameters than any right block has
        return {"kind": "none", "type": "not run"}
    return core.value_of(answer["outputs"][index])


def _shape(desc: dict[str, Any]) -> tuple[int, ...] | None:
    return tuple(desc["shape"]) if desc.get("kind") in ("tensor", "ndarray") else None


def _same(got: dict[str, Any], want: torch.Tensor) -> bool:
    """Same shape and values, within a tolerance scaled to the values' size."""
    array = values.array(got) if got.get("kind") == "tensor" else None
    if array is None:
        return False
    tol = 1e-4 * max(1.0, float(want.abs().max()))
    return close(array, want.detach().numpy(), abs_tol=tol)


def _ref_layers(ref: nn.Module, *inputs: torch.Tensor) -> list[nn.Module]:
    layers = modules.layers_of(ref)
    return [layers[i] for i in modules.run_order(ref, *inputs)]


def _loaded(ref: nn.Module, answer: dict[str, Any], inputs: list[torch.Tensor]) -> bool:
    """Copy the student's known weights into ``ref`` (False when the layers don't pair)."""
    if answer.get("order") is None or answer.get("weights") is None:
        return False
    descs = [answer["built"]["layers"][i] for i in answer["order"]]
    return modules.load_weights(_ref_layers(ref, *inputs), descs, answer["weights"])


def _layers_text(built: dict[str, Any]) -> str:
    """'Conv2d(3->8, 3x3) 216 + BatchNorm2d(8) 16 + ...' for a hint."""
    parts = []
    for layer in built["layers"]:
        if layer["kind"] == "BatchNorm2d":
            parts.append(f"BatchNorm2d({layer['features']}) {layer['params']:,}")
        else:
            k = "x".join(map(str, layer["kernel"]))
            bias = " +bias" if layer["bias"] else ""
            parts.append(f"{layer['kind']}({layer['in']}->{layer['out']}, {k}{bias}) "
                         f"{layer['params']:,}")
    return " + ".join(parts) or "no conv or BatchNorm layers"


def _ref_text(ref: nn.Module) -> str:
    return _layers_text(modules.describe_module(ref))


def _count(module: nn.Module) -> int:
    return unet.count_parameters(module, trainable_only=False)


def _inputs(case: dict[str, Any], index: int = 0) -> list[torch.Tensor]:
    return [values.tensor(x) for x in case["inputs"][index]]


# --------------------------------------------------------------------------- DoubleConv

_DC_HINT = ("a DoubleConv is two rounds of conv (3x3, padded so H and W stay) -> BatchNorm "
            "-> ReLU; the first conv goes from in_ch to out_ch channels, the second from "
            "out_ch to out_ch.")


def _draw_double_conv(rng: np.random.Generator) -> dict[str, Any]:
    """DoubleConv(3, 8) on (2, 3, 17, 23), then two drawn widths on odd, unequal sizes."""
    cases = [{"args": [3, 8], "inputs": [[_randn(rng, 2, 3, 17, 23)]], "drawn": False}]
    cin, cout = (int(v) for v in rng.choice(np.arange(1, 11), size=2, replace=False))
    square = int(rng.integers(4, 11))
    for args in ([cin, cout], [square, square]):
        h, w = _odd_unequal(rng, 5, 15)
        cases.append({"args": args, "drawn": True,
                      "inputs": [[_randn(rng, int(rng.integers(1, 4)), args[0], h, w)]]})
    for case in cases:
        case["weights_seed"] = int(rng.integers(2**31))
    return {"cases": cases}


def _double_conv_variants(ref: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of the usual wrong orders, with ``ref``'s (the student's) weights."""
    c1, b1, _, c2, b2, _ = ref.double_conv
    return {"no-middle-relu": F.relu(b2(c2(b1(c1(x))))),
            "no-last-relu": b2(c2(F.relu(b1(c1(x))))),
            "no-relu": b2(c2(b1(c1(x)))),
            "relu-before-bn": b2(F.relu(c2(b1(F.relu(c1(x))))))}


def _judge_double_conv_case(case: dict[str, Any], answer: dict[str, Any]) -> str:
    cin, cout = case["args"]
    what = f"DoubleConv({cin}, {cout})"
    built = _built(answer, case, "DoubleConv")
    kinds = [layer["kind"] for layer in built["layers"]]
    x = _inputs(case)[0]
    n, _, h, w = x.shape
    with judging(case["drawn"]):
        if kinds.count("BatchNorm2d") != 2:
            fail(f"{what} has {kinds.count('BatchNorm2d')} nn.BatchNorm2d layers, expected 2 "
                 "(one after each conv)", mistake="missing-batchnorm")
        if kinds.count("Conv2d") != 2:
            fail(f"{what} has {kinds.count('Conv2d')} nn.Conv2d layers, expected 2 (yours: "
                 f"{_layers_text(built)})", mistake="doubleconv-param-count")
        shape = _shape(_output(answer, 0))
        given = shape_text((n, cin, h, w))
        if shape is not None and len(shape) == 4 and shape[2:] != (h, w):
            fail(f"{what} turned a {given} input into {shape_text(shape)}: the map lost "
                 f"{h - shape[2]} rows and {w - shape[3]} columns", mistake="conv-no-padding")
        if shape != (n, cout, h, w):
            fail(f"{what} turned a {given} input into {shape_text(shape)}, expected "
                 f"{shape_text((n, cout, h, w))}", mistake="wrong-out-channels")
        ref = unet.DoubleConv(cin, cout)
        want = _count(ref)
        if built["params"] != want:
            with_bias = sum(layer["out"] for layer in built["layers"]
                            if layer["kind"] == "Conv2d" and layer["bias"])
            if built["params"] - want == with_bias and with_bias:
                fail(f"{what} has {built['params']:,} parameters, expected {want:,}: "
                     f"{with_bias} of them are conv biases", mistake="conv-bias-before-batchnorm")
            fail(f"{what} has {built['params']:,} parameters, expected {want:,}",
                 mistake="doubleconv-param-count",
                 hint=f"yours: {_layers_text(built)}; expected: {_ref_text(ref)}. " + _DC_HINT)
        if not _loaded(ref, answer, [x]):
            fail(f"could not pair the layers of your {what} with segkit's in the order "
                 f"forward runs them (yours: {_layers_text(built)})", mistake="doubleconv-order")
        _expect_double_conv_output(ref.eval(), x, _output(answer, 0), what)
    return f"{want:,} parameters in {what}; output {shape_text((n, cout, h, w))} keeps {h}x{w}"


def _expect_double_conv_output(ref: nn.Module, x: torch.Tensor, got: dict[str, Any],
                               what: str) -> None:
    """With the student's weights in segkit's block, the outputs must agree; if not, which
    of the usual wrong orders gives the student's?"""
    with torch.no_grad():
        if _same(got, ref(x)):
            return
        which = next((k for k, v in _double_conv_variants(ref, x).items() if _same(got, v)),
                     None)
    differs = (f"with the same weights, your {what}'s output differs from segkit's")
    low = values.array(got)
    if which in ("no-middle-relu", "no-last-relu", "no-relu") or (
            which is None and low is not None and float(low.min()) < 0):
        where = {"no-middle-relu": "after the first BatchNorm",
                 "no-last-relu": "after the second BatchNorm",
                 "no-relu": "after both BatchNorms"}.get(which, "somewhere (negative values "
                                                                "come out)")
        fail(f"{differs}: a ReLU is missing {where}", mistake="missing-relu")
    if which == "relu-before-bn":
        fail(f"{differs}: the ReLU comes before the BatchNorm", mistake="doubleconv-order",
             hint="the order is conv -> BatchNorm -> ReLU, twice, as in milesial's "
                  "Pytorch-UNet.")
    fail(differs, mistake="doubleconv-order",
         hint="check the order of the layers in forward, and that it uses each one once. "
              + _DC_HINT)


def _judge_double_conv(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    return judge_each(cases["cases"], answers["cases"], _judge_double_conv_case)[0]


check_double_conv = Check(
    "02", "DoubleConv", "DoubleConv keeps H and W and matches segkit's block",
    references=("segkit.unet.DoubleConv",), name="check_double_conv",
    draw_cases=_draw_double_conv, ask_student=_ask_blocks, judge_answers=_judge_double_conv)


# --------------------------------------------------------------------------- Down

_DOWN_HINT = "Down is a 2x2 max pooling followed by DoubleConv(in_ch, out_ch)."


def _draw_down(rng: np.random.Generator) -> dict[str, Any]:
    """Down(4, 8) on (2, 4, 17, 23), then a drawn width on odd, unequal sizes."""
    cin, cout = (int(v) for v in rng.choice(np.arange(1, 11), size=2, replace=False))
    h, w = _odd_unequal(rng, 7, 21)
    cases = [{"args": [4, 8], "inputs": [[_randn(rng, 2, 4, 17, 23)]], "drawn": False},
             {"args": [cin, cout], "drawn": True,
              "inputs": [[_randn(rng, int(rng.integers(1, 4)), cin, h, w)]]}]
    for case in cases:
        case["weights_seed"] = int(rng.integers(2**31))
    return {"cases": cases}


def _judge_down_case(case: dict[str, Any], answer: dict[str, Any]) -> str:
    cin, cout = case["args"]
    what = f"Down({cin}, {cout})"
    built = _built(answer, case, "Down")
    x = _inputs(case)[0]
    n, _, h, w = x.shape
    given, want_shape = shape_text((n, cin, h, w)), (n, cout, h // 2, w // 2)
    with judging(case["drawn"]):
        shape = _shape(_output(answer, 0))
        if shape is not None and len(shape) == 4 and shape[2:] == (h, w):
            fail(f"{what} kept the {h}x{w} size of its input: nothing halves it",
                 mistake="down-no-pool")
        if shape is not None and len(shape) == 4 and shape[2:] != (h // 2, w // 2):
            fail(f"{what} turned a {given} input into {shape_text(shape)}; the size should be "
                 f"{h} // 2 = {h // 2} by {w} // 2 = {w // 2}", mistake="down-wrong-size")
        if shape != want_shape:
            fail(f"{what} turned a {given} input into {shape_text(shape)}, expected "
                 f"{shape_text(want_shape)}", mistake="wrong-out-channels",
                 hint="the DoubleConv inside takes in_ch and gives out_ch channels. "
                      + _DOWN_HINT)
        ref = unet.Down(cin, cout)
        if built["params"] != _count(ref):
            fail(f"{what} has {built['params']:,} parameters, expected {_count(ref):,}",
                 mistake="down-param-count",
                 hint=f"yours: {_layers_text(built)}; expected: {_ref_text(ref)}. The pooling "
                      "has no parameters; everything is in the DoubleConv. " + _DOWN_HINT)
        if not _loaded(ref, answer, [x]):
            fail(f"could not pair the layers of your {what} with segkit's (yours: "
                 f"{_layers_text(built)})", mistake="down-mismatch")
        ref.eval()
        with torch.no_grad():
            if not _same(_output(answer, 0), ref(x)):
                if _same(_output(answer, 0), F.max_pool2d(ref.maxpool_conv[1](x), 2)):
                    fail(f"with the same weights, your {what} gives what DoubleConv then "
                         "pooling gives", mistake="conv-before-pool")
                fail(f"with the same weights, your {what}'s output differs from segkit's",
                     mistake="down-mismatch",
                     hint="look at how the map is made smaller: max pooling, not average "
                          "pooling or a strided conv. " + _DOWN_HINT)
    return (f"{given} -> {shape_text(want_shape)}: max pooling rounds {h} and {w} down")


def _judge_down(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    return judge_each(cases["cases"], answers["cases"], _judge_down_case)[0]


check_down = Check(
    "02", "Down", "Down halves H and W and matches segkit's block",
    references=("segkit.unet.Down",), name="check_down",
    draw_cases=_draw_down, ask_student=_ask_blocks, judge_answers=_judge_down)


# --------------------------------------------------------------------------- Up

_UP_HINT = ("Up upsamples the deeper map with a transposed conv (kernel 2, stride 2) that "
            "halves its channels, pads it to the skip's height and width, concatenates it "
            "with the skip, and runs DoubleConv(in_ch, out_ch) on the result.")


def _up_inputs(rng: np.random.Generator, n: int, cin: int, h: int, w: int) -> list[np.ndarray]:
    """x1 (n, cin, h // 2, w // 2) from below, and the skip x2 (n, cin // 2, h, w)."""
    return [_randn(rng, n, cin, h // 2, w // 2), _randn(rng, n, cin // 2, h, w)]


def _draw_up(rng: np.random.Generator) -> dict[str, Any]:
    """Up(16, 8) on an even and an odd skip (the worked example), then a drawn width on a
    skip of odd height and even width and one of even height and odd width."""
    worked = {"args": [16, 8], "drawn": False,
              "inputs": [_up_inputs(rng, 2, 16, 8, 12), _up_inputs(rng, 2, 16, 11, 9)]}
    cin = int(rng.choice([4, 6, 8, 10, 12]))
    cout = int(rng.integers(2, 9))
    n = int(rng.integers(1, 4))
    sizes = [(2 * int(rng.integers(2, 6)), 2 * int(rng.integers(2, 6)))]  # even: runs first
    odd, even = 2 * int(rng.integers(2, 6)) + 1, 2 * int(rng.integers(2, 6))
    sizes += [(odd, even), (even + 2, odd + 2)]  # dy != dx both ways
    drawn = {"args": [cin, cout], "drawn": True,
             "inputs": [_up_inputs(rng, n, cin, h, w) for h, w in sizes]}
    cases = [worked, drawn]
    for case in cases:
        case["weights_seed"], case["tconv"] = int(rng.integers(2**31)), True
    return {"cases": cases}


def _expect_up_channels(case: dict[str, Any], answer: dict[str, Any], what: str) -> None:
    """The up-conv halves in_ch; the conv after the concatenation takes in_ch back."""
    cin = case["args"][0]
    layers = answer["built"]["layers"]
    ups = [layer for layer in layers if layer["kind"] == "ConvTranspose2d"]
    if not ups:
        fail(f"{what} has no nn.ConvTranspose2d, so nothing halves the {cin} channels of the "
             f"deeper map before it meets the {cin // 2}-channel skip",
             mistake="up-not-halving-channels",
             hint=f"the skip brings in_ch // 2 = {cin // 2} channels; the upsampled map must "
                  f"bring the other {cin // 2}, so that the concatenation gives in_ch = {cin}, "
                  "what the DoubleConv is built for. (nn.Upsample keeps the channels: "
                  f"{cin} + {cin // 2} = {cin + cin // 2} would reach a conv built for {cin}.)")
    if ups[0]["out"] != cin // 2:
        fail(f"the ConvTranspose2d of {what} gives {ups[0]['out']} channels, expected "
             f"{cin} // 2 = {cin // 2}", mistake="up-not-halving-channels")
    if ups[0]["in"] != cin:
        fail(f"the ConvTranspose2d of {what} takes {ups[0]['in']} channels, but the deeper map "
             f"that arrives has in_ch = {cin}", mistake="up-transposed-in-channels")
    ran = [layers[i] for i in answer["order"]] if answer.get("order") else layers
    convs = [layer for layer in ran if layer["kind"] == "Conv2d"]
    if not any(c["in"] == cin for c in convs):
        fail(f"the first conv after the concatenation in {what} takes "
             f"{convs[0]['in'] if convs else 'no'} channels, but torch.cat gives "
             f"{cin // 2} (skip) + {cin // 2} (upsampled) = {cin}", mistake="up-conv-in-channels")


def _gap(inputs: list[np.ndarray]) -> tuple[int, int]:
    """(dy, dx): how much the skip is taller and wider than the upsampled map."""
    x1, x2 = inputs
    return x2.shape[2] - 2 * x1.shape[2], x2.shape[3] - 2 * x1.shape[3]


def _expect_up_shapes(case: dict[str, Any], answer: dict[str, Any], what: str) -> None:
    """Twice the size after the up-conv; the skip's size after padding, also when the
    height and the width need different padding."""
    x1, x2 = case["inputs"][0]
    n, cin, h, w = x1.shape
    seen = answer["tconv_shapes"]
    if seen and tuple(seen[0]) != (n, cin // 2, 2 * h, 2 * w):
        fail(f"the ConvTranspose2d of {what} turned {shape_text(x1.shape)} into "
             f"{shape_text(seen[0])}, expected {shape_text((n, cin // 2, 2 * h, 2 * w))}: twice "
             "the size", mistake="up-wrong-upsample")
    want = (n, case["args"][1], *x2.shape[2:])
    shape = _shape(_output(answer, 0))
    if shape != want:
        fail(f"{what} turned x1 {shape_text(x1.shape)} and x2 {shape_text(x2.shape)} into "
             f"{shape_text(shape)}, expected {shape_text(want)}", mistake="wrong-out-channels",
             hint="the output has out_ch channels and the skip's H and W. " + _UP_HINT)
    broken = [i for i, out in enumerate(answer["outputs"]) if core.raised(out)
              or _shape(out) != (n, case["args"][1], *case["inputs"][i][1].shape[2:])]
    if not broken:
        return
    i = broken[0]
    x1, x2 = case["inputs"][i]
    record, (dy, dx) = core.raised(answer["outputs"][i]), _gap(case["inputs"][i])
    said = f": torch.cat said `{record['message']}`" if record else \
        f" and gave {shape_text(_shape(answer['outputs'][i]))}, not the skip's size"
    uneven = [j for j in range(len(case["inputs"])) if len(set(_gap(case["inputs"][j]))) == 2]
    even_ok = [j for j in range(1, len(case["inputs"]))
               if len(set(_gap(case["inputs"][j]))) == 1 and _gap(case["inputs"][j]) != (0, 0)
               and j not in broken]
    message = (f"{what} failed on x1 {shape_text(x1.shape)} with the skip x2 "
               f"{shape_text(x2.shape)} (dy = {dy}, dx = {dx}){said}")
    if sorted(broken) == sorted(uneven) and (even_ok or case["drawn"]):
        fail(message, mistake="up-pad-order")
    if record and "must match" not in record["message"] and "Sizes" not in record["message"]:
        core.fail_for(record, "Up")
    fail(message, mistake="up-no-pad-to-skip")


def _matches_either_cat_order(ref: nn.Module, inputs: list[torch.Tensor],
                              got: dict[str, Any]) -> bool | None:
    """False when the student's output is segkit's with the student's weights, True when it
    is once the concatenation halves are swapped ([up, skip], as good), None when neither."""
    ref.eval()
    with torch.no_grad():
        if _same(got, ref(*inputs)):
            return False
        _swap_cat_halves(ref, *inputs)
        try:
            return True if _same(got, ref(*inputs)) else None
        finally:
            _swap_cat_halves(ref, *inputs)


def _swap_cat_halves(model: nn.Module, *inputs: torch.Tensor) -> None:
    """Swap the two input halves of the conv that follows each transposed conv."""
    ran = _ref_layers(model, *inputs)
    with torch.no_grad():
        for before, layer in zip(ran, ran[1:]):
            if isinstance(before, nn.ConvTranspose2d) and type(layer) is nn.Conv2d:
                half = layer.in_channels // 2
                layer.weight.copy_(torch.cat([layer.weight[:, half:], layer.weight[:, :half]], 1))


def _judge_up_case(case: dict[str, Any], answer: dict[str, Any]) -> str:
    cin, cout = case["args"]
    what = f"Up({cin}, {cout})"
    built = _built(answer, case, "Up")
    with judging(case["drawn"]):
        _expect_up_channels(case, answer, what)
        _expect_up_shapes(case, answer, what)
        ref = unet.Up(cin, cout)
        if built["params"] != _count(ref):
            fail(f"{what} has {built['params']:,} parameters, expected {_count(ref):,}",
                 mistake="up-mismatch",
                 hint=f"yours: {_layers_text(built)}; expected: {_ref_text(ref)}. " + _UP_HINT)
        inputs = [_inputs(case, i) for i in range(len(case["inputs"]))]
        if not _loaded(ref, answer, inputs[0]):
            fail(f"could not pair the layers of your {what} with segkit's (yours: "
                 f"{_layers_text(built)})", mistake="up-mismatch")
        order = _matches_either_cat_order(ref, inputs[0], _output(answer, 0))
        if order is None:
            fail(f"with the same weights, {what}'s output differs from segkit's on x1 "
                 f"{shape_text(inputs[0][0].shape)}, x2 {shape_text(inputs[0][1].shape)}",
                 mistake="up-mismatch")
        for i in range(1, len(inputs)):
            if _matches_either_cat_order(ref, inputs[i], _output(answer, i)) is None:
                dy, dx = _gap(case["inputs"][i])
                fail(f"with the same weights, {what} matches segkit's when the skip and the "
                     f"upsampled map have the same size, but not on x1 "
                     f"{shape_text(inputs[i][0].shape)}, x2 {shape_text(inputs[i][1].shape)} "
                     f"(dy = {dy}, dx = {dx}): the padding differs", mistake="up-pad-differs")
    x1, x2 = case["inputs"][-1]
    cat = "[x1, x2]" if order else "[x2, x1]"
    return (f"{cin} -> {cin // 2} up + {cin // 2} skip = {cin} -> {cout}; "
            f"{x1.shape[2]}x{x1.shape[3]} -> {2 * x1.shape[2]}x{2 * x1.shape[3]} padded to "
            f"{x2.shape[2]}x{x2.shape[3]}; cat {cat}")


def _judge_up(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    return judge_each(cases["cases"], answers["cases"], _judge_up_case)[0]


check_up = Check(
    "02", "Up", "Up halves, pads, concatenates and matches segkit's block",
    references=("segkit.unet.Up",), name="check_up",
    draw_cases=_draw_up, ask_student=_ask_blocks, judge_answers=_judge_up)


# --------------------------------------------------------------------------- UNet

_UNET_COUNTED = [[3, 1, 16, 4], [1, 3, 8, 3]]  # (in_channels, num_classes, base, depth)
_UNET_BIG = [3, 2, 64, 4]                       # the classic size, counted last


def _draw_unet(rng: np.random.Generator) -> dict[str, Any]:
    """Parameter counts of fixed and drawn configurations; outputs with known weights of
    UNet(3, 1, 8, 4) on 32x48 and 101x75 (the worked example), of UNet(1, 3, 8, 3) on
    40x24, and of a drawn small U-Net on a drawn odd, unequal size."""
    depth = int(rng.integers(1, 5))
    drawn = [int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.choice([4, 6, 8])), depth]
    low = 2 ** depth + 1
    h, w = _odd_unequal(rng, low, low + 40)
    runs = [
        {"args": [3, 1, 8, 4], "drawn": False,
         "inputs": [[_randn(rng, 2, 3, 32, 48)], [_randn(rng, 1, 3, 101, 75)]]},
        {"args": [1, 3, 8, 3], "drawn": False, "inputs": [[_randn(rng, 2, 1, 40, 24)]]},
        {"args": drawn, "drawn": True,
         "inputs": [[_randn(rng, 2, drawn[0], 2 ** depth * 3, 2 ** depth * 2)],
                    [_randn(rng, int(rng.integers(1, 3)), drawn[0], h, w)]]},
    ]
    for run in runs:
        run["weights_seed"] = int(rng.integers(2**31))
    counted = [{"args": args, "drawn": False} for args in _UNET_COUNTED]
    counted += [{"args": drawn, "drawn": True}, {"args": _UNET_BIG, "drawn": False}]
    return {"counted": counted, "runs": runs}


def _build_on_meta(cls: Any, args: list) -> Any:
    """``cls(*args)`` with its tensors on the "meta" device (shapes without memory, so
    counting a 31M-parameter model is instant); an ordinary build if that fails."""
    try:
        with torch.device("meta"):
            return cls(*args)
    except NotImplementedError:
        raise
    except Exception:  # noqa: BLE001 - e.g. a model that reads a tensor's value in __init__
        return cls(*args)


def _children(model: nn.Module) -> list[list]:
    return [[name, _count(child)] for name, child in model.named_children()]


def _ask_unet(cls: Any, cases: dict[str, Any]) -> dict[str, Any]:
    counted = []
    for case in cases["counted"]:
        model = _build_on_meta(cls, case["args"])
        built = modules.describe_module(model)
        if built["module"]:
            built["children"] = _children(model)
        counted.append({"built": built})
    return {"counted": counted,
            "runs": [_ask_block(cls, c["args"], c["inputs"], c["weights_seed"])
                     for c in cases["runs"]]}


def _unet_text(args: list) -> str:
    i, c, b, d = args
    return f"UNet(in_channels={i}, num_classes={c}, base={b}, depth={d})"


def _ref_count(args: list) -> int:
    with torch.device("meta"):
        return _count(unet.UNet(*args))


def _expect_count(case: dict[str, Any], answer: dict[str, Any]) -> int:
    built = _built(answer, case, "UNet")
    i, c, b, depth = case["args"]
    got, want = built["params"], _ref_count(case["args"])
    if got == want:
        return got
    with judging(case["drawn"]):
        for other in (depth - 1, depth + 1):
            if other >= 1 and got == _ref_count([i, c, b, other]):
                fail(f"{_unet_text(case['args'])} has {got:,} parameters, expected {want:,}: "
                     f"that is the count of a U-Net with depth={other}",
                     mistake="unet-depth-off-by-one",
                     hint=f"depth={depth} means {depth} Down blocks after inc and {depth} Up "
                          f"blocks: channels base * 2**i for i = 0..{depth} "
                          f"({', '.join(str(b * 2 ** k) for k in range(depth + 1))}).")
        with torch.device("meta"):
            ref = unet.UNet(*case["args"])
        yours = ", ".join(f"{n} {k:,}" for n, k in built.get("children", []))
        fail(f"{_unet_text(case['args'])} has {got:,} parameters, expected {want:,}",
             mistake="unet-param-count",
             hint=f"per block, yours: {yours}; segkit's: "
                  f"{', '.join(f'{n} {k:,}' for n, k in _children(ref))}. Compare block by "
                  "block: inc, each Down and Up, and outc (a 1x1 conv from base channels to "
                  "num_classes).")


def _halvings(n: int, depth: int) -> str:
    """'101 -> 50 -> 25 -> 12 -> 6': a size through ``depth`` max poolings."""
    sizes = [n]
    for _ in range(depth):
        sizes.append(sizes[-1] // 2)
    return " -> ".join(map(str, sizes))


def _expect_unet_run(case: dict[str, Any], answer: dict[str, Any]) -> None:
    """Output shapes (odd sizes too) and, with known weights, segkit's outputs."""
    _expect_count(case, answer)
    text = f"UNet({', '.join(map(str, case['args'][:2]))}, base={case['args'][2]}, " \
           f"depth={case['args'][3]})"
    classes = case["args"][1]
    with judging(case["drawn"]):
        for k, (x,) in enumerate(case["inputs"]):
            n, _, h, w = x.shape
            record, out = core.raised(answer["outputs"][k]), answer["outputs"][k]
            odd = h % 2 ** case["args"][3] or w % 2 ** case["args"][3]
            mistake = "unet-odd-size" if odd else "unet-output-shape"
            if record and odd and record.get("where") is not None:
                fail(f"{text} failed on a {shape_text(x.shape)} image: `{record['message']}`",
                     mistake="unet-odd-size",
                     hint=f"{_halvings(h, case['args'][3])} and {_halvings(w, case['args'][3])}: "
                          "max pooling rounds down, so an upsampled map can be one pixel short "
                          "of its skip. Each Up pads it to the skip's size; check that forward "
                          "hands each Up the skip of its own level.")
            if record:
                core.fail_for(record, "UNet")
            if _shape(out) != (n, classes, h, w):
                fail(f"{text} turned a {shape_text(x.shape)} batch into "
                     f"{shape_text(_shape(out))}, expected {shape_text((n, classes, h, w))}: "
                     "one logit per class and pixel", mistake=mistake)
        ref = unet.UNet(*case["args"])
        inputs = [_inputs(case, k) for k in range(len(case["inputs"]))]
        if not _loaded(ref, answer, inputs[0]):
            return  # the layers do not pair one to one: the counts and shapes decide
        for k, x in enumerate(inputs):
            if _matches_either_cat_order(ref, x, answer["outputs"][k]) is None:
                fail(f"with the same weights, your U-Net's output differs from segkit's on a "
                     f"{shape_text(x[0].shape)} input", mistake="unet-wiring")


def _judge_unet(cases: dict[str, Any], answers: dict[str, Any]) -> str:
    counted = list(zip(cases["counted"], answers["counted"], strict=True))
    for case, answer in counted[:-1]:
        _expect_count(case, answer)
    for case, answer in zip(cases["runs"], answers["runs"], strict=True):
        _expect_unet_run(case, answer)
    big = _expect_count(*counted[-1])
    return f"{big:,} parameters at base 64; 101x75 in, 101x75 out"


check_unet = Check(
    "02", "UNet", "UNet matches segkit's parameter counts and output shapes",
    references=("segkit.unet.UNet",), name="check_unet",
    draw_cases=_draw_unet, ask_student=_ask_unet, judge_answers=_judge_unet)

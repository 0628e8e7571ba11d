"""The checks of lesson 07 pass the solutions, stop at the stubs, and name each mistake."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from check_helpers import NOT_DONE, expect_mistake, register, register_wrong
from segkit.checks import ExerciseNotDone, lesson07, passed, reset


def _stub(name):
    def stub(*args):
        raise NotImplementedError(f"Exercise {name}: write your code here")
    return stub


# =========================================================================== predict_full_size


def predict_full_size(model, image, size):
    ### the solution of the notebook
    model.eval()
    height, width = image.shape[-2:]
    with torch.no_grad():
        x = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)
        logits = model(x)
        logits = F.interpolate(logits, size=(height, width), mode="bilinear",
                               align_corners=False)
    return (logits[0, 0] > 0).long()


def _predict(image_resize=None, logits_resize=None, finish=None, eval_mode=True, no_grad=True):
    """A predict_full_size with one step replaced (to write the mistakes)."""
    def student(model, image, size):
        if eval_mode:
            model.eval()
        height, width = image.shape[-2:]
        with torch.set_grad_enabled(not no_grad):
            x = (image_resize or (lambda im, size: F.interpolate(im, size=size,
                                                                  mode="bilinear")))(image, size)
            logits = model(x)
            if finish:
                return finish(logits, (height, width))
            logits = (logits_resize or (lambda lg, hw: F.interpolate(
                lg, size=hw, mode="bilinear")))(logits, (height, width))
        return (logits[0, 0] > 0).long()
    return student


def test_predict_full_size_passes_the_solution_and_variants(capsys):
    lesson07.check_predict_full_size(predict_full_size)
    assert capsys.readouterr().out == ("✅ predict_full_size on a 180x260 image — passed "
                                       "(180x260 mask from a 12x16 prediction)\n")
    assert passed("predict_full_size")
    lesson07.check_predict_full_size(lesson07.reference_predict_full_size)
    # other resizes of the input and of the logits, and the probability threshold
    lesson07.check_predict_full_size(_predict(image_resize=lambda im, size: TF.resize(im, size)))
    lesson07.check_predict_full_size(_predict(
        logits_resize=lambda lg, hw: F.interpolate(lg, size=hw, mode="bilinear",
                                                   align_corners=True)))
    lesson07.check_predict_full_size(_predict(
        finish=lambda lg, hw: torch.from_numpy(
            (torch.sigmoid(F.interpolate(lg, size=hw, mode="bicubic"))[0, 0] > 0.5)
            .long().numpy())))


def test_predict_full_size_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson07.check_predict_full_size(_stub("predict_full_size"))


def test_predict_full_size_catches_the_mistakes():
    check = lesson07.check_predict_full_size
    expect_mistake(check, lambda m, im, s: None, "returns-none", "return")
    expect_mistake(check, _predict(eval_mode=False), "forgot-eval", "model.eval()", "BatchNorm")
    expect_mistake(check, _predict(no_grad=False), "forgot-no-grad", "torch.no_grad()")
    expect_mistake(check, _predict(image_resize=lambda im, size: im), "not-resized-in", "resize")
    expect_mistake(check, _predict(image_resize=lambda im, size: F.interpolate(im, size=size[::-1])),
           "not-resized-in", "swapped")
    expect_mistake(check, _predict(logits_resize=lambda lg, hw: lg), "returned-training-size",
           "back to the image's", "then threshold")
    expect_mistake(check, _predict(logits_resize=lambda lg, hw: F.interpolate(lg, size=hw[::-1])),
           "size-w-h-swapped", "(H, W)")
    expect_mistake(check, _predict(finish=lambda lg, hw: (F.interpolate(lg, size=hw) > 0).long()),
           "wrong-shape", "logits[0, 0]")
    # thresholded at the training size, then the mask resized (bilinear, nearest)
    expect_mistake(check, _predict(finish=lambda lg, hw: F.interpolate(
        (lg > 0).float(), size=hw, mode="bilinear")[0, 0]), "threshold-then-resize",
        "bilinear", "LOGITS")
    expect_mistake(check, _predict(finish=lambda lg, hw: F.interpolate(
        (lg > 0).float(), size=hw, mode="nearest")[0, 0].long()), "threshold-then-resize",
        "nearest", "LOGITS")
    # no threshold: logits, or probabilities
    expect_mistake(check, _predict(finish=lambda lg, hw: F.interpolate(lg, size=hw, mode="bilinear")[0, 0]),
           "no-threshold", "a logit of 0")
    expect_mistake(check, _predict(finish=lambda lg, hw: torch.sigmoid(
        F.interpolate(lg, size=hw, mode="bilinear"))[0, 0]), "no-threshold", "a logit of 0")
    expect_mistake(check, _predict(finish=lambda lg, hw: F.interpolate(
        lg, size=hw, mode="bilinear")[0, 0] > 0), "mask-not-int64", ".long()")
    expect_mistake(check, _predict(finish=lambda lg, hw: F.interpolate(
        lg, size=hw, mode="bilinear").argmax(1)[0]), "argmax-one-channel", "argmax")
    expect_mistake(check, _predict(finish=lambda lg, hw: (F.interpolate(
        lg, size=hw, mode="bilinear")[0, 0] > 0.5).long()), "logit-threshold-0.5", "sigmoid")
    expect_mistake(check, _predict(finish=lambda lg, hw: (F.interpolate(
        lg, size=hw, mode="bilinear")[0, 0] < 0).long()), "wrong-mask", "threshold at 0")
    expect_mistake(check, lambda m, im, s: "mask", "not-an-array", "tensor")


def test_predict_full_size_leaves_no_trace_in_the_notebook(capsys):
    # the student's function may print; the check prints only its ✅ line on a pass
    lesson07.check_predict_full_size(predict_full_size)
    assert capsys.readouterr().out.count("\n") == 1


# =========================================================================== mask_to_png_array


def mask_to_png_array(mask):
    ### the solution of the notebook
    return np.asarray(mask).astype(np.uint8) * 255


def test_mask_to_png_array_passes_the_solution(capsys):
    lesson07.check_mask_to_png_array(mask_to_png_array)
    assert capsys.readouterr().out == ("✅ mask_to_png_array — passed (saves as an 8-bit grey "
                                       "PNG of 0 and 255)\n")
    assert passed("mask_to_png_array")
    lesson07.check_mask_to_png_array(lesson07.reference_mask_to_png_array)
    lesson07.check_mask_to_png_array(lambda m: np.where(m > 0, 255, 0).astype(np.uint8))


def test_mask_to_png_array_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson07.check_mask_to_png_array(_stub("mask_to_png_array"))


def test_mask_to_png_array_catches_the_mistakes():
    check = lesson07.check_mask_to_png_array
    expect_mistake(check, lambda m: None, "returns-none", "return")
    expect_mistake(check, lambda m: m.astype(np.uint8), "png-left-0-1", "black", "255")
    expect_mistake(check, lambda m: m * 255, "png-wrong-dtype", "uint8")
    expect_mistake(check, lambda m: (m * 255).astype(np.float32), "png-wrong-dtype", "uint8")
    expect_mistake(check, lambda m: torch.from_numpy(m * 255).to(torch.uint8), "png-not-numpy", "numpy")
    expect_mistake(check, lambda m: ((1 - m) * 255).astype(np.uint8), "png-inverted", "255")
    expect_mistake(check, lambda m: (m * 254).astype(np.uint8), "png-wrong-values", "255")
    expect_mistake(check, lambda m: np.stack([m * 255] * 3, -1).astype(np.uint8), "wrong-shape", "(H, W)")
    expect_mistake(check, lambda m: (m * 255).tolist(), "not-an-array", "NumPy")


# =========================================================================== flip_tta


def flip_tta(model, x):
    ### the solution of the notebook
    with torch.no_grad():
        logits = (model(x) + model(x.flip(-1)).flip(-1)) / 2
    return (logits[:, 0] > 0).long()


def test_flip_tta_passes_the_solution_and_probability_averaging(capsys):
    lesson07.check_flip_tta(flip_tta)
    assert capsys.readouterr().out == \
        "✅ flip_tta on 2 images — passed (mirror-averaged, flipped back)\n"
    assert passed("flip_tta")
    lesson07.check_flip_tta(lesson07.reference_flip_tta)

    @torch.no_grad()
    def probabilities(model, x):
        p = (torch.sigmoid(model(x)) + torch.sigmoid(torch.flip(model(torch.flip(x, [3])), [3])))
        return (p[:, 0] / 2 > 0.5).long()

    lesson07.check_flip_tta(probabilities)


def test_flip_tta_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson07.check_flip_tta(_stub("flip_tta"))


def _tta(combine):
    @torch.no_grad()
    def student(model, x):
        return combine(model, x)
    return student


def test_flip_tta_catches_the_mistakes():
    check = lesson07.check_flip_tta
    expect_mistake(check, _tta(lambda m, x: (((m(x) + m(x.flip(-1))) / 2)[:, 0] > 0).long()),
           "tta-not-flipped-back", "flip it back")
    expect_mistake(check, _tta(lambda m, x: ((((m(x) > 0).float() + (m(x.flip(-1)).flip(-1) > 0).float())
                                      / 2)[:, 0] > 0.5).long()),
           "tta-averaged-masks", "AND", "logits")
    expect_mistake(check, _tta(lambda m, x: ((((m(x) > 0).float() + (m(x.flip(-1)).flip(-1) > 0).float())
                                      / 2)[:, 0] >= 0.5).long()),
           "tta-averaged-masks", "OR", "logits")
    expect_mistake(check, _tta(lambda m, x: (m(x)[:, 0] > 0).long()), "tta-no-flip",
                   "mirrored image")
    expect_mistake(check, _tta(lambda m, x: (m(x.flip(-1)).flip(-1)[:, 0] > 0).long()),
           "tta-no-flip", "original")
    expect_mistake(check, _tta(lambda m, x: (((m(x) + m(x.flip(-2)).flip(-2)) / 2)[:, 0] > 0).long()),
           "tta-wrong-axis", "flip(-1)")
    expect_mistake(check, _tta(lambda m, x: ((m(x) + m(x.flip(-1)).flip(-1)) > 0).long()),
           "wrong-shape", "channel 0")
    expect_mistake(check, _tta(lambda m, x: ((m(x) + m(x.flip(-1)).flip(-1)) / 2)[:, 0]),
           "no-threshold", "threshold")
    expect_mistake(check, _tta(lambda m, x: ((m(x) + m(x.flip(-1)).flip(-1))[:, 0] > 0)),
           "mask-not-int64", ".long()")
    expect_mistake(check, lambda m, x: ((m(x) + m(x.flip(-1)).flip(-1))[:, 0] > 0).long(),
           "forgot-no-grad", "no_grad")
    expect_mistake(check, _tta(lambda m, x: ((m(x) + m(x.flip(-1)).flip(-1))[:, 0] < 0).long()),
           "wrong-mask", "threshold at 0")


# =========================================================================== the corpus


def _forms_of(test) -> list[tuple]:
    """The (check, student, mistake) forms a test above names, without running them."""
    found: list[tuple] = []
    saved = globals()["expect_mistake"]
    globals()["expect_mistake"] = lambda check, student, mistake, *words: found.append(
        (check, student, mistake))
    try:
        test()
    finally:
        globals()["expect_mistake"] = saved
    return found


for _check, _rights, _name in [
        (lesson07.check_predict_full_size, [predict_full_size,
                                            lesson07.reference_predict_full_size],
         "predict_full_size"),
        (lesson07.check_mask_to_png_array, [mask_to_png_array,
                                            lesson07.reference_mask_to_png_array],
         "mask_to_png_array"),
        (lesson07.check_flip_tta, [flip_tta, lesson07.reference_flip_tta], "flip_tta")]:
    for _fn in _rights:
        register(_check, _fn, None)
    register(_check, _stub(_name), NOT_DONE, f"stub_{_name}")
for _test in (test_predict_full_size_catches_the_mistakes,
              test_mask_to_png_array_catches_the_mistakes, test_flip_tta_catches_the_mistakes):
    for _i, (_check, _fn, _mistake) in enumerate(_forms_of(_test)):
        register_wrong(_check, _fn, _mistake, f"{_test.__name__[5:]}_{_i}")

"""Lesson 03's checks pass the solution, meet the stubs, and name each catalogued mistake.

The functions below are what students write: the solution (as in solutions/03_training.ipynb),
the stubs the lesson holds, and wrong versions, each with the mistake its check must name.
"""

from __future__ import annotations

import pytest
import torch

import segkit.metrics
from check_helpers import NOT_DONE, assert_hint, exercise_of, failure, register, register_wrong
from segkit import training
from segkit.checks import core, lesson03
from segkit.checks.core import ExerciseNotDone


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise x: write your code here")


# --------------------------------------------------------------------------- average_loss


def average_loss(batch_losses, batch_sizes):
    total = sum(loss * n for loss, n in zip(batch_losses, batch_sizes))
    return total / sum(batch_sizes)


def test_average_loss_passes_the_solution_and_the_reference(capsys):
    assert lesson03.check_average_loss(average_loss).passed
    assert "✅ average_loss with an uneven last batch — passed" in capsys.readouterr().out
    assert core.passed("average_loss")
    assert lesson03.check_average_loss(lesson03.reference_average_loss).passed


def test_average_loss_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson03.check_average_loss(stub)
    assert not core.passed("average_loss")


AVERAGE_MISTAKES = [
    (lambda losses, sizes: sum(losses) / len(losses), "loss-mean-over-batches",
     ["not of batches", "its size"]),
    (lambda losses, sizes: sum(losses), "loss-not-averaged", ["divide", "sum"]),
    (lambda losses, sizes: sum(v * n for v, n in zip(losses, sizes)), "loss-not-averaged",
     ["divide"]),
    (lambda losses, sizes: sum(v * n for v, n in zip(losses, sizes)) / len(sizes),
     None, ["no mistake the course knows", "mean loss per sample is"]),
    (lambda losses, sizes: sum(v * n for v, n in zip(losses, sizes)) // sum(sizes),
     "integer-division", ["`//`", "float"]),
    (lambda losses, sizes: int(sum(v * n for v, n in zip(losses, sizes))) / sum(sizes),
     "integer-division", ["int(...)"]),
    (lambda losses, sizes: torch.tensor(losses).mean(), "loss-tensor-accumulator",
     ["python float"]),
    (lambda losses, sizes: None, "returns-none", ["return"]),
]


@pytest.mark.parametrize("wrong, mistake, words", AVERAGE_MISTAKES)
def test_average_loss_names_the_mistakes(wrong, mistake, words):
    assert_hint(failure(lesson03.check_average_loss, wrong), mistake, *words)


# --------------------------------------------------------------------------- train_one_epoch


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    model.train()
    total_loss, n_samples = 0.0, 0
    for images, masks in loader:
        images, masks = images.to(device), masks.to(device)
        optimizer.zero_grad()
        logits = model(images)
        loss = loss_fn(logits, masks)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * images.shape[0]
        n_samples += images.shape[0]
    return total_loss / n_samples


def _loop(*, train=True, zero_grad="before", backward=True, step="every", accumulate="item",
          divide="samples", count="shape"):
    """A train_one_epoch with one thing changed."""
    def wrong(model, loader, loss_fn, optimizer, device):
        if train:
            model.train()
        total, n, batches = 0, 0, 0
        for images, masks in loader:
            if zero_grad == "before":
                optimizer.zero_grad()
            loss = loss_fn(model(images), masks)
            if backward:
                loss.backward()
            if zero_grad == "after-backward":
                optimizer.zero_grad()
            if step == "every":
                optimizer.step()
            size = images.shape[0] if count == "shape" else 4
            if accumulate == "item":
                total += loss.item() * size
            elif accumulate == "tensor":
                total += loss * size
            elif accumulate == "tensor-no-size":
                total += loss
            n += size
            batches += 1
        if step == "once":
            optimizer.step()
        if count == "dataset":
            n = len(loader.dataset)
        if accumulate in ("tensor", "tensor-no-size") and divide == "item-at-end":
            return (total / n).item()
        if divide == "samples":
            return total / n
        if divide == "batches":
            return total / len(loader)
        if divide == "none":
            return total
        if divide == "floor":
            return total // n
        return None
    return wrong


def train_batch_mean(model, loader, loss_fn, optimizer, device):
    model.train()
    total = 0.0
    for images, masks in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images), masks)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / len(loader)  # the sea/sky project's fix: right only for equal batch sizes


def train_sum_of_batch_means(model, loader, loss_fn, optimizer, device):
    model.train()
    total = 0.0
    for images, masks in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images), masks)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total  # the sea/sky project's mistake: never divided


def train_list_of_tensors(model, loader, loss_fn, optimizer, device):
    model.train()
    losses, sizes = [], []
    for images, masks in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images), masks)
        loss.backward()
        optimizer.step()
        losses.append(loss)
        sizes.append(images.shape[0])
    return sum(v.item() * n for v, n in zip(losses, sizes)) / sum(sizes)


def test_train_one_epoch_passes_the_solution_and_segkit(capsys):
    assert lesson03.check_train_one_epoch(train_one_epoch).passed
    out = capsys.readouterr().out
    assert out == ("✅ train_one_epoch on a small model — passed (3 batches of 4, 4, 2 "
                   "samples)\n")
    assert core.passed("train_one_epoch")
    # segkit's reference (the lesson's fallback through checks.use) passes the same check
    assert lesson03.check_train_one_epoch(training.train_one_epoch).passed
    # so does a loop that zeroes the gradients after the forward pass, through the model

    def zero_late(model, loader, loss_fn, optimizer, device):
        model.train()
        total, n = 0.0, 0
        for images, masks in loader:
            images, masks = images.to(device), masks.to(device)
            loss = loss_fn(model(images), masks)
            model.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(images)  # a detached tensor keeps no graph
            n += len(images)
        return (total / n).item()
    assert lesson03.check_train_one_epoch(zero_late).passed


def test_train_one_epoch_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson03.check_train_one_epoch(stub)


TRAIN_MISTAKES = [
    (_loop(accumulate="tensor"), "loss-tensor-accumulator", ["tensor", "loss.item()", "graph"]),
    (_loop(accumulate="tensor", divide="item-at-end"), "loss-tensor-accumulator",
     ["graphs", "loss.item()"]),
    (train_list_of_tensors, "loss-tensor-accumulator", ["list", "loss.item()"]),
    (_loop(train=False), "train-in-eval-mode", ["model.train()", "eval mode"]),
    (_loop(backward=False), "no-backward", ["loss.backward()"]),
    (_loop(step="never"), "no-optimizer-step", ["optimizer.step()"]),
    (_loop(step="once"), "step-not-every-batch", ["once per batch"]),
    (_loop(zero_grad="never"), "no-zero-grad", ["optimizer.zero_grad()", "adds"]),
    (_loop(zero_grad="after-backward"), "zero-grad-after-backward",
     ["zero_grad -> forward -> loss -> backward -> step"]),
    (_loop(count="dataset"), "loader-dataset-len", ["images.shape[0]", "loader.dataset"]),
    (train_batch_mean, "loss-mean-over-batches", ["len(loader)", "samples"]),
    (_loop(divide="batches"), None, ["no mistake the course knows"]),
    (train_sum_of_batch_means, "loss-not-averaged", ["sea/sky project", "divide"]),
    (_loop(divide="none"), "loss-not-averaged", ["divide"]),
    (_loop(count="fixed"), "loss-mean-over-batches", ["as many samples"]),
    (_loop(divide="nothing"), "returns-none", ["return"]),
    (_loop(divide="floor"), "integer-division", ["`//`"]),
]


@pytest.mark.parametrize("wrong, mistake, words", TRAIN_MISTAKES)
def test_train_one_epoch_names_the_mistakes(wrong, mistake, words):
    assert_hint(failure(lesson03.check_train_one_epoch, wrong), mistake, *words)


def test_train_one_epoch_step_outside_the_loop_with_zero_grad():
    """Gradient accumulation by accident: zero_grad once, step once after the loop."""
    def accumulate(model, loader, loss_fn, optimizer, device):
        model.train()
        optimizer.zero_grad()
        total, n = 0.0, 0
        for images, masks in loader:
            loss = loss_fn(model(images), masks)
            loss.backward()
            total += loss.item() * len(images)
            n += len(images)
        optimizer.step()
        return total / n
    assert_hint(failure(lesson03.check_train_one_epoch, accumulate), "step-not-every-batch",
                "once per batch")


def test_train_one_epoch_that_never_calls_the_loss():
    def nothing(model, loader, loss_fn, optimizer, device):
        return 0.5
    assert_hint(failure(lesson03.check_train_one_epoch, nothing), "loss-fn-not-called",
                "every batch of the loader")


def test_train_one_epoch_crash_is_reported_with_the_line():
    def crash(model, loader, loss_fn, optimizer, device):
        for images, masks in loader:
            loss = loss_fn(model(images.unsqueeze(0)), masks)
        return loss.item()
    error = failure(lesson03.check_train_one_epoch, crash)
    assert error.mistake == "crashed" and "model(images.unsqueeze(0))" in error.hint


def test_train_one_epoch_check_leaves_the_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    lesson03.check_train_one_epoch(train_one_epoch)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------- validate


def validate(model, loader, loss_fn, device):
    model.eval()
    total_loss, total_dice, n_samples = 0.0, 0.0, 0
    with torch.no_grad():
        for images, masks in loader:
            images, masks = images.to(device), masks.to(device)
            logits = model(images)
            batch_size = images.shape[0]
            total_loss += loss_fn(logits, masks).item() * batch_size
            preds = (logits[:, 0] > 0).long()
            total_dice += segkit.metrics.dice_per_image(preds, masks).sum().item()
            n_samples += batch_size
    return {"loss": total_loss / n_samples, "dice": total_dice / n_samples}


def _validate(*, eval_mode=True, no_grad=True, accumulate="item", loss_mean="samples",
              dice_mean="images", returns="dict", dice_on="labels", backward=False):
    def wrong(model, loader, loss_fn, device):
        if eval_mode:
            model.eval()
        torch.set_grad_enabled(not no_grad)
        try:
            total, batch_means, dice_total, dice_batches, n, batches = 0, 0.0, 0.0, 0.0, 0, 0
            for images, masks in loader:
                logits = model(images)
                loss = loss_fn(logits, masks)
                if backward:
                    loss.backward()
                    with torch.no_grad():
                        for p in model.parameters():
                            p -= 0.1 * p.grad
                size = images.shape[0]
                total += loss * size if accumulate == "tensor" else loss.item() * size
                batch_means += loss.item()
                if dice_on == "labels":
                    dice = segkit.metrics.dice_per_image((logits[:, 0] > 0).long(), masks)
                else:  # "pooled": one Dice of the whole batch
                    dice = torch.tensor([segkit.metrics.dice_pooled(
                        (logits[:, 0] > 0).long(), masks)] * size)
                dice_total += dice.sum().item()
                dice_batches += dice.mean().item()
                n += size
                batches += 1
        finally:
            torch.set_grad_enabled(True)
        loss_value = total / n if loss_mean == "samples" else batch_means / batches
        dice_value = dice_total / n if dice_mean == "images" else dice_batches / batches
        if returns == "float":
            return loss_value
        if returns == "tensor-dice":
            dice_value = torch.tensor(dice_value)
        return {"loss": loss_value, "dice": dice_value}
    return wrong


def test_validate_passes_the_solution_and_segkit(capsys):
    assert lesson03.check_validate(validate).passed
    assert capsys.readouterr().out == ("✅ validate on a small model — passed (3 batches of "
                                       "4, 4, 2 samples)\n")
    assert core.passed("validate")
    assert lesson03.check_validate(training.validate).passed  # the lesson's fallback

    @torch.no_grad()
    def decorated(model, loader, loss_fn, device):  # @torch.no_grad() instead of `with`
        return validate(model, loader, loss_fn, device)
    assert lesson03.check_validate(decorated).passed


def test_validate_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson03.check_validate(stub)


VALIDATE_MISTAKES = [
    (_validate(returns="float"), "validate-returns-dict", ['{"loss": ..., "dice": ...}']),
    (_validate(accumulate="tensor"), "loss-tensor-accumulator", ["loss.item()"]),
    (_validate(returns="tensor-dice"), "dice-not-float", [".item()"]),
    (_validate(eval_mode=False), "validate-train-mode", ["model.eval()", "batchnorm"]),
    (_validate(no_grad=False), "validate-grad-enabled", ["torch.no_grad()"]),
    (_validate(eval_mode=False, no_grad=False), "validate-train-mode", ["model.eval()"]),
    (_validate(loss_mean="batches"), "loss-mean-over-batches", ["len(loader)"]),
    (_validate(dice_mean="batches"), "dice-mean-over-batches", ["number of images"]),
    (_validate(dice_on="pooled"), None, ["each image's Dice", "no mistake the course knows"]),
]


@pytest.mark.parametrize("wrong, mistake, words", VALIDATE_MISTAKES)
def test_validate_names_the_mistakes(wrong, mistake, words):
    assert_hint(failure(lesson03.check_validate, wrong), mistake, *words)


def test_validate_that_updates_the_weights():
    def sneaky(model, loader, loss_fn, device):
        result = validate(model, loader, loss_fn, device)
        with torch.no_grad():
            model[0].weight += 0.01
        return result
    assert_hint(failure(lesson03.check_validate, sneaky), "validate-changes-weights",
                "no backward")


def test_validate_that_restores_train_mode_still_counts_as_eval():
    """segkit's validate puts the model back in the mode it found it in: that is fine."""
    def restoring(model, loader, loss_fn, device):
        was_training = model.training
        result = validate(model, loader, loss_fn, device)
        model.train(was_training)
        return result
    assert lesson03.check_validate(restoring).passed


# --------------------------------------------------------------------------- the check data


@pytest.mark.parametrize("seed", range(20))
def test_every_draw_separates_the_conventions(seed):
    """The smaller last batch makes every wrong average differ from the right one, for the
    loss and for the Dice, whatever the draw."""
    for case in lesson03.check_validate.draw(seed)["cases"]:
        model = lesson03._model(case["state"]).eval()
        losses, per_image = [], []
        with torch.no_grad():
            for images, masks in lesson03._batches(case):
                logits = model(images)
                losses.append(float(lesson03.BCEDiceLoss()(logits, masks)))
                per_image.append(segkit.metrics.dice_per_image((logits[:, 0] > 0).long(), masks))
        per_sample = lesson03.reference_average_loss(losses, case["sizes"])
        assert abs(per_sample - sum(losses) / len(losses)) > 10 * lesson03._TOL
        by_image = float(torch.cat(per_image).mean())
        by_batch = sum(float(d.mean()) for d in per_image) / len(per_image)
        assert abs(by_image - by_batch) > 1e-3
        assert case["sizes"][-1] < case["sizes"][0]


def test_validate_that_never_calls_the_loss():
    def dice_only(model, loader, loss_fn, device):
        return {"loss": 0.0, "dice": 1.0}
    assert_hint(failure(lesson03.check_validate, dice_only), "loss-fn-not-called",
                "`loss_fn`")


# --------------------------------------------------------------------------- the device


def train_without_moving(model, loader, loss_fn, optimizer, device):
    """Right on a CPU, broken on a GPU: the batches stay where the loader made them."""
    model.train()
    total, n = 0.0, 0
    for images, masks in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images), masks)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(images)
        n += len(images)
    return total / n


def train_moving_the_model_only(model, loader, loss_fn, optimizer, device):
    model.to(device).train()
    total, n = 0.0, 0
    for images, masks in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images.float()), masks)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(images)
        n += len(images)
    return total / n


def train_moving_the_images_only(model, loader, loss_fn, optimizer, device):
    model.train()
    total, n = 0.0, 0
    for images, masks in loader:
        images = images.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(images), masks)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(images)
        n += len(images)
    return total / n


@torch.no_grad()
def validate_without_moving(model, loader, loss_fn, device):
    model.eval()
    loss = dice = 0.0
    n = 0
    for images, masks in loader:
        logits = model(images)
        loss += loss_fn(logits, masks).item() * len(images)
        dice += segkit.metrics.dice_per_image((logits[:, 0] > 0).long(), masks).sum().item()
        n += len(images)
    return {"loss": loss / n, "dice": dice / n}


def validate_moving_the_masks_only(model, loader, loss_fn, device):
    model.eval()
    loss = dice = 0.0
    n = 0
    with torch.no_grad():
        for images, masks in loader:
            masks = masks.to(device)
            logits = model(images)
            loss += loss_fn(logits, masks).item() * len(images)
            dice += segkit.metrics.dice_per_image((logits[:, 0] > 0).long(), masks).sum().item()
            n += len(images)
    return {"loss": loss / n, "dice": dice / n}


NOT_MOVED = [(lesson03.check_train_one_epoch, train_without_moving, "images"),
             (lesson03.check_train_one_epoch, train_moving_the_model_only, "images"),
             (lesson03.check_train_one_epoch, train_moving_the_images_only, "masks"),
             (lesson03.check_validate, validate_without_moving, "images"),
             (lesson03.check_validate, validate_moving_the_masks_only, "images")]


@pytest.mark.parametrize("check, student, what", NOT_MOVED,
                         ids=[s.__name__ for _, s, _ in NOT_MOVED])
def test_a_loop_that_never_moves_its_batches_is_caught_without_a_gpu(check, student, what):
    error = failure(check, student)
    assert_hint(error, "batch-not-moved", f"the {what} of", "`device`")


# --------------------------------------------------------------------------- the corpus

for _check, _fn in [(lesson03.check_average_loss, average_loss),
                    (lesson03.check_average_loss, lesson03.reference_average_loss),
                    (lesson03.check_train_one_epoch, train_one_epoch),
                    (lesson03.check_train_one_epoch, training.train_one_epoch),
                    (lesson03.check_validate, validate),
                    (lesson03.check_validate, training.validate)]:
    register(_check, _fn, None)
    register(_check, stub, NOT_DONE, f"stub_{exercise_of(_check)}")
for _i, (_fn, _mistake, _) in enumerate(AVERAGE_MISTAKES):
    register_wrong(lesson03.check_average_loss, _fn, _mistake, f"average_{_i}")
for _i, (_fn, _mistake, _) in enumerate(TRAIN_MISTAKES):
    register_wrong(lesson03.check_train_one_epoch, _fn, _mistake, f"train_{_i}")
for _i, (_fn, _mistake, _) in enumerate(VALIDATE_MISTAKES):
    register_wrong(lesson03.check_validate, _fn, _mistake, f"validate_{_i}")
for _check, _fn, _ in NOT_MOVED:
    register(_check, _fn, "batch-not-moved")

"""Tests of segkit.losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segkit.errors import DataError
from segkit.losses import (
    BCEDiceLoss,
    BCELoss,
    SoftDiceLoss,
    bce_loss,
    class_weights_from_frequencies,
    pixel_counts,
    weighted_cross_entropy,
)


def binary_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = (torch.rand(3, 8, 8, generator=g) > 0.6).long()
    logits = torch.randn(3, 1, 8, 8, generator=g)
    return logits, target


# ------------------------------------------------------------------ BCE

def test_bce_matches_torch_for_both_target_layouts():
    logits, target = binary_batch()
    reference = nn.BCEWithLogitsLoss()(logits, target[:, None].float())
    torch.testing.assert_close(bce_loss(logits, target), reference)          # (N, H, W) long
    torch.testing.assert_close(bce_loss(logits, target[:, None]), reference)  # (N, 1, H, W)
    torch.testing.assert_close(bce_loss(logits[:, 0], target[:, None].float()), reference)
    torch.testing.assert_close(BCELoss()(logits, target), reference)


def test_bce_pos_weight_and_ignore_index():
    logits, target = binary_batch(1)
    reference = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(3.0))(logits, target[:, None].float())
    torch.testing.assert_close(bce_loss(logits, target, pos_weight=3.0), reference)
    with_border = target.clone()
    with_border[:, 0] = 255  # first row ignored
    kept = F.binary_cross_entropy_with_logits(logits[:, :, 1:], target[:, None, 1:].float())
    torch.testing.assert_close(bce_loss(logits, with_border, ignore_index=255), kept)


def test_bce_shape_mismatch_names_both_shapes():
    logits = torch.zeros(2, 1, 8, 8)
    with pytest.raises(DataError, match=r"\(2, 1, 8, 8\).*\(2, 1, 8, 9\)"):
        bce_loss(logits, torch.zeros(2, 8, 9))
    with pytest.raises(DataError, match="cross-entropy"):
        bce_loss(torch.zeros(2, 2, 8, 8), torch.zeros(2, 8, 8))


def test_bce_refuses_0_255_masks():
    target = torch.zeros(1, 4, 4, dtype=torch.uint8)
    target[0, 0] = 255
    with pytest.raises(DataError, match="0/255"):
        bce_loss(torch.zeros(1, 1, 4, 4), target)


# ------------------------------------------------------------------ soft Dice

def test_soft_dice_of_a_perfect_prediction_is_about_zero():
    _, target = binary_batch()
    logits = 30.0 * (2 * target[:, None].float() - 1)  # confident and right
    assert SoftDiceLoss()(logits, target).item() == pytest.approx(0.0, abs=1e-6)
    assert SoftDiceLoss(per_image=False)(logits, target).item() == pytest.approx(0.0, abs=1e-6)
    wrong = SoftDiceLoss()(-logits, target).item()
    assert wrong > 0.9  # confident and wrong: close to 1


def test_soft_dice_value_by_hand():
    logits = torch.tensor([[[[0.0, 0.0]]]])  # p = 0.5, 0.5
    target = torch.tensor([[[1, 0]]])
    # Dice = (2 * 0.5 + 1) / (1.0 + 1 + 1) = 2 / 3
    assert SoftDiceLoss(smooth=1.0)(logits, target).item() == pytest.approx(1 / 3)
    assert SoftDiceLoss(smooth=0.0)(logits, target).item() == pytest.approx(1 - 1 / 2)


def test_soft_dice_per_image_differs_from_pooled():
    target = torch.zeros(2, 1, 4, 4)
    target[0, 0, :, :3] = 1
    target[1, 0, 0, 0] = 1
    logits = torch.full((2, 1, 4, 4), -5.0)
    logits[0, 0, :, :3] = 5.0  # image 0 right, image 1's single pixel missed
    per_image = SoftDiceLoss(smooth=0.0)(logits, target).item()
    pooled = SoftDiceLoss(smooth=0.0, per_image=False)(logits, target).item()
    assert per_image > 0.4 and pooled < 0.1


def test_gradients_flow_through_soft_dice_and_bce_dice():
    logits, target = binary_batch()
    for loss_fn in (SoftDiceLoss(), BCEDiceLoss(), BCELoss()):
        x = logits.clone().requires_grad_(True)
        loss_fn(x, target).backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
    c_logits = torch.randn(2, 3, 5, 5, requires_grad=True)
    SoftDiceLoss()(c_logits, torch.randint(0, 3, (2, 5, 5))).backward()
    assert c_logits.grad.abs().sum() > 0


def test_bce_dice_is_the_weighted_sum():
    logits, target = binary_batch(2)
    bce = bce_loss(logits, target)
    dice = SoftDiceLoss(ignore_index=None)(logits, target)
    torch.testing.assert_close(BCEDiceLoss(0.5)(logits, target), 0.5 * bce + 0.5 * dice)
    torch.testing.assert_close(BCEDiceLoss(1.0)(logits, target), bce)
    with pytest.raises(ValueError):
        BCEDiceLoss(1.5)


def test_multiclass_soft_dice_and_ignore_index():
    target = torch.tensor([[[0, 1], [2, 255]]])
    logits = 30.0 * F.one_hot(target.clamp(max=2), 3).permute(0, 3, 1, 2).float()
    logits[0, :, 1, 1] = torch.tensor([0.0, 0.0, 50.0])  # ignored pixel: anything goes
    assert SoftDiceLoss()(logits, target).item() == pytest.approx(0.0, abs=1e-6)
    # the ignored pixel really is ignored: changing its scores does not change the loss
    other = logits.clone()
    other[0, :, 1, 1] = torch.tensor([50.0, 0.0, 0.0])
    assert SoftDiceLoss()(other, target).item() == pytest.approx(
        SoftDiceLoss()(logits, target).item())
    # without ignore_index the 255 label is an error, with a clear message
    with pytest.raises(DataError, match="0..2"):
        SoftDiceLoss(ignore_index=None)(logits, target)


def test_soft_dice_shape_errors():
    with pytest.raises(DataError, match=r"\(2, 1, 4, 4\)"):
        SoftDiceLoss()(torch.zeros(2, 1, 4, 4), torch.zeros(2, 5, 4))
    with pytest.raises(DataError, match=r"\(2, 4, 4\)"):
        SoftDiceLoss()(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long))


# ------------------------------------------------------------------ class weights

def masks_with_counts() -> list[torch.Tensor]:
    """Two masks: class 0 has 12 pixels, class 1 has 3, class 2 has 1; 4 pixels are 255."""
    a = torch.tensor([[0, 0, 0, 0], [0, 0, 1, 1], [255, 255, 255, 255]])
    b = torch.tensor([[0, 0, 0, 0], [0, 0, 1, 2]])
    return [a, b]


def test_pixel_counts_skip_the_ignore_index():
    assert pixel_counts(masks_with_counts(), 3).tolist() == [12, 3, 1]
    assert pixel_counts(masks_with_counts(), 3).dtype == torch.int64
    # (image, mask) pairs as a Dataset returns them, numpy masks, one stacked tensor
    pairs = [(torch.zeros(3, 2, 4), m) for m in masks_with_counts()]
    assert pixel_counts(pairs, 3).tolist() == [12, 3, 1]
    assert pixel_counts([m.numpy() for m in masks_with_counts()], 3).tolist() == [12, 3, 1]
    assert pixel_counts(torch.zeros(2, 3, 3, dtype=torch.long), 2).tolist() == [18, 0]


def test_pixel_counts_explain_bad_labels():
    with pytest.raises(DataError, match="0/255"):
        pixel_counts([torch.tensor([[0, 255]])], 2, ignore_index=None)
    with pytest.raises(DataError, match="bilinear"):
        pixel_counts([torch.tensor([[0.0, 0.5]])], 2)


def test_inverse_weights_have_mean_one_and_inverse_ratios():
    w = class_weights_from_frequencies(torch.tensor([12, 3, 1]), 3)
    assert w.dtype == torch.float32 and w.shape == (3,)
    assert w.mean().item() == pytest.approx(1.0)
    assert (w[1] / w[0]).item() == pytest.approx(4.0)   # 3 pixels vs 12
    assert (w[2] / w[0]).item() == pytest.approx(12.0)  # 1 pixel vs 12
    # counts from masks give the same weights
    torch.testing.assert_close(class_weights_from_frequencies(masks_with_counts(), 3), w)
    torch.testing.assert_close(class_weights_from_frequencies([12, 3, 1], 3), w)


def test_inverse_sqrt_and_median_weights():
    w = class_weights_from_frequencies([12, 3, 1], 3, method="inverse_sqrt")
    assert w.mean().item() == pytest.approx(1.0)
    assert (w[1] / w[0]).item() == pytest.approx(2.0)
    m = class_weights_from_frequencies([12, 3, 1], 3, method="median")
    assert m[1].item() == pytest.approx(1.0)  # the class of median frequency gets 1
    assert m.tolist() == pytest.approx([3 / 12, 1.0, 3.0])
    inverse = class_weights_from_frequencies([12, 3, 1], 3)
    torch.testing.assert_close(m / m.sum(), inverse / inverse.sum())  # same ratios
    m4 = class_weights_from_frequencies([8, 4, 2, 1], 4, method="median")
    assert m4.tolist() == pytest.approx([3 / 8, 3 / 4, 3 / 2, 3.0])  # median (4+2)/2 = 3 pixels


def test_zero_count_class_gets_weight_zero_and_a_warning():
    with pytest.warns(UserWarning, match=r"classes \[1\] have no pixels"):
        w = class_weights_from_frequencies([10, 0, 5], 3)
    assert w[1] == 0.0
    assert w[[0, 2]].mean().item() == pytest.approx(1.0)  # mean 1 over the classes present
    assert (w[2] / w[0]).item() == pytest.approx(2.0)


def test_class_weight_errors():
    with pytest.raises(DataError, match="no pixel"):
        class_weights_from_frequencies([0, 0], 2)
    with pytest.raises(DataError, match="3 counts for num_classes=2"):
        class_weights_from_frequencies([1, 2, 3], 2)
    with pytest.raises(ValueError, match="method"):
        class_weights_from_frequencies([1, 2], 2, method="log")


def test_weighted_cross_entropy_matches_torch_and_ignores_255():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, generator=g)
    target = torch.randint(0, 3, (2, 4, 4), generator=g)
    target[:, 0] = 255
    weights = class_weights_from_frequencies([12, 3, 1], 3)
    loss_fn = weighted_cross_entropy(weights)
    assert isinstance(loss_fn, nn.CrossEntropyLoss)
    assert loss_fn.ignore_index == 255
    reference = nn.CrossEntropyLoss(weight=weights, ignore_index=255)(logits, target)
    torch.testing.assert_close(loss_fn(logits, target), reference)
    # the ignored row does not matter
    other = logits.clone()
    other[:, :, 0] = 100.0
    torch.testing.assert_close(loss_fn(other, target), reference)
    # an (N, 1, H, W) target and plain lists of weights are accepted
    torch.testing.assert_close(weighted_cross_entropy(weights.tolist())(logits, target[:, None]),
                               reference)


def test_weighted_cross_entropy_scale_of_weights_does_not_matter():
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    w = torch.tensor([0.5, 1.0, 2.0])
    torch.testing.assert_close(weighted_cross_entropy(w)(logits, target),
                               weighted_cross_entropy(10 * w)(logits, target))


def test_masks_as_numpy_uint8_palette_indices():
    mask = np.array([[0, 1], [1, 255]], dtype=np.uint8)
    assert pixel_counts([mask], 2).tolist() == [1, 2]

"""The simplest segmenter there is: one global threshold on one pixel feature.

Before training a U-Net it is worth asking what a threshold gets. If "all
pixels brighter than 0.6 are car" already scores Dice 0.97, a network is
overkill; on the toy datasets of this course it scores far less, and that gap
is what the U-Net has to earn.

:func:`best_threshold_baseline` tries every threshold (and both directions:
"feature >= t is foreground" and "feature <= t is foreground") of each pixel
feature on the training images and keeps the best; :func:`evaluate_threshold_baseline`
scores that rule on held-out images.

Pixel features (each in [0, 1]):

- ``"gray"``:        brightness (ITU-R 601 luma for colour images);
- ``"background"``:  colour distance from the image's own background, taken as
                     the median colour of the pixels on the image border (RGB only);
- ``"saturation"``:  HSV saturation, (max - min) / max (RGB only).

Masks are binary with any value > 0 meaning foreground (0/1 and 0/255 both
work); for multiclass masks that means "object of any class vs background".
Pixels equal to ``ignore_index`` (255 in VOC masks) are left out when given.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

FEATURES = ("gray", "background", "saturation")
BINS = 256


def pixel_feature(image: np.ndarray, feature: str) -> np.ndarray:
    """One feature per pixel.

    Args:
        image: (H, W) or (H, W, 3) uint8 (or float in [0, 1]).
        feature: "gray", "background" or "saturation".

    Returns:
        (H, W) float32 in [0, 1].
    """
    image = np.asarray(image)
    img = image.astype(np.float32)
    if np.issubdtype(image.dtype, np.integer):
        img = img / 255.0
    if feature == "gray":
        if img.ndim == 2:
            return img
        return img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
    if img.ndim != 3:
        raise ValueError(f"feature {feature!r} needs an RGB image (H, W, 3), got shape {img.shape}")
    if feature == "background":
        border = np.concatenate([img[:2].reshape(-1, 3), img[-2:].reshape(-1, 3),
                                 img[:, :2].reshape(-1, 3), img[:, -2:].reshape(-1, 3)])
        background = np.median(border, axis=0)
        return np.linalg.norm(img - background, axis=-1) / np.sqrt(3.0)
    if feature == "saturation":
        hi, lo = img.max(axis=-1), img.min(axis=-1)
        return np.where(hi > 0, (hi - lo) / np.maximum(hi, 1e-6), 0.0).astype(np.float32)
    raise ValueError(f"unknown feature {feature!r}; use one of {FEATURES}")


def _foreground(mask: np.ndarray, ignore_index: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(foreground bool (H, W), valid bool (H, W)) from a mask."""
    mask = np.asarray(mask)
    valid = np.ones(mask.shape, bool) if ignore_index is None else mask != ignore_index
    return (mask > 0) & valid, valid


def _check_pairs(images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> None:
    if len(images) != len(masks) or len(images) == 0:
        raise ValueError(f"need the same, non-zero number of images and masks, got "
                         f"{len(images)} images and {len(masks)} masks")
    for i, (im, m) in enumerate(zip(images, masks)):
        if np.asarray(im).shape[:2] != np.asarray(m).shape[:2]:
            raise ValueError(f"image {i} is {np.asarray(im).shape[:2]} (H, W) but its mask is "
                             f"{np.asarray(m).shape[:2]}: resize them together")


def best_threshold_baseline(images: list[np.ndarray], masks: list[np.ndarray], *,
                            feature: str = "auto", ignore_index: int | None = None) -> dict:
    """The best single global threshold on the training images.

    Args:
        images: (H, W) or (H, W, 3) uint8 arrays.
        masks: (H, W) integer arrays, > 0 = foreground.
        feature: one of FEATURES, or "auto" to try every one that fits the images
            (only "gray" for single-channel images).
        ignore_index: mask value to leave out (e.g. 255 for VOC borders).

    Returns:
        {"feature", "threshold", "direction" (">=" or "<="), "train_dice"
        (Dice pooled over all training pixels), "per_feature" {feature: train Dice}}.
        Apply it with :func:`predict_threshold`.
    """
    _check_pairs(images, masks)
    rgb = all(np.asarray(im).ndim == 3 for im in images)
    if feature == "auto":
        candidates = list(FEATURES) if rgb else ["gray"]
    elif feature in FEATURES:
        candidates = [feature]
    else:
        raise ValueError(f"unknown feature {feature!r}; use 'auto' or one of {FEATURES}")

    results = {}
    for name in candidates:
        fg_hist = np.zeros(BINS, np.int64)
        bg_hist = np.zeros(BINS, np.int64)
        for im, m in zip(images, masks):
            f = pixel_feature(im, name)
            fg, valid = _foreground(m, ignore_index)
            idx = np.clip((f * BINS).astype(np.int64), 0, BINS - 1)
            fg_hist += np.bincount(idx[fg], minlength=BINS)
            bg_hist += np.bincount(idx[valid & ~fg], minlength=BINS)
        # predicted foreground = bins >= k ("above") or bins < k ("below"), k = 0..BINS
        fg_above = np.concatenate([np.cumsum(fg_hist[::-1])[::-1], [0]])
        bg_above = np.concatenate([np.cumsum(bg_hist[::-1])[::-1], [0]])
        total_fg = fg_hist.sum()
        best = (-1.0, 0, ">=")
        for direction in (">=", "<="):
            tp = fg_above if direction == ">=" else total_fg - fg_above
            fp = bg_above if direction == ">=" else bg_hist.sum() - bg_above
            fn = total_fg - tp
            dice = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
            k = int(np.argmax(dice))
            if dice[k] > best[0]:
                best = (float(dice[k]), k, direction)
        results[name] = best
    name = max(results, key=lambda n: results[n][0])
    dice, k, direction = results[name]
    return {"feature": name, "threshold": k / BINS, "direction": direction, "train_dice": dice,
            "per_feature": {n: r[0] for n, r in results.items()}}


def predict_threshold(image: np.ndarray, baseline: dict) -> np.ndarray:
    """Apply a rule from :func:`best_threshold_baseline`: (H, W) uint8 mask of 0/1."""
    f = pixel_feature(image, baseline["feature"])
    bins = np.clip((f * BINS).astype(np.int64), 0, BINS - 1)
    k = int(round(baseline["threshold"] * BINS))
    pred = bins >= k if baseline["direction"] == ">=" else bins < k
    return pred.astype(np.uint8)


def evaluate_threshold_baseline(images: list[np.ndarray], masks: list[np.ndarray], baseline: dict,
                                *, ignore_index: int | None = None) -> dict:
    """Score a threshold rule on held-out images (foreground vs background).

    Returns {"dice", "iou", "pixel_accuracy"}: means over the images of the
    per-image scores (an image with no foreground in mask and prediction scores
    1), plus "dice_pooled" over all pixels at once.
    """
    _check_pairs(images, masks)
    dices, ious, accs = [], [], []
    tp_all = fp_all = fn_all = 0
    for im, m in zip(images, masks):
        fg, valid = _foreground(m, ignore_index)
        pred = predict_threshold(im, baseline).astype(bool) & valid
        tp = int((pred & fg).sum())
        fp = int((pred & ~fg).sum())
        fn = int((~pred & fg).sum())
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
        dices.append(1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
        ious.append(1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn))
        accs.append(float(((pred == fg) & valid).sum()) / max(int(valid.sum()), 1))
    return {"dice": float(np.mean(dices)), "iou": float(np.mean(ious)),
            "pixel_accuracy": float(np.mean(accs)),
            "dice_pooled": 2 * tp_all / max(2 * tp_all + fp_all + fn_all, 1)}

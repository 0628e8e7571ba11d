"""The threshold baseline: it finds a threshold where one exists, and fails on the toy data."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segkit import toydata
from segkit.baselines import (best_threshold_baseline, evaluate_threshold_baseline, pixel_feature,
                              predict_threshold)


def _square_scene(inside, outside, size=32):
    """An image with a square of colour ``inside`` on ``outside``, and its 0/1 mask."""
    img = np.empty((size, size, 3), np.uint8)
    img[:] = outside
    img[8:24, 8:24] = inside
    mask = np.zeros((size, size), np.uint8)
    mask[8:24, 8:24] = 1
    return img, mask


def test_bright_object_on_dark_is_found_with_gray_above_threshold():
    img, mask = _square_scene(200, 40)
    rule = best_threshold_baseline([img], [mask])
    assert rule["direction"] == ">=" and rule["train_dice"] == pytest.approx(1.0)
    assert 40 / 255 < rule["threshold"] <= 200 / 255
    assert evaluate_threshold_baseline([img], [mask], rule)["dice"] == pytest.approx(1.0)


def test_dark_object_on_bright_gives_the_below_direction():
    img, mask = _square_scene(30, 220)
    rule = best_threshold_baseline([img[..., 0]], [mask * 255])       # grey image, 0/255 mask
    assert rule["feature"] == "gray" and rule["direction"] == "<="
    np.testing.assert_array_equal(predict_threshold(img[..., 0], rule), mask)


def test_colour_object_of_the_background_brightness_needs_a_colour_feature():
    # pure red and a grey of the same luma: brightness cannot tell them apart
    img, mask = _square_scene((255, 0, 0), (76, 76, 76))
    gray = best_threshold_baseline([img], [mask], feature="gray")
    auto = best_threshold_baseline([img], [mask])
    assert gray["train_dice"] < 0.7
    assert auto["feature"] in ("saturation", "background") and auto["train_dice"] == pytest.approx(1.0)


def test_ignored_pixels_do_not_count():
    img, mask = _square_scene(200, 40)
    mask = mask.copy()
    mask[0:4] = 255                       # void band, with an object-like brightness
    img[0:4] = 200
    rule = best_threshold_baseline([img], [mask], ignore_index=255)
    assert rule["train_dice"] == pytest.approx(1.0)
    assert evaluate_threshold_baseline([img], [mask], rule, ignore_index=255)["dice"] == pytest.approx(1.0)


def test_evaluate_scores_per_image_and_counts_empty_agreement_as_perfect():
    img, mask = _square_scene(200, 40)
    rule = {"feature": "gray", "threshold": 0.5, "direction": ">="}
    empty = np.full_like(img, 40)
    scores = evaluate_threshold_baseline([img, empty], [mask, np.zeros_like(mask)], rule)
    assert scores["dice"] == pytest.approx(1.0) and scores["iou"] == pytest.approx(1.0)
    assert scores["pixel_accuracy"] == pytest.approx(1.0)
    half = {"feature": "gray", "threshold": 0.99, "direction": ">="}         # predicts nothing
    assert evaluate_threshold_baseline([img], [mask], half)["dice"] == 0.0


def test_features_are_in_zero_one():
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for feature in ("gray", "background", "saturation"):
        f = pixel_feature(img, feature)
        assert f.shape == (20, 30) and f.min() >= 0 and f.max() <= 1
    with pytest.raises(ValueError, match="RGB"):
        pixel_feature(img[..., 0], "saturation")


def test_mismatched_inputs_are_refused():
    img, mask = _square_scene(200, 40)
    with pytest.raises(ValueError, match="same"):
        best_threshold_baseline([img, img], [mask])
    with pytest.raises(ValueError, match="resize"):
        best_threshold_baseline([img], [mask[:10]])
    with pytest.raises(ValueError, match="feature"):
        best_threshold_baseline([img], [mask], feature="hue")


@pytest.mark.parametrize("name", ["carvana", "seasky"])
def test_a_threshold_is_not_enough_on_the_toy_datasets(name):
    root = toydata.embedded_root(name)
    if name == "carvana":
        paths = sorted((root / "train").glob("*.jpg"))
        masks = [np.asarray(Image.open(root / "train_masks" / f"{p.stem}_mask.gif")) for p in paths]
        images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
        cars = sorted({p.stem[:12] for p in paths})
        in_val = [cars.index(p.stem[:12]) % 5 == 0 for p in paths]   # split by car: all 4 views together
    else:
        paths = sorted((root / "images").glob("*.png"))
        masks = [np.asarray(Image.open(root / "masks" / f"{p.stem}_mask.png")) for p in paths]
        images = [np.asarray(Image.open(p)) for p in paths]
        in_val = [i % 5 == 0 for i in range(len(paths))]
    train = [i for i, v in enumerate(in_val) if not v]
    val = [i for i, v in enumerate(in_val) if v]
    rule = best_threshold_baseline([images[i] for i in train], [masks[i] for i in train])
    score = evaluate_threshold_baseline([images[i] for i in val], [masks[i] for i in val], rule)
    assert score["dice"] < 0.9, f"a {rule['feature']} threshold already scores Dice {score['dice']:.3f}"


def test_a_threshold_is_not_enough_for_voc_foreground():
    base = toydata.embedded_root("voc") / "VOCdevkit" / "VOC2012"

    def load(split):
        names = (base / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()
        return ([np.asarray(Image.open(base / "JPEGImages" / f"{n}.jpg").convert("RGB")) for n in names],
                [np.asarray(Image.open(base / "SegmentationClass" / f"{n}.png")) for n in names])

    (ti, tm), (vi, vm) = load("train"), load("val")
    rule = best_threshold_baseline(ti, tm, ignore_index=255)
    assert evaluate_threshold_baseline(vi, vm, rule, ignore_index=255)["dice"] < 0.8

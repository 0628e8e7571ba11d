"""Paired augmentation and normalisation: segkit.transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from segkit.transforms import compute_mean_std, denormalize, eval_transforms, train_transforms

LEVEL = 60  # image pixel value = LEVEL * class, so the image "spells" its mask


def encoded_pair(h: int = 40, w: int = 48):
    """A mask of blocks (classes 0..3) and an RGB uint8 image whose pixels encode it."""
    mask = torch.zeros(h, w, dtype=torch.int64)
    mask[5:20, 3:15] = 1  # left of centre: a horizontal flip moves it
    mask[22:35, 20:44] = 2
    mask[8:14, 30:40] = 3
    image = (mask * LEVEL).to(torch.uint8).expand(3, h, w).clone()
    return tv_tensors.Image(image), tv_tensors.Mask(mask)


def test_same_random_flip_and_affine_for_image_and_mask():
    image, mask = encoded_pair()
    t = train_transforms((40, 48), mean=[0, 0, 0], std=[1, 1, 1], color=False)
    changed = 0
    for seed in range(30):
        torch.manual_seed(seed)
        out_image, out_mask = t(image, mask)
        decoded = torch.round(out_image[0] * 255 / LEVEL).long()
        assert torch.equal(decoded, out_mask), f"image and mask disagree (seed {seed})"
        changed += not torch.equal(out_mask, mask)
    assert changed >= 25  # the augmentation really moved things around


def test_augmentation_is_reproducible_with_a_seed():
    image, mask = encoded_pair()
    t = train_transforms((40, 48), [0.5] * 3, [0.25] * 3)
    torch.manual_seed(3)
    a = t(image, mask)
    torch.manual_seed(3)
    b = t(image, mask)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("make", ["train", "eval"])
def test_resized_mask_keeps_its_values_and_dtype(make):
    image, mask = encoded_pair()
    mask[0, :] = 255  # an ignore border must survive too
    original = set(mask.unique().tolist())
    if make == "train":
        t = train_transforms((23, 37), [0.5] * 3, [0.25] * 3)
    else:
        t = eval_transforms((23, 37), [0.5] * 3, [0.25] * 3)
    for seed in range(5):
        torch.manual_seed(seed)
        out_image, out_mask = t(image, mask)
        assert isinstance(out_mask, tv_tensors.Mask)
        assert out_mask.dtype == torch.int64 and out_mask.shape == (23, 37)
        assert set(out_mask.unique().tolist()) <= original  # NEAREST: no invented values
        assert out_image.dtype == torch.float32 and out_image.shape == (3, 23, 37)


def test_color_jitter_and_normalize_leave_the_mask_alone():
    image, mask = encoded_pair()
    t = train_transforms(None, [0.2] * 3, [0.1] * 3, hflip=False, affine=False)
    torch.manual_seed(0)
    out_image, out_mask = t(image, mask)
    assert torch.equal(out_mask, mask)
    assert not torch.allclose(out_image, image.float() / 255)  # the image did change


def test_eval_transforms_normalise_and_are_deterministic():
    image, mask = encoded_pair()
    mean, std = [0.3, 0.3, 0.3], [0.2, 0.2, 0.2]
    t = eval_transforms(None, mean, std)
    out_image, out_mask = t(image, mask)
    expected = (image.float() / 255 - 0.3) / 0.2
    assert torch.allclose(out_image, expected, atol=1e-6)
    assert torch.equal(t(image, mask)[0], out_image)
    assert torch.equal(out_mask, mask)


def test_grayscale_images_work():
    image, mask = encoded_pair()
    gray = tv_tensors.Image(image[:1])
    out_image, out_mask = train_transforms((20, 24), [0.5], [0.2])(gray, mask)
    assert out_image.shape == (1, 20, 24) and out_mask.shape == (20, 24)


def test_bad_size_is_refused():
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        eval_transforms(64, [0.5], [0.2])


# -- statistics --------------------------------------------------------------


def test_compute_mean_std_known_values(tmp_path):
    # two 2x2 RGB images; R: all pixels 0 and 255 -> mean 0.5, std 0.5
    a = np.zeros((2, 2, 3), np.uint8)
    b = np.zeros((2, 2, 3), np.uint8)
    b[..., 0] = 255
    a[..., 1] = 51  # G: 0.2 everywhere in a, 0 in b -> mean 0.1, std 0.1
    b[0, 0, 2] = 255  # B: one white pixel of 8 -> mean 1/8, std sqrt(7)/8
    paths = []
    for name, pixels in (("a.png", a), ("b.png", b)):
        Image.fromarray(pixels).save(tmp_path / name)
        paths.append(tmp_path / name)
    mean, std = compute_mean_std(paths)
    assert mean == pytest.approx([0.5, 0.1, 1 / 8], abs=1e-9)
    assert std == pytest.approx([0.5, 0.1, np.sqrt(7) / 8], abs=1e-9)
    assert isinstance(mean[0], float) and len(std) == 3


def test_compute_mean_std_matches_numpy_on_a_dataset():
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(1, 5 + i, 7, generator=g) for i in range(4)]
    dataset = [(im, torch.zeros(1)) for im in images]  # any dataset of (image, mask)
    dataset = torch.utils.data.Subset(_ListDataset(dataset), [0, 1, 2, 3])
    mean, std = compute_mean_std(dataset)
    allpix = torch.cat([im.flatten() for im in images]).double().numpy()
    assert mean == pytest.approx([allpix.mean()], abs=1e-9)
    assert std == pytest.approx([allpix.std()], abs=1e-9)


class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_denormalize_inverts_normalize():
    image, mask = encoded_pair()
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    normalised, _ = eval_transforms(None, mean, std)(image, mask)
    back = denormalize(normalised, mean, std)
    assert torch.allclose(back, image.float() / 255, atol=1e-6)
    batch = denormalize(normalised.unsqueeze(0).repeat(2, 1, 1, 1), mean, std)
    assert batch.shape == (2, 3, 40, 48)
    assert denormalize(normalised * 10, mean, std).max() <= 1  # clipped for display

"""The checks of lesson 01 pass the solutions, stop at the stubs, and name each mistake."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from check_helpers import NOT_DONE, exercise_of, expect_mistake, register, register_wrong
from segkit.checks import CheckFailed, ExerciseNotDone, lesson01, passed, reset
from segkit.data import CarvanaDataset
from segkit.transforms import compute_mean_std


# =========================================================================== to_class_indices


def to_class_indices(mask_array):
    ### the solution of the notebook
    return (np.asarray(mask_array) > 0).astype(np.int64)


def test_to_class_indices_passes_the_solution_and_the_reference(capsys):
    lesson01.check_to_class_indices(to_class_indices)
    assert capsys.readouterr().out == \
        "✅ to_class_indices — passed (0/255, 0/1 and empty masks)\n"
    assert passed("to_class_indices")
    lesson01.check_to_class_indices(lesson01.reference_to_class_indices)
    lesson01.check_to_class_indices(lambda m: torch.from_numpy(np.asarray(m)).gt(0).long())


def test_to_class_indices_stub_is_not_done():
    def stub(mask_array):
        raise NotImplementedError("Exercise to_class_indices: write your code here")

    with pytest.raises(ExerciseNotDone):
        lesson01.check_to_class_indices(stub)
    assert not passed("to_class_indices")


INDICES_MISTAKES = [
    (lambda m: m.astype(np.int64), "mask-0-255-as-index", ("255", "out of bounds", "mask > 0")),
    (lambda m: torch.from_numpy(m).long(), "mask-0-255-as-index", ("255",)),
    (lambda m: m / 255, "mask-divided-to-float", ("floats", "int64")),
    (lambda m: m > 0, "mask-bool-dtype", ("bool", "int64")),
    (lambda m: (m > 0).astype(np.uint8), "mask-not-int64", ("int64",)),
    (lambda m: (m // 255).astype(np.int64), "assumes-0-255", ("0/1", "not 0")),
    (lambda m: (m == 255).astype(np.int64), "assumes-0-255", ("GIF",)),
    (lambda m: None, "returns-none", ("return",)),
    (lambda m: (m > 0).tolist(), "not-an-array", ("array",)),
]


@pytest.mark.parametrize("student, mistake, words", INDICES_MISTAKES)
def test_to_class_indices_mistakes(student, mistake, words):
    expect_mistake(lesson01.check_to_class_indices, student, mistake, *words)
    assert not passed("to_class_indices")


def test_to_class_indices_check_leaves_the_input_alone():
    seen = []

    def spy(mask):
        seen.append(mask)
        return (mask > 0).astype(np.int64)

    lesson01.check_to_class_indices(spy)
    assert sorted(np.unique(seen[0]).tolist()) == [0, 255]  # the check gave a 0/255 mask
    assert sorted(np.unique(seen[1]).tolist()) == [0, 1]


# =========================================================================== CarvanaPairs


class CarvanaPairs(Dataset):
    """The notebook's solution."""

    def __init__(self, root, transform=None):
        root = Path(root)
        self.image_paths = sorted((root / "train").glob("*.jpg"))
        self.mask_paths = [root / "train_masks" / f"{p.stem}_mask.gif" for p in self.image_paths]
        self.transform = transform

    def __len__(self):
        return len(self.image_paths)

    def read(self, index):
        image = TF.pil_to_tensor(Image.open(self.image_paths[index]).convert("RGB"))
        mask = np.asarray(Image.open(self.mask_paths[index]))
        return image, mask

    def __getitem__(self, index):
        image, mask = self.read(index)
        image = tv_tensors.Image(TF.to_dtype(image, torch.float32, scale=True))
        mask = tv_tensors.Mask(torch.as_tensor(to_class_indices(mask)))
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask


def test_carvana_pairs_passes_the_solution_and_the_reference(capsys):
    lesson01.check_carvana_pairs(CarvanaPairs)
    assert capsys.readouterr().out == (
        "✅ CarvanaPairs on a tiny Carvana folder — passed (5 pairs, a grayscale JPEG, "
        "and a flip applied to both)\n")
    lesson01.check_carvana_pairs(CarvanaDataset)


def test_carvana_pairs_stub_is_not_done():
    class Stub(Dataset):
        def __init__(self, root, transform=None):
            raise NotImplementedError("Exercise CarvanaPairs: write your code here")

    with pytest.raises(ExerciseNotDone):
        lesson01.check_carvana_pairs(Stub)

    class UsesUnfinished(CarvanaPairs):  # to_class_indices still a stub
        def __getitem__(self, index):
            raise NotImplementedError("Exercise to_class_indices: write your code here")

    with pytest.raises(ExerciseNotDone, match="uses exercise `to_class_indices`"):
        lesson01.check_carvana_pairs(UsesUnfinished)


class MaskFloat(CarvanaPairs):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image, mask.float()


class ImageUint8(CarvanaPairs):
    def __getitem__(self, index):
        image, mask = self.read(index)
        return image, torch.as_tensor(to_class_indices(mask))


class ImageNotScaled(CarvanaPairs):
    def __getitem__(self, index):
        image, mask = self.read(index)
        return image.float(), torch.as_tensor(to_class_indices(mask))


class ImageHWC(CarvanaPairs):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image.permute(1, 2, 0), mask


class NoConvertRGB(CarvanaPairs):
    def __getitem__(self, index):
        image = TF.pil_to_tensor(Image.open(self.image_paths[index]))  # grayscale stays 1 channel
        mask = np.asarray(Image.open(self.mask_paths[index]))
        return TF.to_dtype(image, torch.float32, scale=True), torch.as_tensor(
            to_class_indices(mask))


class MaskAsRGB(CarvanaPairs):
    def __getitem__(self, index):
        image, _ = super().__getitem__(index)
        mask = np.asarray(Image.open(self.mask_paths[index]).convert("RGB"))
        return image, torch.as_tensor(to_class_indices(mask))


class Mask0255(CarvanaPairs):
    def __getitem__(self, index):
        image, _ = super().__getitem__(index)
        mask = np.asarray(Image.open(self.mask_paths[index]).convert("L"))
        return image, torch.as_tensor(mask.astype(np.int64))


class MaskNumpy(CarvanaPairs):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image, mask.numpy()


class SortedSeparately(CarvanaPairs):
    """Masks listed on their own, sorted the other way round: pairs drift apart."""

    def __init__(self, root, transform=None):
        super().__init__(root, transform)
        self.mask_paths = sorted((Path(root) / "train_masks").glob("*.gif"), reverse=True)


class OffByOne(CarvanaPairs):
    def __getitem__(self, index):
        image, _ = super().__getitem__(index)
        _, mask = super().__getitem__((index + 1) % len(self))
        return image, mask


class NotSorted(CarvanaPairs):
    def __init__(self, root, transform=None):
        super().__init__(root, transform)
        self.image_paths = self.image_paths[::-1]
        self.mask_paths = self.mask_paths[::-1]


class LenWrong(CarvanaPairs):
    def __len__(self):
        return len(self.image_paths) - 1


class PlainTensors(CarvanaPairs):
    def __getitem__(self, index):
        image, mask = self.read(index)
        image = TF.to_dtype(image, torch.float32, scale=True)
        mask = torch.as_tensor(to_class_indices(mask))
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask


class TransformImageOnly(CarvanaPairs):
    def __getitem__(self, index):
        image, mask = self.read(index)
        image = tv_tensors.Image(TF.to_dtype(image, torch.float32, scale=True))
        mask = tv_tensors.Mask(torch.as_tensor(to_class_indices(mask)))
        if self.transform is not None:
            image = self.transform(image)
        return image, mask


class TransformIgnored(CarvanaPairs):
    def __getitem__(self, index):
        image, mask = self.read(index)
        image = tv_tensors.Image(TF.to_dtype(image, torch.float32, scale=True))
        return image, tv_tensors.Mask(torch.as_tensor(to_class_indices(mask)))


CARVANA_MISTAKES = [
    (MaskFloat, "mask-float-not-int64", ("int64", ".long()")),
    (ImageUint8, "image-uint8-not-float", ("float32", "its scale")),
    (ImageNotScaled, "image-not-scaled", ("255", "[0, 1]")),
    (ImageHWC, "image-hwc-not-chw", ("(3, H, W)", "permute")),
    (NoConvertRGB, "image-not-rgb", ("grayscale", "3 channels")),
    (MaskAsRGB, "mask-read-as-rgb", ("palette", "how you open the mask")),
    (Mask0255, "mask-0-255-as-index", ("0/255", "to_class_indices")),
    (MaskNumpy, "mask-not-tensor", ("tv_tensors.Mask",)),
    (SortedSeparately, "pairs-mismatched", ("same file name", "_mask.gif")),
    (OffByOne, "pairs-mismatched", ("same file name",)),
    (NotSorted, "pairs-not-sorted", ("sort",)),
    (LenWrong, "len-wrong", ("__len__",)),
    (PlainTensors, "mask-not-tv-tensor", ("tv_tensors", "plain tensor")),
    (TransformImageOnly, "mask-not-tv-tensor", ("both go in one call",)),
    (TransformIgnored, "transform-ignored", ("never uses it",)),
]


@pytest.mark.parametrize("student, mistake, words", CARVANA_MISTAKES)
def test_carvana_pairs_mistakes(student, mistake, words):
    expect_mistake(lesson01.check_carvana_pairs, student, mistake, *words)


def test_carvana_pairs_without_image_paths_is_told_what_to_keep():
    class NoPaths(CarvanaPairs):
        def __init__(self, root, transform=None):
            super().__init__(root, transform)
            self.files = self.image_paths
            del self.image_paths

        def __len__(self):
            return len(self.files)

    with pytest.raises(CheckFailed, match="no attribute `image_paths`"):
        lesson01.check_carvana_pairs(NoPaths)


# =========================================================================== make_train_transform


def make_train_transform(size):
    """The notebook's solution."""
    return v2.Compose([
        v2.Resize(size),
        v2.RandomHorizontalFlip(p=0.5),
        v2.ColorJitter(brightness=0.2, contrast=0.2),
        v2.ToDtype(torch.float32, scale=True),
    ])


def test_make_train_transform_passes_the_solution_and_the_reference(capsys):
    lesson01.check_make_train_transform(make_train_transform)
    out = capsys.readouterr().out
    assert out.startswith("✅ make_train_transform — passed (16 random draws, ")
    assert out.endswith("flipped, image and mask always aligned)\n")
    lesson01.check_make_train_transform(lesson01.reference_make_train_transform)


def test_make_train_transform_check_leaves_the_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    lesson01.check_make_train_transform(make_train_transform)
    assert torch.equal(torch.rand(3), expected)


def test_make_train_transform_stub_is_not_done():
    def stub(size):
        raise NotImplementedError("Exercise make_train_transform: write your code here")

    with pytest.raises(ExerciseNotDone):
        lesson01.check_make_train_transform(stub)


def separate_pipelines(size):
    image_t = v2.Compose([v2.Resize(size), v2.RandomHorizontalFlip(),
                          v2.ToDtype(torch.float32, scale=True)])
    mask_t = v2.Compose([v2.Resize(size), v2.RandomHorizontalFlip()])

    def transform(image, mask):
        return image_t(image), mask_t(mask)

    return transform


def reseeded(image_steps, mask_steps):
    """The ten-class project's trick: reset the global seed before the image and again before
    the mask."""
    image_t, mask_t = v2.Compose(image_steps), v2.Compose(mask_steps)

    def transform(image, mask):
        seed = int(torch.randint(0, 2**31 - 1, ()))
        torch.manual_seed(seed)
        image = image_t(image)
        torch.manual_seed(seed)
        return image, mask_t(mask)

    return transform


def reseeded_with_jitter(size):
    return reseeded([v2.Resize(size), v2.ColorJitter(brightness=0.2, contrast=0.2),
                     v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True)],
                    [v2.Resize(size), v2.RandomHorizontalFlip()])


def reseeded_in_step(size):
    return reseeded([v2.Resize(size), v2.RandomHorizontalFlip(),
                     v2.ToDtype(torch.float32, scale=True)],
                    [v2.Resize(size), v2.RandomHorizontalFlip()])


def mask_as_fourth_channel(size, rounded):
    """Image and mask stacked into one 4-channel Image: they flip together, but the mask
    is resized bilinearly."""
    pipeline = v2.Compose([v2.Resize(size), v2.RandomHorizontalFlip()])

    def transform(image, mask):
        both = pipeline(tv_tensors.Image(torch.cat([image, mask[None].float()])))
        out_mask = both[3].round().long() if rounded else both[3]
        return both[:3].as_subclass(torch.Tensor), out_mask

    return transform


def test_reseeding_in_step_works_and_passes():
    """Same random draws in both pipelines: aligned (fragile, but right)."""
    lesson01.check_make_train_transform(reseeded_in_step)


TRANSFORM_MISTAKES = [
    (separate_pipelines, "separate-random-params", ("ONE v2.Compose", "t(image, mask)")),
    (reseeded_with_jitter, "separate-random-params", ("global seed", "ColorJitter")),
    (lambda size: mask_as_fourth_channel(size, rounded=False), "mask-float-not-int64",
     ("int64",)),
    (lambda size: mask_as_fourth_channel(size, rounded=True), "mask-bilinear",
     ("tv_tensors.Mask", "NEAREST")),
    (lambda size: v2.Compose([v2.Resize((size[1], size[0])), v2.RandomHorizontalFlip()]),
     "size-w-h-swapped", ("(H, W)",)),
    (lambda size: v2.Compose([v2.Resize(size), v2.RandomHorizontalFlip(),
                              v2.Normalize([0.5] * 3, [0.1] * 3)]),
     "normalized-too-early", ("Normalize", "mean_std")),
    (lambda size: v2.Compose([v2.Resize(size), v2.ToDtype(torch.float32, scale=True)]),
     "flip-not-random", ("probability", "half of the calls")),
    (lambda size: v2.Compose([v2.Resize(size), v2.RandomHorizontalFlip(p=1.0)]),
     "flip-not-random", ("always",)),
    (lambda size: v2.Compose([v2.RandomHorizontalFlip()]), "wrong-size", ("v2.Resize(size)",)),
    (lambda size: v2.Compose([v2.Resize(size), v2.RandomHorizontalFlip(),
                              v2.ToDtype(torch.float64, scale=True)]),
     "image-not-float32", ("float32",)),
    (lambda size: None, "returns-none", ("return",)),
]


@pytest.mark.parametrize("student, mistake, words", TRANSFORM_MISTAKES)
def test_make_train_transform_mistakes(student, mistake, words):
    expect_mistake(lesson01.check_make_train_transform, student, mistake, *words)


def test_a_transform_that_leaves_the_mask_behind_is_named():
    def image_pipeline_only(size):
        pipeline = v2.Compose([v2.Resize(size), v2.RandomHorizontalFlip()])

        def transform(image, mask):
            return pipeline(image), mask

        return transform

    expect_mistake(lesson01.check_make_train_transform, image_pipeline_only, "mask-not-transformed",
           "tv_tensors.Mask")


# =========================================================================== mean_std


def mean_std(dataset):
    """The notebook's solution: running sums over every pixel."""
    total = total_sq = None
    count = 0
    for image, _ in dataset:
        pixels = image.double().reshape(image.shape[0], -1)
        if total is None:
            total = torch.zeros(image.shape[0], dtype=torch.float64)
            total_sq = torch.zeros_like(total)
        total += pixels.sum(dim=1)
        total_sq += (pixels**2).sum(dim=1)
        count += pixels.shape[1]
    mean = total / count
    std = (total_sq / count - mean**2).sqrt()
    return mean.float(), std.float()


def _stack(dataset):
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


def test_mean_std_passes_the_solution_and_the_reference(capsys):
    lesson01.check_mean_std(mean_std)
    assert capsys.readouterr().out == "✅ mean_std — passed (5 images of different brightness)\n"
    lesson01.check_mean_std(compute_mean_std)
    lesson01.check_mean_std(lambda ds: (_stack(ds).mean(dim=(0, 2, 3)),
                                        _stack(ds).std(dim=(0, 2, 3))))  # unbiased: close enough


def test_mean_std_stub_is_not_done():
    def stub(dataset):
        raise NotImplementedError("Exercise mean_std: write your code here")

    with pytest.raises(ExerciseNotDone):
        lesson01.check_mean_std(stub)


def batch_means(dataset):
    loader = DataLoader(dataset, batch_size=2)
    means = [images.mean(dim=(0, 2, 3)) for images, _ in loader]
    return torch.stack(means).mean(0), mean_std(dataset)[1]


def batch_means_and_stds(dataset):
    loader = DataLoader(dataset, batch_size=4)
    stats = [(x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))) for x, _ in loader]
    return mean_std(dataset)[0], torch.stack([s for _, s in stats]).mean(0)


def std_of_means(dataset):
    x = _stack(dataset)
    return x.mean(dim=(0, 2, 3)), x.mean(dim=(2, 3)).std(dim=0)


def mean_of_image_stds(dataset):
    x = _stack(dataset)
    return x.mean(dim=(0, 2, 3)), x.std(dim=(2, 3)).mean(dim=0)


def variance(dataset):
    x = _stack(dataset)
    return x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)


MEAN_STD_MISTAKES = [
    (batch_means, "mean-of-batch-means", ("last batch", "number of pixels")),
    (std_of_means, "std-of-image-means", ("MEANS", "every pixel")),
    (mean_of_image_stds, "mean-of-image-stds", ("differ", "sqrt")),
    (batch_means_and_stds, "mean-of-image-stds", ("per-batch",)),
    (variance, "variance-not-std", ("square root",)),
    (lambda ds: (_stack(ds).mean(), _stack(ds).std()), "not-per-channel", ("one value per channel", "dims you reduce over")),
    (lambda ds: (_stack(ds).mean(dim=0), _stack(ds).std(dim=0)), "reduced-wrong-dims",
     ("channel",)),
    (lambda ds: None, "returns-none", ("return",)),
]


@pytest.mark.parametrize("student, mistake, words", MEAN_STD_MISTAKES)
def test_mean_std_mistakes(student, mistake, words):
    expect_mistake(lesson01.check_mean_std, student, mistake, *words)


# =========================================================================== the corpus


def _stub(name):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"Exercise {name}: write your code here")
    return stub


class CarvanaStub(Dataset):
    def __init__(self, root, transform=None):
        raise NotImplementedError("Exercise CarvanaPairs: write your code here")


for _check, _rights, _stub_form in [
        (lesson01.check_to_class_indices,
         [to_class_indices, lesson01.reference_to_class_indices], _stub("to_class_indices")),
        (lesson01.check_carvana_pairs, [CarvanaPairs, CarvanaDataset], CarvanaStub),
        (lesson01.check_make_train_transform,
         [make_train_transform, lesson01.reference_make_train_transform, reseeded_in_step],
         _stub("make_train_transform")),
        (lesson01.check_mean_std, [mean_std, compute_mean_std], _stub("mean_std"))]:
    for _fn in _rights:
        register(_check, _fn, None)
    register(_check, _stub_form, NOT_DONE, f"stub_{exercise_of(_check)}")
for _check, _list in [(lesson01.check_to_class_indices, INDICES_MISTAKES),
                      (lesson01.check_carvana_pairs, CARVANA_MISTAKES),
                      (lesson01.check_make_train_transform, TRANSFORM_MISTAKES),
                      (lesson01.check_mean_std, MEAN_STD_MISTAKES)]:
    for _i, (_fn, _mistake, _) in enumerate(_list):
        register_wrong(_check, _fn, _mistake, f"{exercise_of(_check)}_{_i}")

"""The course's mistake catalogue: every mistake a check can name, in one place.

Each :class:`Mistake` has

- ``id``: the short kebab-case name a check raises (``CheckFailed.mistake``);
- ``lessons`` and ``exercises``: where the checks look for it;
- ``what``: one line saying what the student's code does wrong;
- ``hint``: what the student reads under the ❌ line. A check that has the values at hand
  may pass a more precise hint instead (e.g. the student's parameter count); a hint with
  ``{fields}`` is filled in by the check (``hint_for("empty-zero", title="Dice")``);
- ``source``: where the mistake comes from: a short name from ``SOURCES``, which says in
  words which of the student reports the course grew from (or which trial runs) met it.

A check refers to a mistake by its id only::

    fail(f"{name} is {value}, expected {right}", mistake="dice-no-factor-2")

and ``core.fail`` takes the hint from here. ``tests/test_checks_catalogue.py`` holds every
id a check uses to this list, and INSTRUCTORS.md shows it as a table (written by the course
tools: ``python -m segkit_course.mistakes --write INSTRUCTORS.md``).

Adding a mistake: add its entry to the lesson's block below, make the check raise it,
write at least two differently written wrong implementations that get it in
``tests/test_checks_mistakes.py``, then regenerate the table in INSTRUCTORS.md
(``python -m segkit_course.mistakes --write INSTRUCTORS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MISTAKES", "SOURCES", "Mistake", "hint_for"]

# Where mistakes come from: a short name (the ``source`` of a Mistake) and what it means.
# The student reports the course grew from are described in words, never named.
SEA_SKY = "sea/sky report"
CARVANA_LAPTOP = "Carvana laptop report"
VOC_PALETTE = "multiclass photo report"
VOC_COMPARE = "VOC comparison project"
TRIALS = "trial runs"
REVIEW = "review"
CHECKS = "run_check"
SOURCES = {
    SEA_SKY: "a student report on a U-Net for sea/sky images: loss summed as a tensor, pixel "
             "accuracy printed as 0.00 every epoch, masks and predictions mixed up in the "
             "check code",
    CARVANA_LAPTOP: "a student report that trained milesial's U-Net on Carvana on a laptop "
                    "(Apple MPS): GIF masks, resizing, RMSprop at lr 1e-5 with batch 1",
    VOC_PALETTE: "a student report on photographic multiclass segmentation (mIoU 0.62 after "
                 "3 hours): palette masks with a 255 border, augmentation kept aligned by "
                 "reseeding",
    VOC_COMPARE: "a student course project comparing FCN, U-Net, ResUNet and PSPNet on Pascal "
                 "VOC 2012: the background class dominates accuracy and mIoU",
    TRIALS: "the course's trial runs: each exercise solved as a student would, with the "
            "slips PyTorch beginners make",
    REVIEW: "a review of the checks against mistakes beginners commonly make in PyTorch "
            "segmentation code, beyond the five reports",
    CHECKS: "every check: `run_check` reports it whatever the exercise",
}


@dataclass(frozen=True)
class Mistake:
    """One catalogued mistake (see the module's docstring)."""

    id: str
    lessons: tuple[str, ...]
    exercises: tuple[str, ...]
    what: str
    hint: str
    source: str


_CATALOGUE = [
    # -------------------- lesson 00: setup
    Mistake("returns-none", ("00", "01", "03", "04", "05", "06", "07", "10"),
            ("class_weights", "dice_score", "flip_tta", "float32_mib", "foreground_fraction",
             "iou_score", "list_pairs", "log_spaced", "make_train_transform", "mask_to_png_array",
             "mean_std", "miou_from_confusion", "multiclass_loss", "pixel_accuracy",
             "predict_full_size", "predict_labels", "shard", "summarize_runs",
             "to_channels_last", "to_class_indices", "train_one_epoch", "validate"),
            what="the function computes its answer but has no `return`, so it gives None",
            hint="your function computes the value but does not give it back: end it with `return "
                 "...`.",
            source=TRIALS),
    Mistake("integer-division", ("00", "03"), ("average_loss", "float32_mib",
                                                "foreground_fraction", "train_one_epoch",
                                                "validate"),
            what="`//` or `int(...)` throws the fraction away, so a small answer becomes 0",
            hint="integer division: `//` (or int(...)) throws the fraction away, so a small "
                 "answer becomes 0. Divide with `/`, which gives a float.",
            source=TRIALS),
    Mistake("not-a-float", ("00", "10"), ("float32_mib", "foreground_fraction",
                                          "mixed_precision_step"),
            what="a NumPy number or 1-element tensor returned where a plain Python number is "
                 "asked for",
            hint="return a plain number: `float(x)` turns a NumPy number or a 1-element tensor "
                 "into one (`x.item()` works too).",
            source=TRIALS),
    Mistake("forgot-bytes-per-value", ("00",), ("float32_mib",),
            what="memory counted in values, not bytes: the 4 bytes of each float32 forgotten",
            hint="you counted the numbers, not the bytes: each float32 value takes 4 bytes. "
                 "Multiply the number of values by 4.",
            source=TRIALS),
    Mistake("megabytes-not-mib", ("00",), ("float32_mib",),
            what="bytes divided by 1,000,000 (MB) instead of 2**20 (MiB)",
            hint="you divided by 1,000,000 (megabytes). A MiB is 2**20 = 1,048,576 bytes: divide "
                 "by 2**20.",
            source=TRIALS),
    Mistake("bytes-not-mib", ("00",), ("float32_mib",),
            what="the number of bytes returned, never divided by 2**20",
            hint="that is the number of bytes: divide it by 2**20 to get MiB.",
            source=TRIALS),
    Mistake("count-not-fraction", ("00",), ("foreground_fraction",),
            what="the number of object pixels returned instead of their fraction",
            hint="that is the number of object pixels: divide it by the number of pixels "
                 "(`mask.size`) to get a fraction.",
            source=TRIALS),
    Mistake("counting-0-as-object", ("00",), ("foreground_fraction",),
            what="the background (0) counted instead of the object (not 0)",
            hint="you counted the background: 0 is the background, the object is every pixel that "
                 "is not 0.",
            source=TRIALS),
    Mistake("mask-0-255-summed", ("00",), ("foreground_fraction",),
            what="the values of a 0/255 mask summed, so its object counts 255 times",
            hint="a 0/255 mask has the same object as its 0/1 twin: count the pixels that are not "
                 "0, whatever their value.",
            source=CARVANA_LAPTOP),
    Mistake("wrong-mask-suffix", ("00",), ("list_pairs",),
            what="the mask's file name built with the wrong suffix or extension",
            hint="the mask of train/<id>_NN.jpg is train_masks/<id>_NN_mask.gif: the image's stem "
                 "+ '_mask' + '.gif', in the other folder. Build that name from each image's "
                 "`.stem`.",
            source=TRIALS),
    Mistake("zip-sorted-lists", ("00",), ("list_pairs",),
            what="two sorted file lists zipped blindly: one missing mask shifts every pair after "
                 "it",
            hint="two sorted lists zipped blindly: one image has no mask, so from there on every "
                 "image gets the next image's mask. Build each mask's name from its image's name "
                 "instead (f\"{{image.stem}}_mask.gif\") and keep the pair only if that file "
                 "exists.",
            source=TRIALS),
    Mistake("names-not-paths", ("00",), ("list_pairs",),
            what="bare file names returned instead of paths that can be opened",
            hint="return full paths, e.g. root / 'train' / name (Path.glob and Path.iterdir give "
                 "them), not bare file names.",
            source=TRIALS),
    Mistake("missing-mask-kept", ("00",), ("list_pairs",),
            what="an image without a mask kept in the list of pairs",
            hint="not every image has a mask: check that the mask file exists (`mask.is_file()`) "
                 "and leave the image out if not.",
            source=TRIALS),
    Mistake("pairs-not-sorted", ("00", "01", "09"), ("CarvanaPairs", "list_pairs", "match_names"),
            what="pairs in the order the file system lists them, which changes from machine to "
                 "machine",
            hint="the order a folder lists its files in depends on the file system: sort the "
                 "images by name (`sorted(...)`) so that every run sees the same order.",
            source=TRIALS),
    # -------------------- every check (given by run_check)
    Mistake("crashed", ("all",), ("every exercise",),
            what="the student's code raised an exception while the check ran it",
            hint="read the error and the line it names, fix that line, run your exercise cell "
                 "again, then the check.",
            source=CHECKS),
    Mistake("check-error", ("all",), ("every exercise",),
            what="the check could not use what the student's code returned",
            hint="check what your code returns (its type, shape and dtype) against the exercise's "
                 "description. If it looks right, tell your instructor: the check itself may be "
                 "wrong.",
            source=CHECKS),
    # -------------------- lesson 01: data
    Mistake("not-an-array", ("01", "05", "07"),
            ("flip_tta", "mask_to_png_array", "predict_full_size", "predict_labels",
             "to_class_indices"),
            what="something other than a NumPy array or a tensor returned for a mask",
            hint="return a NumPy array or a torch tensor (a list or another object is not one).",
            source=TRIALS),
    Mistake("mask-bool-dtype", ("01",), ("to_class_indices",),
            what="a bool mask (`mask > 0`) returned where int64 class indices are needed",
            hint="`mask > 0` is a bool mask (True/False). The loss wants class indices as int64: "
                 "add `.astype(np.int64)` (NumPy) or `.long()` (torch).",
            source=TRIALS),
    Mistake("mask-0-255-as-index", ("01",), ("CarvanaPairs", "to_class_indices"),
            what="a 0/255 mask used as class indices, so the object is class 255",
            hint="with 2 classes the class indices are 0 and 1; a 0/255 mask fed as it is makes "
                 "the object class 255, and cross-entropy stops with 'Target 255 is out of "
                 "bounds'. Map every value that is not 0 to 1: `mask > 0`.",
            source=CARVANA_LAPTOP),
    Mistake("mask-divided-to-float", ("01",), ("to_class_indices",),
            what="the mask divided by 255, which gives floats instead of integer classes",
            hint="dividing by 255 gives floats (0.0 and 1.0): a mask holds class indices, whole "
                 "numbers of dtype int64. Look at the dtype your conversion ends with.",
            source=TRIALS),
    Mistake("mask-not-int64", ("01", "05", "07"),
            ("CarvanaPairs", "flip_tta", "make_train_transform", "predict_full_size",
             "predict_labels", "to_class_indices"),
            what="class indices of a dtype other than int64, which cross-entropy refuses",
            hint="PyTorch's cross-entropy wants the target as int64 (torch.long). Convert with "
                 "`.astype(np.int64)` (NumPy) or `.long()` (torch).",
            source=TRIALS),
    Mistake("assumes-0-255", ("01",), ("to_class_indices",),
            what="the object assumed to be 255 (`mask // 255`) although the GIF mask holds 0/1",
            hint="your code assumes the object is 255 (`mask // 255`, `mask == 255`), but a GIF "
                 "palette mask already holds 0/1, so its object vanishes. The object is every "
                 "value that is not 0, whatever the file stores.",
            source=CARVANA_LAPTOP),
    Mistake("image-hwc-not-chw", ("01",), ("CarvanaPairs",),
            what="the image left channels-last (H, W, 3) instead of PyTorch's (3, H, W)",
            hint="PIL and NumPy put the channels last (H, W, 3); PyTorch wants them first, (3, H, "
                 "W): `.permute(2, 0, 1)`, or use `TF.pil_to_tensor`, which does it.",
            source=TRIALS),
    Mistake("image-not-rgb", ("01",), ("CarvanaPairs",),
            what="a grayscale JPEG kept with one channel (no `.convert('RGB')`)",
            hint="some JPEGs are grayscale (one channel): look at how you open the image; every "
                 "image should come out with 3 channels, whatever the file stores.",
            source=VOC_PALETTE),
    Mistake("image-uint8-not-float", ("01",), ("CarvanaPairs",),
            what="the image left as uint8 instead of float32",
            hint="the image is still uint8, but the network wants float32 in [0, 1]: look at the "
                 "step that turns the picture into a tensor (its dtype and its scale).",
            source=TRIALS),
    Mistake("image-not-scaled", ("01",), ("CarvanaPairs",),
            what="the image converted to float but left in 0..255 instead of [0, 1]",
            hint="the values are float but still 0..255; the network wants them in [0, 1]. Look "
                 "at the conversion to float: did it scale?",
            source=TRIALS),
    Mistake("mask-not-tensor", ("01",), ("CarvanaPairs",),
            what="the mask returned as a NumPy array or PIL image, not a `tv_tensors.Mask`",
            hint="the mask comes out as a NumPy array or a PIL image: look at the end of "
                 "__getitem__; the transforms and the loss want it as a tv_tensors.Mask.",
            source=TRIALS),
    Mistake("mask-read-as-rgb", ("01",), ("CarvanaPairs",),
            what="the palette mask converted to RGB colours: 3 channels instead of class indices",
            hint="the GIF mask is a palette ('P') image whose pixels are already the indices 0/1:"
                 " converting it to RGB turns them into colours. Look at how you open the mask.",
            source=VOC_PALETTE),
    Mistake("mask-float-not-int64", ("01",), ("CarvanaPairs", "make_train_transform"),
            what="a float mask where int64 class indices are needed",
            hint="masks are class indices: int64 (`.long()`). A float mask also breaks "
                 "cross-entropy, which wants an int64 target.",
            source=TRIALS),
    Mistake("mask-channel-axis", ("01", "05"),
            ("CarvanaPairs", "make_train_transform", "multiclass_loss", "predict_labels",
             "to_class_indices"),
            what="a mask with a channel axis, (1, H, W) or (N, 1, H, W), where (H, W) or (N, H, "
                 "W) is expected",
            hint="a mask holds one class index per pixel: (H, W) for one image, (N, H, W) for a "
                 "batch, no channel axis. Drop it with `mask[0]` / `mask.squeeze(0)` (one image) "
                 "or `masks[:, 0]` (a batch); cross-entropy and the metrics compare it with (N, "
                 "H, W).",
            source=REVIEW),
    Mistake("len-wrong", ("01",), ("CarvanaPairs",),
            what="`__len__` that does not return the number of images",
            hint="__len__ returns the number of images: `len(self.image_paths)`.",
            source=TRIALS),
    Mistake("pairs-mismatched", ("01",), ("CarvanaPairs",),
            what="an item's mask taken from another image than its own",
            hint="image and mask of one item must come from the same file name: build the "
                 "mask's path from the image's, not from a second listing. Two separately "
                 "listed (or separately sorted) folders drift apart.",
            source=TRIALS),
    Mistake("transform-ignored", ("01",), ("CarvanaPairs",),
            what="the `transform` argument stored but never applied (or not stored)",
            hint="the dataset receives a transform but never uses it: keep it in `__init__` and "
                 "apply it in `__getitem__`, to the image and the mask together.",
            source=TRIALS),
    Mistake("mask-not-tv-tensor", ("01",), ("CarvanaPairs",),
            what="image and mask given to a v2 transform as plain tensors, so the mask is not "
                 "transformed with the image",
            hint="a v2 transform only moves what it knows to be an image or a mask: a plain "
                 "tensor next to an Image passes through untouched. Look at whether the image "
                 "and the mask reach self.transform as tv_tensors types, and whether both go in "
                 "one call.",
            source=TRIALS),
    Mistake("size-w-h-swapped", ("01", "07"), ("make_train_transform", "predict_full_size"),
            what="height and width swapped: PIL sizes are (W, H), torch sizes (H, W)",
            hint="torch sizes are (H, W), height first (PIL's are (W, H)): pass `size` to "
                 "v2.Resize as it is.",
            source=TRIALS),
    Mistake("wrong-size", ("01",), ("make_train_transform",),
            what="the output not resized to the size asked for",
            hint="start the pipeline with `v2.Resize(size)`; size is (H, W).",
            source=TRIALS),
    Mistake("mask-not-transformed", ("01",), ("make_train_transform",),
            what="only the image goes through the pipeline; the mask stays as it was",
            hint="pass the mask through the same call: `t(image, mask)` with mask a "
                 "`tv_tensors.Mask`; a plain tensor next to an Image is left untouched by v2.",
            source=TRIALS),
    Mistake("image-not-float32", ("01",), ("make_train_transform",),
            what="the pipeline does not end with float32 in [0, 1]",
            hint="the pipeline's images are not float32 in [0, 1]: look at its last step, the one"
                 " that sets the dtype and the scale.",
            source=TRIALS),
    Mistake("normalized-too-early", ("01",), ("make_train_transform",),
            what="Normalize put in the pipeline before the dataset's mean and std are known",
            hint="leave Normalize out of make_train_transform: the mean and std come from the "
                 "training images later in the lesson (`mean_std`), and are added then.",
            source=TRIALS),
    Mistake("mask-bilinear", ("01",), ("make_train_transform",),
            what="the mask resized or rotated with bilinear interpolation, which invents "
                 "in-between values",
            hint="the mask was interpolated (bilinear): in-between values are no class. Give it "
                 "to the pipeline as a `tv_tensors.Mask`; v2 then resizes and rotates it with "
                 "NEAREST.",
            source=CARVANA_LAPTOP),
    Mistake("separate-random-params", ("01",), ("make_train_transform",),
            what="image and mask transformed by separate calls, so they get different random "
                 "flips, crops and angles",
            hint="image and mask got different random parameters (e.g. one was flipped, the other "
                 "not). Build ONE v2.Compose and call it once with both, `t(image, mask)`: v2 "
                 "draws the random numbers once per call. Two pipelines (even with the global "
                 "seed reset before each) drift apart as soon as they draw different random "
                 "numbers, e.g. ColorJitter on the image only.",
            source=VOC_PALETTE),
    Mistake("flip-not-random", ("01",), ("make_train_transform",),
            what="every image flipped (or none): the flip is not random",
            hint="a flip that always happens (or never) is no augmentation: look at the "
                 "probability of your flip; about half of the calls should flip.",
            source=TRIALS),
    Mistake("not-per-channel", ("01",), ("mean_std",),
            what="one mean and std for all channels instead of one per channel",
            hint="one mean and std for all the pixels, but the normalisation wants one value per "
                 "channel (R, G, B): look at the dims you reduce over.",
            source=TRIALS),
    Mistake("reduced-wrong-dims", ("01",), ("mean_std",),
            what="the statistics reduced over the wrong dims (the channel axis lost or kept too "
                 "many)",
            hint="the statistics were reduced over the wrong dims: keep the channel dimension and"
                 " reduce over all the others (x is (N, 3, H, W)).",
            source=TRIALS),
    Mistake("mean-of-batch-means", ("01",), ("mean_std",),
            what="the batch means averaged, so a smaller last batch counts as much as a full one",
            hint="the last batch is smaller, so averaging the batch means gives its images more "
                 "weight. Sum the pixels (and the squared pixels) over all batches and divide by "
                 "the number of pixels.",
            source=TRIALS),
    Mistake("variance-not-std", ("01",), ("mean_std",),
            what="the variance returned instead of its square root",
            hint="that is the variance: take its square root.",
            source=TRIALS),
    Mistake("std-of-image-means", ("01",), ("mean_std",),
            what="the spread of the per-image means taken as the pixels' std",
            hint="that is the spread of the image MEANS, not of the pixels: it leaves out how "
                 "pixels vary inside an image. Use every pixel: std = sqrt(E[x²] - E[x]²) over "
                 "all pixels of all images.",
            source=TRIALS),
    Mistake("mean-of-image-stds", ("01",), ("mean_std",),
            what="per-image stds averaged, which leaves out how the images differ from each other",
            hint="averaging per-image (or per-batch) stds leaves out how much the images differ "
                 "from each other, so it comes out too small. Accumulate the sum of x and of x² "
                 "over all pixels of all images, then std = sqrt(E[x²] - E[x]²).",
            source=TRIALS),
    # -------------------- lesson 02: the U-Net
    Mistake("not-a-module", ("02",), ("DoubleConv", "Down", "UNet", "Up"),
            what="the block is not an `nn.Module` (or `super().__init__()` is missing)",
            hint="a block is a class that inherits from nn.Module, and its `__init__` calls "
                 "`super().__init__()` before it creates any layer.",
            source=TRIALS),
    Mistake("layers-not-registered", ("02",), ("DoubleConv", "Down", "UNet", "Up"),
            what="layers kept in a plain Python list, tuple or dict, which PyTorch does not "
                 "register",
            hint="PyTorch only sees the layers you assign to attributes of the module, or put "
                 "in its own containers (nn.Sequential, nn.ModuleList, nn.ModuleDict). Layers "
                 "in a plain list are invisible to it: their weights are not in "
                 "`.parameters()` (the optimizer never trains them), `.to(device)` does not "
                 "move them and the checkpoint does not save them.",
            source=TRIALS),
    Mistake("missing-batchnorm", ("02",), ("DoubleConv",),
            what="DoubleConv without a BatchNorm after each conv",
            hint="each conv of a DoubleConv is followed by a BatchNorm2d over its output "
                 "channels, then the ReLU. BatchNorm keeps each channel centred and scaled, "
                 "which lets a deep U-Net train at ordinary learning rates.",
            source=TRIALS),
    Mistake("doubleconv-param-count", ("02",), ("DoubleConv",),
            what="DoubleConv with layers of the wrong number or size",
            hint="compare your layers with segkit's, one by one: two 3x3 convs (in_ch -> "
                 "out_ch, then out_ch -> out_ch), each followed by a BatchNorm and a ReLU, and "
                 "nothing else with weights.",
            source=TRIALS),
    Mistake("conv-no-padding", ("02",), ("DoubleConv",),
            what="3x3 convs without padding=1: each DoubleConv loses 4 rows and 4 columns",
            hint="a 3x3 conv without padding drops one pixel on each side (2 per conv, 4 per "
                 "DoubleConv). The decoder's skip connections need the size kept: look at the "
                 "convs' `padding`.",
            source=TRIALS),
    Mistake("wrong-out-channels", ("02",), ("DoubleConv", "Down", "Up"),
            what="a block whose output has the wrong number of channels",
            hint="the block must end with out_ch channels: follow the channels from layer to "
                 "layer (each conv's first two arguments) and see where they go astray.",
            source=TRIALS),
    Mistake("conv-bias-before-batchnorm", ("02",), ("DoubleConv",),
            what="a conv bias right before a BatchNorm, which cancels it: wasted parameters",
            hint="the BatchNorm right after a conv subtracts each channel's mean, which cancels "
                 "any bias the conv adds, and then adds its own shift: the conv's bias is "
                 "wasted parameters (segkit's and the paper-width counts, 31,037,698, leave it "
                 "out). Look at the convs' `bias` argument.",
            source=TRIALS),
    Mistake("doubleconv-order", ("02",), ("DoubleConv",),
            what="DoubleConv's layers run in another order than conv -> BatchNorm -> ReLU (twice)",
            hint="the layers must run in the order conv -> BatchNorm -> ReLU, twice, each layer "
                 "used once: check the order in which forward calls them.",
            source=TRIALS),
    Mistake("missing-relu", ("02",), ("DoubleConv",),
            what="a ReLU missing after a BatchNorm in DoubleConv",
            hint="each conv -> BatchNorm is followed by a ReLU. Without it two convs in a row "
                 "are one linear map, and the output can be negative.",
            source=TRIALS),
    Mistake("down-no-pool", ("02",), ("Down",),
            what="Down without max pooling: nothing halves H and W",
            hint="a Down block first halves H and W with a 2x2 max pooling (the largest of each "
                 "2x2 window, rounded down on odd sizes), then runs its DoubleConv.",
            source=TRIALS),
    Mistake("down-wrong-size", ("02",), ("Down",),
            what="Down that shrinks H and W by something other than a factor 2",
            hint="a 2x2 max pooling halves H and W and rounds down (17 -> 8, 23 -> 11); the "
                 "padded DoubleConv after it keeps that size. Look at the pooling's window, "
                 "stride and rounding (`ceil_mode`).",
            source=TRIALS),
    Mistake("down-param-count", ("02",), ("Down",),
            what="Down with another DoubleConv than in_ch -> out_ch",
            hint="the pooling has no parameters: every weight of a Down is in its "
                 "DoubleConv(in_ch, out_ch). Compare your layers with segkit's.",
            source=TRIALS),
    Mistake("down-mismatch", ("02",), ("Down",),
            what="Down that is not max pooling followed by DoubleConv (e.g. average pooling or a "
                 "strided conv)",
            hint="your Down's layers do not line up with segkit's: a Down pools (max, 2x2) and "
                 "then convolves with a DoubleConv, nothing else.",
            source=TRIALS),
    Mistake("conv-before-pool", ("02",), ("Down",),
            what="Down that convolves first and pools afterwards",
            hint="pool first, then convolve. Convolving at full size first costs 4 times the "
                 "computation and gives a different network from segkit's.",
            source=TRIALS),
    Mistake("up-not-halving-channels", ("02",), ("Up",),
            what="Up's upsampling keeps the channels (nn.Upsample, or a ConvTranspose2d to in_ch)",
            hint="the upsampling must halve the channels: the skip brings in_ch // 2, the "
                 "upsampled map the other in_ch // 2, so that in_ch reach the DoubleConv. A "
                 "transposed conv can change the channels; nn.Upsample cannot.",
            source=TRIALS),
    Mistake("up-transposed-in-channels", ("02",), ("Up",),
            what="Up's ConvTranspose2d built for the wrong number of input channels",
            hint="the transposed conv's first argument is the channels of x1, the map coming up "
                 "from the level below: in_ch.",
            source=TRIALS),
    Mistake("up-conv-in-channels", ("02",), ("Up",),
            what="the decoder conv built for the wrong number of channels after concatenating the "
                 "skip",
            hint="the concatenation doubles the channels back: in_ch // 2 from the skip plus "
                 "in_ch // 2 from the up-conv = in_ch. Count what reaches the DoubleConv and "
                 "build it for that.",
            source=SEA_SKY),
    Mistake("up-wrong-upsample", ("02",), ("Up",),
            what="the transposed conv does not double H and W exactly",
            hint="the transposed conv must double H and W exactly: look at its kernel size, "
                 "stride and padding (a 2x2 kernel with stride 2 and no padding does).",
            source=TRIALS),
    Mistake("up-no-pad-to-skip", ("02",), ("Up",),
            what="Up does not pad the upsampled map to the skip's size, so odd sizes fail",
            hint="on an odd size, max pooling rounded down, so the upsampled map is a row or a "
                 "column short of its skip. The output must have the skip's H and W (so that "
                 "the U-Net's output has the image's size): pad the upsampled map up to the "
                 "skip's size (F.pad) instead of cropping the skip down.",
            source=TRIALS),
    Mistake("up-pad-order", ("02",), ("Up",),
            what="F.pad given the height's padding where the width's goes (dy and dx swapped)",
            hint="the padding fits when the skip is one row AND one column bigger, but not when "
                 "only its height (or only its width) is odd: F.pad's list starts with the LAST "
                 "dimension, width (left, right), then height (top, bottom).",
            source=TRIALS),
    Mistake("up-mismatch", ("02",), ("Up",),
            what="Up whose layers or forward differ from upsample -> pad -> cat -> DoubleConv",
            hint="an Up upsamples the deeper map (transposed conv, halving the channels), pads "
                 "it to the skip's size, concatenates it with the skip along the channels and "
                 "runs its DoubleConv: compare your layers and your forward with these steps.",
            source=TRIALS),
    Mistake("up-pad-differs", ("02",), ("Up",),
            what="the upsampled map padded on other sides than segkit's (or not with zeros)",
            hint="pad the upsampled map with zeros, half of the gap on each side and the odd "
                 "row or column at the bottom and the right (F.pad lists left, right, top, "
                 "bottom). Then your model and segkit's are the same network, and a checkpoint "
                 "of one loads into the other.",
            source=TRIALS),
    Mistake("unet-depth-off-by-one", ("02",), ("UNet",),
            what="a U-Net with one Down/Up block too many or too few",
            hint="depth=d means d Down blocks after inc and d Up blocks: channels base * 2**i for "
                 "i = 0..d.",
            source=TRIALS),
    Mistake("unet-param-count", ("02",), ("UNet",),
            what="a U-Net whose blocks have the wrong channel numbers",
            hint="compare your blocks' parameter counts with segkit's, block by block: inc, each "
                 "Down and Up (the channels double going down and halve coming up), and the "
                 "1x1 outc conv.",
            source=TRIALS),
    Mistake("unet-output-shape", ("02",), ("UNet",),
            what="the U-Net's output without num_classes channels or the input's H and W",
            hint="the output has num_classes channels and the input's H and W: it is the 1x1 "
                 "outc conv's output on the last Up's map, returned as it is (no sigmoid or "
                 "softmax: losses take logits). Use the constructor's arguments, not fixed "
                 "numbers.",
            source=TRIALS),
    Mistake("unet-odd-size", ("02",), ("UNet",),
            what="the U-Net fails or crops on input sizes that are not divisible by 2**depth",
            hint="the output must have the input's size whatever it is: pad the upsampled maps to "
                 "their skips (never crop the skips).",
            source=TRIALS),
    Mistake("unet-wiring", ("02",), ("UNet",),
            what="each Up given the wrong skip, or a sigmoid/softmax after the last conv",
            hint="each Up takes the map from below and the skip of its own level: the deepest "
                 "encoder output meets the first Up, the shallowest the last. The 1x1 outc conv "
                 "comes last, and its output is returned as it is (logits: no sigmoid or "
                 "softmax).",
            source=TRIALS),
    # -------------------- lesson 03: training
    Mistake("loader-dataset-len", ("03",), ("train_one_epoch", "validate"),
            what="`len(loader.dataset)` used, which fails for loaders without a dataset",
            hint="count the samples as you go (`n += images.shape[0]` in the loop) instead of "
                 "`len(loader.dataset)`: a loader may be any iterable of batches (later in the "
                 "lesson it is `itertools.islice(...)` of one), and counting what you saw is "
                 "always right.",
            source=TRIALS),
    Mistake("loss-mean-over-batches", ("03",), ("average_loss", "train_one_epoch", "validate"),
            what="the batch losses averaged over batches, so an uneven last batch counts too much",
            hint="you divided by the number of batches (`len(loader)`). That is right only when "
                 "all batches have the same size; the last one is often smaller. segkit "
                 "averages over samples: each batch's mean loss stands for as many samples as "
                 "the batch holds.",
            source=SEA_SKY),
    Mistake("loss-not-averaged", ("03",), ("average_loss", "train_one_epoch", "validate"),
            what="the sum of the batch losses returned, never divided",
            hint="the sum was never divided (the sea/sky project met this one): it grows with the "
                 "number of batches. Divide by the number of samples you counted.",
            source=SEA_SKY),
    Mistake("loss-tensor-accumulator", ("03",), ("average_loss", "train_one_epoch", "validate"),
            what="the loss accumulated as a tensor (`total += loss`): every batch's graph stays "
                 "alive",
            hint="accumulate `loss.item()` (a Python float), not `loss`: `total += loss` keeps "
                 "every batch's graph alive until the end of the epoch (memory grows) and the "
                 "average prints as a tensor, the sea/sky project's first mistake.",
            source=SEA_SKY),
    Mistake("loss-fn-not-called", ("03",), ("train_one_epoch", "validate"),
            what="the loss function never called: no batch trained or scored",
            hint="the loss function was never called: every batch of the loader goes through "
                 "the model and then `loss_fn`.",
            source=TRIALS),
    Mistake("batch-not-moved", ("03",), ("train_one_epoch", "validate"),
            what="the batches never moved to `device`: on a GPU the model meets CPU tensors "
                 "and stops",
            hint="the loader makes each batch on the CPU, and the model lives on `device`: on "
                 "a GPU, a batch left where it was stops the forward pass with a device error. "
                 "Move the images and the masks to the `device` argument before using them.",
            source=REVIEW),
    Mistake("train-in-eval-mode", ("03",), ("train_one_epoch",),
            what="no `model.train()` at the start of training, so a model left in eval mode by "
                 "validation trains in eval mode",
            hint="call `model.train()` at the start of train_one_epoch: validation switches the "
                 "model to eval mode, and in eval mode BatchNorm does not learn the statistics of "
                 "the data (and Dropout is off).",
            source=TRIALS),
    Mistake("no-backward", ("03",), ("train_one_epoch",),
            what="`loss.backward()` never called: no gradients",
            hint="after computing the loss, call `loss.backward()`: it fills every parameter's "
                 "`.grad`, which `optimizer.step()` then uses.",
            source=TRIALS),
    Mistake("no-optimizer-step", ("03", "10"), ("train_one_epoch", "mixed_precision_step"),
            what="`optimizer.step()` never called: the weights do not change",
            hint="after `loss.backward()`, call `optimizer.step()` to update the weights with the "
                 "gradients.",
            source=TRIALS),
    Mistake("step-before-backward", ("03",), ("train_one_epoch",),
            what="`optimizer.step()` called before `loss.backward()`",
            hint="the order is zero_grad -> forward -> loss -> backward -> step: "
                 "`loss.backward()` computes the gradients that `optimizer.step()` applies, so "
                 "call `optimizer.step()` after `loss.backward()`.",
            source=REVIEW),
    Mistake("zero-grad-after-backward", ("03",), ("train_one_epoch",),
            what="`optimizer.zero_grad()` between `loss.backward()` and `optimizer.step()`, "
                 "erasing the gradients",
            hint="the order is zero_grad -> forward -> loss -> backward -> step. Calling "
                 "`optimizer.zero_grad()` between `loss.backward()` and `optimizer.step()` erases "
                 "the gradients just computed.",
            source=TRIALS),
    Mistake("no-zero-grad", ("03", "10"), ("train_one_epoch", "mixed_precision_step"),
            what="`optimizer.zero_grad()` forgotten: gradients add up from batch to batch",
            hint="call `optimizer.zero_grad()` at the start of every batch. `backward()` *adds* "
                 "to `.grad`, so without it each step applies the sum of all gradients so far.",
            source=TRIALS),
    Mistake("step-not-every-batch", ("03",), ("train_one_epoch",),
            what="the optimizer stepped fewer or more times than there are batches",
            hint="call zero_grad, backward and step once per batch, inside the loop.",
            source=TRIALS),
    Mistake("validate-returns-dict", ("03",), ("validate",),
            what="validate does not return `{\"loss\": ..., \"dice\": ...}`",
            hint="return a dict with the mean loss and the mean Dice, `{{\"loss\": ..., "
                 "\"dice\": ...}}` (the same keys as segkit.training.validate).",
            source=TRIALS),
    Mistake("dice-not-float", ("03",), ("validate",),
            what="the Dice returned as a tensor instead of a Python float",
            hint="turn the Dice into a Python number with `.item()` (of a 1-element tensor) or "
                 "`float(...)`.",
            source=TRIALS),
    Mistake("validate-train-mode", ("03",), ("validate",),
            what="validation run in train mode (no `model.eval()`): BatchNorm uses and updates "
                 "batch statistics",
            hint="call `model.eval()` at the start of validate: BatchNorm then uses the "
                 "statistics learned in training, and the result no longer depends on what else "
                 "is in the batch.",
            source=TRIALS),
    Mistake("validate-grad-enabled", ("03",), ("validate",),
            what="validation without `torch.no_grad()`: every forward pass builds a graph",
            hint="run the loop inside `with torch.no_grad():` (or decorate validate with "
                 "`@torch.no_grad()`): no graph is built, which is faster and uses less memory.",
            source=TRIALS),
    Mistake("validate-changes-weights", ("03",), ("validate",),
            what="validation that changes the weights (a backward pass or an optimizer step)",
            hint="validation only measures: no backward, no optimizer step.",
            source=TRIALS),
    Mistake("dice-mean-over-batches", ("03",), ("validate",),
            what="the batch Dice values averaged, so an uneven last batch counts too much",
            hint="add up the per-image Dice values (`.sum().item()`) and divide by the number of "
                 "images, as for the loss: the last batch is smaller.",
            source=TRIALS),
    # -------------------- lesson 04: metrics
    Mistake("returns-tensor", ("04",), ("dice_score", "iou_score", "pixel_accuracy"),
            what="the right value returned as a tensor instead of a Python float",
            hint="the value is right, but return a Python float: `.item()` turns a 1-element "
                 "tensor into one (so it prints as a number and does not keep a tensor, or its "
                 "graph, alive).",
            source=TRIALS),
    Mistake("per-image-tensor", ("04",), ("dice_score", "iou_score"),
            what="the per-image scores returned instead of their mean",
            hint="you returned the {title} of each image; return their mean as a Python float: "
                 "`scores.mean().item()`.",
            source=TRIALS),
    Mistake("accuracy-wrong-dim", ("04",), ("pixel_accuracy",),
            what="accuracy averaged over some dims only: a tensor of several values",
            hint="you counted over some dims only (e.g. `.mean(dim=0)` or a sum over (H, W) per "
                 "image). Pixel accuracy is one number for the batch: count the right pixels over "
                 "every image and every pixel, and divide by the number of all pixels, "
                 "`target.numel()`.",
            source=TRIALS),
    Mistake("channel-broadcast", ("04",), ("dice_score", "iou_score", "pixel_accuracy"),
            what="(N, 1, H, W) predictions compared with an (N, H, W) target broadcast to (N, N, "
                 "H, W)",
            hint="the predictions are (N, 1, H, W) and the target (N, H, W): comparing them "
                 "broadcasts to (N, N, H, W) and compares every prediction with every target. "
                 "Drop the channel axis first: `logits[:, 0]` or `logits.squeeze(1)`.",
            source=TRIALS),
    Mistake("accuracy-wrong-count", ("04",), ("pixel_accuracy",),
            what="the right pixels divided by the wrong count (images, or pixels of one image)",
            hint="you divided by the wrong number: `len(target)` is the number of images N and H "
                 "* W the pixels of one image. Divide the right pixels by all the pixels of the "
                 "batch, `target.numel()` (N * H * W).",
            source=TRIALS),
    Mistake("target-as-prediction", ("04",), ("dice_score", "iou_score", "pixel_accuracy"),
            what="the ground truth scored against itself instead of the prediction",
            hint="you compared the ground truth with itself, which is always perfect. The loader "
                 "gives the ground truth; the prediction comes from the model's logits (the "
                 "sea/sky project mixed the two up in its check code).",
            source=SEA_SKY),
    Mistake("threshold-on-logits", ("04",), ("dice_score", "iou_score", "pixel_accuracy"),
            what="the probability threshold applied to logits",
            hint="you cut the logits at {threshold}, but the threshold is a probability, and a "
                 "probability of 0.5 is a logit of 0. Apply `torch.sigmoid` first "
                 "(`torch.sigmoid(logits) > threshold`), or for 0.5 compare the logits with 0 "
                 "(`logits > 0`).",
            source=TRIALS),
    Mistake("accuracy-integer-division", ("04",), ("pixel_accuracy",),
            what="integer division: the accuracy is always 0.00",
            hint="integer division: `correct // total` (or an int tensor divided with rounding) "
                 "is 0 for anything below 100 %: this is the 'accuracy always 0.00' of the "
                 "sea/sky project. Look at how you divide, and at the type of what you divide.",
            source=SEA_SKY),
    Mistake("accuracy-compares-scores", ("04",), ("pixel_accuracy",),
            what="logits or probabilities compared with 0/1 labels, which they never equal",
            hint="you compared the logits (or the probabilities) with the 0/1 labels: a logit "
                 "like 2.5 is never equal to 1, so no pixel counts as right. Turn the logits into "
                 "labels first, `(logits > 0)` (probability > 0.5), then compare labels with "
                 "labels.",
            source=TRIALS),
    Mistake("sigmoid-on-target", ("04",), ("dice_score", "iou_score"),
            what="the sigmoid applied to the 0/1 target as well as to the logits",
            hint="you applied the sigmoid to the target too. The target is already 0/1 labels; "
                 "the sigmoid turns them into 0.5 and 0.73, so even a perfect prediction loses. "
                 "Only the logits go through the sigmoid; then {formula}.",
            source=REVIEW),
    Mistake("dice-on-logits", ("04",), ("dice_score",),
            what="the Dice formula fed raw logits",
            hint="you fed the raw logits into the Dice formula. Logits are not 0/1 labels (they "
                 "can be negative, and this 'Dice' can even exceed 1): turn them into labels "
                 "first, `torch.sigmoid(logits) > threshold`.",
            source=TRIALS),
    Mistake("iou-on-logits", ("04",), ("iou_score",),
            what="the IoU formula fed raw logits",
            hint="you fed the raw logits into the IoU formula. Logits are not 0/1 labels (they "
                 "can be negative, and this 'IoU' can even exceed 1): turn them into labels "
                 "first, `torch.sigmoid(logits) > threshold`.",
            source=TRIALS),
    Mistake("dice-without-threshold", ("04",), ("dice_score",),
            what="the Dice of probabilities (a soft Dice) instead of thresholded labels",
            hint="you used the probabilities without a threshold: that is the 'soft' Dice of the "
                 "loss, not the metric. Cut them first: `torch.sigmoid(logits) > threshold`.",
            source=TRIALS),
    Mistake("iou-without-threshold", ("04",), ("iou_score",),
            what="the IoU of probabilities (a soft IoU) instead of thresholded labels",
            hint="you used the probabilities without a threshold: that is the 'soft' IoU of the "
                 "loss, not the metric. Cut them first: `torch.sigmoid(logits) > threshold`.",
            source=TRIALS),
    Mistake("dice-pooled", ("04",), ("dice_score",),
            what="one Dice over all pixels of the batch instead of the mean of per-image Dice",
            hint="you computed one Dice over all the pixels of the batch (pooled), but the "
                 "exercise asks for the Dice of each image, then their mean, so a small object "
                 "counts as much as a big one: look at the dims your sums run over.",
            source=TRIALS),
    Mistake("iou-pooled", ("04",), ("iou_score",),
            what="one IoU over all pixels of the batch instead of the mean of per-image IoU",
            hint="you computed one IoU over all the pixels of the batch (pooled), but the "
                 "exercise asks for the IoU of each image, then their mean, so a small object "
                 "counts as much as a big one: look at the dims your sums run over.",
            source=TRIALS),
    Mistake("dice-smoothing", ("04",), ("dice_score",),
            what="a smoothing constant (+1) that changes the Dice of small masks",
            hint="you added a smoothing constant (+1) to numerator and denominator. On small "
                 "masks it changes the Dice a lot; handle the both-empty case explicitly instead "
                 "and keep the exact formula.",
            source=TRIALS),
    Mistake("iou-smoothing", ("04",), ("iou_score",),
            what="a smoothing constant (+1) that changes the IoU of small masks",
            hint="you added a smoothing constant (+1) to numerator and denominator. On small "
                 "masks it changes the IoU a lot; handle the both-empty case explicitly instead "
                 "and keep the exact formula.",
            source=TRIALS),
    Mistake("dice-no-factor-2", ("04",), ("dice_score",),
            what="Dice without the factor 2: a perfect prediction scores 0.5",
            hint="Dice = 2|P ∩ T| / (|P| + |T|): the factor 2 is missing (without it a perfect "
                 "prediction scores 0.5).",
            source=TRIALS),
    Mistake("dice-is-iou", ("04",), ("dice_score",),
            what="the IoU formula in dice_score",
            hint="that is the IoU, |P ∩ T| / (|P| + |T| - |P ∩ T|). Dice = 2|P ∩ T| / (|P| + "
                 "|T|).",
            source=TRIALS),
    Mistake("iou-is-dice", ("04",), ("iou_score",),
            what="the Dice formula in iou_score",
            hint="that is the Dice score, 2|P ∩ T| / (|P| + |T|). IoU = |P ∩ T| / |P ∪ T| with |P "
                 "∪ T| = |P| + |T| - |P ∩ T|.",
            source=TRIALS),
    Mistake("iou-union-double-counts", ("04",), ("iou_score",),
            what="union taken as |P| + |T|, counting the overlap twice",
            hint="|P| + |T| counts the overlap twice, so it is not the union: |P ∪ T| = |P| + |T| "
                 "- |P ∩ T| (or `(pred | target).sum()`).",
            source=TRIALS),
    Mistake("squeeze-batch", ("04",), ("dice_score", "iou_score"),
            what="`squeeze()` also drops the batch axis of a batch of one image",
            hint="with N = 1, `logits.squeeze()` drops the batch axis too (1, 1, H, W) -> (H, W), "
                 "and the sums per image go wrong. Drop only the channel axis: `logits[:, 0]` or "
                 "`logits.squeeze(1)`.",
            source=TRIALS),
    Mistake("threshold-ignored", ("04",), ("dice_score", "iou_score"),
            what="the `threshold` argument ignored (a fixed 0.5)",
            hint="the `threshold` argument changes nothing: the check calls with other thresholds"
                 " than 0.5; look at where the probabilities are cut.",
            source=TRIALS),
    Mistake("empty-nan", ("04",), ("dice_score", "iou_score"),
            what="an image with empty target and prediction scored 0/0 = NaN",
            hint="{title} of an image with empty P and T is 0/0 = NaN, and the NaN spoils the "
                 "mean. Nothing to find and nothing found is a perfect answer: such an image "
                 "scores {title} 1.0, as a case of its own.",
            source=TRIALS),
    Mistake("empty-zero", ("04",), ("dice_score", "iou_score"),
            what="an image with empty target and prediction scored 0 instead of 1",
            hint="nothing to find and nothing found is a perfect answer: give an image with empty "
                 "P and T the {title} 1.0, not 0.",
            source=TRIALS),
    Mistake("empty-skipped", ("04",), ("dice_score", "iou_score"),
            what="an image with empty target and prediction left out of the mean",
            hint="you left the both-empty image out of the mean (torchmetrics does that, with "
                 "NaN). This exercise counts it as a perfect 1.0.",
            source=TRIALS),
    Mistake("empty-target-one", ("04",), ("dice_score", "iou_score"),
            what="an empty target scored 1 although something was predicted",
            hint="only when the target AND the prediction are empty is the answer perfect. Here "
                 "every predicted pixel is a false positive, so the {title} is 0: test `|P| + |T| "
                 "== 0`, not `|T| == 0`.",
            source=TRIALS),
    # -------------------- lesson 05: multiclass
    Mistake("weights-not-tensor", ("05",), ("class_weights",),
            what="class weights returned as a list or array, not a tensor",
            hint="nn.CrossEntropyLoss(weight=...) takes a float32 tensor of shape (C,): return a "
                 "tensor, e.g. `torch.as_tensor(weights, dtype=torch.float32)`.",
            source=TRIALS),
    Mistake("ignore-counted-as-class", ("05",), ("class_weights",),
            what="the ignore label 255 counted as a class",
            hint="the ignore label 255 was counted as if it were a class (a bincount over all "
                 "values gives 256 bins): leave the pixels labelled ignore_index out before "
                 "counting, and make sure every class gets a count.",
            source=VOC_PALETTE),
    Mistake("weights-wrong-shape", ("05",), ("class_weights",),
            what="class weights not of shape (C,) (a missing `minlength`, or 256 bins)",
            hint="return one weight per class: a (C,) tensor, C = num_classes. Did you forget "
                 "`minlength=num_classes` in torch.bincount (a class that never occurs at the end "
                 "is then missing)?",
            source=TRIALS),
    Mistake("zero-count-inf", ("05",), ("class_weights",),
            what="a class with no pixels given an infinite or NaN weight (1 / 0)",
            hint="1 / 0 is inf (and inf / inf is NaN): one inf weight turns the whole loss into "
                 "inf or NaN. Give classes with zero pixels the weight 0 (they cannot be learned "
                 "from these masks anyway) and normalise over the classes present.",
            source=TRIALS),
    Mistake("weights-backwards", ("05",), ("class_weights",),
            what="weights proportional to the class frequency instead of inversely proportional",
            hint="the weights must be *inversely* proportional to the frequency, w_c ∝ 1 / f_c, "
                 "so that rare classes count more; you made them proportional to it.",
            source=VOC_COMPARE),
    Mistake("weights-not-normalised", ("05",), ("class_weights",),
            what="the right ratios, but the weights not scaled to mean 1 over the classes present",
            hint="the ratios are right, but the weights should have mean 1 over the classes that "
                 "occur, so the loss keeps its usual scale (ln C for a uniform guess): look at "
                 "how you scale them.",
            source=TRIALS),
    Mistake("weights-wrong-dtype", ("05",), ("class_weights",),
            what="class weights of another dtype than float32",
            hint="nn.CrossEntropyLoss needs weights of the logits' dtype (float32) and device: "
                 "return `weights.float()` (and move them with `.to(device)`).",
            source=TRIALS),
    Mistake("miou-not-number", ("05",), ("miou_from_confusion",),
            what="the per-class IoUs returned instead of their mean",
            hint="return one number, the mean of the per-class IoUs (`float(iou.nanmean())`), not "
                 "the per-class IoUs themselves.",
            source=TRIALS),
    Mistake("nan-class-as-zero", ("05",), ("miou_from_confusion",),
            what="a class absent from target and prediction (IoU 0/0) counted as 0 instead of "
                 "left out",
            hint="class 4 occurs neither in the target nor in the prediction: its IoU is 0/0, "
                 "undefined, and must be left out of the mean (`torch.nanmean`), not counted as "
                 "0.",
            source=TRIALS),
    Mistake("precision-not-iou", ("05",), ("miou_from_confusion",),
            what="TP divided by the column sum (precision) instead of the union",
            hint="you divided TP by the column sum (all pixels *predicted* as the class): that is "
                 "precision. IoU divides by the union TP + FP + FN = row sum + column sum - TP "
                 "(rows = target, columns = prediction).",
            source=TRIALS),
    Mistake("recall-not-iou", ("05",), ("miou_from_confusion",),
            what="TP divided by the row sum (recall) instead of the union",
            hint="you divided TP by the row sum (all pixels that *are* the class): that is recall "
                 "(class accuracy). IoU divides by the union TP + FP + FN = row sum + column sum "
                 "- TP.",
            source=TRIALS),
    Mistake("union-double-counts-diagonal", ("05",), ("miou_from_confusion",),
            what="union taken as row sum + column sum, counting TP twice",
            hint="row sum + column sum counts the diagonal (TP) twice: the union is row sum + "
                 "column sum - TP.",
            source=TRIALS),
    Mistake("background-not-excluded", ("05",), ("miou_from_confusion",),
            what="`include_background=False` still averages class 0",
            hint="with include_background=False leave class 0's IoU out of the mean: average "
                 "`iou[1:]`.",
            source=VOC_COMPARE),
    Mistake("background-pixels-dropped", ("05",), ("miou_from_confusion",),
            what="the background row and column cut out of the matrix, so confusions with "
                 "background no longer count",
            hint="to leave background out of the *mean*, drop its IoU from the per-class IoUs, "
                 "not its row and column from the matrix: an object predicted as background is "
                 "still a mistake of that object's class.",
            source=VOC_COMPARE),
    Mistake("softmax-before-cross-entropy", ("05",), ("multiclass_loss",),
            what="softmax applied to the logits before cross-entropy, which applies "
                 "log-softmax itself",
            hint="give cross-entropy the raw logits: it applies log-softmax itself, and a "
                 "softmax before it squashes the logits into [0, 1], so the loss can hardly "
                 "fall and its gradients nearly vanish. Remove the softmax.",
            source=REVIEW),
    Mistake("bce-for-multiclass", ("05",), ("multiclass_loss",),
            what="a binary loss (BCEWithLogitsLoss) for a target of several classes",
            hint="binary cross-entropy scores each channel as its own yes/no question; with "
                 "one class per pixel use `F.cross_entropy(logits, target, ...)` on (N, C, H, W) "
                 "logits and (N, H, W) int64 labels.",
            source=REVIEW),
    Mistake("ignore-index-missing", ("05",), ("multiclass_loss",),
            what="cross-entropy without `ignore_index=255`, so the border label crashes it",
            hint="255 is not a class: pass `ignore_index=255` to the cross-entropy, which then "
                 "leaves those pixels out of the loss and of its mean.",
            source=VOC_PALETTE),
    Mistake("ignore-as-background", ("05",), ("multiclass_loss",),
            what="the 255 border pixels turned into background (0) instead of ignored",
            hint="the 255 band is where the annotators could not tell object from background: "
                 "teaching it as background is teaching a guess. Keep the 255 and pass "
                 "`ignore_index=255`.",
            source=VOC_PALETTE),
    Mistake("class-weights-ignored", ("05",), ("multiclass_loss",),
            what="the `weights` argument not passed to the loss",
            hint="the class weights never reach the loss: look at the arguments you give the "
                 "cross-entropy.",
            source=TRIALS),
    Mistake("loss-summed", ("05",), ("multiclass_loss",),
            what="the loss summed over the pixels instead of averaged",
            hint="keep the default `reduction=\"mean\"`: a sum grows with the image size and the "
                 "batch size, and the learning rate would have to shrink with them.",
            source=TRIALS),
    Mistake("loss-not-differentiable", ("05",), ("multiclass_loss",),
            what="the loss returned as a number (`.item()`) or detached, so `backward` cannot "
                 "run",
            hint="return the loss tensor itself: `loss.backward()` needs its graph. Call "
                 "`.item()` only where you add losses up for printing.",
            source=TRIALS),
    Mistake("argmax-wrong-dim", ("05",), ("predict_labels",),
            what="argmax over the wrong axis (batch, height or width) instead of the class "
                 "axis, dim=1",
            hint="the classes are axis 1 of (N, C, H, W): the label of a pixel is the class "
                 "with the largest logit along that axis, which leaves (N, H, W).",
            source=REVIEW),
    Mistake("max-values-not-indices", ("05",), ("predict_labels",),
            what="the largest logits returned instead of their class indices",
            hint="you returned the largest logits themselves; the label is the POSITION of the "
                 "largest logit along the class axis.",
            source=TRIALS),
    # -------------------- lesson 06: experiments
    Mistake("linear-spacing", ("06",), ("log_spaced",),
            what="values spaced evenly on a linear scale instead of a log scale",
            hint="these values are evenly spaced on a linear scale (np.linspace): most of them "
                 "crowd near `high` and the small learning rates are skipped. Space the exponents "
                 "evenly: 10 ** np.linspace(log10(low), log10(high), n).",
            source=TRIALS),
    Mistake("logspace-takes-exponents", ("06",), ("log_spaced",),
            what="`torch.logspace`/`np.logspace` given the values where it takes exponents",
            hint="np.logspace(low, high, n) takes the EXPONENTS, not the values: "
                 "np.logspace(1e-4, 1e-1, 4) goes from 10**0.0001 to 10**0.1, all close to 1. "
                 "Pass np.log10(low) and np.log10(high).",
            source=TRIALS),
    Mistake("endpoint-excluded", ("06",), ("log_spaced",),
            what="the last value (high) left out",
            hint="the last value should be `high` itself: both ends are included (np.linspace / "
                 "np.logspace with endpoint=True, the default).",
            source=TRIALS),
    Mistake("exponents-not-values", ("06",), ("log_spaced",),
            what="the exponents returned instead of 10 ** exponent",
            hint="these are the exponents (-4, -3 ...), not the learning rates: return 10 ** "
                 "exponent.",
            source=TRIALS),
    Mistake("wrong-count", ("06",), ("log_spaced",),
            what="a number of values other than n",
            hint="return exactly n values, from low to high, both included.",
            source=TRIALS),
    Mistake("stops-at-first-bad-epoch", ("06",), ("EarlyStopping",),
            what="early stopping at the first epoch without improvement, ignoring patience",
            hint="your class stops at the first epoch that does not improve: `patience` is how "
                 "many such epochs in a row to wait before stopping.",
            source=TRIALS),
    Mistake("compares-with-last", ("06",), ("EarlyStopping",),
            what="each value compared with the last one instead of the best so far",
            hint="each value is compared with the PREVIOUS epoch's, so a small recovery after a "
                 "dip counts as an improvement. Compare with the best value so far (self.best), "
                 "and update it only on an improvement.",
            source=TRIALS),
    Mistake("counter-not-reset", ("06",), ("EarlyStopping",),
            what="the bad-epoch counter not reset after an improvement",
            hint="an improvement must reset the count of bad epochs to 0: patience counts epochs "
                 "without improvement IN A ROW.",
            source=TRIALS),
    Mistake("patience-off-by-one", ("06",), ("EarlyStopping",),
            what="stopping one epoch too early or too late",
            hint="your class stops one epoch late: with patience=2 it should stop at the 2nd "
                 "epoch in a row without improvement (bad_epochs >= patience).",
            source=TRIALS),
    Mistake("wrong-direction", ("06",), ("EarlyStopping",),
            what="`mode` ignored: a loss treated as a score (or the other way round)",
            hint="with mode='min' (a loss) LOWER is better: improved means value < best - "
                 "min_delta. Your class treats a loss like a Dice score.",
            source=TRIALS),
    Mistake("min-delta-ignored", ("06",), ("EarlyStopping",),
            what="an improvement smaller than `min_delta` counted as an improvement",
            hint="a gain counts only when it beats the best by more than min_delta (mode 'max': "
                 "value > best + min_delta); tiny gains are noise.",
            source=TRIALS),
    Mistake("ties-count-as-improvement", ("06",), ("EarlyStopping",),
            what="a value equal to the best counted as an improvement",
            hint="a value equal to the best is no improvement: use a strict `>` (or `<` for a "
                 "loss), or a flat curve never stops.",
            source=TRIALS),
    Mistake("best-not-tracked", ("06",), ("EarlyStopping",),
            what="`best` and `best_epoch` not updated on an improvement",
            hint="on every improvement store the value in self.best and the epoch number (1 for "
                 "the first step) in self.best_epoch.",
            source=TRIALS),
    Mistake("missing-columns", ("06",), ("summarize_runs",),
            what="summary rows without the `by` columns, mean, std and n",
            hint="each summary row holds the `by` columns, and 'mean', 'std' and 'n'.",
            source=TRIALS),
    Mistake("not-grouped", ("06",), ("summarize_runs",),
            what="one summary row per run instead of one per setting",
            hint="put the runs of each setting in their own group (a dict keyed by tuple(row[b] "
                 "for b in by)) and summarise each group.",
            source=TRIALS),
    Mistake("grouped-by-wrong-key", ("06",), ("summarize_runs",),
            what="runs grouped by the wrong columns (the seed among them)",
            hint="group by the `by` columns: the runs of one setting differ only in their seed, "
                 "and those are the runs to average.",
            source=TRIALS),
    Mistake("groupby-needs-sorting", ("06",), ("summarize_runs",),
            what="`itertools.groupby` on unsorted rows, which splits a setting in several groups",
            hint="itertools.groupby only merges NEIGHBOURING rows, and the runs of a setting are "
                 "not next to each other. Collect them in a dict keyed by the setting (or sort "
                 "the rows by it first).",
            source=TRIALS),
    Mistake("population-std", ("06",), ("summarize_runs",),
            what="the population std (divide by n) instead of the sample std (n - 1)",
            hint="this std divides by n (np.std's default, statistics.pstdev): the spread of "
                 "these few runs, which underestimates the spread of the next run. Use the sample "
                 "std, dividing by n - 1: statistics.stdev, np.std(ddof=1), torch.std.",
            source=TRIALS),
    Mistake("single-run-std-zero", ("06",), ("summarize_runs",),
            what="a single run's std given as 0 instead of NaN",
            hint="a setting with ONE run got std 0, which reads as 'perfectly reproducible'. One "
                 "run says nothing about the spread: give NaN (math.nan) when n == 1.",
            source=TRIALS),
    Mistake("key-ignored", ("06",), ("summarize_runs",),
            what="the `key` argument ignored (always val_dice)",
            hint="the `key` argument picks the column to summarise; your function always uses "
                 "'val_dice'.",
            source=TRIALS),
    # -------------------- lesson 07: inference
    Mistake("model-not-called", ("07",), ("flip_tta", "predict_full_size"),
            what="the model never run on the image",
            hint="the output does not come from the model: the mask must be the model's "
                 "prediction on the (resized) image.",
            source=TRIALS),
    Mistake("forgot-eval", ("07",), ("flip_tta", "predict_full_size"),
            what="prediction in train mode: BatchNorm uses the statistics of the one image at "
                 "hand",
            hint="call `model.eval()` before predicting. In train mode BatchNorm normalises with "
                 "the statistics of the batch at hand (here: one image) instead of the running "
                 "averages it learned, and the prediction changes.",
            source=TRIALS),
    Mistake("forgot-no-grad", ("07",), ("flip_tta", "predict_full_size"),
            what="prediction without `torch.no_grad()`: autograd keeps every activation",
            hint="wrap the prediction in `with torch.no_grad():` (or decorate the function with "
                 "`@torch.no_grad()`): otherwise autograd keeps every activation for a backward "
                 "pass that never comes, which costs memory and time.",
            source=TRIALS),
    Mistake("not-resized-in", ("07",), ("predict_full_size",),
            what="the image not resized to the training size before the model (or H and W "
                 "swapped)",
            hint="the image reaches the model at its own size (or with H and W swapped): resize "
                 "it to the training size first; torch sizes are (H, W).",
            source=TRIALS),
    Mistake("returned-training-size", ("07",), ("predict_full_size",),
            what="the mask left at the training size instead of the image's own size",
            hint="the mask has the training size: resize the logits back to the image's own (H, "
                 "W), then threshold; a mask must line up pixel for pixel with the image it "
                 "belongs to.",
            source=TRIALS),
    Mistake("wrong-shape", ("07",), ("flip_tta", "mask_to_png_array", "predict_full_size"),
            what="a mask of another shape than (H, W)",
            hint="return one (H, W) mask: drop the batch and channel axes, e.g. `logits[0, 0]` "
                 "before thresholding.",
            source=TRIALS),
    Mistake("no-threshold", ("07",), ("flip_tta", "predict_full_size"),
            what="logits or probabilities returned instead of a 0/1 mask",
            hint="the mask holds logits or probabilities, not labels 0/1: threshold the resized "
                 "logits (a logit of 0 is a probability of 0.5) and return integers.",
            source=TRIALS),
    Mistake("threshold-then-resize", ("07",), ("predict_full_size",),
            what="the mask thresholded at the training size and then resized with interpolation",
            hint="you thresholded at the training size and then resized the mask with bilinear "
                 "interpolation, which blends 0 and 1 into values in between. Resize the LOGITS "
                 "back to (H, W), then threshold.",
            source=TRIALS),
    Mistake("argmax-one-channel", ("07",), ("predict_full_size",),
            what="argmax over a single output channel, which is always 0",
            hint="with ONE output channel, `argmax(dim=1)` is always 0 (and an empty mask also "
                 "comes from a threshold that is too high): threshold the logit at 0.",
            source=TRIALS),
    Mistake("logit-threshold-0.5", ("07",), ("predict_full_size",),
            what="logits thresholded at 0.5 instead of 0",
            hint="a logit is not a probability: threshold logits at 0, or `torch.sigmoid(logits) "
                 "> 0.5`.",
            source=TRIALS),
    Mistake("wrong-mask", ("07",), ("flip_tta", "predict_full_size"),
            what="a mask that differs from the expected one for none of the known reasons",
            hint="resize the image to `size`, run the model (eval mode, no_grad), resize the "
                 "logits back to (H, W) with bilinear interpolation, threshold at 0.",
            source=TRIALS),
    Mistake("png-not-numpy", ("07",), ("mask_to_png_array",),
            what="a tensor returned where PIL needs a NumPy array",
            hint="return a NumPy array (`tensor.numpy()`).",
            source=TRIALS),
    Mistake("png-left-0-1", ("07",), ("mask_to_png_array",),
            what="a 0/1 mask saved as it is: it looks black in an image viewer",
            hint="a PNG of 0 and 1 is saved fine, but an image viewer shows 1 as almost black (1 "
                 "of 255): the whole mask looks black. Multiply by 255.",
            source=TRIALS),
    Mistake("png-wrong-dtype", ("07",), ("mask_to_png_array",),
            what="a PNG array of another dtype than uint8",
            hint="PIL writes 8-bit grey PNGs from uint8 arrays: `.astype(np.uint8)` (int64 cannot "
                 "be written at all, float32 becomes a mode 'F' image).",
            source=TRIALS),
    Mistake("png-inverted", ("07",), ("mask_to_png_array",),
            what="object and background swapped in the PNG",
            hint="the object is 1 in the mask: it must become 255 (white), the background 0 "
                 "(black).",
            source=TRIALS),
    Mistake("png-wrong-values", ("07",), ("mask_to_png_array",),
            what="PNG values other than 0 and 255",
            hint="a PNG mask shows the object as 255 and the background as 0: look at how the 0/1"
                 " labels are turned into bytes before saving.",
            source=TRIALS),
    Mistake("tta-not-flipped-back", ("07",), ("flip_tta",),
            what="the mirrored image's prediction averaged without flipping it back",
            hint="the prediction for the mirrored image is mirrored too: flip it back before "
                 "averaging, or you average the left of the car with its right.",
            source=TRIALS),
    Mistake("tta-averaged-masks", ("07",), ("flip_tta",),
            what="thresholded masks combined instead of averaging the logits",
            hint="you averaged thresholded masks: (m1 + m2) / 2 > 0.5 keeps only the pixels both "
                 "agree on (an AND; with >= it is an OR). Average the logits (or the "
                 "probabilities), then threshold once.",
            source=TRIALS),
    Mistake("tta-no-flip", ("07",), ("flip_tta",),
            what="only one of the original and mirrored predictions used",
            hint="only one of the two predictions was used: predict the original image and the "
                 "mirrored one (`x.flip(-1)`), flip the second back and average their logits.",
            source=TRIALS),
    Mistake("tta-wrong-axis", ("07",), ("flip_tta",),
            what="the image flipped upside down (height axis) instead of left-right",
            hint="flip the width axis, `x.flip(-1)` (a left-right mirror); `flip(-2)` turns the "
                 "image upside down, which the network never saw in training.",
            source=TRIALS),
    # -------------------- lesson 08: pretrained encoders
    Mistake("not-a-list", ("08", "09"), ("encoder_features", "freeze_encoder", "match_names"),
            what="the maps or parameters returned as something other than a list",
            hint="collect the five maps in a list, shallowest first: [stem, layer1, layer2, "
                 "layer3, layer4].",
            source=TRIALS),
    Mistake("missing-stem", ("08",), ("encoder_features",),
            what="the stem's map (half the input size) left out of the encoder features",
            hint="the stem's output (relu(bn1(conv1(x))), at half the input size) is the "
                 "shallowest skip: without it the decoder has nothing at 1/2 size to add detail "
                 "from. Keep it as the first map, before the max pooling.",
            source=TRIALS),
    Mistake("skips-reversed", ("08",), ("encoder_features",),
            what="the encoder features returned deepest first",
            hint="return the maps in the order the encoder makes them, shallowest first (stem, "
                 "layer1 .. layer4); the decoder walks them backwards itself. In the wrong order "
                 "each Up block would meet a skip of the wrong size and channels.",
            source=TRIALS),
    Mistake("stem-after-maxpool", ("08",), ("encoder_features",),
            what="the stem map taken after the max pooling, at a quarter of the size",
            hint="take the stem map after conv1, bn1 and relu but BEFORE resnet.maxpool: the max "
                 "pooling halves it again, and then two skips have the same 1/4 size while "
                 "nothing is left at 1/2. (list(resnet.children())[:4] includes the maxpool.)",
            source=TRIALS),
    Mistake("wrong-number-of-maps", ("08",), ("encoder_features",),
            what="another number of feature maps than five",
            hint="one map per stage: the stem (before maxpool), then layer1, layer2, layer3 and "
                 "layer4, each fed with the one before.",
            source=TRIALS),
    Mistake("features-mismatch", ("08",), ("encoder_features",),
            what="a stage fed the wrong input",
            hint="each layer takes the previous map: layer1(maxpool(stem)), layer2(f1), "
                 "layer3(f2), layer4(f3). Did a stage get the wrong input?",
            source=TRIALS),
    Mistake("stem-no-relu", ("08",), ("encoder_features",),
            what="the stem map taken before its ReLU",
            hint="the stem is conv1 -> bn1 -> relu: apply resnet.relu before keeping it.",
            source=TRIALS),
    Mistake("params-generator", ("08",), ("freeze_encoder",),
            what="a generator of parameters returned, which is used up after one pass",
            hint="a generator such as model.parameters() or (p for p in ...) is used up after one "
                 "pass: the optimizer would take it, and the next loop over it (counting, "
                 "clipping gradients) sees nothing. Return a list: [p for p in model.parameters() "
                 "if p.requires_grad].",
            source=TRIALS),
    Mistake("encoder-not-frozen", ("08",), ("freeze_encoder",),
            what="some encoder parameters still trainable",
            hint="set requires_grad to False on EVERY parameter of model.encoder (for p in "
                 "model.encoder.parameters(): p.requires_grad_(False)), the BatchNorm weights and "
                 "biases included, not only the conv weights or the last stages.",
            source=TRIALS),
    Mistake("froze-decoder", ("08",), ("freeze_encoder",),
            what="the whole model frozen, decoder and head included",
            hint="freeze only model.encoder: model.requires_grad_(False) freezes the decoder and "
                 "the head too, and then nothing learns (the new head starts random and must "
                 "train).",
            source=TRIALS),
    Mistake("optimizer-gets-frozen", ("08",), ("freeze_encoder",),
            what="frozen parameters handed to the optimizer",
            hint="return only the parameters that still train ([p for p in model.parameters() if "
                 "p.requires_grad]). PyTorch's optimizers skip tensors without a gradient, so "
                 "training would run, but the optimizer's parameter count says the wrong thing, "
                 "and if you unfreeze later those tensors start training at this group's learning "
                 "rate without your deciding it.",
            source=TRIALS),
    Mistake("params-missing", ("08",), ("freeze_encoder",),
            what="some trainable parameters (decoder or head) left out of the list for the "
                 "optimizer",
            hint="return every parameter that still trains: the decoder's and the head's ([p for "
                 "p in model.parameters() if p.requires_grad]).",
            source=TRIALS),
    Mistake("batchnorm-stats-update", ("08",), ("freeze_encoder",),
            what="the frozen encoder's BatchNorm left in train mode, so its running statistics "
                 "change",
            hint="BatchNorm's running mean and variance are buffers, not parameters: "
                 "requires_grad=False does not stop them, and in train mode every forward pass "
                 "overwrites them with our small batches' statistics. Put the encoder in eval "
                 "mode AND set model.encoder_frozen = True, so that ResNetUNet keeps it there "
                 "when model.train() is called.",
            source=TRIALS),
    Mistake("not-float32", ("09",), ("to_unit_range",),
            what="16-bit pixels scaled but returned as float64 or an integer type",
            hint="the values are right but the dtype is not float32, the network's input type: "
                 "look at the dtype of what you divide and of the result.",
            source=TRIALS),
    Mistake("divided-by-255", ("09",), ("to_unit_range",),
            what="a uint16 image divided by 255, giving values far above 1",
            hint="a uint16 image holds 0..65535, so dividing by 255 leaves values far above 1: "
                 "the array's type says its range (np.iinfo).",
            source=TRIALS),
    Mistake("wrong-bit-depth", ("09",), ("to_unit_range",),
            what="divided by a fixed camera range (4095 for 12 bits, 1023...) instead of the "
                 "type's",
            hint="you divided by a fixed range, such as a 12-bit camera's 4095. A uint16 array "
                 "may hold values up to 65535 (they then come out above 1), and a uint8 one "
                 "only up to 255 (it comes out too dark): use the range of the array's own "
                 "type (np.iinfo), the same for every image of that type.",
            source=TRIALS),
    Mistake("per-image-range", ("09",), ("to_unit_range",),
            what="each image divided by its own maximum, so a dim scan looks as bright as a "
                 "bright one",
            hint="you stretched each image by its own values: every image of a dataset must be "
                 "on the same scale, or a dim scan looks as bright as a bright one. Divide by "
                 "the largest value of the array's TYPE (np.iinfo), not of this image.",
            source=REVIEW),
    Mistake("clipped-to-8-bit", ("09",), ("to_unit_range",),
            what="16-bit values clipped at 255 (or sent through 8 bits, as PIL's convert('L') "
                 "does): the scan turns white",
            hint="values above 255 were clipped (or the image went through 8 bits, as PIL's "
                 "convert('L') does): a 12-bit scan turns white. Scale the 16-bit values by "
                 "their own type's range, without going through 8 bits.",
            source=REVIEW),
    Mistake("wrong-range", ("09",), ("to_unit_range",),
            what="one divisor for every type (65535 for a uint8 image too)",
            hint="use the range of the array's own type: 255 for uint8, 65535 for uint16 "
                 "(np.iinfo(array.dtype).max), not one number for every type.",
            source=TRIALS),
    Mistake("partial-match", ("09",), ("match_names",),
            what="a name paired because the pattern matched inside it (000_scan.tif.bak)",
            hint="the WHOLE name must match the pattern, not a part of it: look at how your "
                 "regex is applied (re.fullmatch, or ^...$, versus re.search or `in`).",
            source=TRIALS),
    Mistake("id-split", ("09",), ("match_names",),
            what="the id cut at the first separator, so ids such as a_7 never pair",
            hint="the id is everything the pattern's {{id}} stands for, separators included: "
                 "take it from the pattern, not by splitting the name at a separator.",
            source=TRIALS),
    Mistake("unmatched-kept", ("09",), ("match_names",),
            what="an image without a mask kept in the pairs",
            hint="a pair needs the same id on both sides: leave out the ids found on one "
                 "side only.",
            source=TRIALS),
    Mistake("silent-duplicate", ("09",), ("match_names",),
            what="two masks fit one image and one of them is chosen without a word",
            hint="when a second name of one side has an id already seen, raise an error naming "
                 "both files: a silent choice can train on the wrong masks.",
            source=REVIEW),
    # -------------------- lesson 10: scaling up
    Mistake("wrong-length", ("10",), ("CachedDataset",),
            what="`__len__` does not give the number of pairs the dataset was made with",
            hint="`__len__` returns n, the number of pairs: the DataLoader asks it how many "
                 "indices to draw.",
            source=TRIALS),
    Mistake("cache-ignores-index", ("10",), ("CachedDataset",),
            what="one cache entry for every index: each item is the first pair loaded",
            hint="the cache needs one entry per index (keyed by the index): with a single "
                 "entry, every item is the first pair loaded.",
            source=TRIALS),
    Mistake("no-cache", ("10",), ("CachedDataset",),
            what="every access calls load_pair again, so each epoch decodes and resizes every "
                 "full-size image anew",
            hint="load_pair must run only the first time an index is read: look the index up "
                 "in the cache first, and make the cache once, in `__init__`, not in "
                 "`__getitem__`.",
            source=CARVANA_LAPTOP),
    Mistake("cached-after-augment", ("10",), ("CachedDataset",),
            what="the augmented pair is cached, so every epoch sees the same flip and crop",
            hint="cache what load_pair returns, before any randomness, and call augment on the "
                 "cached pair at every `__getitem__`: the random part must run every epoch.",
            source=REVIEW),
    Mistake("augment-written-back", ("10",), ("CachedDataset",),
            what="the augmented pair written back into the cache: each epoch augments the last "
                 "epoch's result again",
            hint="the cache must keep what load_pair returned: your `__getitem__` stores the "
                 "augmented pair in its place, so the next epoch flips (crops, jitters) an "
                 "already augmented pair, and the changes pile up. Keep the augmented pair in "
                 "a local variable and return it.",
            source=TRIALS),
    Mistake("augment-not-called", ("10",), ("CachedDataset",),
            what="the items come back without augmentation",
            hint="each read must return the cached pair passed through augment: the "
                 "augmentation is what makes epochs differ.",
            source=TRIALS),
    Mistake("permuted-not-layout", ("10",), ("to_channels_last",),
            what="`permute(0, 2, 3, 1)` used for channels_last: the shape becomes (N, H, W, C) "
                 "and the convolution reads the rows as channels",
            hint="channels_last changes how the values lie in memory, not the shape: the "
                 "tensor stays (N, C, H, W). Look for the `memory_format` argument of "
                 "`contiguous` and `to`.",
            source=REVIEW),
    Mistake("values-changed", ("10",), ("to_channels_last",),
            what="the conversion changed the images' values or the model's output",
            hint="a memory format changes only where the values lie, never the values: return "
                 "the same model and the same images, converted.",
            source=TRIALS),
    Mistake("input-not-channels-last", ("10",), ("to_channels_last",),
            what="only the model converted: the images stay (N, C, H, W) in memory, and every "
                 "convolution converts them again",
            hint="convert the images as well: a tensor takes a `memory_format` too.",
            source=TRIALS),
    Mistake("model-not-channels-last", ("10",), ("to_channels_last",),
            what="only the images converted: the weights stay in the default layout",
            hint="convert the model too: its 4-d weights have a memory layout of their own, "
                 "which `memory_format` changes.",
            source=TRIALS),
    Mistake("no-autocast", ("10",), ("mixed_precision_step",),
            what="the forward pass ran in float32: no autocast, or autocast for another device "
                 "(`autocast('cuda')` on CPU tensors changes nothing)",
            hint="run the forward pass under torch.autocast with dtype bfloat16, for the device "
                 "type of the data (`images.device.type`: 'cpu' here, 'cuda' on a GPU; an "
                 "autocast for another device changes nothing).",
            source=REVIEW),
    Mistake("weights-cast-to-16-bit", ("10",), ("mixed_precision_step",),
            what="the model converted to 16 bits (`model.bfloat16()`, `.half()`): an update "
                 "smaller than about 1/256 of a weight rounds away",
            hint="keep the weights in float32 and let autocast run the convolutions in "
                 "bfloat16: in bfloat16, 1 + 0.001 is 1, so small optimizer steps are lost.",
            source=REVIEW),
    Mistake("every-rank-all-data", ("10",), ("shard",),
            what="every process gets all the indices, so each image is seen N times an epoch "
                 "and nothing is faster",
            hint="each process takes its own share of the indices, not all of them: together "
                 "the shares cover the list once (plus padding).",
            source=TRIALS),
    Mistake("positions-not-indices", ("10",), ("shard",),
            what="positions 0..n-1 returned instead of the (shuffled) indices given",
            hint="return items of `indices` (the sampler has shuffled them), not positions "
                 "from range(n).",
            source=TRIALS),
    Mistake("uneven-shards", ("10",), ("shard",),
            what="shares of different lengths: the process with fewer batches stops early and "
                 "the others wait for ever at the gradient sum",
            hint="every process must take the same number of steps: pad the list with its own "
                 "first items up to a multiple of world_size (repeating it as often as needed: "
                 "with fewer images than half the processes, once is not enough), then split "
                 "it.",
            source=REVIEW),
    Mistake("samples-dropped", ("10",), ("shard",),
            what="shares of n // world_size: the remainder is never trained on",
            hint="round the share up, ceil(n / world_size), and pad with the first indices "
                 "instead of dropping the last ones.",
            source=TRIALS),
    Mistake("shard-too-long", ("10",), ("shard",),
            what="more indices per process than ceil(n / world_size): images repeated beyond "
                 "the padding the shares need",
            hint="pad only up to the next multiple of world_size: ceil(n / world_size) "
                 "indices per process.",
            source=TRIALS),
]

MISTAKES: dict[str, Mistake] = {m.id: m for m in _CATALOGUE}
assert len(MISTAKES) == len(_CATALOGUE), "a mistake id is catalogued twice"


def hint_for(mistake: str, **fields: object) -> str:
    """The catalogued hint of ``mistake``, its ``{fields}`` filled in.

    Raises KeyError for an id that is not in the catalogue, or a field left out.
    """
    if mistake not in MISTAKES:
        raise KeyError(f"mistake {mistake!r} is not in segkit/checks/catalogue.py")
    return MISTAKES[mistake].hint.format(**fields)

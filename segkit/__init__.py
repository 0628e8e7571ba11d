"""segkit: the runtime of the segkit U-Net course, what the lessons import.

Each module holds one idea of the course. The lessons that define or use it are in
brackets (lessons NN are ``lessons/NN_*.ipynb``); "tools" are the command line and the
benchmarks, which no lesson imports. The course's machinery (building, running, checking
and grading the notebooks) is the separate package ``segkit_course``, which segkit never
imports.

- ``segkit.toydata``     generated toy datasets in the real datasets' layouts [00-05, 07-10]
- ``segkit.realdata``    fetching and preparing the real datasets [00; via fetch]
- ``segkit.imageio``     opening image files (every reader does it here) and reading them
  faithfully: 16-bit, float, palette, alpha [00, 07, 09; via data, masks, predict, audit]
- ``segkit.masks``       reading masks and converting them to class indices [01, 07; via data]
- ``segkit.data``        Dataset classes (Carvana, VOC, a pair of folders), train/val split,
  DataLoaders [01-05, 08-10]
- ``segkit.transforms``  paired augmentation (torchvision.transforms.v2) [01, 02]
- ``segkit.unet``        the U-Net and its blocks (defined in lesson 02) [00, 02-06, 08, 10]
- ``segkit.shapes``      tracing tensor shapes through a model [02]
- ``segkit.metrics``     pixel accuracy, Dice, IoU (lesson 04's answers), confusion matrices,
  mIoU [03, 04, 05, 07, 09]
- ``segkit.losses``      BCE, soft Dice, BCE+Dice, weighted cross-entropy [03, 05, 08, 10]
- ``segkit.training``    train_one_epoch / validate / fit, lesson 03's loop [03, 04, 06, 08]
- ``segkit.checkpoint``  atomic checkpoints, safe loading [03, 07, 09]
- ``segkit.device``      device choice and seeding [00, 03, 08-10]
- ``segkit.progress``    progress bars: a widget in Jupyter, text in a terminal [via training]
- ``segkit.recipe``      one training run from start to finish, ``segkit train``: the table of
  defaults, the presets, the wrapping of lesson 03's loop [04, 06, 07, 09, 10]
- ``segkit.baselines``   the best single-threshold segmenter, the bar a U-Net must beat
  [tools: benchmarks/threshold_baseline.py, datasets/README.md]
- ``segkit.experiments`` learning-rate grids, early stopping, run summaries [06]
- ``segkit.predict``     masks for new images, ``segkit predict`` [07, 09]
- ``segkit.export``      exporting a trained U-Net and checking the export [07]
- ``segkit.pretrained``  U-Nets on torchvision encoders, pretrained weights offline [08]
- ``segkit.viz``         pictures of images, masks and predictions [00-05, 07]
- ``segkit.folders``     pairing a folder of images with a folder of masks by name [09; via data]
- ``segkit.labels``      what the mask values mean: foreground, ignore, classes [09]
- ``segkit.audit``       auditing a whole dataset before the first epoch [09]
- ``segkit.owndata``     train/val sets from your own folders, ``segkit train --images`` [09]
- ``segkit.evaluation``  scoring a checkpoint on a labelled folder, ``segkit evaluate`` [09]
- ``segkit.tiling``      sliding-window prediction of large images [via predict]
- ``segkit.fetch``       ``segkit fetch``: the real datasets, checksummed [tools]
- ``segkit.speed``       mixed precision, channels_last, torch.compile around the model,
  loader settings [10; via recipe]
- ``segkit.cache``       decoded, resized images kept for the next epochs [10; via recipe]
- ``segkit.distributed`` data-parallel training under torchrun [10; via recipe]
- ``segkit.budget``      a budget of training seconds: its deadline and its cosine schedule
  [via recipe]
- ``segkit.timing``      measuring img/s of a step or a loader [10; tools: benchmarks/]
- ``segkit.checks``      the exercises' checks and their mistake catalogue [00-10]
- ``segkit.claim``       an output folder taken by one writer alone (a run, an evaluation):
  never over another's files, the next free name instead [tools: train, evaluate, predict]
- ``segkit.errors``      ``SegkitError`` and ``DataError``, what segkit raises [all]
- ``segkit.failures``    one clear message for every failure of a ``segkit`` command [tools]
- ``segkit.cli``         the ``segkit`` command line, the one entry point [tools]
"""

__version__ = "0.1.0"

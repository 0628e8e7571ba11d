"""segkit: the small helper package behind the segkit U-Net course.

Each module holds one idea of the course:

- ``segkit.toydata``   generated toy datasets in the real datasets' layouts
- ``segkit.masks``     reading masks and converting them to class indices
- ``segkit.data``      Dataset classes, train/val split, DataLoaders
- ``segkit.transforms`` paired augmentation (torchvision.transforms.v2)
- ``segkit.unet``      the U-Net and its blocks
- ``segkit.shapes``    tracing tensor shapes through a model
- ``segkit.metrics``   pixel accuracy, Dice, IoU, confusion matrices
- ``segkit.losses``    BCE, soft Dice, BCE+Dice, weighted cross-entropy
- ``segkit.training``  train_one_epoch / evaluate / fit
- ``segkit.checkpoint`` atomic checkpoints, safe loading
- ``segkit.device``    device choice and seeding
- ``segkit.predict``   masks for new images
- ``segkit.viz``       pictures of images, masks and predictions
- ``segkit.speed``     mixed precision, channels_last, torch.compile, loader settings
- ``segkit.cache``     decoded, resized images kept for the next epochs
- ``segkit.distributed`` data-parallel training under torchrun
- ``segkit.timing``    measuring img/s of a step or a loader
"""

__version__ = "0.1.0"

"""Pretrained encoders and torchvision's segmentation models (lesson 08).

Two ways to stand on someone else's training:

1. :class:`ResNetUNet`: a U-Net whose encoder is a torchvision ResNet (18, 34 or 50). The
   encoder's five stages give the five skip maps::

       stem   = relu(bn1(conv1(x)))      1/2  of H and W    64 channels
       layer1 = layer1(maxpool(stem))    1/4                 64 (resnet18/34), 256 (resnet50)
       layer2                            1/8                128                512
       layer3                            1/16               256               1024
       layer4                            1/32               512               2048

   (resnet50's Bottleneck blocks end with a 1x1 conv that multiplies the channels by
   ``expansion = 4``; resnet18/34's BasicBlocks have ``expansion = 1``.) The decoder starts
   from layer4 and goes up through :class:`DecoderBlock` s: upsample to the skip's exact
   size, concatenate, DoubleConv; a last block without a skip brings the map to the input's
   size. Any H and W work (odd ones too): each block upsamples to a *size*, not by 2.

2. :func:`segmentation_model`: one of torchvision's segmentation models (LR-ASPP or
   DeepLabV3 with a MobileNetV3 backbone, FCN or DeepLabV3 with ResNet-50) with
   ``num_classes`` outputs, wrapped so that it returns the logits tensor
   (N, num_classes, H, W) like the U-Nets (torchvision's models return a dict).

Pretrained weights, and no network
----------------------------------

``weights`` is always one of:

- ``None``: random initialisation (what the course's notebooks use: CI has no network);
- a path (``str`` or ``Path``) to a local ``.pth`` file holding a ``state_dict``, e.g. one you
  downloaded once (:func:`weights_url` says from where) or saved with
  ``torch.save(model.state_dict(), path)``;
- the name of a torchvision weight (``"DEFAULT"``, ``"IMAGENET1K_V1"``...): downloaded by
  torchvision into ``torch.hub.get_dir()/checkpoints`` the first time, then read from there.
  Without a network this raises :class:`PretrainedWeightsUnavailable`, whose message names
  the URL and the file to put in place instead.

Tensor shapes: images (N, 3, H, W) float32 -> logits (N, num_classes, H, W) float32.
"""

from __future__ import annotations

import socket
import urllib.error
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models
from torchvision.models import segmentation as tv_seg

from segkit.errors import SegkitError
from segkit.unet import DoubleConv

__all__ = [
    "PretrainedWeightsUnavailable",
    "RESNETS",
    "SEGMENTATION_MODELS",
    "DecoderBlock",
    "ResNetUNet",
    "SegmentationWrapper",
    "adapt_head",
    "build_resnet",
    "download_state_dict",
    "encoder_channels",
    "encoder_features",
    "freeze_encoder",
    "load_state_dict_file",
    "segmentation_model",
    "trainable_parameters",
    "unfreeze_encoder",
    "weights_url",
]

# name -> (builder, weights enum)
RESNETS: dict[str, tuple[Callable[..., nn.Module], Any]] = {
    "resnet18": (models.resnet18, models.ResNet18_Weights),
    "resnet34": (models.resnet34, models.ResNet34_Weights),
    "resnet50": (models.resnet50, models.ResNet50_Weights),
}

SEGMENTATION_MODELS: dict[str, tuple[Callable[..., nn.Module], Any]] = {
    "lraspp_mobilenet_v3_large": (tv_seg.lraspp_mobilenet_v3_large,
                                  tv_seg.LRASPP_MobileNet_V3_Large_Weights),
    "deeplabv3_mobilenet_v3_large": (tv_seg.deeplabv3_mobilenet_v3_large,
                                     tv_seg.DeepLabV3_MobileNet_V3_Large_Weights),
    "deeplabv3_resnet50": (tv_seg.deeplabv3_resnet50, tv_seg.DeepLabV3_ResNet50_Weights),
    "fcn_resnet50": (tv_seg.fcn_resnet50, tv_seg.FCN_ResNet50_Weights),
}


class PretrainedWeightsUnavailable(SegkitError, RuntimeError):
    """Pretrained weights could not be read: no network for a download, or no such file."""


# --------------------------------------------------------------------------- weights


def _lookup(table: dict[str, tuple[Callable[..., nn.Module], Any]], name: str, what: str):
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}: choose one of {', '.join(table)}")
    return table[name]


def _weight_enum(enum_class: Any, name: str) -> Any:
    try:
        return enum_class[name] if name != "DEFAULT" else enum_class.DEFAULT
    except KeyError:
        known = ", ".join(["DEFAULT"] + [w.name for w in enum_class])
        raise ValueError(f"{enum_class.__name__} has no weights named {name!r}: choose one of "
                         f"{known}, a path to a local .pth file, or None") from None


def _looks_like_path(weights: str | Path) -> bool:
    text = str(weights)
    return isinstance(weights, Path) or "/" in text or "\\" in text or text.endswith(
        (".pth", ".pt", ".bin"))


def weights_url(name: str, weights: str = "DEFAULT") -> str:
    """The download URL of torchvision's ``weights`` for model ``name`` (no download).

    >>> weights_url("resnet18")
    'https://download.pytorch.org/models/resnet18-f37072fd.pth'
    """
    table = RESNETS if name in RESNETS else SEGMENTATION_MODELS
    _, enum_class = _lookup(table, name, "model")
    return _weight_enum(enum_class, weights).url


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``state_dict`` saved with ``torch.save`` from a local file (on the CPU).

    Only tensors are read (``weights_only=True``: a weights file cannot run code). A file
    saved as ``{"model": state_dict, ...}`` or ``{"state_dict": ...}`` is unwrapped.
    Raises :class:`PretrainedWeightsUnavailable` naming the file when it does not exist.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise PretrainedWeightsUnavailable(
            f"no weights file at {path}: download it on a machine with a network "
            "(segkit.pretrained.weights_url(name) gives the URL), copy it there, and pass "
            "its path as weights=...")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "model_state"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise PretrainedWeightsUnavailable(
            f"{path} holds a {type(state).__name__}, not a state_dict (a dict of tensors): "
            "save weights with torch.save(model.state_dict(), path)")
    return state


def download_state_dict(weights: Any, model_dir: str | Path | None = None) -> dict[str, Any]:
    """torchvision ``weights`` (an enum member) as a state_dict: from the cache or downloaded.

    The file lands in ``model_dir`` (default ``torch.hub.get_dir()/checkpoints``) and is
    read from there the next time. Raises :class:`PretrainedWeightsUnavailable` with the
    URL and the cache path when the download fails (no network, a proxy, a firewall).
    """
    folder = Path(model_dir) if model_dir is not None else Path(torch.hub.get_dir()) / "checkpoints"
    target = folder / Path(weights.url).name
    try:
        return weights.get_state_dict(progress=False, model_dir=str(folder), check_hash=False)
    except (urllib.error.URLError, socket.timeout, ConnectionError, TimeoutError) as exc:
        raise PretrainedWeightsUnavailable(
            f"could not download the pretrained weights {weights} from {weights.url} "
            f"({type(exc).__name__}: {exc}). No network here? Download that URL on a machine "
            f"that has one and either put the file at {target} (torchvision's cache) or pass "
            "its path as weights='path/to/file.pth'. To train from random weights, pass "
            "weights=None.") from exc


def _state_dict_for(weights: str | Path | dict | None, enum_class: Any,
                    model_dir: str | Path | None) -> dict[str, Any] | None:
    """None, a state_dict, a file path or a torchvision weight name -> a state_dict or None."""
    if weights is None:
        return None
    if isinstance(weights, dict):
        return weights
    if _looks_like_path(weights) or Path(str(weights)).expanduser().is_file():
        return load_state_dict_file(weights)
    if isinstance(weights, str):
        return download_state_dict(_weight_enum(enum_class, weights), model_dir)
    return download_state_dict(weights, model_dir)  # an enum member itself


def _load(module: nn.Module, state: dict[str, Any], what: str) -> None:
    """``module.load_state_dict(state)`` with a message a student can act on."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise PretrainedWeightsUnavailable(
            f"these weights do not fit {what}: {first} ... Were they saved from another "
            "model (resnet50 weights into a resnet18, a different number of classes)?") from exc


# --------------------------------------------------------------------------- the encoder


def build_resnet(name: str = "resnet18", weights: str | Path | dict | None = None, *,
                 model_dir: str | Path | None = None) -> models.ResNet:
    """A torchvision ResNet, random (``weights=None``) or with weights (see module docstring)."""
    builder, enum_class = _lookup(RESNETS, name, "encoder")
    net = builder(weights=None)
    state = _state_dict_for(weights, enum_class, model_dir)
    if state is not None:
        _load(net, state, name)
    return net


def encoder_features(resnet: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The five skip maps of a torchvision ResNet, shallowest first.

    x: (N, 3, H, W) float32 -> [stem (N, 64, H/2, W/2), layer1 (1/4), layer2 (1/8),
    layer3 (1/16), layer4 (1/32)] (sizes rounded up). The stem map is taken *before*
    the max pooling, so that each map is half the size of the one before.
    """
    stem = resnet.relu(resnet.bn1(resnet.conv1(x)))
    f1 = resnet.layer1(resnet.maxpool(stem))
    f2 = resnet.layer2(f1)
    f3 = resnet.layer3(f2)
    f4 = resnet.layer4(f3)
    return [stem, f1, f2, f3, f4]


def encoder_channels(resnet: nn.Module) -> list[int]:
    """Channels of the five maps of :func:`encoder_features`, read from the layers.

    resnet18/34: [64, 64, 128, 256, 512]; resnet50: [64, 256, 512, 1024, 2048]
    (the last conv of a Bottleneck block has ``4 * width`` channels).
    """
    channels = [resnet.bn1.num_features]
    for layer in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4):
        last_block = layer[-1]
        norms = [m for m in last_block.modules() if isinstance(m, nn.BatchNorm2d)]
        channels.append(norms[-1].num_features)
    return channels


# --------------------------------------------------------------------------- the U-Net


class DecoderBlock(nn.Module):
    """Upsample to the skip's size, concatenate ``[skip, up]``, DoubleConv.

    x: (N, in_ch, h, w); skip: (N, skip_ch, H, W) or None (then ``size`` gives (H, W)).
    returns (N, out_ch, H, W). Bilinear upsampling to an exact size: odd sizes just work.
    """

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.in_ch, self.skip_ch, self.out_ch = in_ch, skip_ch, out_ch
        self.conv = DoubleConv(in_ch + skip_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        size = tuple(skip.shape[-2:]) if skip is not None else size
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        if skip is not None:
            x = torch.cat([skip, x], dim=1)
        return self.conv(x)


class ResNetUNet(nn.Module):
    """U-Net with a torchvision ResNet encoder.

    images (N, 3, H, W) float32 -> logits (N, num_classes, H, W) float32, any H, W >= 32.

    Args:
        num_classes: output channels (1 for binary masks with BCE).
        encoder: "resnet18", "resnet34" or "resnet50".
        weights: the encoder's weights: None (random), a local file, or a torchvision
            weight name such as "IMAGENET1K_V1" (downloads; see the module docstring).
        decoder_channels: output channels of the five decoder blocks, deepest first.
        model_dir: where torchvision's downloads are cached (default torch.hub's).

    The encoder is the ResNet without its classifier (``avgpool`` and ``fc`` are dropped).
    After :func:`freeze_encoder` the encoder stays in eval mode even when ``model.train()``
    is called, so its BatchNorm statistics are not overwritten by our small batches.
    """

    def __init__(self, num_classes: int = 1, encoder: str = "resnet18",
                 weights: str | Path | dict | None = None,
                 decoder_channels: Iterable[int] = (128, 64, 32, 16, 16), *,
                 model_dir: str | Path | None = None) -> None:
        super().__init__()
        decoder_channels = tuple(int(c) for c in decoder_channels)
        if len(decoder_channels) != 5:
            raise ValueError(f"decoder_channels must have 5 entries (one per decoder block, "
                             f"deepest first), got {decoder_channels}")
        self.config = {"num_classes": num_classes, "encoder": encoder,
                       "decoder_channels": list(decoder_channels)}
        self.encoder = build_resnet(encoder, weights, model_dir=model_dir)
        self.encoder.avgpool = nn.Identity()  # the classifier is not part of the encoder
        self.encoder.fc = nn.Identity()
        ch = encoder_channels(self.encoder)  # shallowest first: stem, layer1 .. layer4
        blocks = []
        below = ch[4]
        for skip_ch, out_ch in zip([ch[3], ch[2], ch[1], ch[0], 0], decoder_channels):
            blocks.append(DecoderBlock(below, skip_ch, out_ch))
            below = out_ch
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(below, num_classes, kernel_size=1)
        self.encoder_frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = encoder_features(self.encoder, x)
        y = features[-1]
        skips = features[-2::-1] + [None]  # layer3, layer2, layer1, stem, then the input size
        for block, skip in zip(self.decoder, skips):
            y = block(y, skip, size=tuple(x.shape[-2:]))
        return self.head(y)

    def train(self, mode: bool = True) -> ResNetUNet:
        super().train(mode)
        if mode and self.encoder_frozen:
            self.encoder.eval()  # frozen BatchNorms keep their (pretrained) running statistics
        return self


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters with ``requires_grad`` (what an optimizer should get), as a list."""
    return [p for p in model.parameters() if p.requires_grad]


def freeze_encoder(model: ResNetUNet) -> list[nn.Parameter]:
    """Freeze ``model.encoder``: no gradients, BatchNorm statistics kept. Returns the
    parameters that still train (the decoder and the head), for the optimizer.
    """
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    model.encoder_frozen = True
    model.encoder.eval()
    return trainable_parameters(model)


def unfreeze_encoder(model: ResNetUNet) -> None:
    """Undo :func:`freeze_encoder` (the encoder trains again, in train mode with the model)."""
    for p in model.encoder.parameters():
        p.requires_grad_(True)
    model.encoder_frozen = False
    model.encoder.train(model.training)


# --------------------------------------------------------------------------- torchvision models


class SegmentationWrapper(nn.Module):
    """A torchvision segmentation model that returns the logits tensor, not a dict.

    images (N, 3, H, W) float32 -> ``model(images)["out"]``, (N, num_classes, H, W).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["out"]


def adapt_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace the last (classifying) convs of a torchvision segmentation model so that it
    outputs ``num_classes`` channels; everything before them keeps its weights.

    LR-ASPP: ``classifier.low_classifier`` and ``classifier.high_classifier``;
    DeepLabV3 / FCN: ``classifier[-1]`` (and ``aux_classifier[-1]`` if there is one).
    Returns the model (changed in place).
    """
    inner = model.model if isinstance(model, SegmentationWrapper) else model
    head = inner.classifier
    if hasattr(head, "low_classifier"):
        names = [(head, "low_classifier"), (head, "high_classifier")]
    else:
        names = [(head, str(len(head) - 1))]
        if getattr(inner, "aux_classifier", None) is not None:
            names.append((inner.aux_classifier, str(len(inner.aux_classifier) - 1)))
    for parent, name in names:
        old = getattr(parent, name) if not name.isdigit() else parent[int(name)]
        new = nn.Conv2d(old.in_channels, num_classes, kernel_size=old.kernel_size)
        if name.isdigit():
            parent[int(name)] = new
        else:
            setattr(parent, name, new)
    return model


def segmentation_model(name: str = "lraspp_mobilenet_v3_large", num_classes: int = 1,
                       weights: str | Path | dict | None = None, *,
                       model_dir: str | Path | None = None) -> SegmentationWrapper:
    """One of torchvision's segmentation models with ``num_classes`` outputs.

    ``weights=None`` builds it from random weights (``weights_backbone=None`` too: nothing
    is downloaded). With weights (a local file or a torchvision weight name: the 21-class
    COCO-with-VOC-labels models), the model is built for 21 classes, loaded, and its head
    replaced by :func:`adapt_head` with a fresh one for ``num_classes``.

    Returns a :class:`SegmentationWrapper`: images (N, 3, H, W) -> logits (N, num_classes, H, W).
    """
    builder, enum_class = _lookup(SEGMENTATION_MODELS, name, "segmentation model")
    state = _state_dict_for(weights, enum_class, model_dir)
    if state is None:
        model = builder(weights=None, weights_backbone=None, num_classes=num_classes)
        return SegmentationWrapper(model)
    has_aux = any(k.startswith("aux_classifier.") for k in state)
    kwargs = {"aux_loss": True} if has_aux else {}
    trained_classes = _classes_in(state)
    model = builder(weights=None, weights_backbone=None, num_classes=trained_classes, **kwargs)
    _load(model, state, name)
    if has_aux:
        model.aux_classifier = None  # only used for an extra loss during their training
    if num_classes != trained_classes:
        adapt_head(model, num_classes)
    return SegmentationWrapper(model)


def _classes_in(state: dict[str, Any]) -> int:
    """Number of classes of a torchvision segmentation state_dict (its last conv's outputs)."""
    keys = [k for k in state if k.startswith("classifier.") and k.endswith(".weight")]
    return int(state[keys[-1]].shape[0])

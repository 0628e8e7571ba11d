"""segkit.pretrained: the ResNet U-Net, torchvision's models adapted, weights from files, no network."""

from __future__ import annotations

import urllib.error

import pytest
import torch
from torch import nn

from segkit import pretrained
from segkit.unet import count_parameters


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Every test: downloads fail as they do offline, and the hub cache is an empty folder."""
    def refuse(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))


@pytest.mark.parametrize("encoder, channels", [
    ("resnet18", [64, 64, 128, 256, 512]),
    ("resnet50", [64, 256, 512, 1024, 2048]),
])
def test_encoder_channels_follow_the_block_type(encoder, channels):
    resnet = pretrained.build_resnet(encoder)
    assert pretrained.encoder_channels(resnet) == channels
    maps = pretrained.encoder_features(resnet.eval(), torch.zeros(1, 3, 64, 96))
    assert [m.shape[1] for m in maps] == channels
    assert [tuple(m.shape[-2:]) for m in maps] == [(32, 48), (16, 24), (8, 12), (4, 6), (2, 3)]


@pytest.mark.parametrize("size", [(64, 96), (65, 97), (33, 47)])
def test_resnet_unet_output_has_the_input_size(size):
    torch.manual_seed(0)
    model = pretrained.ResNetUNet(num_classes=3).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 3, *size) and out.dtype == torch.float32


def test_resnet_unet_trains_one_step():
    torch.manual_seed(0)
    model = pretrained.ResNetUNet(num_classes=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(2, 3, 32, 48), torch.randint(0, 2, (2, 1, 32, 48)).float()
    before = model.head.weight.detach().clone()
    loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    opt.step()
    assert model.encoder.conv1.weight.grad is not None
    assert not torch.equal(before, model.head.weight)


def test_weights_from_a_local_file_arrive_in_the_encoder(tmp_path):
    torch.manual_seed(1)
    source = pretrained.build_resnet("resnet18")
    with torch.no_grad():
        source.bn1.running_mean.fill_(0.25)  # buffers travel too
    path = tmp_path / "resnet18-local.pth"
    torch.save(source.state_dict(), path)

    model = pretrained.ResNetUNet(num_classes=1, encoder="resnet18", weights=str(path))
    for name, tensor in model.encoder.state_dict().items():
        assert torch.equal(tensor, source.state_dict()[name]), name
    assert torch.equal(model.encoder.bn1.running_mean, torch.full((64,), 0.25))
    fresh = pretrained.ResNetUNet(num_classes=1, encoder="resnet18")
    assert not torch.equal(fresh.encoder.conv1.weight, source.conv1.weight)


def test_wrapped_checkpoint_files_are_unwrapped(tmp_path):
    source = pretrained.build_resnet("resnet18")
    torch.save({"model": source.state_dict(), "epoch": 3}, tmp_path / "ckpt.pth")
    net = pretrained.build_resnet("resnet18", tmp_path / "ckpt.pth")
    assert torch.equal(net.conv1.weight, source.conv1.weight)


def test_a_missing_file_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "resnet18.pth"
    with pytest.raises(pretrained.PretrainedWeightsUnavailable) as info:
        pretrained.ResNetUNet(weights=str(missing))
    assert str(missing) in str(info.value)
    assert "weights_url" in str(info.value)


def test_weights_of_another_model_are_refused_clearly(tmp_path):
    torch.save(pretrained.build_resnet("resnet18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(pretrained.PretrainedWeightsUnavailable) as info:
        pretrained.build_resnet("resnet50", tmp_path / "r18.pth")
    assert "do not fit resnet50" in str(info.value)


def test_no_network_gives_the_url_and_the_cache_file(tmp_path):
    url = pretrained.weights_url("resnet18", "IMAGENET1K_V1")
    assert url.startswith("https://download.pytorch.org/models/resnet18")
    with pytest.raises(pretrained.PretrainedWeightsUnavailable) as info:
        pretrained.ResNetUNet(weights="IMAGENET1K_V1", model_dir=tmp_path / "cache")
    message = str(info.value)
    assert url in message
    assert str(tmp_path / "cache" / url.rsplit("/", 1)[1]) in message
    assert "URLError" in message and "weights=None" in message
    assert isinstance(info.value.__cause__, urllib.error.URLError)


def test_no_network_for_a_segmentation_model():
    with pytest.raises(pretrained.PretrainedWeightsUnavailable) as info:
        pretrained.segmentation_model("lraspp_mobilenet_v3_large", 2, weights="DEFAULT")
    assert pretrained.weights_url("lraspp_mobilenet_v3_large") in str(info.value)


def test_an_unknown_weight_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        pretrained.build_resnet("resnet18", "IMAGENET_V9")


def test_a_cached_download_is_read_without_network(tmp_path):
    """Weights already in torchvision's cache load offline (the file a student copied there)."""
    weights = pretrained.RESNETS["resnet18"][1].IMAGENET1K_V1
    source = pretrained.build_resnet("resnet18")
    cache = tmp_path / "cache"
    cache.mkdir()
    torch.save(source.state_dict(), cache / weights.url.rsplit("/", 1)[1])
    net = pretrained.build_resnet("resnet18", "IMAGENET1K_V1", model_dir=cache)
    assert torch.equal(net.conv1.weight, source.conv1.weight)


def test_lraspp_from_random_weights_returns_logits_at_input_size():
    torch.manual_seed(0)
    model = pretrained.segmentation_model("lraspp_mobilenet_v3_large", num_classes=1).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 65, 97))
    assert out.shape == (1, 1, 65, 97)
    assert 3_000_000 < count_parameters(model) < 3_500_000


def test_a_21_class_file_is_loaded_then_the_head_adapted(tmp_path):
    torch.manual_seed(0)
    builder = pretrained.SEGMENTATION_MODELS["lraspp_mobilenet_v3_large"][0]
    source = builder(weights=None, weights_backbone=None, num_classes=21)
    torch.save(source.state_dict(), tmp_path / "lraspp21.pth")
    model = pretrained.segmentation_model("lraspp_mobilenet_v3_large", num_classes=2,
                                          weights=tmp_path / "lraspp21.pth")
    inner = model.model
    assert torch.equal(inner.backbone["0"][0].weight, source.backbone["0"][0].weight)
    assert inner.classifier.low_classifier.out_channels == 2
    assert inner.classifier.high_classifier.out_channels == 2
    assert model.eval()(torch.randn(1, 3, 64, 96)).shape == (1, 2, 64, 96)


def test_adapt_head_of_deeplab_changes_only_the_last_convs():
    builder = pretrained.SEGMENTATION_MODELS["deeplabv3_mobilenet_v3_large"][0]
    model = builder(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    kept = model.classifier[0].convs[0][0].weight
    pretrained.adapt_head(model, 3)
    assert model.classifier[-1].out_channels == 3
    assert model.aux_classifier[-1].out_channels == 3
    assert model.classifier[0].convs[0][0].weight is kept


def test_freeze_encoder_keeps_batchnorm_statistics_through_train():
    torch.manual_seed(0)
    model = pretrained.ResNetUNet(num_classes=1)
    trainable = pretrained.freeze_encoder(model)
    assert {id(p) for p in trainable} == {
        id(p) for n, p in model.named_parameters() if not n.startswith("encoder.")}
    before = model.encoder.bn1.running_mean.clone()
    model.train()
    assert not model.encoder.training and model.decoder.training
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(before, model.encoder.bn1.running_mean)
    pretrained.unfreeze_encoder(model)
    assert model.encoder.training
    assert all(p.requires_grad for p in model.parameters())

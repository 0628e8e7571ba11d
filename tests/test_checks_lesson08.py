"""Lesson 08's checks pass the solution, meet the stubs, and name each catalogued mistake."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from check_helpers import NOT_DONE, assert_hint, failure, register
from segkit.checks import core, lesson08
from segkit.checks.core import ExerciseNotDone


# --------------------------------------------------------------------------- encoder_features


def encoder_features(resnet, x):  # the solution
    stem = resnet.relu(resnet.bn1(resnet.conv1(x)))
    f1 = resnet.layer1(resnet.maxpool(stem))
    f2 = resnet.layer2(f1)
    f3 = resnet.layer3(f2)
    f4 = resnet.layer4(f3)
    return [stem, f1, f2, f3, f4]


def features_stub(resnet, x):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise encoder_features: write your code here")


def features_reversed(resnet, x):
    return encoder_features(resnet, x)[::-1]


def features_no_stem(resnet, x):
    return encoder_features(resnet, x)[1:]


def features_stem_after_maxpool(resnet, x):
    stem = nn.Sequential(*list(resnet.children())[:4])(x)  # conv1, bn1, relu, maxpool
    f1 = resnet.layer1(stem)
    f2 = resnet.layer2(f1)
    return [stem, f1, f2, resnet.layer3(f2), resnet.layer4(resnet.layer3(f2))]


def features_no_relu(resnet, x):
    stem = resnet.bn1(resnet.conv1(x))
    maps = encoder_features(resnet, x)
    return [stem] + maps[1:]


def features_tuple_of_three(resnet, x):
    return encoder_features(resnet, x)[2:]


def features_dict(resnet, x):
    return dict(enumerate(encoder_features(resnet, x)))


def features_skipping_maxpool(resnet, x):
    stem = resnet.relu(resnet.bn1(resnet.conv1(x)))
    f1 = resnet.layer1(stem)  # no max pooling: everything twice too big
    f2 = resnet.layer2(f1)
    f3 = resnet.layer3(f2)
    return [stem, f1, f2, f3, resnet.layer4(f3)]


def test_encoder_features_solution_passes(capsys):
    result = lesson08.check_encoder_features(encoder_features)
    assert result.passed and core.passed("encoder_features")
    assert "✅ encoder_features — passed" in capsys.readouterr().out


def test_encoder_features_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson08.check_encoder_features(features_stub)


FEATURES_MISTAKES = [
    (features_reversed, "skips-reversed", ["shallowest first"]),
    (features_no_stem, "missing-stem", ["stem", "before the max pooling"]),
    (features_stem_after_maxpool, "stem-after-maxpool", ["before resnet.maxpool"]),
    (features_no_relu, "stem-no-relu", ["relu"]),
    (features_tuple_of_three, "wrong-number-of-maps", ["one map per stage"]),
    (features_dict, "not-a-list", ["list"]),
    (features_skipping_maxpool, "features-mismatch", ["layer1(maxpool(stem))"]),
]


@pytest.mark.parametrize("student, mistake, words", FEATURES_MISTAKES)
def test_encoder_features_mistakes(student, mistake, words):
    assert_hint(failure(lesson08.check_encoder_features, student), mistake, *words)
    assert not core.passed("encoder_features")


def test_encoder_features_check_does_not_touch_the_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    lesson08.check_encoder_features(encoder_features)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------- freeze_encoder


def freeze_encoder(model):  # the solution
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    model.encoder.eval()
    model.encoder_frozen = True
    return [p for p in model.parameters() if p.requires_grad]


def freeze_stub(model):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise freeze_encoder: write your code here")


def freeze_returns_generator(model):
    freeze_encoder(model)
    return (p for p in model.parameters() if p.requires_grad)


def freeze_returns_nothing(model):
    freeze_encoder(model)


def freeze_only_convs(model):
    for m in model.encoder.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.requires_grad_(False)
    model.encoder_frozen = True
    return [p for p in model.parameters() if p.requires_grad]


def freeze_everything(model):
    model.requires_grad_(False)
    model.encoder_frozen = True
    return [p for p in model.parameters() if p.requires_grad]


def freeze_returns_all(model):
    freeze_encoder(model)
    return list(model.parameters())


def freeze_returns_head_only(model):
    freeze_encoder(model)
    return list(model.head.parameters())


def freeze_requires_grad_only(model):
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def freeze_eval_without_flag(model):
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    model.encoder.eval()  # undone by the next model.train()
    return [p for p in model.parameters() if p.requires_grad]


def test_freeze_encoder_solution_passes(capsys):
    result = lesson08.check_freeze_encoder(freeze_encoder)
    assert result.passed and core.passed("freeze_encoder")
    assert "✅ freeze_encoder — passed" in capsys.readouterr().out


def test_freeze_encoder_reference_passes():
    assert lesson08.check_freeze_encoder(lesson08.reference_freeze_encoder).passed


def test_freeze_encoder_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        lesson08.check_freeze_encoder(freeze_stub)


FREEZE_MISTAKES = [
    (freeze_returns_generator, "params-generator", ["used up", "list"]),
    (freeze_returns_nothing, "not-a-list", ["list"]),
    (freeze_only_convs, "encoder-not-frozen", ["batchnorm", "every parameter"]),
    (freeze_everything, "froze-decoder", ["only model.encoder"]),
    (freeze_returns_all, "optimizer-gets-frozen", ["frozen", "requires_grad"]),
    (freeze_returns_head_only, "params-missing", ["decoder"]),
    (freeze_requires_grad_only, "batchnorm-stats-update", ["running", "buffers",
                                                           "encoder_frozen"]),
    (freeze_eval_without_flag, "batchnorm-stats-update", ["model.train()"]),
]


@pytest.mark.parametrize("student, mistake, words", FREEZE_MISTAKES)
def test_freeze_encoder_mistakes(student, mistake, words):
    assert_hint(failure(lesson08.check_freeze_encoder, student), mistake, *words)
    assert not core.passed("freeze_encoder")


# --------------------------------------------------------------------------- the corpus

for _check, _rights, _stub_form in [
        (lesson08.check_encoder_features, [encoder_features, lesson08.reference_encoder_features],
         features_stub),
        (lesson08.check_freeze_encoder, [freeze_encoder, lesson08.reference_freeze_encoder],
         freeze_stub)]:
    for _fn in _rights:
        register(_check, _fn, None)
    register(_check, _stub_form, NOT_DONE)
for _check, _list in [(lesson08.check_encoder_features, FEATURES_MISTAKES),
                      (lesson08.check_freeze_encoder, FREEZE_MISTAKES)]:
    for _fn, _mistake, _ in _list:
        register(_check, _fn, _mistake)

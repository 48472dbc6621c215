"""The models a study can tune: the article's MLP, a small CNN and a small ResNet, or the user's own,
built by an entry point `build(input_shape, num_classes, params, **kwargs) -> torch.nn.Module`."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from adamtune.data import KIND_SHAPES, SourceError, free_memory, gib, load_entry, one_line

from .config import TrainConfig, model_params
from .errors import ConfigError
from .inputs import normalizer, unit
from .model_source import ModelSource

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}
IMAGE_MODELS = ("cnn", "resnet")
PROBE_BATCH = 64


def make_model(source: ModelSource, shape: tuple[int, ...], num_classes: int, cfg: TrainConfig,
               params: dict[str, Any]) -> nn.Module:
    """The built-in model `source.name` (from cfg's width, activation, dropout), or the user's entry point
    called with the input shape of one sample, the number of classes and the trial's values `params`
    (every value by its public name, the user's own parameters and the training settings alike)."""
    if not source.user:
        if source.name in IMAGE_MODELS and len(shape) != 3:
            raise ConfigError(source.origin or "config", source.key, f"{source.name} needs images (C, H, W), but "
                              f"one sample has shape {shape}; use mlp or your own model")
        return build_model(source.name, shape, num_classes, cfg.width, cfg.activation, cfg.dropout, cfg.depth)
    build = load_entry(source.entry, source.folder, origin=source.origin, key=f"{source.key}.entry")
    try:
        model = build(tuple(shape), num_classes, dict(params), **source.kwargs)
    except Exception as exc:  # whatever the user's builder raises
        raise SourceError(source.origin, f"{source.key}.entry", f"{source.entry} raised {one_line(exc)} "
                          f"({_call(shape, num_classes, params)})") from None
    if not isinstance(model, nn.Module):
        raise SourceError(source.origin, f"{source.key}.entry", f"{source.entry} returned "
                          f"{type(model).__name__}, not a torch.nn.Module")
    return model


def probe_model(source: ModelSource, data, cfg: TrainConfig, params: dict[str, Any]) -> int:
    """Build the model on the data's device and check it as every build is checked (`check_model`), on a
    batch of PROBE_BATCH training samples. Returns the parameter count."""
    model = make_model(source, data.shape, data.num_classes, cfg, params)
    return check_model(model, source, data, data.train.images.device, batch=PROBE_BATCH)


def build_checked(source: ModelSource, data, cfg: TrainConfig, params: dict[str, Any],
                  device: torch.device) -> nn.Module:
    """The model of one run (a trial, a slot of a pack, `train`), built and checked before it trains."""
    model = make_model(source, data.shape, data.num_classes, cfg, params)
    check_model(model, source, data, device)
    return model


@torch.no_grad()
def check_model(model: nn.Module, source: ModelSource, data, device: torch.device, batch: int = 2) -> int:
    """Move `model` to `device` and check what training needs of it, each failure one SourceError naming
    the model: trainable parameters, memory for its weights, gradients and Adam's moments, and one forward
    pass of `batch` normalised training samples returning logits of shape (batch, num_classes). Run at every
    build, since a parameter's value (of the user's model) can change any of them. The forward pass runs in
    eval mode: no dropout mask and no BatchNorm statistic is drawn or changed. Returns the parameter count."""
    key = f"{source.key}.entry" if source.user else source.key
    params = list(model.parameters())
    if not any(p.requires_grad for p in params):
        what = f"all {len(params)} of its parameter tensors are frozen (requires_grad=False)" if params else \
            "it has no parameters"
        raise SourceError(source.origin, key, f"the model has nothing to train: {what}")
    _check_memory(model, source.origin, key, device)
    try:
        model.to(device)
    except RuntimeError as exc:  # the allocation the estimate could not foresee
        raise SourceError(source.origin, key, f"the model does not fit on {device}: {one_line(exc)}") from None
    x = normalizer(data, device)(unit(data.train.images[:batch].to(device), data.scale))
    training = model.training
    model.eval()
    try:
        out = model(x)
    except Exception as exc:  # whatever the user's forward raises
        raise SourceError(source.origin, key, f"the forward pass on a batch of shape {tuple(x.shape)} "
                          f"({KIND_SHAPES[data.kind]}) raised {one_line(exc)}") from None
    finally:
        model.train(training)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    if shape != (len(x), data.num_classes):
        got = f"{shape} logits" if shape is not None else f"a {type(out).__name__}"
        raise SourceError(source.origin, key, f"model returned {got} for {data.num_classes} classes; it must return "
                          f"logits of shape (batch, num_classes) = ({len(x)}, {data.num_classes})")
    return sum(p.numel() for p in model.parameters())  # lazy modules have their shapes now


ADAM_COPIES = 3  # besides its weight, a trainable parameter has a gradient and Adam's two moments, each as large


def _check_memory(model: nn.Module, origin: str, key: str, device: torch.device) -> None:
    """Refuse a model whose weights, and its trainable parameters' gradients and Adam moments, cannot fit in
    the device's free memory (a lower bound of what training takes: activations come on top), instead of
    failing on an allocation mid-trial. Weights already on `device` already take their place there."""
    sized = [p for p in model.parameters() if not is_lazy(p)]  # a lazy module's size shows in its first pass
    weights = sum(p.numel() * p.element_size() for p in sized)
    here = sum(p.numel() * p.element_size() for p in sized if _on(p.device, device))
    trainable = sum(p.numel() * p.element_size() for p in sized if p.requires_grad)
    total = weights + ADAM_COPIES * trainable
    free = free_memory(device)
    if free is not None and total - here > free:
        raise SourceError(origin, key, f"the model's {sum(p.numel() for p in sized):,} parameters need at least "
                          f"{gib(total)} to train (weights, gradients and Adam's two moments), but {device} has "
                          f"{gib(free + here)} free")


def _on(where: torch.device, device: torch.device) -> bool:
    """`where` is `device` (`cuda` means the current GPU)."""
    if where.type != device.type:
        return False
    index = device.index
    if index is None and device.type == "cuda":
        index = torch.cuda.current_device()
    return where.index is None or index is None or where.index == index


def _call(shape: tuple[int, ...], num_classes: int, params: dict[str, Any]) -> str:
    """The call in words: the input shape, the classes and the user's own parameters."""
    own = ", ".join(f"{k}={v!r}" for k, v in model_params(params).items())
    return f"input_shape={tuple(shape)}, num_classes={num_classes}" + (f", {own}" if own else "")


def build_model(name: str, shape: tuple[int, ...], num_classes: int, width: int,
                activation: str, dropout: float, depth: int = 1) -> nn.Module:
    """`shape` is that of one sample: (channels, height, width) for the CNN and ResNet; the MLP flattens any.
    `num_classes` is the number of outputs: classes, regression targets or labels."""
    act = ACTIVATIONS[activation]
    if name == "mlp":
        return MLP(math.prod(shape), width, num_classes, act, dropout, depth)
    if name == "cnn":
        return SmallCNN(shape[0], width, num_classes, act, dropout)
    if name == "resnet":
        return SmallResNet(shape[0], width, num_classes, act, dropout)
    raise ValueError(f"unknown model {name!r}")


class MLP(nn.Sequential):
    """`depth` hidden layers of `width` units (the article's one: 784-128-10 on MNIST, 64-128-10 on 8x8
    digits); one hidden layer keeps the article's module names, so its weights load as before."""

    def __init__(self, in_features: int, width: int, num_classes: int, act: type[nn.Module], dropout: float,
                 depth: int = 1):
        hidden: list[nn.Module] = []
        for i in range(depth):
            hidden += [nn.Linear(in_features if i == 0 else width, width), act(), nn.Dropout(dropout)]
        super().__init__(nn.Flatten(), *hidden, nn.Linear(width, num_classes))


def _conv(c_in: int, c_out: int, act: type[nn.Module], stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), act())


class SmallCNN(nn.Sequential):
    """Two conv stages and global pooling; works from 8x8 digits to 32x32 CIFAR images."""

    def __init__(self, channels: int, width: int, num_classes: int, act: type[nn.Module], dropout: float):
        super().__init__(
            _conv(channels, width, act), _conv(width, width, act), nn.MaxPool2d(2),
            _conv(width, 2 * width, act), _conv(2 * width, 2 * width, act), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * width, num_classes),
        )


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, act: type[nn.Module]):
        super().__init__()
        self.body = nn.Sequential(_conv(c_in, c_out, act, stride), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(c_out))
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out else
                     nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))
        self.act = act()

    def forward(self, x):
        return self.act(self.body(x) + self.skip(x))


class SmallResNet(nn.Sequential):
    """A ResNet-8 for CIFAR-10: three stages of one basic block each (width, 2x, 4x channels)."""

    def __init__(self, channels: int, width: int, num_classes: int, act: type[nn.Module], dropout: float):
        super().__init__(
            _conv(channels, width, act),
            _Block(width, width, 1, act), _Block(width, 2 * width, 2, act), _Block(2 * width, 4 * width, 2, act),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * width, num_classes),
        )

"""The models a study can tune: the article's MLP, a small CNN and a small ResNet."""

from __future__ import annotations

from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}


def build_model(name: str, shape: tuple[int, int, int], num_classes: int, width: int,
                activation: str, dropout: float) -> nn.Module:
    """`shape` is (channels, height, width) of one image."""
    act = _ACTIVATIONS[activation]
    if name == "mlp":
        return MLP(shape[0] * shape[1] * shape[2], width, num_classes, act, dropout)
    if name == "cnn":
        return SmallCNN(shape[0], width, num_classes, act, dropout)
    if name == "resnet":
        return SmallResNet(shape[0], width, num_classes, act, dropout)
    raise ValueError(f"unknown model {name!r}")


class MLP(nn.Sequential):
    """One hidden layer: 784-128-10 on MNIST in the article, 64-128-10 on 8x8 digits."""

    def __init__(self, in_features: int, width: int, num_classes: int, act: type[nn.Module], dropout: float):
        super().__init__(nn.Flatten(), nn.Linear(in_features, width), act(), nn.Dropout(dropout),
                         nn.Linear(width, num_classes))


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

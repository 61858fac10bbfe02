"""Plain networks: no probability code here. Encoders end in features, decoders in raw parameters."""

from __future__ import annotations

import itertools
import math

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU, "elu": nn.ELU}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()


class MLP(nn.Sequential):
    """Flattens its input, then Linear-activation layers; the last layer has no activation
    unless ``final_activation``."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], out_features: int, *,
                 act: str = "relu", final_activation: bool = False):
        sizes = [in_features, *hidden, out_features]
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2 or final_activation:
                layers.append(activation(act))
        super().__init__(*layers)
        self.out_features = out_features


class ResidualBlock(nn.Module):
    """x + conv(act(conv(act(x)))), same shape."""

    def __init__(self, channels: int, act: str = "relu"):
        super().__init__()
        self.body = nn.Sequential(activation(act), nn.Conv2d(channels, channels, 3, padding=1),
                                  activation(act), nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


def downsampled_sizes(size: tuple[int, int], n: int) -> list[tuple[int, int]]:
    """Spatial sizes after each stride-2, kernel-3, padding-1 convolution: ceil(h / 2)."""
    sizes = [tuple(size)]
    for _ in range(n):
        h, w = sizes[-1]
        sizes.append((math.ceil(h / 2), math.ceil(w / 2)))
    return sizes


class ConvEncoder(nn.Module):
    """(B, C, H, W) -> (B, out_features) for any C, H, W: stride-2 convolutions, then a linear layer."""

    def __init__(self, input_shape: tuple[int, int, int], channels: tuple[int, ...], out_features: int,
                 *, act: str = "relu", residual: bool = False):
        super().__init__()
        c, h, w = input_shape
        layers: list[nn.Module] = []
        for c_out in channels:
            layers += [nn.Conv2d(c, c_out, 3, stride=2, padding=1), activation(act)]
            if residual:
                layers += [ResidualBlock(c_out, act), activation(act)]
            c = c_out
        self.convs = nn.Sequential(*layers)
        hf, wf = downsampled_sizes((h, w), len(channels))[-1]
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * hf * wf, out_features), activation(act))
        self.out_features = out_features

    def forward(self, x):
        return self.head(self.convs(x))


class ConvDecoder(nn.Module):
    """(B, in_features) -> (B, out_channels, H, W), mirroring ``ConvEncoder(output_shape, channels)``.

    Transposed convolutions use ``output_padding`` so every size (odd or even) comes back exactly.
    """

    def __init__(self, in_features: int, output_shape: tuple[int, int, int], channels: tuple[int, ...],
                 *, act: str = "relu", residual: bool = False):
        super().__init__()
        c_out, h, w = output_shape
        sizes = downsampled_sizes((h, w), len(channels))  # encoder's sizes, top to bottom
        rev = list(reversed(channels))
        hf, wf = sizes[-1]
        self.start_shape = (rev[0], hf, wf)
        self.head = nn.Sequential(nn.Linear(in_features, rev[0] * hf * wf), activation(act))
        layers: list[nn.Module] = []
        for i, c in enumerate(rev):
            if residual:
                layers += [ResidualBlock(c, act), activation(act)]
            nxt = rev[i + 1] if i + 1 < len(rev) else rev[-1]
            (hi, wi), (ht, wt) = sizes[-1 - i], sizes[-2 - i]
            pad = (ht - 2 * hi + 1, wt - 2 * wi + 1)  # 0 for odd targets, 1 for even ones
            layers += [nn.ConvTranspose2d(c, nxt, 3, stride=2, padding=1, output_padding=pad),
                       activation(act)]
        layers.append(nn.Conv2d(rev[-1], c_out, 3, padding=1))
        self.convs = nn.Sequential(*layers)

    def forward(self, z):
        return self.convs(self.head(z).view(-1, *self.start_shape))

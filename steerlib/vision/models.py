"""The chapter models: a small CNN (2 conv + 2 FC, as the dissertation's MNIST net) and an MLP.

Both are ``nn.Sequential`` with named layers (``conv1``, ``conv2``, ``fc1``, ``fc2``, ...) so that later analyses
can hook them by name. They take (N, C, H, W) images or (N, C, L) signals; ``norm`` adds BatchNorm or LayerNorm
after every hidden linear/conv layer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from steerlib.core.checks import check_choice, check_range, check_ranges, check_type

ARCHS = ("cnn", "mlp")
NORMS = ("none", "batch", "layer")


def _norm(kind: str, channels: int, conv_dims: int) -> nn.Module:
    if kind == "batch":
        return (nn.BatchNorm1d, nn.BatchNorm2d)[conv_dims - 1](channels) if conv_dims else nn.BatchNorm1d(channels)
    # LayerNorm over every feature of a sample; for conv maps that is GroupNorm with one group.
    return nn.GroupNorm(1, channels) if conv_dims else nn.LayerNorm(channels)


def make_model(
    arch: str, input_shape: Sequence[int], out_dim: int, width: int = 32, hidden: int = 128, norm: str = "none"
) -> nn.Sequential:
    """Build ``arch`` for inputs of ``input_shape`` (C, H, W) or (C, L) with ``out_dim`` outputs.

    cnn: conv(width) -> ReLU -> maxpool2 -> conv(2 width) -> ReLU -> maxpool2 -> fc(hidden) -> ReLU -> fc(out_dim)
    mlp: flatten -> fc(hidden) -> ReLU -> fc(hidden) -> ReLU -> fc(out_dim)
    """
    check_choice("arch", arch, ARCHS)
    check_choice("norm", norm, NORMS)
    check_type("input_shape", input_shape, (tuple, list, torch.Size), "(C, H, W) or (C, L)")
    if len(input_shape) not in (2, 3):
        raise ValueError(f"input_shape={tuple(input_shape)} is neither (C, H, W) nor (C, L)")
    check_range("input_shape[0] (channels)", input_shape[0], 1, integer=True)
    check_ranges(
        "input_shape[1:] (spatial size; the cnn pools twice by 2)",
        tuple(input_shape[1:]),
        4 if arch == "cnn" else 1,
        integer=True,
    )
    for name, value in (("out_dim", out_dim), ("width", width), ("hidden", hidden)):
        check_range(name, value, 1, integer=True)
    channels, *spatial = input_shape
    conv_dims = len(spatial)
    layers: list[tuple[str, nn.Module]] = []
    if arch == "cnn":
        conv = (nn.Conv1d, nn.Conv2d)[conv_dims - 1]
        pool = (nn.MaxPool1d, nn.MaxPool2d)[conv_dims - 1]
        c_in = channels
        for i, c_out in enumerate((width, 2 * width), start=1):
            layers.append((f"conv{i}", conv(c_in, c_out, kernel_size=3, padding=1)))
            if norm != "none":
                layers.append((f"norm{i}", _norm(norm, c_out, conv_dims)))
            layers += [(f"relu{i}", nn.ReLU()), (f"pool{i}", pool(2))]
            c_in = c_out
            spatial = [s // 2 for s in spatial]
        flat = c_in * int(torch.tensor(spatial).prod())
        names = ("fc1", "fc2")
    else:
        flat = channels * int(torch.tensor(spatial).prod())
        names = ("fc1", "fc2", "fc3")
    layers.append(("flatten", nn.Flatten()))
    sizes = [flat] + [hidden] * (len(names) - 1) + [out_dim]
    for i, name in enumerate(names):
        layers.append((name, nn.Linear(sizes[i], sizes[i + 1])))
        if i < len(names) - 1:
            if norm != "none":
                layers.append((f"norm_{name}", _norm(norm, sizes[i + 1], 0)))
            layers.append((f"relu_{name}", nn.ReLU()))
    return nn.Sequential(OrderedDict(layers))

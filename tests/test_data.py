import numpy as np
import pytest
import torch

from steerlib.vision import data


def test_digits_offline_split():
    d = data.load_dataset("digits")
    assert d.input_shape == (1, 8, 8) and d.num_classes == 10
    assert len(d.y_train) + len(d.y_test) == 1797
    assert d.x_train.min() >= 0 and d.x_train.max() <= 1
    # stratified: every class is in both splits in about the same proportion
    assert torch.bincount(d.y_test, minlength=10).min() >= 55


def test_mnist1d_offline():
    d = data.load_dataset("mnist1d")
    assert d.input_shape == (1, 40) and d.is_1d
    assert (len(d.y_train), len(d.y_test)) == (4000, 1000)
    lo, hi = d.value_range
    assert lo == pytest.approx(float(d.x_train.min())) and hi == pytest.approx(float(d.x_train.max()))


def test_mnist5k_offline_split():
    d = data.load_dataset("mnist5k")
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10
    assert (len(d.y_train), len(d.y_test)) == (4000, 1000)
    assert torch.bincount(d.y_test, minlength=10).tolist() == [100] * 10  # 500 per class, a fifth to test
    assert d.x_train.min() >= 0 and d.x_train.max() <= 1 and d.value_range == (0.0, 1.0)


def test_slant_of_hand_made_strokes():
    """Rows r run down, columns c right. A vertical bar has slant 0; the stroke c = 2 + r/2 (top left, bottom right)
    has mu_11 / mu_02 = 1/2, so slant -1/2; its mirror c = 6 - r/2 (leaning right, as a "/") +1/2. A signal's slant
    is its least-squares slope."""
    img = torch.zeros(3, 1, 9, 9)
    img[0, 0, :, 4] = 1
    for r in range(0, 9, 2):
        img[1, 0, r, 2 + r // 2] = 1
        img[2, 0, r, 6 - r // 2] = 1
    assert data.slant(img).tolist() == pytest.approx([0.0, -0.5, 0.5], abs=1e-6)
    t = torch.arange(5.0)
    assert data.slant((3 * t + 1)[None, None]).item() == pytest.approx(3.0)


def test_slant_target_is_standardised_on_the_training_split():
    d = data.load_dataset("digits")
    t = d.slant_target("train")
    assert float(t.mean()) == pytest.approx(0.0, abs=1e-5) and float(t.std()) == pytest.approx(1.0, abs=1e-5)
    assert d.slant_target("test").shape == d.y_test.shape


def test_held_out_sets_a_stratified_share_aside():
    d = data.load_dataset("digits")
    rest, x, y = data.held_out(d, 200)
    assert abs(len(y) - 200) <= 5 and len(rest.y_train) == len(d.y_train) - len(y) and rest.name == "digits-minus200"
    assert torch.bincount(y, minlength=10).min() >= 18  # about 20 per class
    assert torch.equal(
        torch.bincount(rest.y_train, minlength=10) + torch.bincount(y, minlength=10),
        torch.bincount(d.y_train, minlength=10),
    )
    assert float(rest.x_train.sum() + x.sum()) == pytest.approx(float(d.x_train.sum()))  # a split, nothing lost
    assert torch.equal(rest.x_test, d.x_test)


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="dataset='svhn'.*'mnist5k', 'digits', 'mnist1d', 'mnist', 'cifar10'"):
        data.load_dataset("svhn")


def test_hub_dataset_from_a_local_copy(tmp_path):
    """The paper profile's loader, exercised on a tiny dataset saved in Hugging Face format."""
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    rng = np.random.default_rng(0)

    def split(n):
        images = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(n)]
        return datasets.Dataset.from_dict(
            {"img": images, "label": list(range(n))},
            features=datasets.Features({"img": datasets.Image(), "label": datasets.Value("int64")}),
        )

    datasets.DatasetDict({"train": split(4), "test": split(3)}).save_to_disk(tmp_path / "cifar10")
    d = data.load_dataset("cifar10", source=str(tmp_path / "cifar10"))
    assert d.x_train.shape == (4, 3, 32, 32) and d.x_test.shape == (3, 3, 32, 32)
    assert 0 <= d.x_train.min() and d.x_train.max() <= 1
    assert d.y_test.tolist() == [0, 1, 2]


def test_hub_dataset_missing_offline_names_the_fix(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # online, the load's own error would pass through
    monkeypatch.setenv("STEERLIB_DATA", str(tmp_path))  # no mnist/ there
    with pytest.raises(RuntimeError, match="dataset='mnist' needs Hugging Face dataset 'ylecun/mnist'.*save_to_disk"):
        data.load_dataset("mnist")
    with pytest.raises(ValueError, match="source=.*nowhere' is not a folder"):
        data.load_dataset("mnist", source=str(tmp_path / "nowhere"))

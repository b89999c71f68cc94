"""Batch runs (the book build: ``STEERLIB_INTERACTIVE=0``) show no progress bars; a slider of pre-drawn frames
needs no kernel."""

import os

import matplotlib.pyplot as plt

from steerlib.core.figures import frame_slider
from steerlib.core.runtime import interactive, progress_bar, quiet_libraries


def test_progress_bars_only_when_someone_watches(monkeypatch):
    monkeypatch.delenv("STEERLIB_INTERACTIVE", raising=False)
    assert interactive() and not progress_bar(range(3)).disable
    assert progress_bar(range(3), disable=True).disable  # a caller can still switch its bar off
    monkeypatch.setenv("STEERLIB_INTERACTIVE", "0")
    assert not interactive() and progress_bar(range(3), disable=False).disable


def test_a_batch_run_silences_the_libraries_bars_here_and_in_workers(monkeypatch):
    import datasets

    monkeypatch.setenv("STEERLIB_INTERACTIVE", "0")
    names = ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS")  # read by worker processes
    for name in names:
        monkeypatch.setenv(name, "")  # restored after the test
    try:
        quiet_libraries()
        assert not datasets.is_progress_bar_enabled()
        assert all(os.environ[name] == "1" for name in names)
    finally:
        datasets.enable_progress_bars()


def test_frame_slider_holds_every_frame_and_closes_the_figures():
    def fig(value):
        f, ax = plt.subplots()
        ax.plot([0, value])
        return f

    before = plt.get_fignums()
    page = frame_slider(
        {"a": [("a0", fig(0)), ("a1", fig(1))], "b": [("b0", fig(2))]}, menu="shift", slider="level"
    ).data
    assert plt.get_fignums() == before
    assert page.count("data:image/png;base64,") == 1 + 3  # the first frame in the <img>, then all in the script
    assert '<option value="a">' in page and '<option value="b">' in page and 'max="1"' in page
    assert page.count("<script>") == 1 and "</script>" not in page.split("<script>")[1][: -len("</script>")]

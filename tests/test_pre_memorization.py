import dataclasses
import shutil
import time

import numpy as np
import pytest
import torch

from steerlib.chapters.reasoning import pre_memorization as R
from steerlib.chapters.reasoning.pre_memorization import analysis, experiment, figures
from steerlib.core.cache import RunCache
from steerlib.core import jobs
from steerlib.core.chapter import Run
from steerlib.core.profiles import get_profile
from steerlib.lm import sft
from steerlib.measures import premem

# The cpu verdict (see the chapter): these claims hold, and these do not; a claim that changes side fails the test.
CPU_HOLDS = ("H1", "H1b", "H2", "H4b", "H4c", "H5", "H5b", "H8")  # measured at seed 0
CPU_FAILS = ("H3", "H4a", "H8b")
IDS = ["H1", "H1b", "H2", "H3", "H4a", "H4b", "H4c", "H5", "H5b", "H8", "H8b"]


def cpu_run(cache: RunCache, seed: int = 0) -> Run:
    """The run a notebook would get, on the CPU with the given cache."""
    return Run(chapter="pre-memorization", profile="smoke", seed=seed, device=torch.device("cpu"), out_dir=cache.root,
               cache=cache, started=time.time())


def test_grid_matches_steps():
    s = R.PROFILES["cpu"]
    specs = R.grid(s)
    assert len(specs) == len(s.lrs) * (len(s.epochs) + len(s.fractions)) >= 9
    matched = R.RunSpec(s.lrs[0], s.matched_epochs).steps(s.n_train, s.batch_size)
    for spec in specs:
        if spec.fraction < 1:  # C.2: a smaller set trained for as many steps as matched_epochs full passes
            assert spec.steps(s.n_train, s.batch_size) == matched
            assert spec.size(s.n_train, s.batch_size) == round(spec.fraction * s.n_train)
    assert {sp.lr for sp in specs} == set(s.lrs) and max(s.lrs) / min(s.lrs) >= 100


def test_states_and_correct_first_share_by_hand():
    # given as (examples, checkpoints); the functions take (checkpoints, examples)
    acc = np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.75, 0.25, 0.0]]).T
    perp = np.array([[1.5, 1.3, 1.0], [1.5, 1.4, 1.01], [1.3, 1.3, 1.3]]).T
    assert analysis.states(acc, perp, 1.1).tolist() == [[0, 1, 2], [0, 0, 2], [1, 0, 0]]
    # two examples end memorized; one of them was correct (not memorized) first
    assert analysis.correct_first_share(acc, perp, 1.1) == (0.5, 2)
    assert analysis.correct_first_share(acc, perp + 1, 1.1) == (0.0, 0)


def test_settings_validation():
    with pytest.raises(ValueError, match="k"):
        R.Settings(k=0)
    with pytest.raises(ValueError, match="setting"):
        get_profile(R.PROFILES, "smoke", learning_rate=1.0)
    assert get_profile(R.PROFILES, "gpu").base.model == "smollm2-135m-instruct"


def test_the_tiny_model_keeps_its_config():
    base = R.PROFILES["cpu"].base
    assert (base.model, base.arch, base.d_model, base.n_layers, base.n_heads, base.max_len) == (
        "tiny", "llama", 64, 2, 4, 128)


def test_command_line_lists_the_jobs(capsys):
    jobs.main(["pre-memorization", "--profile", "smoke", "--list"])
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    specs = R.grid(R.PROFILES["smoke"])
    assert [label for stage, _, label in lines if stage == "finetune"] == [f"seed 0 {s.name}" for s in specs]
    assert [stage for stage, _, _ in lines] == ["pretrain"] + ["finetune"] * len(specs) + ["results"]
    with pytest.raises(SystemExit):
        jobs.main(["pre-memorization", "--profile", "smoke", "--stage", "finetune", "--job", str(len(specs))])


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    cache = RunCache(tmp_path_factory.mktemp("cache"))
    assert torch.get_num_threads() == 1  # one thread (conftest): the runs go back to back
    return R.run(get_profile(R.PROFILES, "smoke"), cpu_run(cache)), cache


def test_smoke_run_logs_every_checkpoint(smoke):
    results, _ = smoke
    s = R.PROFILES["smoke"]
    assert len(results.logs) == len(R.grid(s))
    for spec, log in zip(results.specs, results.logs):
        c, n = len(log.step), spec.size(s.n_train, s.batch_size)
        assert c == len(s.checkpoints) and log.step[-1] == spec.steps(s.n_train, s.batch_size)
        assert log.train_acc.shape == log.train_perp.shape == log.train_conf.shape == (c, n)
        assert log.test_acc.shape == (c, s.n_test)
        assert (log.train_perp >= 1).all() and (log.train_other <= log.train_acc + 1e-9).all()
        assert (np.diff(log.dist_init) > 0).all() and (log.grad_var > 0).all()


def _flat_results(seed: int = 0) -> R.Results:
    """Four runs whose target perplexities never come near the grid of p: every p gives the same R²."""
    rng = np.random.default_rng(seed)
    specs = [R.RunSpec(lr, ep) for lr in (1e-4, 1e-3) for ep in (2, 4)]
    logs = [R.RunLog(step=np.arange(1, 4), loss=rng.random(3), grad_var=rng.random(3) + 0.1,
                     dist_init=np.arange(1.0, 4.0), train_acc=rng.random((3, 8)), train_half=rng.random((3, 8)),
                     train_other=np.zeros((3, 8)),
                     train_perp=2 + rng.random((3, 8)), train_conf=-rng.random((3, 8)), test_acc=rng.random((3, 16)))
            for _ in specs]
    return R.Results(seed, specs, logs, [1.0], {})


def test_a_flat_r2_curve_leaves_the_claims_that_use_p_not_judged():
    results = _flat_results()
    a = R.analyse(results)
    assert "p is not identified" in a.p_note and a.p == analysis.P_GRID[0]
    claims = {c.id: c for c in R.claims(results)}
    # H1b too: no run fits its train set (>= 0.9), so the range of their test accuracies is undefined
    assert {i for i, c in claims.items() if not c.judged} == {*analysis.P_DEPENDENT, "H1b"}
    assert "undefined" in claims["H1b"].note
    assert all(claims[i].verdict == "not judged" and "p is not identified" in claims[i].note
               for i in analysis.P_DEPENDENT)
    assert claims["H1"].judged and R.extra(results)["p_note"] == a.p_note


def test_smoke_claims_are_finite(smoke):
    results, _ = smoke
    claims = R.claims(results)
    assert [c.id for c in claims] == IDS
    for c in claims:  # the schema: a kind, a justified threshold, an uncertainty, and a reason when not judged
        assert c.kind in ("evidence", "prerequisite") and c.why and c.uncertainty
        assert np.isfinite(c.value) or not c.judged
        assert c.judged or c.note
    # nothing is memorized at smoke: p is not identified, and the claims that need it say so
    assert not R.analyse(results).identified
    assert {c.id for c in claims if not c.judged} >= set(analysis.P_DEPENDENT)
    extra = R.extra(results)
    assert len(extra["runs"]) == len(results.logs) and analysis.P_GRID[0] <= extra["p"] <= analysis.P_GRID[-1]
    assert R.analyse(results) is R.analyse(results)  # computed once, shared by claims, extra and the figures


def test_cached_runs_are_not_retrained(smoke, monkeypatch):
    results, cache = smoke
    settings = get_profile(R.PROFILES, "smoke")
    assert R.run(settings, cpu_run(cache)).seconds == results.seconds
    monkeypatch.setattr(experiment, "evaluate", lambda *a, **k: pytest.fail("a cached run was retrained"))
    ex = experiment.Experiment(settings, cpu_run(cache))
    spec = R.grid(settings)[-1]
    np.testing.assert_array_equal(experiment.train_run(ex, spec).test_acc, results.logs[-1].test_acc)


def test_worker_processes_give_the_same_runs(smoke, tmp_path):
    """The grid in two worker processes equals the grid back to back (the workers read the cached pretraining)."""
    results, cache = smoke
    shutil.copytree(cache.root / "sft", tmp_path / "sft")
    torch.set_num_threads(2)  # run() starts one worker process per torch thread
    try:
        parallel = R.run(get_profile(R.PROFILES, "smoke"), cpu_run(RunCache(tmp_path)))
    finally:
        torch.set_num_threads(1)
    assert [s.name for s in parallel.specs] == [s.name for s in results.specs]
    for a, b in zip(results.logs, parallel.logs):
        for field in dataclasses.fields(R.RunLog):
            np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name), err_msg=field.name)


def test_figures_have_labels(smoke):
    results, _ = smoke
    a = R.analyse(results)
    figs = [figures.plot_accuracy(a), figures.plot_state_maps(results, a), figures.plot_r2_vs_p(a),
            figures.plot_transfer(a), figures.plot_prior_metrics(a)]
    for fig in figs:
        assert all(ax.get_xlabel() and ax.get_title() for ax in fig.axes)


@pytest.mark.slow
def test_cpu_profile_claims():
    settings = get_profile(R.PROFILES, "cpu")
    results = R.run(settings, cpu_run(RunCache()))  # the session's cache ($STEERLIB_CACHE)
    claims = {c.id: c for c in R.claims(results)}
    assert sorted(CPU_HOLDS + CPU_FAILS) == sorted(IDS)
    assert not [claims[i] for i in CPU_HOLDS if not claims[i].holds]
    assert not [claims[i] for i in CPU_FAILS if claims[i].holds], "a claim now reproduces: move it to CPU_HOLDS"
    # H3 misses 0.85, but pre-memorization accuracy still predicts test accuracy far better than train accuracy does
    assert claims["H3"].value > 0.5 > claims["H1"].value
    assert dataclasses.asdict(settings) == dataclasses.asdict(R.PROFILES["cpu"])


@pytest.mark.slow
def test_pretrained_model_path_with_a_subword_tokenizer(tiny_bpe_folder, tmp_path):
    """The paper profile's code path (a pretrained model from a folder, a BPE tokenizer) on a tiny random model."""
    smoke = get_profile(R.PROFILES, "smoke")
    settings = dataclasses.replace(smoke, base=dataclasses.replace(smoke.base, model=str(tiny_bpe_folder)),
                                   n_pretrain=256, n_train=16, n_test=16,
                                   pretrain=dataclasses.replace(smoke.pretrain, steps=10), lrs=(1e-4, 1e-3),
                                   epochs=(2,), fractions=())
    results = R.run(settings, cpu_run(RunCache(tmp_path)))
    for log in results.logs:
        assert log.train_acc.shape == log.train_perp.shape == (len(settings.checkpoints), 16)
        assert (log.train_perp >= 1).all() and np.isfinite(log.train_conf).all()
    assert len(R.claims(results)) == len(IDS) and len(R.extra(results)["runs"]) == 2


def test_plateau_width_is_not_decided_by_one_noisy_point():
    curve = np.full(len(analysis.P_GRID), 0.5)
    curve[20:40] = 0.9
    plateau = analysis.plateau_width(curve)
    curve[30] = 0.95  # one noisy spike on the plateau leaves its width as it was
    assert analysis.plateau_width(curve) == pytest.approx(plateau)
    spike = np.full(len(analysis.P_GRID), 0.5)
    spike[30] = 0.95
    assert analysis.plateau_width(spike) == 0.0
    assert plateau == pytest.approx(premem.loglog(analysis.P_GRID[39]) - premem.loglog(analysis.P_GRID[20]))


def test_calibration_runs_memorise_and_spread_in_test_accuracy():
    final_test = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    memorizing = np.array([True, False, True, True, False, True, True])
    rng = np.random.default_rng(0)
    for _ in range(20):
        cal = analysis.calibration_runs(final_test, memorizing, 3, rng)
        assert memorizing[cal].all() and len(set(cal)) == 3
        assert np.all(np.diff(final_test[cal]) > 0)  # one from each stratum of test accuracy, low to high


def test_jobs_launched_through_submitit_leave_the_chapter_nothing_to_train(tmp_path, monkeypatch):
    """The Slurm path, run by submitit's local executor (real submitit code, local processes): the pretraining task,
    then one array task per run, then the assembled results; the chapter then finds everything in the shared cache
    and trains nothing (its cache counts hits and no miss)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("STEERLIB_CACHE", str(cache))
    monkeypatch.setenv("STEERLIB_THREADS", "1")
    jobs.main(["pre-memorization", "--profile", "smoke", "--launch", "local", "--folder", str(tmp_path / "logs"),
               "--hours", "0.25"])
    runs = cache / "pre-memorization-run"
    assert len(list(runs.iterdir())) == len(R.grid(R.PROFILES["smoke"]))
    assert not (cache / "sft").exists() or len(list((cache / "sft").iterdir())) == 1  # the pretraining alone
    notebook = RunCache(cache)
    R.run(get_profile(R.PROFILES, "smoke"), cpu_run(notebook))
    assert notebook.hits["pre-memorization"] == 1 and not notebook.misses


class Killed(Exception):
    """A job killed from outside."""


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    """A finetuning run killed right after a checkpoint restarts at that step and ends with the log of a run that
    was never interrupted (the grid's runs used to start again)."""
    settings = get_profile(R.PROFILES, "smoke")
    spec = R.grid(settings)[0]  # 12 steps, a checkpoint after each, evaluated after steps 3, 6 and 12
    steps, kill_at = spec.steps(settings.n_train, settings.batch_size), 5
    cache = RunCache(tmp_path / "cache")
    ex = experiment.Experiment(settings, cpu_run(cache))  # the shared pretraining
    shutil.copytree(cache.root, tmp_path / "fresh")
    save_checkpoint = RunCache.save_checkpoint

    def killed(self, kind, config, state):
        save_checkpoint(self, kind, config, state)
        if kind == "sft" and state["step"] == kill_at:
            raise Killed

    monkeypatch.setattr(RunCache, "save_checkpoint", killed)
    with pytest.raises(Killed):
        experiment.train_run(ex, spec, progress=False)
    monkeypatch.setattr(RunCache, "save_checkpoint", save_checkpoint)
    trained = []  # the steps the resumed run trains
    batch_indices = sft.batch_indices
    monkeypatch.setattr(sft, "batch_indices",
                        lambda seed, step, n, size: trained.append(step) or batch_indices(seed, step, n, size))
    resumed = experiment.train_run(ex, spec, progress=False)
    assert trained == list(range(kill_at, steps))
    monkeypatch.undo()
    fresh = experiment.train_run(experiment.Experiment(settings, cpu_run(RunCache(tmp_path / "fresh"))), spec,
                                 progress=False)
    for field in dataclasses.fields(R.RunLog):
        np.testing.assert_array_equal(getattr(resumed, field.name), getattr(fresh, field.name), err_msg=field.name)
    assert len(list((cache.root / "sft").iterdir())) == 1  # the pretraining: the run's weights are not kept
    assert [p.name for p in (cache.root / experiment.RUN_KIND).glob("*/*.pt")] == ["result.pt"]

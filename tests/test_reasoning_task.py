import numpy as np
import pytest

from steerlib.lm.tokenizer import word_tokenizer
from steerlib.worlds import running_totals as rt

CFG = rt.TaskConfig()
SMALL = rt.Problem("kim", 3, (2, -1), ("finds", "loses"))  # 3 + 2 - 1 = 4


def test_extract_answer_and_match():
    assert rt.extract_answer("3 + 2 = 5 . 5 - 1 = 4 . answer is 4") == 4
    assert rt.extract_answer("answer is 3 . answer is 12") == 12  # the last marker counts
    assert rt.extract_answer("answer is -2") == -2
    assert rt.extract_answer("3 + 2 = 5 . 5 - 1 = 4") is None
    assert rt.extract_answer("answer is") is None
    assert rt.answers_match("... answer is 4", 4) and not rt.answers_match("... answer is 5", 4)
    assert not rt.answers_match("no marker 4", 4)


def test_render_step_by_hand():
    assert rt.render_step(6, 2) == "6 + 2 = 8" and rt.render_step(6, 2, swap=True) == "2 + 6 = 8"
    assert rt.render_step(-3, -4) == "3 + 4 = 7"  # two losses add up to a loss of 7
    assert rt.render_step(11, -6) == "11 - 6 = 5" and rt.render_step(-6, 11) == "11 - 6 = 5"
    assert rt.render_step(-6, 2) == "6 - 2 = 4"  # a net loss of 4
    assert rt.render_step(6, -6) == "6 - 6 = 0"


def test_all_traces_of_a_small_problem():
    """Items {3, +2, -1}: (3,2) then -1 (2 operand orders), (3,-1) then 2+2 (one), (2,-1) then 3+1 (two)."""
    traces = rt.all_traces(SMALL, 20)
    assert traces == {
        "3 + 2 = 5 . 5 - 1 = 4 . answer is 4",
        "2 + 3 = 5 . 5 - 1 = 4 . answer is 4",
        "3 - 1 = 2 . 2 + 2 = 4 . answer is 4",
        "2 - 1 = 1 . 3 + 1 = 4 . answer is 4",
        "2 - 1 = 1 . 1 + 3 = 4 . answer is 4",
    }
    assert SMALL.answer == 4
    assert SMALL.prompt == "kim has 3 . finds 2 . loses 1 . how many does kim have ?\nAnswer:"


def test_range_limits_the_traces():
    big = rt.Problem("tom", 15, (9, -9), ("finds", "loses"))  # 15 + 9 = 24 exceeds 20
    assert all(not t.startswith(("15 + 9", "9 + 15")) for t in rt.all_traces(big, 20))
    assert any(t.startswith(("15 + 9", "9 + 15")) for t in rt.all_traces(big, 30))


def test_random_traces_are_valid_and_varied():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4):
        for p in rt.problems(20, (n,), CFG, rng):
            total = p.start
            for d in p.deltas:  # the story's running total stays in range
                total += d
                assert 0 <= total <= CFG.max_value
            trace = rt.random_trace(p, CFG.max_value, rng)
            assert rt.is_valid_trace(trace, p, CFG.max_value) and trace in rt.all_traces(p, CFG.max_value)
            assert rt.extract_answer(trace) == p.answer
    p = rt.problems(1, (4,), CFG, np.random.default_rng(1))[0]
    assert len({rt.random_trace(p, CFG.max_value, rng) for _ in range(30)}) > 5


def test_invalid_traces_are_rejected():
    ok = "3 + 2 = 5 . 5 - 1 = 4 . answer is 4"
    assert rt.is_valid_trace(ok, SMALL, 20) and rt.is_valid_trace(" " + ok.replace(" . ", "  .  "), SMALL, 20)
    for bad in (
        "3 + 2 = 6 . 6 - 1 = 5 . answer is 5",  # wrong arithmetic
        "3 + 2 = 5 . 5 - 1 = 4 . answer is 5",  # wrong final answer
        "3 + 2 = 5 . answer is 4",  # a quantity left unused
        "3 + 3 = 6 . 6 - 2 = 4 . answer is 4",  # a number that is not in the problem
        "3 + 1 = 4 . 4 + 2 = 6 . 6 - 2 = 4 . answer is 4",  # the loss used as a gain
        "3 + 2 = 5 . 5 - 1 = 4",
    ):  # no answer
        assert not rt.is_valid_trace(bad, SMALL, 20), bad


def test_same_trace_ignores_whitespace_and_answer_part():
    assert rt.same_trace(" 3 + 2 = 5 . 5 - 1 = 4 . answer is 4", "3 + 2 = 5 .  5 - 1 = 4 . answer is 4")
    assert not rt.same_trace("2 + 3 = 5 . 5 - 1 = 4 . answer is 4", "3 + 2 = 5 . 5 - 1 = 4 . answer is 4")


def test_splits_and_vocabulary():
    pool, train, test, train_p, test_p = rt.splits(CFG, 50, 20, 30, seed=0)
    assert (len(pool), len(train), len(test)) == (50, 20, 30)
    assert set(train.column_names) == {"prompt", "response", "answer", "events"}
    assert set(train["events"]) <= set(CFG.events) and set(pool["events"]) <= set(CFG.pretrain_events)
    assert all(p.endswith("\nAnswer:") for p in train["prompt"])
    assert all(rt.extract_answer(r) == a for r, a in zip(train["response"], train["answer"]))
    assert all(rt.is_valid_trace(r, p, CFG.max_value) for r, p in zip(test["response"], test_p))
    assert rt.splits(CFG, 50, 20, 30, seed=0)[1]["response"] == train["response"]  # deterministic
    tok = word_tokenizer(rt.vocabulary(CFG))
    ids = tok(list(pool["prompt"]) + list(pool["response"]))["input_ids"]
    assert tok.unk_token_id not in {i for row in ids for i in row}


def _verbs(prompts) -> set[str]:
    return {w for p in prompts for w in p.split()} & set(rt.GAINS + rt.LOSSES + rt.NEW_GAINS + rt.NEW_LOSSES)


def test_new_verbs_appear_only_in_finetuning_and_test_problems():
    pool, train, test, _, _ = rt.splits(CFG, 200, 50, 50, seed=1)
    assert _verbs(pool["prompt"]) <= set(rt.GAINS + rt.LOSSES)
    assert _verbs(train["prompt"]) | _verbs(test["prompt"]) <= set(rt.NEW_GAINS + rt.NEW_LOSSES)
    same = rt.splits(rt.TaskConfig(new_verbs=False), 200, 50, 50, seed=1)[1]
    assert _verbs(same["prompt"]) <= set(rt.GAINS + rt.LOSSES)


def test_config_validation():
    with pytest.raises(ValueError, match="max_delta"):
        rt.TaskConfig(max_delta=30)


# ------------------------------------------------------------------ what the reasoning chapters share (common)


def test_the_pool_does_not_depend_on_how_many_finetuning_problems_follow_it():
    """Both reasoning chapters draw the pretraining pool first from the run's data stream, then their own numbers of
    finetuning and test problems: at one seed and replicate they pretrain on the same pool (one cache entry)."""
    from steerlib.core.seeds import Replicate

    data = Replicate(7, 1).stream("data")
    small, large = rt.splits(CFG, 60, 16, 8, data), rt.splits(CFG, 60, 48, 32, data)
    assert small[0]["response"] == large[0]["response"] and small[0]["prompt"] == large[0]["prompt"]
    other = rt.splits(CFG, 60, 16, 8, Replicate(7, 2).stream("data"))[0]
    assert other["prompt"] != small[0]["prompt"]  # another replicate, another pool


def test_the_chapters_share_the_pretraining_settings_and_draw_from_named_streams():
    from steerlib.book import chapter
    from steerlib.chapters.reasoning import common
    from steerlib.core.chapter import prepare

    premem, curation = chapter("pre-memorization"), chapter("robustness-and-curation")
    for profile in ("smoke", "cpu", "paper"):
        a, b = premem.profiles[profile], curation.profiles[profile]
        assert (a.task, a.base, a.n_pretrain, a.pretrain) == (b.task, b.base, b.n_pretrain, b.pretrain), profile
        assert {k: getattr(a, k) for k in common.PRETRAINING[profile]} == common.PRETRAINING[profile]
    run, _ = prepare(premem, "smoke", seed=3, device="cpu")
    other, _ = prepare(curation, "smoke", seed=3, device="cpu")
    assert common.finetune_order(run) == common.finetune_order(other)  # a stream names no chapter
    seeds = [
        common.finetune_order(run),
        run.stream("order"),
        run.stream("init"),
        *[common.checkpoint_sampling(r, step) for r in (run, run.at(1)) for step in (1, 2, 3)],
    ]
    assert len(set(seeds)) == len(seeds)
    assert common.checkpoint_steps((0.07, 0.15, 0.3, 1.0), 10) == [1, 2, 3, 10]

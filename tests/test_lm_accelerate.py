"""The SFT and RL loops in two CPU processes launched by ``accelerate launch`` (gloo all-reduces the gradients).

``accelerate launch --cpu`` starts several processes only through MPI; its torchrun launcher (``--multi_gpu``) starts
them without, and ``train_sft(..., device="cpu")`` makes each an ``Accelerator(cpu=True)`` on the gloo backend.
"""

import os
import subprocess
import sys
import textwrap

import torch

SCRIPT = textwrap.dedent("""
    import sys
    import torch
    from accelerate import PartialState
    from datasets import Dataset
    from steerlib.lm.models import build_model, tiny_config
    from steerlib.lm.sampling import sample
    from steerlib.lm.sft import SFTConfig, train_sft
    from steerlib.lm.tokenizer import pad_id, tokenize_sft, word_tokenizer

    torch.set_num_threads(1)
    pairs = {"a b ?": " c d", "b a ?": " e", "c c ?": " f g h", "d ?": " a", "e f ?": " b", "g ?": " h h",
             "h a ?": " d", "f ?": " g"}
    tok = word_tokenizer(["a b c d e f g h ?"])
    data = tokenize_sft(Dataset.from_dict({"prompt": list(pairs), "response": list(pairs.values())}), tok)
    model = build_model(tiny_config(tok, d_model=32, n_layers=1, n_heads=2), seed=0)
    losses = train_sft(model, data, SFTConfig(steps=80, batch_size=8, lr=1e-2, warmup=0.0), pad_id(tok), "cpu")
    answers = sample(model.eval(), tok, list(pairs), max_new_tokens=5, temperature=0.0).texts
    state = PartialState()
    correct = answers == [r.strip() for r in pairs.values()]
    torch.save({"losses": losses, "model": model.state_dict(), "processes": state.num_processes, "correct": correct},
               f"{sys.argv[1]}/rank{state.process_index}.pt")
""")


RL_SCRIPT = textwrap.dedent("""
    import sys
    import torch
    from accelerate import PartialState
    from steerlib.lm.models import build_model, tiny_config
    from steerlib.lm.rl import RLConfig, train_reinforce
    from steerlib.lm.tokenizer import word_tokenizer

    torch.set_num_threads(1)
    tok = word_tokenizer(["a b c d e f ?"])
    prompts = [f"{w} ?" for w in "abcdef"]
    model = build_model(tiny_config(tok, d_model=32, n_layers=1, n_heads=2), seed=0)

    def reward(idx, texts):  # +1 for answers that start with "a"
        return torch.tensor([float(t.split()[:1] == ["a"]) for t in texts])

    cfg = RLConfig(steps=40, prompts_per_step=8, samples_per_prompt=4, lr=3e-2, kl_coef=0.0, max_new_tokens=2)
    history = train_reinforce(model, tok, prompts, reward, cfg, device="cpu")
    state = PartialState()
    torch.save({"history": history, "model": model.state_dict(), "processes": state.num_processes},
               f"{sys.argv[1]}/rank{state.process_index}.pt")
""")


def _launch_two(script_text: str, folder) -> list[dict]:
    """Run ``script_text`` in two CPU processes with ``accelerate launch``; each saves ``folder/rank<i>.pt``."""
    script = folder / "train.py"
    script.write_text(script_text)
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        str(script),
        str(folder),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


def _same_weights(ranks: list[dict]) -> None:
    for a, b in zip(ranks[0]["model"].values(), ranks[1]["model"].values()):
        torch.testing.assert_close(a, b)  # all-reduced gradients keep the two replicas identical


def test_rl_trains_with_two_cpu_processes(tmp_path):
    """Each process samples its half of every step's prompts; the reward and KL are logged as means over both."""
    ranks = _launch_two(RL_SCRIPT, tmp_path)
    assert [r["processes"] for r in ranks] == [2, 2]
    assert ranks[0]["history"] == ranks[1]["history"]
    rewards = [h["reward"] for h in ranks[0]["history"]]
    assert sum(rewards[:5]) / 5 < 0.5 < sum(rewards[-5:]) / 5  # from rarely "a" (1 word in 7) to mostly "a"
    _same_weights(ranks)


def test_sft_trains_with_two_cpu_processes(tmp_path):
    ranks = _launch_two(SCRIPT, tmp_path)
    assert [r["processes"] for r in ranks] == [2, 2]
    assert ranks[0]["losses"] == ranks[1]["losses"]  # the logged loss is averaged over processes
    assert ranks[0]["losses"][-1] < 0.1 * ranks[0]["losses"][0]
    assert all(r["correct"] for r in ranks)
    _same_weights(ranks)

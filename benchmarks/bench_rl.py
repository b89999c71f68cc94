"""steerlib's RL loop against TRL's RLOO trainer on the conservative-rewards chapter's RL step, at equal budgets.

Both start from the chapter's SFT policy (from the run cache; trained here if missing), optimise the exact checker's
reward (+2 per true fact, -3 per false fact) on the chapter's RL prompts with the same steps, prompts per step,
samples per prompt, learning rate, KL coefficient, temperature and response length, on one thread. Printed: the CPU
seconds of each loop (process time, which a busy machine inflates less than wall time) and, for each final policy, the
mean reward, true and false facts per response on the held-out
people (the same sampling seed for both), next to the SFT policy's.

    python benchmarks/bench_rl.py [--profile cpu] [--steps 120] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import tempfile
import time

import numpy as np
import torch
from datasets import Dataset

from steerlib.chapters.hallucination.conservative_rewards import PROFILES
from steerlib.chapters.hallucination.conservative_rewards.experiment import Experiment, checker_reward, draw_plan
from steerlib.core.chapter import start
from steerlib.core.runtime import set_threads
from steerlib.lm.rl import train_reinforce
from steerlib.lm.sampling import sample
from steerlib.worlds.knowledge import FALSE, PROFILE_PROMPT, TRUE, decompose, verify


def evaluate(model, ex: Experiment, people: list[dict], samples: int) -> dict[str, float]:
    """Mean checker reward, true facts and false facts per response on ``people`` (``samples`` responses each)."""
    rows = [p for p in people for _ in range(samples)]
    texts = sample(
        model.eval(),
        ex.tok,
        [PROFILE_PROMPT.format(name=p["name"]) for p in rows],
        ex.s.max_new_tokens,
        temperature=1.0,
        seed=1,
    ).texts
    verdicts = [verify(decompose(t), p) for t, p in zip(texts, rows)]
    return {
        "reward": float(checker_reward("oracle", texts, rows).mean()),
        "true facts": float(np.mean([(v == TRUE).sum() for v in verdicts])),
        "false facts": float(np.mean([(v == FALSE).sum() for v in verdicts])),
    }


def with_trl(policy, ex: Experiment, prompts: list[str], people: list[dict], steps: int) -> tuple[object, float]:
    """TRL's RLOOTrainer from ``policy`` with the chapter's RL settings: the trained policy and its CPU seconds. TRL
    loads the policy and its frozen reference from a folder (saved here), as it does a hub model."""
    from trl import RLOOConfig, RLOOTrainer

    rl = ex.s.rl

    def oracle(prompts, completions, person, **kwargs) -> list[float]:
        return checker_reward("oracle", list(completions), [people[i] for i in person]).tolist()

    with tempfile.TemporaryDirectory() as out:
        policy.save_pretrained(out + "/sft")
        args = RLOOConfig(
            output_dir=out,
            max_steps=steps,
            per_device_train_batch_size=rl.prompts_per_step * rl.samples_per_prompt,
            num_generations=rl.samples_per_prompt,
            max_completion_length=ex.s.max_new_tokens,
            temperature=rl.temperature,
            learning_rate=rl.lr,
            lr_scheduler_type="constant",
            weight_decay=0.0,
            optim="adamw_torch",
            max_grad_norm=rl.grad_clip,
            beta=rl.kl_coef,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            logging_steps=max(steps // 4, 1),
            seed=rl.seed,
            disable_dropout=True,
        )
        data = Dataset.from_dict({"prompt": prompts, "person": list(range(len(prompts)))})
        trainer = RLOOTrainer(
            model=out + "/sft", reward_funcs=oracle, args=args, train_dataset=data, processing_class=ex.tok
        )
        t = time.process_time()
        trainer.train()
        return trainer.model, time.process_time() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", choices=sorted(PROFILES))
    parser.add_argument("--steps", type=int, default=None, help="RL steps (default: the profile's)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    settings = PROFILES[args.profile]
    settings = dataclasses.replace(settings, rl=dataclasses.replace(settings.rl, steps=args.steps or settings.rl.steps))
    run = start("conservative-rewards", args.profile, device="cpu")
    set_threads(args.threads)
    ex = Experiment(settings, run)
    plan = draw_plan(ex)
    sft, people = ex.sft(plan.sft), plan.rl_rows
    prompts = [PROFILE_PROMPT.format(name=p["name"]) for p in people]
    held_out = list(ex.world.split("test"))
    cfg = dataclasses.replace(settings.rl, max_new_tokens=settings.max_new_tokens)

    ours = copy.deepcopy(sft[0])
    t = time.process_time()
    train_reinforce(
        ours,
        ex.tok,
        prompts,
        lambda idx, texts: checker_reward("oracle", texts, [people[i] for i in idx.tolist()]),
        cfg,
        device="cpu",
        desc="steerlib",
    )
    seconds = {"steerlib (lm.rl)": time.process_time() - t}
    theirs, seconds["TRL RLOOTrainer"] = with_trl(sft[0], ex, prompts, people, cfg.steps)

    print(
        f"{args.profile} profile, {cfg.steps} steps x {cfg.prompts_per_step} prompts x {cfg.samples_per_prompt} "
        f"samples, {torch.get_num_threads()} thread(s); held-out people: {len(held_out)} x {settings.eval_samples}"
    )
    rows = {"SFT": evaluate(sft[0], ex, held_out, settings.eval_samples)}
    rows["steerlib (lm.rl)"] = {
        "CPU s": seconds["steerlib (lm.rl)"],
        **evaluate(ours, ex, held_out, settings.eval_samples),
    }
    rows["TRL RLOOTrainer"] = {
        "CPU s": seconds["TRL RLOOTrainer"],
        **evaluate(theirs, ex, held_out, settings.eval_samples),
    }
    for name, row in rows.items():
        print(f"{name:18s} " + "  ".join(f"{k} {v:7.2f}" for k, v in row.items()))


if __name__ == "__main__":
    main()

"""Throughput of the language-model stack: training on the unfamiliar-examples chapter's tiny Llama, sampling at the
pre-memorization chapter's shapes.

Training: tokens/s of :func:`steerlib.lm.sft.train_sft` and the achieved GFLOP/s, counting
``6 N + 6 L T d`` FLOPs per token (N = parameters that multiply activations, the tied output head included;
the second term is attention's score and value products, forward and backward), as a fraction of the dense fp32
matmul peak measured in the same run (1024 x 1024 products).

Batching ceiling: for each language-model chapter's training shapes, the time of K optimizer steps at its batch b
on one model against one step at batch K·b. K runs trained as one batched model (stacked weights, ``vmap``, batched
matrix products) do the FLOPs of the K·b step with the overhead of one, so the ratio bounds what any such trainer
could gain over a loop of separate runs (K: the runs of one replicate that could share a step).

Sampling: response tokens/s of one checkpoint evaluation of the pre-memorization chapter (its pretrained base model
from the run cache, its prompts, k samples each, its batch, token budget and temperature), through
``transformers``' ``generate`` as steerlib called it before its own sampler (dynamic cache), ``generate`` with a
static (preallocated) cache, optionally that plus ``torch.compile`` (``--compile``: minutes of compiling), and
:func:`steerlib.lm.sampling.sample`. The variants run interleaved, ``--repeats`` times each, in one process, so a
busy machine slows all of them alike; the ratios to ``generate`` are medians over the repeats.

    python benchmarks/bench_lm.py [--threads 1] [--profile cpu] [--repeats 3] [--compile]
                                  [--json results/benchmarks/lm.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import CompileConfig, GenerationConfig

from steerlib.chapters.hallucination.unfamiliar_examples import PROFILES as UNFAMILIAR
from steerlib.chapters.reasoning.pre_memorization import PROFILES as PREMEM
from steerlib.chapters.reasoning.pre_memorization.experiment import grid as premem_grid
from steerlib.chapters.related.knowledge_overshadowing import PROFILES as OVERSHADOWING
from steerlib.core.cache import RunCache
from steerlib.core.runtime import set_threads
from steerlib.lm.base import build_base, pretrained_base
from steerlib.lm.models import build_model, tiny_config
from steerlib.lm.sampling import sample
from steerlib.lm.sft import SFTConfig, train_sft
from steerlib.lm.tokenizer import encode_prompts, encode_responses, join, pad, pad_id, word_tokenizer
from steerlib.worlds import knowledge, overshadowing, running_totals


def matmul_peak(n: int = 1024, repeats: int = 20) -> float:
    """Measured dense fp32 matmul GFLOP/s (2 n^3 FLOPs per product)."""
    a = torch.randn(n, n)
    a @ a
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token: 6 N (matmul weights, output head included) + 6 L T d (attention products)."""
    cfg = model.config
    d, layers = cfg.hidden_size, cfg.num_hidden_layers
    blocks = sum(
        p.numel()
        for n, p in model.named_parameters()
        if p.dim() == 2 and not any(e in n for e in ("wte", "wpe", "embed_tokens", "lm_head"))
    )
    return 6 * (blocks + d * cfg.vocab_size) + 6 * layers * seq_len * d


def bench_training(args) -> dict:
    """Training tokens/s and GFLOP/s of the unfamiliar-examples chapter's base model, and the matmul peak."""
    cpu = UNFAMILIAR["cpu"]
    tok = word_tokenizer(knowledge.vocabulary(knowledge.make_world(cpu.world)))
    model = build_model(
        tiny_config(
            tok, cpu.base.arch, cpu.base.d_model, cpu.base.n_layers, max(cpu.base.d_model // 32, 1), cpu.base.max_len
        ),
        seed=0,
    )
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, len(tok), (args.steps * args.batch, args.seq), generator=g).tolist()
    data = Dataset.from_dict({"input_ids": ids, "labels": ids})
    train_sft(
        model,
        data.select(range(args.batch * 3)),
        SFTConfig(steps=3, batch_size=args.batch),
        pad_id(tok),
        "cpu",
        progress=False,
    )  # warm-up
    start = time.perf_counter()
    train_sft(
        model, data, SFTConfig(steps=args.steps, batch_size=args.batch, lr=1e-3), pad_id(tok), "cpu", progress=False
    )
    seconds = time.perf_counter() - start
    tokens_per_s = args.steps * args.batch * args.seq / seconds
    gflops = tokens_per_s * flops_per_token(model, args.seq) / 1e9
    peak = matmul_peak()
    return {
        "model": f"{cpu.base.arch}, {cpu.base.n_layers} layers x {cpu.base.d_model}, vocab {len(tok)}",
        "params": sum(p.numel() for p in model.parameters()),
        "batch": args.batch,
        "seq": args.seq,
        "ms_per_step": 1e3 * seconds / args.steps,
        "tokens_per_s": tokens_per_s,
        "gflops": gflops,
        "matmul_peak_gflops": peak,
        "fraction_of_peak": gflops / peak,
    }


def _step_ms(model, opt, batch: int, seq: int, vocab: int, repeats: int) -> float:
    """Milliseconds of one SFT step (forward, backward, clipping, AdamW) at ``batch`` x ``seq`` random tokens."""
    ids = torch.randint(4, vocab, (batch, seq), generator=torch.Generator().manual_seed(0))
    times = []
    for _ in range(repeats + 2):  # two warm-up steps
        start = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times[2:])


def batching_shapes() -> list[dict]:
    """The training shapes of the language-model chapters at cpu: model width, batch, mean sequence length (the
    finetuning problems' for the pretraining too: the same task), and K, the runs a batched trainer could merge (a
    replicate's runs; the replicates for the pretraining)."""
    premem, over = PREMEM["cpu"], OVERSHADOWING["cpu"]
    task_tok = word_tokenizer(running_totals.vocabulary(premem.task))
    _, train, _, _, _ = running_totals.splits(premem.task, 8, premem.n_train, 8, 0)
    ids, _ = join(encode_prompts(task_tok, train["prompt"]), encode_responses(task_tok, train["response"]))
    groups = overshadowing.make_groups(over.groups, max(over.lengths), np.random.default_rng(0))
    facts = overshadowing.facts(groups, over.length, over.ratio, over.rare, over.slots)
    world_tok = word_tokenizer(groups.vocabulary())
    fact_ids, _ = join(encode_prompts(world_tok, facts["prompt"]), encode_responses(world_tok, facts["response"]))
    return [
        {
            "chapter": "pre-memorization (finetuning grid)",
            "base": premem.base,
            "batch": premem.batch_size,
            "seq": round(np.mean([len(i) for i in ids])),
            "vocab": len(task_tok),
            "k": len(premem_grid(premem)),  # the grid's runs (their step counts differ: a ceiling)
        },
        {
            "chapter": "pre-memorization (pretraining)",
            "base": premem.base,
            "batch": premem.pretrain.batch_size,
            "seq": round(np.mean([len(i) for i in ids])),
            "vocab": len(task_tok),
            "k": premem.replicates,
        },
        {
            "chapter": "knowledge overshadowing",
            "base": over.base,
            "batch": over.batch_size,
            "seq": round(np.mean([len(i) for i in fact_ids])),
            "vocab": len(world_tok),
            "k": len(over.runs) - 1,  # the claimed runs, which share their step count
        },
    ]


def bench_batching(args) -> list[dict]:
    """Per chapter shape: ms per step at batch b, at batch K·b, and the ceiling K·t(b) / t(K·b)."""
    rows = []
    for shape in batching_shapes():
        b = shape["base"]
        model, tok = build_base(b, [f"w{i}" for i in range(shape["vocab"] - 4)], 0)  # the vocabulary's size only
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        one = _step_ms(model, opt, shape["batch"], shape["seq"], len(tok), args.repeats * 5)
        merged = _step_ms(model, opt, shape["k"] * shape["batch"], shape["seq"], len(tok), args.repeats)
        rows.append(
            {
                "chapter": shape["chapter"],
                "model": f"{b.arch}, {b.n_layers} layers x {b.d_model}",
                "batch": shape["batch"],
                "seq": shape["seq"],
                "k": shape["k"],
                "ms_per_step": one,
                "ms_per_merged_step": merged,
                "ceiling": shape["k"] * one / merged,
            }
        )
    return rows


def generate(model, tokenizer, prompts, max_new_tokens, temperature, seed, batch_size, **options) -> list[list[int]]:
    """Response ids through ``model.generate``, batch by batch, as ``lm.sampling.sample`` called it before it had
    its own loop (``options``: e.g. ``cache_implementation="static"``)."""
    eos, pad_token = tokenizer.eos_token_id, pad_id(tokenizer)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=temperature > 0,
        temperature=temperature if temperature > 0 else None,
        top_k=None,
        top_p=None,
        eos_token_id=eos,
        pad_token_id=pad_token,
        **options,
    )
    prompt_ids, ids = encode_prompts(tokenizer, prompts), []
    torch.manual_seed(seed)
    for i in range(0, len(prompt_ids), batch_size):
        chunk = prompt_ids[i : i + batch_size]
        input_ids = pad(chunk, pad_token, side="left")
        mask = pad([[1] * len(p) for p in chunk], 0, side="left")
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config)
        ids += [row[: row.index(eos) + 1] if eos in row else row for row in out[:, input_ids.shape[1] :].tolist()]
    return ids


def bench_sampling(args) -> dict:
    """Tokens/s of each sampler on one checkpoint evaluation of the pre-memorization chapter at ``args.profile``."""
    s = PREMEM[args.profile]
    pool, train, test, _, _ = running_totals.splits(s.task, s.n_pretrain, s.n_train, s.n_test, 0)
    base = pretrained_base(
        s.base,
        running_totals.vocabulary(s.task),
        pool,
        s.pretrain,
        0,
        torch.device("cpu"),
        RunCache(),
        key={"task": s.task, "n_pretrain": s.n_pretrain},
    )  # the chapter's, cached
    model, tok = base.model, base.tokenizer
    prompts = [p for p in list(train["prompt"]) + list(test["prompt"]) for _ in range(s.k)]
    shape = (model, tok, prompts, s.max_new_tokens, s.temperature, 0, s.sample_batch)
    samplers = {
        "generate": lambda: generate(*shape),
        "generate, static cache": lambda: generate(*shape, cache_implementation="static"),
        "steerlib": lambda: sample(*shape).ids,
    }
    compile_s = None
    if args.compile:
        compiled = CompileConfig()
        compiled._compile_all_devices = True  # transformers compiles on GPUs only unless told so
        samplers["generate, static cache + torch.compile"] = lambda: generate(
            *shape, cache_implementation="static", compile_config=compiled
        )
        start = time.perf_counter()
        samplers["generate, static cache + torch.compile"]()  # compiling, outside the timed repeats
        compile_s = time.perf_counter() - start
    rates: dict[str, list[float]] = {name: [] for name in samplers}
    for _ in range(args.repeats):  # interleaved: machine load changes slow every sampler alike
        for name, run in samplers.items():
            start = time.perf_counter()
            tokens = sum(len(r) for r in run())
            rates[name].append(tokens / (time.perf_counter() - start))
    ratios = {name: statistics.median(r / g for r, g in zip(rates[name], rates["generate"])) for name in samplers}
    return {
        "profile": args.profile,
        "prompts": len(prompts),
        "batch": s.sample_batch,
        "max_new_tokens": s.max_new_tokens,
        "temperature": s.temperature,
        "repeats": args.repeats,
        "model": f"{s.base.arch}, {s.base.n_layers} layers x {s.base.d_model}, vocab {len(tok)}",
        "tokens_per_s": {name: statistics.median(r) for name, r in rates.items()},
        "all_tokens_per_s": rates,
        "ratio_to_generate": ratios,
        "compile_s": compile_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: $STEERLIB_THREADS, else all cores)"
    )
    parser.add_argument("--batch", type=int, default=64, help="training sequences per step")
    parser.add_argument("--seq", type=int, default=32, help="tokens per training sequence")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument(
        "--profile",
        default="cpu",
        choices=tuple(PREMEM),
        help="the pre-memorization profile whose "
        "sampling is timed (its pretrained model comes from the run cache, or is trained once)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of each sampler")
    parser.add_argument("--compile", action="store_true", help="also time generate with torch.compile (slow)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    record = {
        "threads": threads,
        "training": bench_training(args),
        "batching": bench_batching(args),
        "sampling": bench_sampling(args),
    }
    t, s = record["training"], record["sampling"]
    print(f"threads  : {threads}")
    print(
        f"training : {t['model']}, batch {t['batch']} x {t['seq']} tokens, {t['ms_per_step']:.0f} ms/step, "
        f"{t['tokens_per_s']:,.0f} tokens/s, {t['gflops']:.1f} GFLOP/s = {100 * t['fraction_of_peak']:.0f}% of the "
        f"dense matmul peak measured now ({t['matmul_peak_gflops']:.0f} GFLOP/s)"
    )
    for row in record["batching"]:
        print(
            f"batching : {row['chapter']} ({row['model']}, batch {row['batch']} x {row['seq']} tokens): "
            f"{row['ms_per_step']:.1f} ms/step; {row['k']} runs in one step {row['ms_per_merged_step']:.1f} ms, "
            f"a ceiling of {row['ceiling']:.2f}x over a loop"
        )
    print(
        f"sampling : pre-memorization at {s['profile']} ({s['model']}), {s['prompts']} prompts in batches of "
        f"{s['batch']}, up to {s['max_new_tokens']} new tokens at T={s['temperature']}; median of {s['repeats']} "
        "interleaved repeats"
    )
    for name, rate in s["tokens_per_s"].items():
        print(f"  {name:40s} {rate:9,.0f} tokens/s  {s['ratio_to_generate'][name]:.2f}x generate")
    if s["compile_s"] is not None:
        print(f"  (torch.compile: {s['compile_s']:.0f} s for the first call)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()

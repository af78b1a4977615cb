"""Fixtures for unit tests that need a real (tiny) model."""

import pytest

WORDS = (
    "what do you think the next step is why did you add how many are left can you check your "
    "work the answer is so it equals just because problem spoons julia had some then teacher "
    "student i got 4 5 10 12 15 . ? , : = + -"
).split()


@pytest.fixture
def one_thread():
    """Tiny models run faster on one thread, above all on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_encoder(tmp_path, one_thread):
    """A tiny random BERT and a word-level tokenizer, saved as an encoder folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(WORDS)]
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(vocab)})
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    folder = tmp_path / "tiny-bert"
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder

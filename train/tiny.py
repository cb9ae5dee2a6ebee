"""A tiny random Llama (SmolLM2's architecture) and a byte-level tokenizer, for fast tests.

Nothing is downloaded: the tokenizer maps every UTF-8 byte to one token (no merges) and
has a minimal chat template, so any prompt the environment renders can be encoded. The
model learns nothing useful; it only makes the learner code paths run in milliseconds.
``save_tiny(dir)`` writes both in Hugging Face format so ``hf:DIR`` agent specs load them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<|pad|>", "<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _byte_vocab() -> dict[str, int]:
    # the printable stand-ins ByteLevel uses for the 256 byte values
    return {ch: i for i, ch in enumerate(pre_tokenizers.ByteLevel.alphabet())}


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level tokenizer: 256 byte tokens + pad, im_start, im_end (eos)."""
    vocab = _byte_vocab()
    vocab = {ch: i for i, ch in enumerate(sorted(vocab))}
    for tok in SPECIAL_TOKENS:
        vocab[tok] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        padding_side="left",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_llama(
    tokenizer: PreTrainedTokenizerFast | None = None,
    hidden_size: int = 32,
    num_layers: int = 2,
    seed: int = 0,
) -> LlamaForCausalLM:
    """Random ``LlamaForCausalLM`` with tied embeddings (like SmolLM2), float32."""
    tokenizer = tokenizer or tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.float()


def save_tiny(
    directory: str | os.PathLike, hidden_size: int = 32, num_layers: int = 2, seed: int = 0
) -> Path:
    """Write a tiny model + tokenizer loadable with ``from_pretrained`` (and ``hf:DIR`` specs)."""
    d = Path(directory)
    tok = tiny_tokenizer()
    model = tiny_llama(tok, hidden_size, num_layers, seed)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d

"""Tiny random models for the real engines, built locally (no model hub can be reached here).

Run with an engine venv's Python (it needs ``tokenizers``, and ``transformers`` + ``torch`` for
the Hugging Face directory or ``gguf`` + ``numpy`` for the GGUF file), never imported by llmsoak::

    <vllm venv>/bin/python tests/support/tiny_models.py hf-llama OUT_DIR [--seed N ...]
    <llama.cpp venv>/bin/python tests/support/tiny_models.py gguf OUT_FILE [--seed N ...]

Both are a Llama with random weights (so the text they generate is random tokens, whole
characters only, running to ``max_tokens``: see :func:`output_weights`) and a
byte-level BPE tokenizer trained with ``tokenizers`` on llmsoak's built-in prompt corpus
(llmsoak/prompts/corpus.json), so llmsoak's own prompts take few tokens. The chat template is
ChatML (``<|im_start|>role\\n...<|im_end|>``); ``<|im_end|>`` is the end-of-sequence token.
Sizes: hidden 128, 4 heads (head size 32, one that vLLM's CPU attention accepts), 2 layers.
The caller caches the output, keyed by these parameters (tests/support/engines.py); docs/engines.md
describes the models.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "llmsoak" / "prompts" / "corpus.json"

BOS, EOS, IM_START = "<|bos|>", "<|im_end|>", "<|im_start|>"
SPECIAL_TOKENS = [BOS, EOS, IM_START]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""ChatML, the template many served models use; Jinja understood by both vLLM and llama-cpp-python."""


def corpus_texts(path: Path = CORPUS) -> list[str]:
    """Every string in the prompt corpus (openings, follow-ups, documents)."""
    texts: list[str] = []

    def walk(node) -> None:
        if isinstance(node, str):
            texts.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(path.read_text())["conversations"])
    return texts


def train_tokenizer(vocab_size: int):
    """A byte-level BPE (GPT-2 pre-tokenizer) with the special tokens first: ids 0, 1, 2."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus_texts() * 2, trainer=trainer)
    return tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character map, the alphabet of byte-level BPE token strings."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def text_token_mask(tokens: list[str]):
    """True for tokens that are whole UTF-8 text on their own (not special, not part of a character)."""
    import numpy as np

    byte_of = {c: b for b, c in _bytes_to_unicode().items()}
    mask = np.zeros(len(tokens), dtype=bool)
    for index, token in enumerate(tokens):
        if token in SPECIAL_TOKENS:
            continue
        try:
            bytes(byte_of[c] for c in token).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            continue
        mask[index] = True
    return mask


def output_weights(rng, n_vocab: int, hidden: int, mask, output_std: float):
    """The output (lm_head) matrix: rows of text tokens random with ``output_std``, the others zero.

    After the final RMSNorm the hidden state has norm about sqrt(hidden), so a text token's logit
    has a spread of about ``output_std * sqrt(hidden)`` (5.7 at the defaults) while the zero rows
    sit at 0: the model practically never picks a special token or a piece of a UTF-8 character.
    Its replies are whole-character text that runs to ``max_tokens`` (no end token), like a real
    model writing English, so neither engine holds back partial characters or stops early.
    (Forcing such tokens with ``logit_bias`` still works: the wire tests do.)
    """
    import numpy as np

    weight = (rng.standard_normal((n_vocab, hidden)) * output_std).astype(np.float32)
    weight[~mask] = 0.0
    return weight


def build_hf_llama(out: Path, *, vocab_size: int, hidden: int, heads: int, layers: int,
                   max_positions: int, seed: int, output_std: float) -> None:
    """A Hugging Face model directory: config, random safetensors weights, tokenizer, chat template."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = train_tokenizer(vocab_size)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS,
                                   pad_token=EOS, model_max_length=max_positions)
    fast.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=hidden,
                         intermediate_size=hidden * 2, num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=heads, max_position_embeddings=max_positions,
                         bos_token_id=tokenizer.token_to_id(BOS), eos_token_id=tokenizer.token_to_id(EOS),
                         tie_word_embeddings=False, torch_dtype="float32")
    import numpy as np

    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    vocab = tokenizer.get_vocab()
    tokens = [""] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        model.lm_head.weight.copy_(torch.from_numpy(
            output_weights(rng, len(tokens), hidden, text_token_mask(tokens), output_std)))
    model.save_pretrained(out, safe_serialization=True)
    fast.save_pretrained(out)


def build_gguf(out: Path, *, vocab_size: int, hidden: int, heads: int, layers: int,
               max_positions: int, seed: int, output_std: float) -> None:
    """A GGUF file (F32) for llama.cpp: Llama architecture, GPT-2 style BPE vocabulary, chat template."""
    import gguf
    import numpy as np

    tokenizer = train_tokenizer(vocab_size)
    data = json.loads(tokenizer.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    tokens = [""] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    token_types = [gguf.TokenType.CONTROL if t in SPECIAL_TOKENS else gguf.TokenType.NORMAL for t in tokens]
    n_vocab, ff = len(tokens), hidden * 2

    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name("llmsoak-tiny-llama")
    writer.add_context_length(max_positions)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(vocab[BOS])
    writer.add_eos_token_id(vocab[EOS])
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    ones = np.ones(hidden, dtype=np.float32)
    writer.add_tensor("token_embd.weight", weight(n_vocab, hidden))
    writer.add_tensor("output_norm.weight", ones)
    writer.add_tensor("output.weight", output_weights(rng, n_vocab, hidden, text_token_mask(tokens), output_std))
    for i in range(layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", ones)
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(hidden, hidden))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", ones)
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(ff, hidden))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(ff, hidden))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(hidden, ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["hf-llama", "gguf"])
    parser.add_argument("out", type=Path, help="directory (hf-llama) or file (gguf) to create; replaced atomically")
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--max-positions", type=int, default=2048, help="the model's own context limit (tokens)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-std", type=float, default=0.5,
                        help="spread of the output matrix's text-token rows (see output_weights)")
    args = parser.parse_args(argv)
    params = dict(vocab_size=args.vocab_size, hidden=args.hidden, heads=args.heads, layers=args.layers,
                  max_positions=args.max_positions, seed=args.seed, output_std=args.output_std)
    out: Path = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the destination and rename, so a cache never holds half a model.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if args.kind == "hf-llama":
            build_hf_llama(tmp / "model", **params)
            (tmp / "model" / "llmsoak-tiny-model.json").write_text(json.dumps(params, indent=1) + "\n")
            if out.exists():  # built meanwhile by another process: same parameters, same model
                print(out)
                return 0
            os.replace(tmp / "model", out)
        else:
            build_gguf(tmp / "model.gguf", **params)
            os.replace(tmp / "model.gguf", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

r"""Build a tiny llama-architecture GGUF model whose output is fully predictable.

Testing code that talks to a local LLM through llama.cpp normally needs a
multi-gigabyte download and produces text nobody can assert on. This module
writes, with nothing but the ``gguf`` package and numpy, a model of under a
megabyte (about 1,000 tokens, 64-dim embeddings, 2 layers, f32) that
llama.cpp loads like any other llama checkpoint and that answers every chat
conversation with the same, known text.

The trick
---------
A llama block adds the outputs of attention and of the feed-forward network
to the residual stream. If the output projections of both (``attn_output``
and ``ffn_down``) are zero, every block is the identity, so the final hidden
state at a position is just the embedding of the token at that position: the
prediction of the next token depends on the current token only. The model
then is a lookup table ``token -> next token``, expressed as

* one-hot token embeddings: every token that has to predict something
  specific (a "key" token) gets its own embedding axis; all other tokens share
  one "default" axis;
* all norm weights 1, so RMS-normalisation only rescales the one-hot vector
  (by ``sqrt(n_embd)``);
* an output (LM-head) matrix whose column for a key axis holds a large weight
  on the row of the wanted next token (and the default axis points at EOS).

The key tokens form a chain. A ChatML prompt always ends with
``<|im_start|>assistant\n``, whose last token is the newline byte token
``<0x0A>``; it maps to the first script piece, each script piece maps to the
next one, and the last piece maps to ``<|im_end|>`` (the EOS token, so
llama.cpp stops with ``finish_reason == "stop"``). Greedy decoding after the
generation prompt therefore emits exactly ``"".join(script)`` and stops.

Two extra rules make grammar-constrained decoding behave sensibly:

* after a piece that ends with ``[`` the digits ``1``..``9`` get decreasing
  second-choice scores, so a GBNF grammar that forbids the scripted citation
  digit makes the model pick ``1`` (or the smallest allowed digit) instead;
* every citation digit ``1``..``9`` that is not itself scripted maps to
  ``]``, so the forced digit is followed by the scripted continuation
  (``"[7]."`` becomes ``"[1]."``).

The logit margins are large (about 32 nats) so that even sampling with a
temperature returns the script.

With ``random_weights=True`` every tensor is small seeded noise instead: the
model produces arbitrary (but valid, printable) text and never emits a
control or byte token, so generation always runs to ``max_tokens``. That is
useful for tests that only need *a* model (context trimming, streaming).

The vocabulary is a byte-fallback SentencePiece ("llama") vocabulary: the
control tokens ``<unk> <s> </s> <|im_start|> <|im_end|>``, the 256 byte
tokens ``<0x00>``..``<0xFF>`` (upper-case hex, type BYTE, as llama.cpp
requires), single characters, the script pieces and a few hundred common
English and football words. llama.cpp's SPM tokenizer only merges adjacent
symbols into strings that are themselves tokens, so every prefix of a word is
added too; that keeps prompts to roughly one token per word.

Run as a script to write a model file::

    python tests/tiny_gguf.py OUT.gguf [--random]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import gguf
import numpy as np

__all__ = [
    "BOS_TOKEN",
    "CHAT_TEMPLATE",
    "DEFAULT_SCRIPT",
    "EOS_TOKEN",
    "IM_END_TOKEN",
    "IM_START_TOKEN",
    "SPECIAL_TOKENS",
    "UNK_TOKEN",
    "build_tiny_gguf",
    "main",
]

DEFAULT_SCRIPT: tuple[str, ...] = ("June", " 2024", " [", "7", "]", ".")
"""Pieces the deterministic model emits, one token each, after a chat prompt."""

UNK_TOKEN = "<unk>"
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
IM_START_TOKEN = "<|im_start|>"
IM_END_TOKEN = "<|im_end|>"

SPECIAL_TOKENS: tuple[str, ...] = (
    UNK_TOKEN,
    BOS_TOKEN,
    EOS_TOKEN,
    IM_START_TOKEN,
    IM_END_TOKEN,
)
"""Control tokens; their token id is their index in this tuple."""

UNK_ID = 0
BOS_ID = 1
EOS_ID = 2
IM_START_ID = 3
IM_END_ID = 4
FIRST_BYTE_ID = len(SPECIAL_TOKENS)
"""Id of ``<0x00>``; byte ``b`` has id ``FIRST_BYTE_ID + b``."""

END_OF_TURN_ID = IM_END_ID
"""The id written as ``tokenizer.ggml.eos_token_id``: ``<|im_end|>`` ends a turn."""

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}"
)
"""ChatML template stored as ``tokenizer.chat_template``.

It is deliberately not byte-identical to llama-cpp-python's built-in
``chatml`` template, so that llama-cpp-python renders the template read from
the GGUF metadata (``chat_format == "chat_template.default"``).
"""

SPACE = "\u2581"  # "▁", SentencePiece's space marker

N_EMBD = 64
N_LAYER = 2
N_HEAD = 4
N_HEAD_KV = 2
N_FF = 128
RMS_EPS = 1e-5
ROPE_FREQ_BASE = 10000.0

_TOP_WEIGHT = 4.0
"""Output weight of the scripted next token (logit ``4 * sqrt(n_embd)`` = 32)."""
_FALLBACK_WEIGHT = 2.0
"""Output weight of the best second-choice digit after ``[`` (logit 16)."""

_CHARS = (
    "abcdefghijklmnopqrstuvwxyz"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "0123456789"
    ".,:;!?'\"()[]{}<>-_/\\&%$#@*+=|~`^"
)

_WORDS = """
the a an and or but not no of to in on at by for from with as is are was were
be been has have had do did will would can could should it its this that there
which who what when where how all any some more most other only than after
before about into over up out then he she they we you i his her their our your
one two three first last new year years month season date time june july august
january may 2023 2024 2025 football club team player players coach manager
match game goal goals scored win won lost draw league cup final title
champions transfer contract signed signing fee loan deal million striker
midfielder defender goalkeeper captain stadium home away penalty injury minute
minutes record news report source sources according said confirmed announced
question answer context documents cite citation based using use information
known cannot find user assistant system please brief Real Madrid Barcelona
Bayern Liverpool Arsenal Chelsea Manchester United City Leverkusen Alonso Xabi
Premier Liga Bundesliga UEFA The In On When Who What Where Which How He She
They It This June July August January May Question Context Answer Sources
""".split()

_LINE_START_WORDS = "Question Context Answer Sources Source".split()
"""Words that often start a line, where no space marker precedes them."""


def _token_text(piece: str) -> str:
    """Return the SentencePiece spelling of ``piece`` (spaces become ``▁``).

    Args:
        piece: Plain text of a token.

    Returns:
        The token text as stored in the GGUF vocabulary.
    """
    return piece.replace(" ", SPACE)


def _prefixes(text: str) -> Iterable[str]:
    """Yield every non-empty prefix of ``text``, shortest first.

    Args:
        text: A token text.

    Yields:
        ``text[:1]``, ``text[:2]``, ..., ``text``.
    """
    for end in range(1, len(text) + 1):
        yield text[:end]


def _build_vocab(script: Sequence[str]) -> tuple[list[str], list[float], list[int]]:
    """Build the token list, scores and token types.

    Args:
        script: Script pieces; each becomes a token of its own.

    Returns:
        ``(tokens, scores, token_types)``, index-aligned.
    """
    tokens: list[str] = list(SPECIAL_TOKENS)
    types: list[int] = [int(gguf.TokenType.CONTROL)] * len(SPECIAL_TOKENS)
    types[UNK_ID] = int(gguf.TokenType.UNKNOWN)
    scores: list[float] = [0.0] * len(SPECIAL_TOKENS)

    for byte in range(256):
        tokens.append(f"<0x{byte:02X}>")
        types.append(int(gguf.TokenType.BYTE))
        scores.append(0.0)

    seen: set[str] = set(tokens)

    def add(text: str) -> None:
        # Every prefix must be a token too: llama.cpp's SPM tokenizer merges
        # adjacent symbols only into strings that are in the vocabulary.
        for prefix in _prefixes(text):
            if prefix not in seen:
                seen.add(prefix)
                tokens.append(prefix)
                types.append(int(gguf.TokenType.NORMAL))
                # Longer pieces score higher, like a real unigram vocabulary.
                scores.append(float(len(prefix)) - 100.0)

    for char in _CHARS:
        add(char)
    add(SPACE)
    add(SPACE + "[")
    for piece in script:
        add(_token_text(piece))
    for word in _WORDS:
        add(SPACE + word)
    for word in _LINE_START_WORDS:
        add(word)
    return tokens, scores, types


def _validate_script(script: Sequence[str]) -> None:
    """Reject scripts the next-token table cannot represent.

    Args:
        script: Script pieces.

    Raises:
        ValueError: If the script is empty, a piece is empty, repeated, a
            special token, a bare newline or longer than llama-cpp-python's
            32-byte detokenisation buffer.
    """
    if not script:
        raise ValueError("script must contain at least one piece")
    if len(set(script)) != len(script):
        raise ValueError(f"script pieces must be unique, got {list(script)!r}")
    for piece in script:
        if not piece:
            raise ValueError("script pieces must be non-empty")
        if piece in SPECIAL_TOKENS:
            raise ValueError(f"script piece {piece!r} is a control token")
        if "\n" in piece:
            raise ValueError(f"script piece {piece!r} must not contain a newline")
        if len(piece.encode("utf-8")) > 32:
            raise ValueError(f"script piece {piece!r} is longer than 32 bytes")


def _next_token_table(
    script: Sequence[str], token_id: dict[str, int]
) -> tuple[list[int], dict[int, list[tuple[int, float]]]]:
    """Compute the key tokens and the output weights for each of them.

    Args:
        script: Script pieces.
        token_id: Map from token text to id.

    Returns:
        ``(keys, table)``: the key token ids in embedding-axis order, and for
        each key the list of ``(next_token_id, weight)`` output entries.
    """
    newline_id = FIRST_BYTE_ID + ord("\n")
    piece_ids = [token_id[_token_text(piece)] for piece in script]
    chain = [newline_id, *piece_ids, END_OF_TURN_ID]

    table: dict[int, list[tuple[int, float]]] = {}
    for current, following in zip(chain[:-1], chain[1:], strict=True):
        table[current] = [(following, _TOP_WEIGHT)]

    digit_ids = [token_id[str(digit)] for digit in range(1, 10)]
    close_id = token_id["]"]
    for digit in digit_ids:
        table.setdefault(digit, [(close_id, _TOP_WEIGHT)])

    for piece, piece_id in zip(script, piece_ids, strict=True):
        if piece.endswith("["):
            for rank, digit in enumerate(digit_ids):
                table[piece_id].append((digit, _FALLBACK_WEIGHT - 0.1 * rank))

    return list(table), table


def _embedding_size(n_keys: int) -> int:
    """Return the embedding width: 64, or more when there are many key tokens.

    Args:
        n_keys: Number of key tokens (each needs its own axis, plus one
            shared default axis).

    Returns:
        A multiple of 32 that is at least ``max(N_EMBD, n_keys + 1)``.
    """
    needed = max(N_EMBD, n_keys + 1)
    return -(-needed // 32) * 32


def _deterministic_weights(
    n_vocab: int, n_embd: int, keys: Sequence[int], table: dict[int, list[tuple[int, float]]]
) -> tuple[np.ndarray, np.ndarray]:
    """Build the one-hot embedding and the next-token output matrix.

    Args:
        n_vocab: Vocabulary size.
        n_embd: Embedding width.
        keys: Key token ids; key ``i`` uses embedding axis ``i``.
        table: Output entries per key token.

    Returns:
        ``(token_embd, output)``, both ``float32`` of shape ``(n_vocab, n_embd)``.
    """
    default_axis = n_embd - 1
    embd = np.zeros((n_vocab, n_embd), dtype=np.float32)
    embd[:, default_axis] = 1.0
    output = np.zeros((n_vocab, n_embd), dtype=np.float32)
    output[END_OF_TURN_ID, default_axis] = _TOP_WEIGHT
    for axis, key in enumerate(keys):
        embd[key, :] = 0.0
        embd[key, axis] = 1.0
        for following, weight in table[key]:
            output[following, axis] = max(output[following, axis], weight)
    return embd, output


def _random_weights(
    n_vocab: int, n_embd: int, types: Sequence[int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Build random embedding and output matrices that never pick control/byte tokens.

    Axis 0 of every embedding is a constant 2.0, so after RMS-normalisation it
    is strongly positive at every position; control and byte tokens get a
    large negative output weight on that axis and therefore a logit far below
    every normal token.

    Args:
        n_vocab: Vocabulary size.
        n_embd: Embedding width.
        types: Token type of each token.
        rng: Seeded random generator.

    Returns:
        ``(token_embd, output)``, both ``float32`` of shape ``(n_vocab, n_embd)``.
    """
    embd = rng.normal(0.0, 1.0, (n_vocab, n_embd)).astype(np.float32)
    embd[:, 0] = 2.0
    output = rng.normal(0.0, 0.3, (n_vocab, n_embd)).astype(np.float32)
    output[:, 0] = 0.0
    blocked = np.array([t != int(gguf.TokenType.NORMAL) for t in types])
    output[blocked, :] = 0.0
    output[blocked, 0] = -20.0
    return embd, output


def build_tiny_gguf(
    path: Path,
    *,
    script: Sequence[str] = DEFAULT_SCRIPT,
    random_weights: bool = False,
    seed: int = 0,
    context_length: int = 4096,
) -> Path:
    """Write a tiny llama GGUF model to ``path``.

    Args:
        path: Output file; parent directories are created.
        script: Pieces the deterministic model emits after a ChatML
            generation prompt, one token each, followed by ``<|im_end|>``.
            Pieces must be unique, non-empty, free of newlines and at most 32
            UTF-8 bytes; spaces are allowed (``" 2024"``). Ignored by the
            random model except that the pieces are still in the vocabulary.
        random_weights: Use small seeded random weights instead of the
            deterministic lookup-table construction. The random model never
            emits EOS, control or byte tokens, so it always runs to
            ``max_tokens``.
        seed: Seed for every random tensor.
        context_length: Value of ``llama.context_length`` (the training
            context, which llama.cpp uses when ``n_ctx=0``).

    Returns:
        ``path``.

    Raises:
        ValueError: If ``script`` is not usable (see ``_validate_script``) or
            ``context_length`` is not positive.
    """
    script = tuple(script)
    _validate_script(script)
    if context_length <= 0:
        raise ValueError(f"context_length must be positive, got {context_length}")

    tokens, scores, types = _build_vocab(script)
    token_id = {text: index for index, text in enumerate(tokens)}
    n_vocab = len(tokens)
    keys, table = _next_token_table(script, token_id)
    n_embd = _embedding_size(len(keys))
    head_dim = n_embd // N_HEAD
    n_embd_kv = head_dim * N_HEAD_KV
    rng = np.random.default_rng(seed)

    def noise(rows: int, cols: int, scale: float) -> np.ndarray:
        return rng.normal(0.0, scale, (rows, cols)).astype(np.float32)

    def zeros(rows: int, cols: int) -> np.ndarray:
        return np.zeros((rows, cols), dtype=np.float32)

    if random_weights:
        token_embd, output = _random_weights(n_vocab, n_embd, types, rng)
    else:
        token_embd, output = _deterministic_weights(n_vocab, n_embd, keys, table)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    try:
        writer.add_name("football-rag tiny test model")
        writer.add_description(
            "Tiny deterministic llama model for tests"
            if not random_weights
            else "Tiny random llama model for tests"
        )
        writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))
        writer.add_vocab_size(n_vocab)
        writer.add_context_length(context_length)
        writer.add_embedding_length(n_embd)
        writer.add_block_count(N_LAYER)
        writer.add_feed_forward_length(N_FF)
        writer.add_head_count(N_HEAD)
        writer.add_head_count_kv(N_HEAD_KV)
        writer.add_rope_dimension_count(head_dim)
        writer.add_rope_freq_base(ROPE_FREQ_BASE)
        writer.add_layer_norm_rms_eps(RMS_EPS)

        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_unk_token_id(UNK_ID)
        writer.add_bos_token_id(BOS_ID)
        writer.add_eos_token_id(END_OF_TURN_ID)
        writer.add_eot_token_id(END_OF_TURN_ID)
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        writer.add_add_space_prefix(True)
        writer.add_chat_template(CHAT_TEMPLATE)

        # numpy shapes are (out_features, in_features); gguf reverses them
        # into ggml's {in, out} order.
        writer.add_tensor("token_embd.weight", token_embd)
        writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor("output.weight", output)
        for layer in range(N_LAYER):
            prefix = f"blk.{layer}"
            scale = 0.05 if random_weights else 0.02
            writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
            writer.add_tensor(f"{prefix}.attn_q.weight", noise(n_embd, n_embd, scale))
            writer.add_tensor(f"{prefix}.attn_k.weight", noise(n_embd_kv, n_embd, scale))
            writer.add_tensor(f"{prefix}.attn_v.weight", noise(n_embd_kv, n_embd, scale))
            writer.add_tensor(
                f"{prefix}.attn_output.weight",
                noise(n_embd, n_embd, scale) if random_weights else zeros(n_embd, n_embd),
            )
            writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
            writer.add_tensor(f"{prefix}.ffn_gate.weight", noise(N_FF, n_embd, scale))
            writer.add_tensor(f"{prefix}.ffn_up.weight", noise(N_FF, n_embd, scale))
            writer.add_tensor(
                f"{prefix}.ffn_down.weight",
                noise(n_embd, N_FF, scale) if random_weights else zeros(n_embd, N_FF),
            )

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: write a tiny model and print its path.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if None.

    Returns:
        Process exit status (0 on success).
    """
    parser = argparse.ArgumentParser(
        description="Write a tiny llama GGUF model with predictable output."
    )
    parser.add_argument("output", type=Path, help="path of the .gguf file to write")
    parser.add_argument("--random", action="store_true", help="use seeded random weights instead")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--context-length", type=int, default=4096, help="llama.context_length (default 4096)"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    path = build_tiny_gguf(
        args.output,
        random_weights=args.random,
        seed=args.seed,
        context_length=args.context_length,
    )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

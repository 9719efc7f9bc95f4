"""Convert a BERT-family model in safetensors (a Hugging Face folder) into a GGUF that llama.cpp embeds with.

    for progress in convert_bert(folder, dest, out_type="f16", cancel=token): ...

Why our own converter: llama.cpp's convert_hf_to_gguf.py needs PyTorch and transformers, which Ember
never loads in the app. This one needs only numpy, safetensors and the `gguf` writer, and reads one
tensor at a time, so memory stays at the size of the largest tensor.

What llama.cpp's BERT loader expects, and so what is written here:
- architecture "bert", attention not causal, the pooling of sentence-transformers' 1_Pooling
  (mean or CLS); a plain BERT without pooling files needs `pooling=` from the caller;
- tokenizer model "bert" (WordPiece). llama.cpp matches a word start as "▁" + text and a
  continuation ("##ing") as its bare text, so the token list is rewritten that way; special tokens
  keep their text and are CONTROL;
- CLS is BOS and SEP is EOS (and SEP), with add_bos and add_eos set: "[CLS] text [SEP]";
- llama.cpp's WordPiece always lowercases (and strips accents), as an uncased BERT tokenizer does,
  so a cased model is refused rather than silently tokenized wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import gguf
import numpy as np

from engine.errors import BadModelFile, InvalidInput, UnsupportedModel
from engine.jobs import CancelToken, Progress

OUT_TYPES = {"f32": np.float32, "f16": np.float16}
POOLINGS = {"mean": gguf.PoolingType.MEAN, "cls": gguf.PoolingType.CLS}
BERT_CLASSES = {"BertModel", "BertForMaskedLM", "BertForPreTraining", "BertForSequenceClassification"}
# Tensors a sentence embedding does not use: the MLM and NSP heads, the pooler, a buffer.
_DROPPED_PREFIXES = ("cls.", "pooler.", "embeddings.position_ids")
_PHANTOM_SPACE = "\u2581"
# llama.cpp adds these two tables to the f32 activations directly (no row lookup), and ggml's add
# refuses an f16 operand, so they stay f32 whatever the output type.
_ALWAYS_F32 = {"position_embd.weight", "token_types.weight"}


def convert_bert(
    model_dir: Path | str, dest: Path | str, *, out_type: str = "f16", pooling: str | None = None,
    name: str | None = None, cancel: CancelToken | None = None,
) -> Iterator[Progress]:
    """Write `dest` (a .gguf) from the BERT folder `model_dir`; yields Progress per tensor.

    `name` (general.name) defaults to the folder's name; `pooling` ("mean" or "cls") overrides
    what sentence-transformers' files say, for a plain BERT that has none.

    Matrices are written as `out_type` ("f16" or "f32"); norms, biases and the position and
    token-type tables stay f32, as llama.cpp needs. The file appears at `dest` only when complete:
    a cancel or an error leaves nothing."""
    cancel = cancel or CancelToken()
    model_dir, dest = Path(model_dir), Path(dest)
    if out_type not in OUT_TYPES:
        raise InvalidInput(f"The output type must be one of {', '.join(OUT_TYPES)}, not {out_type!r}.")
    config = _read_json(model_dir / "config.json", required=True)
    _check_architecture(config)
    pooling_type = _pooling(model_dir, pooling)
    vocab = read_vocab(model_dir, int(config["vocab_size"]))

    from safetensors import safe_open

    weights_path = model_dir / "model.safetensors"
    if not weights_path.is_file():
        raise BadModelFile(f"{model_dir.name} has no model.safetensors.",
                           "Only a single-file safetensors BERT can be converted.")
    n_blocks = int(config["num_hidden_layers"])
    name_map = gguf.TensorNameMap(gguf.MODEL_ARCH.BERT, n_blocks)
    part = dest.with_name(dest.name + ".part")
    writer = gguf.GGUFWriter(part, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    try:
        with safe_open(str(weights_path), framework="numpy") as weights:
            plan = _plan_tensors(weights, name_map, OUT_TYPES[out_type])
            _check_shapes(plan, weights, config, len(vocab.tokens))
            _write_metadata(writer, name or model_dir.name, config, vocab, pooling_type, out_type)
            for target, source, dtype in plan:
                shape = weights.get_slice(source).get_shape()
                writer.add_tensor_info(target, shape, np.dtype(dtype), _nbytes(shape, dtype))
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for done, (_, source, dtype) in enumerate(plan, 1):
                if cancel.cancelled:
                    return
                writer.write_tensor_data(np.ascontiguousarray(weights.get_tensor(source), dtype=dtype))
                yield Progress(done, len(plan), "tensors", f"Converting {source}")
        writer.close()
        os.replace(part, dest)
    finally:
        writer.close()
        part.unlink(missing_ok=True)


class Vocab:
    """The WordPiece vocabulary as llama.cpp reads it: token texts, token types, special token ids."""

    def __init__(self, tokens: list[str], types: list[int], special: dict[str, int]) -> None:
        self.tokens = tokens
        self.types = types
        self.special = special  # cls, sep, pad, unk, mask -> id


def read_vocab(model_dir: Path, vocab_size: int) -> Vocab:
    """Tokens from tokenizer.json (WordPiece) or else vocab.txt, rewritten for llama.cpp's matcher."""
    tokenizer = _read_json(model_dir / "tokenizer.json")
    settings = {**_read_json(model_dir / "special_tokens_map.json"), **_read_json(model_dir / "tokenizer_config.json")}
    if tokenizer:
        model = tokenizer.get("model", {})
        if model.get("type") != "WordPiece":
            raise UnsupportedModel(f"The tokenizer is {model.get('type')!r}; only WordPiece (BERT) is converted.")
        if model.get("continuing_subword_prefix", "##") != "##":
            raise UnsupportedModel("The WordPiece tokenizer does not mark continuations with '##'.")
        by_id = {int(i): text for text, i in model["vocab"].items()}
        normalizer = tokenizer.get("normalizer") or {}
        lowercase = normalizer.get("lowercase", True) if normalizer.get("type") == "BertNormalizer" else True
        special_texts = {t["content"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    elif (model_dir / "vocab.txt").is_file():
        lines = (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
        by_id = dict(enumerate(lines))
        lowercase = settings.get("do_lower_case", True)
        special_texts = set()
    else:
        raise BadModelFile(f"{model_dir.name} has neither tokenizer.json nor vocab.txt.")
    if lowercase is False:
        raise UnsupportedModel("This BERT model is cased, and llama.cpp's BERT tokenizer lowercases every text.",
                               "Pick an uncased model.")

    special: dict[str, int] = {}
    text_to_id = {text: i for i, text in by_id.items()}
    for role, default in (("cls", "[CLS]"), ("sep", "[SEP]"), ("pad", "[PAD]"), ("unk", "[UNK]"), ("mask", "[MASK]")):
        text = _token_text(settings.get(f"{role}_token"), default)
        if text in text_to_id:
            special[role] = text_to_id[text]
            special_texts.add(text)
    for role in ("cls", "sep", "unk"):
        if role not in special:
            raise BadModelFile(f"The vocabulary has no {role.upper()} token.")

    size = max(vocab_size, max(by_id) + 1)
    tokens: list[str] = []
    types: list[int] = []
    for i in range(size):
        text = by_id.get(i)
        if text is None:  # a gap: a placeholder llama.cpp never matches
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif text in special_texts:
            tokens.append(text)
            types.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(text[2:] if text.startswith("##") else _PHANTOM_SPACE + text)
            types.append(gguf.TokenType.NORMAL)
    return Vocab(tokens, types, special)


def _check_architecture(config: dict) -> None:
    classes = set(config.get("architectures") or [])
    if config.get("model_type") != "bert" or (classes and not classes & BERT_CLASSES):
        raise UnsupportedModel(
            f"This is a {config.get('model_type')!r} model ({', '.join(sorted(classes)) or 'no class'}); "
            "only BERT models are converted.")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise UnsupportedModel("Only BERT with absolute position embeddings is converted.")
    if config.get("hidden_act", "gelu") != "gelu":
        raise UnsupportedModel(f"llama.cpp's BERT uses GELU, not {config.get('hidden_act')!r}.")
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "vocab_size"):
        if not isinstance(config.get(key), int) or config[key] <= 0:
            raise BadModelFile(f"config.json has no valid {key}.")


def _pooling(model_dir: Path, override: str | None) -> gguf.PoolingType:
    """The sentence-transformers pooling (modules.json → its Pooling folder), or the caller's choice."""
    if override is not None:
        if override not in POOLINGS:
            raise InvalidInput(f"Pooling must be one of {', '.join(POOLINGS)}, not {override!r}.")
        return POOLINGS[override]
    folder = "1_Pooling"
    for module in _read_json(model_dir / "modules.json", default=[]):
        if isinstance(module, dict) and str(module.get("type", "")).endswith(".Pooling"):
            folder = module.get("path") or folder
    pooling = _read_json(model_dir / folder / "config.json")
    if pooling.get("pooling_mode_mean_tokens"):
        return gguf.PoolingType.MEAN
    if pooling.get("pooling_mode_cls_token"):
        return gguf.PoolingType.CLS
    if pooling:
        raise UnsupportedModel("The model pools its embeddings in a way llama.cpp does not (only mean or CLS).")
    raise InvalidInput(f"{model_dir.name} does not say how to pool token embeddings (no {folder}/config.json).",
                       "Say which pooling to use: mean or cls.")


def _plan_tensors(weights, name_map: gguf.TensorNameMap, matrix_dtype) -> list[tuple[str, str, type]]:
    """(GGUF name, safetensors name, dtype) for every tensor kept; an unknown tensor is refused."""
    plan = []
    for source in weights.keys():
        name = source.removeprefix("bert.")
        if name.startswith(_DROPPED_PREFIXES):
            continue
        base, dot, suffix = name.rpartition(".")
        suffix = {"gamma": "weight", "beta": "bias"}.get(suffix, suffix)  # old TensorFlow names
        target = name_map.get_name(base)
        if target is None or not dot or suffix not in ("weight", "bias"):
            raise UnsupportedModel(f"The tensor {source} is not part of a BERT encoder that llama.cpp runs.")
        target = f"{target}.{suffix}"
        dims = len(weights.get_slice(source).get_shape())
        plan.append((target, source, matrix_dtype if dims == 2 and target not in _ALWAYS_F32 else np.float32))
    return plan


def _check_shapes(plan, weights, config: dict, n_vocab: int) -> None:
    """Catch a config.json that disagrees with the weights here, not as a crash inside llama.cpp."""
    shapes = {target: tuple(weights.get_slice(source).get_shape()) for target, source, _ in plan}
    width = config["hidden_size"]
    expected = {
        "token_embd.weight": (n_vocab, width),
        "position_embd.weight": (config["max_position_embeddings"], width),
        "blk.0.attn_q.weight": (width, width),
        "blk.0.ffn_up.weight": (config["intermediate_size"], width),
    }
    for target, shape in expected.items():
        if shapes.get(target) != shape:
            raise BadModelFile(f"{target} has shape {shapes.get(target)}, but config.json implies {shape}.")
    last = f"blk.{config['num_hidden_layers'] - 1}.layer_output_norm.weight"
    if last not in shapes:
        raise BadModelFile(f"The weights have fewer layers than config.json's {config['num_hidden_layers']}.")
    if width % config["num_attention_heads"]:
        raise BadModelFile("hidden_size is not a multiple of num_attention_heads.")


def _write_metadata(writer: gguf.GGUFWriter, name: str, config: dict, vocab: Vocab,
                    pooling: gguf.PoolingType, out_type: str) -> None:
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if out_type == "f32" else gguf.LlamaFileType.MOSTLY_F16)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(float(config.get("layer_norm_eps", 1e-12)))
    writer.add_causal_attention(False)
    writer.add_pooling_type(pooling)

    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_type_count(int(config.get("type_vocab_size", 2)))
    special = vocab.special
    writer.add_bos_token_id(special["cls"])
    writer.add_eos_token_id(special["sep"])
    writer.add_sep_token_id(special["sep"])
    writer.add_unk_token_id(special["unk"])
    if "pad" in special:
        writer.add_pad_token_id(special["pad"])
    if "mask" in special:
        writer.add_mask_token_id(special["mask"])
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(True)


def _nbytes(shape, dtype) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count * np.dtype(dtype).itemsize


def _token_text(value, default: str) -> str:
    """A special token as tokenizer_config.json writes it: a string, or {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else default


def _read_json(path: Path, *, required: bool = False, default=None):
    if not path.is_file():
        if required:
            raise BadModelFile(f"{path.parent.name} has no {path.name}.")
        return {} if default is None else default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadModelFile(f"{path.name} could not be read: {exc}") from exc

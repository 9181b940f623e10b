"""The two runtimes behind the Embedder: ONNX Runtime (the default, torch-free) and torch
(sentence-transformers, the reference), plus the one-off ONNX export that needs torch.

Both give the same normalized mean-pooled vectors (cosine >= 0.9999 on every seed passage, a
test checks), so fp32 vectors from either are interchangeable.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.errors import ModelError
from indexer.parse import Span

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

ONNX_OPSET = 17
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# A text's vector and the vectors of the spans asked for, one row per span.
Encoded = tuple[np.ndarray, np.ndarray]


def max_sequence_length(model_dir: Path) -> int:
    """Tokens one input may hold, special tokens included (sentence-transformers' setting)."""
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text())["max_seq_length"])
    return 512


def _normalized(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    normalized: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalized


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Normalized mean of each text's real (unmasked) token vectors: the text's embedding."""
    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return _normalized(pooled)


def pool_spans(
    hidden: np.ndarray,
    offsets: Sequence[tuple[int, int]],  # each token's, as the tokenizer gives them
    spans: Sequence[Span],
    whole: np.ndarray,
) -> np.ndarray:
    """One text's span vectors: the normalized mean of the token vectors (computed in the
    context of the whole text) that overlap each character span. A span no token reaches
    (past truncation) gets ``whole``, the text's own vector."""
    if not spans:
        return np.zeros((0, hidden.shape[-1]), dtype=np.float32)
    starts = np.array([start for start, _ in offsets], dtype=np.int64)
    ends = np.array([end for _, end in offsets], dtype=np.int64)
    real = ends > starts  # special tokens and padding cover no characters
    pooled = np.empty((len(spans), hidden.shape[-1]), dtype=np.float32)
    for row, (start, end) in enumerate(spans):
        inside = real & (starts < end) & (ends > start)
        pooled[row] = hidden[: len(offsets)][inside].mean(axis=0) if inside.any() else whole
    return _normalized(pooled)


def in_length_order(
    texts: Sequence[str], batch_size: int, run: Callable[[list[int]], list[Encoded]]
) -> list[Encoded]:
    """``run`` over batches of text indices of similar length (little padding); the results
    come back in the caller's order."""
    order = np.argsort([len(text) for text in texts], kind="stable").tolist()
    results: list[Encoded | None] = [None] * len(texts)
    for offset in range(0, len(order), batch_size):
        batch = order[offset : offset + batch_size]
        for index, encoded in zip(batch, run(batch), strict=True):
            results[index] = encoded
    return [encoded for encoded in results if encoded is not None]


class OnnxEncoder:
    """Tokenise with the bare ``tokenizers`` library, run the exported transformer in ONNX
    Runtime, mean-pool over real tokens and normalise in numpy."""

    def __init__(self, onnx_file: Path, model_dir: Path, threads: int = 0) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # The file ships without truncation or padding; sentence-transformers truncates at
        # max_seq_length (special tokens included) and pads each batch to its longest text.
        self._tokenizer.enable_truncation(max_length=max_sequence_length(model_dir))
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle worker threads would otherwise busy-wait, stealing a shared machine's cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = onnxruntime.InferenceSession(
                str(onnx_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own unrelated exception types
            raise ModelError(f"cannot load the exported model {onnx_file}: {error}") from error

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Normalized float32 vectors, one row per text, in the caller's order."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        encoded = self.encode_spans(texts, [[] for _ in texts], batch_size)
        return np.stack([vector for vector, _ in encoded])

    def encode_spans(
        self, texts: list[str], spans: list[list[Span]], batch_size: int = 32
    ) -> list[Encoded]:
        """Each text's vector and its spans' vectors, from one pass of the model."""

        def run(batch: list[int]) -> list[Encoded]:
            encodings = self._tokenizer.encode_batch([texts[i] for i in batch])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            types = np.array([e.type_ids for e in encodings], dtype=np.int64)
            feeds = dict(zip(ONNX_INPUTS, (ids, mask, types), strict=True))
            output = self._session.run(["last_hidden_state"], feeds)[0]
            hidden = np.asarray(output, dtype=np.float32)
            vectors = mean_pool(hidden, mask)
            return [
                (vectors[n], pool_spans(hidden[n], encoding.offsets, spans[i], vectors[n]))
                for n, (i, encoding) in enumerate(zip(batch, encodings, strict=True))
            ]

        return in_length_order(texts, batch_size, run)


class TorchEncoder:
    """sentence-transformers on torch: the reference the ONNX path is checked against."""

    def __init__(self, model_dir: Path, threads: int = 0) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        try:
            self._model: SentenceTransformer = SentenceTransformer(str(model_dir), device="cpu")
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot load model {model_dir}: {error}") from error

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        vectors = self._model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )  # fmt: skip
        return np.asarray(vectors, dtype=np.float32)

    def encode_spans(
        self, texts: list[str], spans: list[list[Span]], batch_size: int = 32
    ) -> list[Encoded]:
        """Each text's vector and its spans' vectors, from one pass of the transformer (the
        same tokens and pooling as sentence-transformers uses for this model)."""
        import torch

        tokenizer = self._model.tokenizer
        transformer: Any = self._model[0].auto_model

        def run(batch: list[int]) -> list[Encoded]:
            features = tokenizer(
                [texts[i] for i in batch], padding=True, truncation=True,
                max_length=self._model.max_seq_length, return_offsets_mapping=True,
                return_tensors="pt",
            )  # fmt: skip
            offsets = features.pop("offset_mapping").tolist()
            with torch.no_grad():
                hidden = transformer(**features).last_hidden_state.float().numpy()
            vectors = mean_pool(hidden, features["attention_mask"].numpy())
            return [
                (vectors[n], pool_spans(hidden[n], offsets[n], spans[i], vectors[n]))
                for n, i in enumerate(batch)
            ]

        return in_length_order(texts, batch_size, run)


def export_onnx(model_dir: Path, target: Path, int8: bool = False) -> None:
    """Export the model's transformer to ``target`` (ONNX, opset 17), dynamically quantised
    to int8 per channel when asked. Needs torch; the file appears atomically."""
    import torch
    from transformers import AutoModel

    class ByKeyword(torch.nn.Module):
        """The legacy exporter passes inputs positionally, which in transformers 5 collide
        with ``use_cache``: call BERT by keyword instead."""

        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask,
                token_type_ids=token_type_ids, return_dict=True,
            ).last_hidden_state  # fmt: skip

    bert = AutoModel.from_pretrained(str(model_dir)).eval()
    ids = torch.randint(1000, 2000, (2, 16), dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0  # trace the padding path with real data
    axes = {name: {0: "batch", 1: "sequence"} for name in (*ONNX_INPUTS, "last_hidden_state")}
    target.parent.mkdir(parents=True, exist_ok=True)
    fp32 = target.with_name(target.name + ".fp32.tmp")
    # The tracer warns about shape-dependent branches in transformers; the export is checked
    # against sentence-transformers on every seed passage instead (tests/test_embed.py).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ByKeyword(bert).eval(), (ids, mask, torch.zeros_like(ids)), str(fp32),
            input_names=list(ONNX_INPUTS), output_names=["last_hidden_state"],
            dynamic_axes=axes, opset_version=ONNX_OPSET, do_constant_folding=True, dynamo=False,
        )  # fmt: skip
    if int8:
        _quantize(fp32, target)
        fp32.unlink()
    else:
        os.replace(fp32, target)


def _quantize(fp32: Path, target: Path) -> None:
    """Dynamic int8 quantisation, per channel, after ONNX Runtime's pre-processing."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = target.with_name(target.name + ".prep.tmp")
    partial = target.with_name(target.name + ".int8.tmp")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantize_dynamic(str(prepared), str(partial), per_channel=True, weight_type=QuantType.QInt8)
    prepared.unlink()
    os.replace(partial, target)

"""The two runtimes behind the Embedder: ONNX Runtime (the default, torch-free) and torch
(sentence-transformers, the reference), plus the one-off ONNX export that needs torch.

Both give the same normalized mean-pooled vectors (cosine >= 0.9999 on every seed passage, a
test checks), so fp32 vectors from either are interchangeable.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

ONNX_OPSET = 17
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def max_sequence_length(model_dir: Path) -> int:
    """Tokens one input may hold, special tokens included (sentence-transformers' setting)."""
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text())["max_seq_length"])
    return 512


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
        # Batches of similar length pad little; the output keeps the caller's order.
        order = np.argsort([len(text) for text in texts], kind="stable")
        parts = [
            (order[i : i + batch_size], self._run([texts[j] for j in order[i : i + batch_size]]))
            for i in range(0, len(texts), batch_size)
        ]
        vectors = np.empty((len(texts), parts[0][1].shape[1]), dtype=np.float32)
        for rows, encoded in parts:
            vectors[rows] = encoded
        return vectors

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        feeds = dict(zip(ONNX_INPUTS, (ids, mask, types), strict=True))
        hidden = np.asarray(self._session.run(["last_hidden_state"], feeds)[0], dtype=np.float32)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalized: np.ndarray = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return normalized


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

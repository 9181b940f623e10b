"""The two runtimes behind the Embedder: ONNX Runtime (the default, torch-free) and torch
(sentence-transformers, the reference), plus the one-off ONNX export that needs torch and the
graphs derived from it without torch (fused operators; 8-bit weights for queries).

Both runtimes give the same normalized mean-pooled vectors (cosine >= 0.9999 on every seed
passage, a test checks), so fp32 vectors from either are interchangeable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.errors import ModelError
from indexer.parse import Span

if TYPE_CHECKING:
    import onnx
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
    Runtime, mean-pool over real tokens and normalise in numpy.

    ``alone``: run each text by itself, for a graph whose 8-bit activations share one scale
    per tensor (``quantize_for_queries``): in a batch, a query's vector would depend on its
    batch-mates (cosine down to 0.975 to its own vector alone).
    """

    def __init__(
        self, onnx_file: Path, model_dir: Path, threads: int = 0, *, alone: bool = False
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # The file ships without truncation or padding; sentence-transformers truncates at
        # max_seq_length (special tokens included) and pads each batch to its longest text.
        self._tokenizer.enable_truncation(max_length=max_sequence_length(model_dir))
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        # Also for a graph fused offline: its session loads as fast at any level (0.38 s, 0.60 s
        # unfused), and every level's rewrites make its batches faster.
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
        self._alone = alone

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

        return in_length_order(texts, 1 if self._alone else batch_size, run)


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


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ONNX Runtime's graph tools log advice (pre-process first; no shapes for contrib
    operators) that does not apply to the way they are used here."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _rewire(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Every node that read ``old`` reads ``new`` instead."""
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]


def _scalar(graph: onnx.GraphProto, name: str) -> float | None:
    """The value of a one-element initializer or Constant node, else None."""
    from onnx import numpy_helper

    tensors = [*graph.initializer]
    tensors += [
        n.attribute[0].t for n in graph.node if n.op_type == "Constant" and n.output[0] == name
    ]
    for tensor in tensors:
        if tensor.name in (name, "") and np.prod(tensor.dims) == 1:
            return float(numpy_helper.to_array(tensor).reshape(()))
    return None


class _Graph:
    """Who makes and who reads each tensor of a graph, for the rewrites below."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.maker = {output: node for node in graph.node for output in node.output}
        self.readers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)

    def made(self, name: str, op_type: str) -> onnx.NodeProto | None:
        node = self.maker.get(name)
        return node if node is not None and node.op_type == op_type else None

    def read(self, name: str, op_type: str) -> list[onnx.NodeProto]:
        return [node for node in self.readers.get(name, []) if node.op_type == op_type]


def _drop_nan_guard(g: _Graph, softmax: onnx.NodeProto) -> list[onnx.NodeProto]:
    """``Where(IsNaN(p), 0, p)`` guards rows whose every key is masked; BERT has none (its
    first token is always real). The probabilities' MatMul with V then goes straight into a
    Reshape to its own shape ([batch, -1, tokens, head size]), which goes too."""
    guards, checks = g.read(softmax.output[0], "Where"), g.read(softmax.output[0], "IsNaN")
    if len(guards) != 1 or len(checks) != 1:
        return []
    weighted = g.read(guards[0].output[0], "MatMul")
    _rewire(g.graph, guards[0].output[0], softmax.output[0])
    reshapes = [r for m in weighted for r in g.read(m.output[0], "Reshape")]
    for reshape in reshapes:
        _rewire(g.graph, reshape.output[0], reshape.input[0])
    return [*guards, *checks, *reshapes]


def _merge_scales(g: _Graph, softmax: onnx.NodeProto) -> list[onnx.NodeProto]:
    """``MatMul(q * s, k * s)`` becomes ``MatMul(q, k) * s^2`` (s^2 = 1 / sqrt(head size)),
    the scaled scores the fusion looks for."""
    from onnx import helper, numpy_helper

    add = g.made(softmax.input[0], "Add")
    scores = next((m for m in (g.made(n, "MatMul") for n in add.input) if m), None) if add else None
    muls = [g.made(name, "Mul") for name in scores.input] if scores else []
    if scores is None or not all(muls):
        return []
    scale, removed = 1.0, []
    for position, mul in enumerate(muls):
        assert mul is not None
        factors = [_scalar(g.graph, name) for name in mul.input]
        if sorted(f is None for f in factors) != [False, True]:
            return []
        scale *= next(f for f in factors if f is not None)
        scores.input[position] = next(
            n for n, f in zip(mul.input, factors, strict=True) if f is None
        )
        removed.append(mul)
    factor, scaled = scores.name + "/scale", scores.output[0] + "/scaled"
    g.graph.initializer.append(numpy_helper.from_array(np.array(scale, np.float32), factor))
    _rewire(g.graph, scores.output[0], scaled)
    g.graph.node.insert(
        list(g.graph.node).index(scores) + 1,
        helper.make_node("Mul", [scores.output[0], factor], [scaled], name=scores.name + "/Mul"),
    )
    return removed


def _drop_bool_recasts(g: _Graph) -> list[onnx.NodeProto]:
    """A Cast to bool of a mask that is bool already (reshaped or gathered from one)."""
    from onnx import TensorProto

    def to_bool(node: onnx.NodeProto) -> bool:
        return node.op_type == "Cast" and node.attribute[0].i == TensorProto.BOOL

    removed = []
    for cast in [n for n in g.graph.node if to_bool(n)]:
        source = g.maker.get(cast.input[0])
        while source is not None and source.op_type in ("Reshape", "Gather", "Flatten"):
            source = g.maker.get(source.input[0])
        if source is not None and to_bool(source):
            _rewire(g.graph, cast.output[0], cast.input[0])
            removed.append(cast)
    return removed


def simplify_attention(model: onnx.ModelProto) -> None:
    """Rewrite, in place, transformers 5's traced scaled dot-product attention into the form
    ONNX Runtime's BERT fusion recognises; the graph computes the same thing."""
    g = _Graph(model.graph)
    removed = _drop_bool_recasts(g)
    for softmax in [node for node in model.graph.node if node.op_type == "Softmax"]:
        removed += _drop_nan_guard(g, softmax) + _merge_scales(g, softmax)
    for node in removed:
        model.graph.node.remove(node)


def fuse_graph(source: Path, target: Path, model_dir: Path) -> dict[str, int]:
    """Write ``source``'s graph to ``target`` (atomically) with ONNX Runtime's BERT operators
    fused offline: per layer one Attention, two SkipLayerNormalization and one BiasGelu, and one
    EmbedLayerNormalization in front. Returns how many of each it fused; ``ModelError`` when
    the model is no BERT or its attention does not fuse (then use ``source`` as it is)."""
    import onnx
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type") != "bert":
        raise ModelError(f"only BERT graphs are fused, not {config.get('model_type')!r} ones")
    model = onnx.load(str(source))
    simplify_attention(model)
    with _quiet():
        fused = optimize_model(
            model, model_type="bert", num_heads=config["num_attention_heads"],
            hidden_size=config["hidden_size"], opt_level=0,
        )  # fmt: skip
    counts = {name: n for name, n in fused.get_fused_operator_statistics().items() if n}
    if counts.get("Attention") != config["num_hidden_layers"]:
        raise ModelError(f"the attention of {source} did not fuse: {counts}")
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    fused.save_model_to_file(str(partial))  # in topological order, with the contrib opset
    os.replace(partial, target)
    return counts


def quantize_for_queries(source: Path, target: Path) -> None:
    """Write to ``target`` (atomically) ``source`` with its matrix products in 8 bits: weights
    int8 per output channel, activations quantised dynamically (one scale per tensor, hence
    ``OnnxEncoder(alone=True)``). The embedding table stays fp32, so rare words keep their
    exact vectors; the output is meant to sit in the fp32 model's vector space."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    with _quiet():
        quantize_dynamic(
            str(source), str(partial), per_channel=True, weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Attention"],
            # Shape inference knows no contrib operator (a fused graph's): their outputs are fp32.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )  # fmt: skip
    os.replace(partial, target)

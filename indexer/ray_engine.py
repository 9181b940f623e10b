"""The build's embedding step on a Ray cluster (``python -m indexer build --engine ray``).

Only "embed these texts" moves: the plan, parsing, chunking, the embedding cache, snapshot
writing and publishing stay in the building process. Each Ray actor loads the same model,
backend and precision once; the exported ONNX file travels from the driver through Ray's
object store, so no worker downloads or exports anything. Ray is an optional extra.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from indexer.embed import FUSED, Embedder, derived_model_file
from indexer.encoders import Encoded
from indexer.errors import ConfigurationError
from indexer.parse import Span

INSTALL_HINT = "the ray engine needs Ray: pip install -e '.[ray]'"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigurationError(INSTALL_HINT) from None
    return ray


class _Worker:
    """One actor: the model loaded once, from the ONNX bytes the driver put in the store
    (the fused graph when the driver has one, which the actor then never fuses again)."""

    def __init__(
        self, model: str, backend: str, precision: str, onnx: bytes, fingerprint: str,
        threads: int, fused: bool,
    ) -> None:  # fmt: skip
        folder = Path(tempfile.mkdtemp(prefix="seedsearch-ray-"))
        (folder / "model.onnx").write_bytes(onnx)
        if fused:
            os.link(folder / "model.onnx", derived_model_file(folder / "model.onnx", FUSED))
        self._embedder = Embedder(
            model, backend=backend, precision=precision,  # type: ignore[arg-type]
            model_file=lambda _: folder / "model.onnx", export=False, threads=threads,
        )  # fmt: skip
        if self._embedder.fingerprint != fingerprint:
            raise ConfigurationError(
                "a Ray worker holds other model weights than the builder: install the same "
                "model on every node"
            )

    def encode_spans(self, texts: list[str], spans: list[list[Span]]) -> list[Encoded]:
        return self._embedder.encode_spans(texts, spans)


class RayEmbedder:
    """An ``EmbeddingModel`` whose encoding runs on ``actors`` Ray actors of
    ``cpus_per_worker`` CPUs each (the model's thread count, so actors sharing a host never
    oversubscribe it); everything else (name, fingerprint, token counting) is the local
    model's."""

    def __init__(
        self,
        local: Embedder,
        model_file: Path,
        address: str | None = None,
        actors: int = 2,
        cpus_per_worker: int = 1,
    ) -> None:
        ray = _import_ray()
        if actors < 1:
            raise ConfigurationError("--ray-actors must be at least 1")
        self._local = local
        local.write_onnx(model_file)  # servers need it too, whichever engine embeds
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                options["address"] = address
            else:  # a local instance, on this machine only
                options.update(num_cpus=actors * cpus_per_worker, _node_ip_address="127.0.0.1")
            ray.init(**options)
        graph = derived_model_file(model_file, FUSED)
        fused = graph.is_file()
        onnx = ray.put((graph if fused else model_file).read_bytes())
        remote = ray.remote(num_cpus=cpus_per_worker)(_Worker)
        self._actors = [
            remote.remote(local.name if local.name != str(local.local_path) else "",
                          local.backend, local.precision, onnx, local.fingerprint,
                          cpus_per_worker, fused)
            for _ in range(actors)
        ]  # fmt: skip
        self._ray = ray

    @property
    def name(self) -> str:
        return self._local.name

    @property
    def fingerprint(self) -> str:
        return self._local.fingerprint

    @property
    def max_tokens(self) -> int:
        return self._local.max_tokens

    def count_tokens(self, text: str) -> int:
        return self._local.count_tokens(text)

    def close(self) -> None:
        """Stop the actors, freeing their CPUs on the cluster."""
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []

    def encode_spans(self, texts: list[str], spans: list[list[Span]]) -> list[Encoded]:
        """Split the batch across the actors, in order, and gather the results."""
        parts = np.array_split(np.arange(len(texts)), len(self._actors))
        futures = [
            actor.encode_spans.remote([texts[i] for i in part], [spans[i] for i in part])
            for actor, part in zip(self._actors, parts, strict=True)
            if len(part)
        ]
        return [encoded for result in self._ray.get(futures) for encoded in result]

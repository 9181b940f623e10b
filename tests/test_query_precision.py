"""Queries on 8-bit weights (SEEDSEARCH_QUERY_PRECISION=int8) against fp32 passages: the graph
is derived from the exported file without torch, its vectors stay close to fp32 ones and in
their vector space (the fingerprint), whatever batch a query shares."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SEED_QUERIES, HashEmbedder, new_corpus, shared
from test_embed import imported_modules, seed_chunk_texts

from indexer.build import build_index
from indexer.embed import FUSED, QUERY_INT8, Embedder, derived_model_file
from indexer.encoders import OnnxEncoder
from indexer.errors import ConfigurationError, ModelMismatchError
from indexer.settings import Settings, settings_from_flags
from indexer.store import IndexStore
from search_api.evaluation import load_queries
from search_api.models import SearchRequest
from search_api.searcher import Searcher

# Measured on the seed passages and dev queries: 0.9885 at the lowest (2026-12-01).
INT8_COSINE_FLOOR = 0.985


@pytest.fixture(scope="module")
def int8_root(tmp_path_factory: pytest.TempPathFactory, seed_settings: Settings) -> Path:
    """A copy of the seed index (hard links) searched once from the command line with 8-bit
    queries, which derives their graph there."""
    root = tmp_path_factory.mktemp("int8-queries") / "index"
    shutil.copytree(seed_settings.index_dir, root, copy_function=os.link)
    code, heavy = imported_modules(
        "scripts/search.py", "flood evacuations", "--index", str(root),
        env={"SEEDSEARCH_QUERY_PRECISION": "int8"},
    )  # fmt: skip
    assert code == 0 and heavy == set()
    return root


@pytest.fixture(scope="module")
def int8_queries(int8_root: Path) -> Embedder:
    return Embedder(
        query_precision="int8", model_file=IndexStore(int8_root).model_file, export=False
    )


def test_the_8_bit_graph_is_derived_beside_the_export_by_a_process_without_torch(
    int8_root: Path, embedder: Embedder
) -> None:
    exported = IndexStore(int8_root).model_file(embedder.fingerprint)
    int8 = derived_model_file(exported, QUERY_INT8)
    assert int8.is_file() and int8.stat().st_size < exported.stat().st_size * 0.7
    assert derived_model_file(exported, FUSED).is_file()


def test_8_bit_query_vectors_stay_close_to_fp32_ones(
    embedder: Embedder, int8_queries: Embedder
) -> None:
    queries = [query.query for query in load_queries(shared(SEED_QUERIES))]
    texts = [*seed_chunk_texts(embedder), *queries]
    int8 = np.concatenate([int8_queries.encode_query(text) for text in texts])
    cosines = np.sum(int8 * embedder.encode(texts), axis=1)
    assert len(texts) == 66
    assert cosines.min() >= INT8_COSINE_FLOOR, cosines.min()
    assert cosines.max() < 0.99999  # they are other numbers, not the fp32 graph's


def test_a_query_gets_one_8_bit_vector_whatever_batch_it_shares(
    int8_root: Path, embedder: Embedder
) -> None:
    exported = IndexStore(int8_root).model_file(embedder.fingerprint)
    texts = [f"flood evacuations along river {n}" for n in range(11)] + ["Gaza"]
    cosines = {}
    for alone in (True, False):
        loaded = OnnxEncoder(
            derived_model_file(exported, QUERY_INT8), embedder.local_path, alone=alone
        )
        singles = np.concatenate([loaded.encode([text]) for text in texts])
        cosines[alone] = float(np.sum(loaded.encode(texts) * singles, axis=1).min())
    assert cosines[True] >= 0.99999
    # Batched, activations share one 8-bit scale: why the graph runs each text alone.
    assert cosines[False] < 0.999


def test_8_bit_queries_search_fp32_snapshots(
    seed_settings: Settings, embedder: Embedder, int8_queries: Embedder
) -> None:
    assert int8_queries.fingerprint == embedder.fingerprint
    searcher = Searcher.open(IndexStore(seed_settings.index_dir), int8_queries)
    try:
        top = searcher.search(SearchRequest(query="flood evacuations", k=3, mode="dense"))
    finally:
        searcher.close()
    assert any(r.text.startswith("Morocco has evacuated") for r in top.results)


class Int8StandIn(HashEmbedder):
    """The stand-in model, recording the int8 model's fingerprint in what it builds."""

    fingerprint = Embedder(precision="int8").fingerprint


def test_an_int8_build_is_searched_only_with_its_own_int8_model(tmp_path: Path) -> None:
    settings = Settings(seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "index")
    build_index(settings, embedder=Int8StandIn())
    store = IndexStore(settings.index_dir)
    with pytest.raises(ModelMismatchError):
        Searcher.open(store, Embedder(query_precision="int8"))  # fp32 weights, 8-bit queries
    own = Embedder(precision="int8", query_precision="fp32")
    assert own.query_precision == "int8"  # an int8 build's only compatible query graph
    Searcher.open(store, own).close()


def test_the_query_precision_is_a_validated_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEEDSEARCH_QUERY_PRECISION", "int4")
    with pytest.raises(ConfigurationError, match="SEEDSEARCH_QUERY_PRECISION"):
        settings_from_flags()
    monkeypatch.setenv("SEEDSEARCH_QUERY_PRECISION", "int8")
    settings = settings_from_flags(index_dir=tmp_path)
    assert settings.query_precision == "int8" and settings.precision == "fp32"
    served = Embedder.for_index(settings, IndexStore(tmp_path), export=False)
    assert served.query_precision == "int8"

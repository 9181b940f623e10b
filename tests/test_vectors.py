"""The vector index types: built, memory-mapped, searched with and without filters, chosen by
corpus size, recorded in the manifest. Small real FAISS indexes over clustered random vectors;
no model needed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from indexer.errors import IndexSpecError
from indexer.store import FLAT_LIMIT, HNSW_LIMIT, Manifest, VectorIndexSpec, choose_index
from indexer.store import _vectors as vectors_module
from indexer.store._manifest import SCHEMA_VERSION
from indexer.store._vectors import VectorIndex, write_vectors

ROWS, DIMENSION, CLUSTERS = 4000, 64, 40
SPECS = {
    "flat": choose_index(ROWS, index_type="flat"),
    "hnsw": choose_index(ROWS, index_type="hnsw"),
    "ivf-sq8": choose_index(ROWS, index_type="ivf", params={"nlist": 32, "nprobe": 8}),
    "ivf-pq-refined": choose_index(
        ROWS, index_type="ivf", params={"nlist": 32, "nprobe": 8, "codes": "PQ16", "refine": "Flat"}
    ),
}


def normalized(matrix: np.ndarray) -> np.ndarray:
    normal: np.ndarray = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return normal.astype(np.float32)


@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, np.ndarray]:
    """(rows, queries): points scattered around shared centres, as embeddings of topics are."""
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((CLUSTERS, DIMENSION))
    rows = centres[rng.integers(0, CLUSTERS, ROWS)] + 0.6 * rng.standard_normal((ROWS, DIMENSION))
    queries = centres[rng.integers(0, CLUSTERS, 50)] + 0.6 * rng.standard_normal((50, DIMENSION))
    return normalized(rows), normalized(queries)


@pytest.fixture(scope="module")
def indexes(
    corpus: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, VectorIndex]:
    folder = tmp_path_factory.mktemp("vectors")
    opened = {}
    for name, spec in SPECS.items():
        write_vectors(folder / f"{name}.faiss", corpus[0], spec)
        opened[name] = VectorIndex(folder / f"{name}.faiss", spec)
    return opened


def exact_top(rows: np.ndarray, query: np.ndarray, depth: int, allowed: list[int]) -> list[int]:
    scores = rows[allowed] @ query
    return [allowed[i] for i in np.argsort(-scores, kind="stable")[:depth]]


@pytest.mark.parametrize("name", SPECS)
def test_every_index_type_is_read_memory_mapped_not_copied(
    name: str, indexes: dict[str, VectorIndex]
) -> None:
    # A mapping of the file in this process means its pages are shared with other readers.
    mapped = Path("/proc/self/maps").read_text()
    assert f"{name}.faiss" in mapped
    assert len(indexes[name]) == ROWS


@pytest.mark.parametrize("name", SPECS)
def test_vector_ids_are_chunk_rows(
    name: str, indexes: dict[str, VectorIndex], corpus: tuple[np.ndarray, np.ndarray]
) -> None:
    rows = corpus[0]
    for row in (0, 1234, ROWS - 1):
        assert indexes[name].nearest(rows[row][None, :], 1)[0][0] == row


@pytest.mark.parametrize("name", ["hnsw", "ivf-sq8", "ivf-pq-refined"])
def test_approximate_indexes_find_most_of_the_exact_top_ten(
    name: str, indexes: dict[str, VectorIndex], corpus: tuple[np.ndarray, np.ndarray]
) -> None:
    rows, queries = corpus
    everything = list(range(ROWS))
    found = [
        len(
            {r for r, _ in indexes[name].nearest(q[None, :], 10)}
            & set(exact_top(rows, q, 10, everything))
        )
        for q in queries
    ]
    assert sum(found) / (10 * len(queries)) >= 0.9


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("exact_filter_limit", [20_000, 100], ids=["scored", "searched"])
def test_filtered_search_returns_only_allowed_rows(
    name: str,
    exact_filter_limit: int,
    indexes: dict[str, VectorIndex],
    corpus: tuple[np.ndarray, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A limit of 100 sends the 1334 allowed rows through the index's own selector search.
    monkeypatch.setattr(vectors_module, "EXACT_FILTER_LIMIT", exact_filter_limit)
    allowed = list(range(0, ROWS, 3))
    hits = indexes[name].nearest(corpus[1][0][None, :], 20, allowed)
    assert len(hits) == 20
    assert all(row % 3 == 0 for row, _ in hits)
    assert [score for _, score in hits] == sorted((score for _, score in hits), reverse=True)


@pytest.mark.parametrize("name", ["ivf-sq8", "ivf-pq-refined"])
def test_an_ivf_index_keeps_filters_exact(
    name: str, indexes: dict[str, VectorIndex], corpus: tuple[np.ndarray, np.ndarray]
) -> None:
    # A small filtered subset is scored whole, so rows in lists the query never probes count.
    rows, queries = corpus
    allowed = list(range(5, ROWS, 97))
    for query in queries[:10]:
        hits = indexes[name].nearest(query[None, :], 5, allowed)
        assert [row for row, _ in hits] == exact_top(rows, query, 5, allowed)


def test_the_index_type_follows_corpus_size_at_the_measured_thresholds() -> None:
    assert choose_index(0).type == "flat"
    assert choose_index(FLAT_LIMIT).type == "flat"
    assert choose_index(FLAT_LIMIT + 1).type == "hnsw"
    assert choose_index(HNSW_LIMIT).type == "hnsw"
    assert choose_index(HNSW_LIMIT + 1).type == "ivf"


def test_the_chosen_index_spells_out_every_parameter() -> None:
    ivf = choose_index(10_000_000)
    assert set(ivf.params) == {"nlist", "codes", "refine", "nprobe", "k_factor"}
    assert ivf.int_param("nlist") > 0
    assert choose_index(100_000).params == choose_index(100_000, index_type="hnsw").params


def test_an_explicit_type_or_parameter_overrides_the_choice() -> None:
    assert choose_index(10, index_type="ivf").type == "ivf"
    assert choose_index(10, flat_limit=5).type == "hnsw"
    assert choose_index(100_000, params={"ef_search": 64}).int_param("ef_search") == 64
    with pytest.raises(IndexSpecError, match="nprobe"):
        choose_index(100_000, index_type="hnsw", params={"nprobe": 8})
    with pytest.raises(IndexSpecError, match="unknown index type"):
        choose_index(100_000, index_type="annoy")  # type: ignore[arg-type]


MANIFEST = {
    "snapshot_id": "20250101T000000Z-abc",
    "model_name": "all-MiniLM-L6-v2",
    "model_fingerprint": "f" * 16,
    "dimension": 384,
    "chunking": {"max_tokens": 256},
    "index_type": "hnsw",
    "files": [],
    "articles": 0,
    "chunks": 0,
    "built_at": "2025-01-01T00:00:00+00:00",
    "schema_version": SCHEMA_VERSION,
}


def test_index_parameters_round_trip_through_the_manifest() -> None:
    spec = choose_index(5_000_000, params={"nprobe": 48, "refine": "SQ8"})
    manifest = replace(
        Manifest.from_json(json.dumps(MANIFEST)),
        index_type=spec.type,
        index_params=dict(spec.params),
    )
    assert Manifest.from_json(manifest.to_json()).index == spec


def test_a_manifest_from_before_index_parameters_loads_with_the_defaults() -> None:
    manifest = Manifest.from_json(json.dumps(MANIFEST))
    assert manifest.index == VectorIndexSpec(
        "hnsw", {"m": 32, "ef_construction": 64, "ef_search": 512}
    )
    # ... and holds the same content as one built today with the default parameters.
    rebuilt = replace(manifest, index_params=dict(choose_index(100_000, index_type="hnsw").params))
    assert manifest.content_key() == rebuilt.content_key()


def test_ivf_scans_more_lists_on_smaller_corpora_within_bounds() -> None:
    assert choose_index(1_000_000, index_type="ivf").params["nprobe"] == 256
    assert choose_index(10_000_000, index_type="ivf").params["nprobe"] == 82
    assert choose_index(100_000_000, index_type="ivf").params["nprobe"] == 32
    assert choose_index(10_000_000, index_type="ivf", params={"nprobe": 8}).params["nprobe"] == 8


@pytest.mark.parametrize("name", SPECS)
def test_within_finds_the_rows_above_a_bar_and_says_when_a_bound_cut_it(
    name: str, indexes: dict[str, VectorIndex], corpus: tuple[np.ndarray, np.ndarray]
) -> None:
    rows, queries = corpus
    # Compressed codes (SQ8) score a little off the exact cosine.
    slack = 0.02 if name == "ivf-sq8" else 1e-5
    for query in queries[:10]:
        exact = rows @ query
        ordered = np.sort(exact)
        bar = float(ordered[-200] + ordered[-201]) / 2  # the 200 closest rows clear it
        found = indexes[name].within(query[None, :], bar)
        assert found.exhaustive and bool((found.scores >= bar).all())
        assert set(found.rows.tolist()) <= set(np.flatnonzero(exact >= bar - slack).tolist())
        if name == "flat":  # exact: every row above the bar, none missed
            assert set(found.rows.tolist()) == set(np.flatnonzero(exact >= bar).tolist())
        # Filtered to a small subset, every index scores the subset's rows one by one.
        allowed = list(range(0, ROWS, 3))
        subset = set(indexes[name].within(query[None, :], bar, allowed).rows.tolist())
        assert {r for r in allowed if exact[r] >= bar + slack} <= subset
        assert subset <= {r for r in allowed if exact[r] >= bar - slack}
    # A bar every row clears: an approximate index stops at its depth bound (or at the lists
    # it visits) and says the set may go deeper.
    everything = indexes[name].within(queries[0][None, :], -1.0)
    if name == "flat":
        assert len(everything.rows) == ROWS and everything.exhaustive
    else:
        assert len(everything.rows) <= vectors_module.APPROXIMATE_MATCH_DEPTH
        assert not everything.exhaustive

"""The build's embedding step on Ray (a local two-CPU instance on 127.0.0.1): the same vectors
and the same rankings as the local engine, and a clear hint when Ray is not installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import new_corpus, run_python

from indexer import build
from indexer.build import build_index
from indexer.embed import Embedder
from indexer.errors import EXIT_USAGE, BuildError
from indexer.faults import FAULT_VARIABLE
from indexer.settings import Settings
from indexer.store import IndexStore
from search_api.evaluation import load_queries
from search_api.models import SearchRequest
from search_api.searcher import Searcher

ray = pytest.importorskip("ray", reason="the ray extra is not installed")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def two_builds(
    local_ray: None, tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> tuple[Settings, Settings]:
    """The seed corpus built by each engine into its own index root, so neither cache can
    turn the other build into a no-op."""
    from indexer.ray_engine import RayEmbedder

    root = tmp_path_factory.mktemp("engines")
    seeds = new_corpus(root / "seeds")
    local = Settings(seeds_dir=seeds, index_dir=root / "local")
    on_ray = Settings(seeds_dir=seeds, index_dir=root / "ray")
    build_index(local, embedder=embedder)
    remote = RayEmbedder(embedder, IndexStore(on_ray.index_dir).model_file(embedder.fingerprint))
    try:
        report = build_index(on_ray, embedder=remote)
    finally:
        remote.close()  # frees the instance's two CPUs for the next test's actors
    assert report.published and report.embedded == report.chunks == 46
    return local, on_ray


def _vectors(settings: Settings, fingerprint: str) -> tuple[list[str], dict[str, np.ndarray],
                                                             dict[str, np.ndarray]]:  # fmt: skip
    store = IndexStore(settings.index_dir)
    snapshot = store.open_snapshot()
    texts = snapshot.embedded_texts()
    snapshot.close()
    with store.embedding_cache(fingerprint) as cache:
        return texts, cache.get_many(texts), cache.get_spans(texts)


def test_ray_embeds_the_same_vectors_as_the_local_engine(
    two_builds: tuple[Settings, Settings], embedder: Embedder
) -> None:
    local_texts, local, local_spans = _vectors(two_builds[0], embedder.fingerprint)
    ray_texts, remote, remote_spans = _vectors(two_builds[1], embedder.fingerprint)
    assert local_texts == ray_texts and len(remote) == len(set(local_texts))
    cosines = [float(local[t] @ remote[t]) for t in local_texts]
    assert min(cosines) >= 0.9999
    assert set(local_spans) == set(remote_spans) and local_spans
    for text, sentences in local_spans.items():
        assert float(np.sum(sentences * remote_spans[text], axis=1).min()) >= 0.999


def test_the_dev_queries_rank_the_same_passages_in_the_same_order(
    two_builds: tuple[Settings, Settings], embedder: Embedder, seed_queries: Path
) -> None:
    searchers = [Searcher.open(IndexStore(s.index_dir), embedder) for s in two_builds]
    try:
        for labelled in load_queries(seed_queries):
            request = SearchRequest(query=labelled.query, k=10)
            local, remote = (searcher.search(request).results for searcher in searchers)
            assert [r.chunk_id for r in local] == [r.chunk_id for r in remote], labelled.query
    finally:
        for searcher in searchers:
            searcher.close()


def test_an_interrupted_ray_build_resumes_from_the_embedding_cache(
    local_ray: None, embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ray build that fails after its first batch is cached (a full disk, here) publishes
    nothing; the next one embeds only the rest."""
    from indexer.ray_engine import RayEmbedder

    settings = Settings(seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "index")
    store = IndexStore(settings.index_dir)
    remote = RayEmbedder(embedder, store.model_file(embedder.fingerprint))
    monkeypatch.setattr(build, "EMBED_BATCH", 16)  # several batches from the small corpus
    try:
        monkeypatch.setenv(FAULT_VARIABLE, "embedding:enospc")
        with pytest.raises(BuildError, match="No space left on device"):
            build_index(settings, embedder=remote)
        assert store.current_id() is None
        monkeypatch.delenv(FAULT_VARIABLE)
        report = build_index(settings, embedder=remote)
    finally:
        remote.close()
    assert report.published and report.chunks == 46 and report.computed == 46 - 16


def test_without_ray_the_engine_says_how_to_install_it(tmp_path: Path) -> None:
    shadow = tmp_path / "no-ray" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    done = run_python(
        "-m", "indexer", "build", "--seeds", str(new_corpus(tmp_path / "seeds")),
        "--index", str(tmp_path / "index"), "--engine", "ray",
        env={"PYTHONPATH": str(shadow.parent)},
    )  # fmt: skip
    assert done.returncode == EXIT_USAGE
    assert done.stderr.strip() == "error: the ray engine needs Ray: pip install -e '.[ray]'"

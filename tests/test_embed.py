"""The model on both runtimes: ONNX Runtime (default) against the torch reference, the graph
fused offline against the exported one, the fingerprint, and a query path that never imports
torch."""

from __future__ import annotations

import collections
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import EXPORTED_MODELS, SEED_FILE, new_corpus, run_python

from indexer.build import build_index
from indexer.chunk import ChunkingParams, chunk_articles, sentence_spans
from indexer.embed import FUSED, Embedder, derived_model_file
from indexer.encoders import OnnxEncoder, fuse_graph, pool_spans
from indexer.errors import EXIT_FAILURE, ModelError
from indexer.parse import decode_source, parse_articles
from indexer.settings import Settings
from indexer.store import IndexStore
from search_api.models import SearchRequest
from search_api.searcher import Searcher

HEAVY_MODULES = ("torch", "transformers", "sentence_transformers")


def seed_chunk_texts(embedder: Embedder) -> list[str]:
    text = decode_source(SEED_FILE.read_bytes())
    params = ChunkingParams(max_tokens=embedder.max_tokens, embed_title=False)
    chunks = chunk_articles(
        parse_articles(text), SEED_FILE.name, text, params, embedder.count_tokens
    )
    return [chunk.embed_text for chunk in chunks]


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return Embedder(backend="torch")


def test_onnx_vectors_match_torch_on_every_seed_passage(
    embedder: Embedder, torch_embedder: Embedder
) -> None:
    texts = [*seed_chunk_texts(embedder), "flood evacuations", "Gaza"]
    cosines = np.sum(embedder.encode(texts) * torch_embedder.encode(texts), axis=1)
    assert embedder.backend == "onnx" and len(texts) == 48
    assert cosines.min() >= 0.9999, cosines.min()


def test_sentence_vectors_come_from_the_passage_pass_and_match_across_runtimes(
    embedder: Embedder, torch_embedder: Embedder
) -> None:
    texts = [t for t in seed_chunk_texts(embedder) if len(sentence_spans(t)) > 1]
    spans = [sentence_spans(t) for t in texts]
    onnx, torch = embedder.encode_spans(texts, spans), torch_embedder.encode_spans(texts, spans)
    assert len(texts) >= 5
    for text, found, (vector, sentences), (torch_vector, torch_sentences) in zip(
        texts, spans, onnx, torch, strict=True
    ):
        assert sentences.shape == (len(found), vector.shape[0])
        assert np.allclose(np.linalg.norm(sentences, axis=1), 1.0, atol=1e-5)
        assert float(vector @ embedder.encode([text])[0]) >= 0.9999  # the passage, unchanged
        assert float(vector @ torch_vector) >= 0.9999
        assert float(np.sum(sentences * torch_sentences, axis=1).min()) >= 0.999
        # In context, a sentence's vector is close to its passage's, not equal to it.
        assert all(0.5 < float(s @ vector) < 0.9999 for s in sentences)


def test_the_fused_graph_gives_the_exported_graphs_vectors(embedder: Embedder) -> None:
    fused = derived_model_file(embedder.onnx_file, FUSED)
    operators = collections.Counter(n.op_type for n in onnx.load(str(fused)).graph.node)
    assert {op: operators[op] for op in ("Attention", "SkipLayerNormalization")} == {
        "Attention": 6, "SkipLayerNormalization": 12,
    }  # fmt: skip
    assert operators["EmbedLayerNormalization"] == 1 and operators["BiasGelu"] == 6
    texts = [*seed_chunk_texts(embedder), "flood evacuations", "Gaza"]
    exported = OnnxEncoder(embedder.onnx_file, embedder.local_path)
    cosines = np.sum(embedder.encode(texts) * exported.encode(texts), axis=1)
    assert cosines.min() >= 0.99999, cosines.min()


def test_only_bert_graphs_are_fused(tmp_path: Path, embedder: Embedder) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mpnet"}))
    with pytest.raises(ModelError, match="only BERT"):
        fuse_graph(embedder.onnx_file, tmp_path / "fused.onnx", tmp_path)
    assert not (tmp_path / "fused.onnx").exists()


def test_a_span_takes_the_tokens_it_covers_or_the_whole_text_past_truncation() -> None:
    hidden = np.array([[9.0, 9.0], [1.0, 0.0], [0.0, 1.0], [0.0, 3.0], [9.0, 9.0]])
    offsets = [(0, 0), (0, 3), (4, 7), (8, 11), (0, 0)]  # [CLS] three words [SEP]
    whole = np.array([0.6, 0.8], dtype=np.float32)
    pooled = pool_spans(hidden, offsets, [(0, 3), (4, 11), (20, 30)], whole)
    assert np.allclose(pooled, [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    assert pool_spans(hidden, offsets, [], whole).shape == (0, 2)


def test_fp32_vectors_from_either_runtime_share_a_fingerprint_and_int8_does_not(
    embedder: Embedder, torch_embedder: Embedder
) -> None:
    assert embedder.fingerprint == torch_embedder.fingerprint
    assert Embedder(precision="int8").fingerprint != embedder.fingerprint


def test_a_new_index_root_links_the_model_exported_once_instead_of_exporting_again(
    tmp_path: Path, embedder: Embedder
) -> None:
    shared = EXPORTED_MODELS / f"{embedder.fingerprint}.onnx"
    assert shared.is_file()  # the session's one export
    seeds, index = new_corpus(tmp_path / "seeds"), tmp_path / "index"
    done = run_python("-m", "indexer", "build", "--seeds", str(seeds), "--index", str(index))
    assert done.returncode == 0, done.stderr
    linked = IndexStore(index).model_file(embedder.fingerprint)
    assert linked.stat().st_ino == shared.stat().st_ino
    fused = derived_model_file(linked, FUSED)  # derived once too, in the shared folder
    assert fused.stat().st_ino == derived_model_file(shared, FUSED).stat().st_ino


def test_an_index_built_on_torch_serves_on_onnx_without_re_embedding(
    tmp_path: Path, embedder: Embedder, torch_embedder: Embedder
) -> None:
    settings = Settings(seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "index")
    built = build_index(settings, embedder=torch_embedder)
    assert IndexStore(settings.index_dir).model_file(embedder.fingerprint).is_file()
    again = build_index(settings, embedder=embedder)
    assert (again.published, again.embedded) == (False, 0)
    searcher = Searcher.open(IndexStore(settings.index_dir), embedder)
    try:
        top = searcher.search(SearchRequest(query="flood evacuations", k=3, mode="dense"))
    finally:
        searcher.close()
    assert top.snapshot == built.snapshot
    assert any(r.text.startswith("Morocco has evacuated") for r in top.results)


def test_int8_vectors_never_mix_with_fp32_ones(tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings(seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "index")
    build_index(settings, embedder=embedder)
    int8 = build_index(settings.model_copy(update={"precision": "int8"}))
    assert int8.published and int8.embedded == int8.chunks == 46  # nothing reused from fp32
    manifest = IndexStore(settings.index_dir).manifest()
    assert manifest.model_fingerprint == Embedder(precision="int8").fingerprint


def imported_modules(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """Run a command under a wrapper that reports which heavy modules it imported."""
    wrapper = (
        "import atexit, json, runpy, sys\n"
        f"atexit.register(lambda: print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]), file=sys.stderr))\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__') if sys.argv[0].endswith('.py') else runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
    )
    done = run_python("-c", wrapper, *args, env=env)
    return done.returncode, set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_the_query_path_and_a_no_op_build_never_import_torch(seed_settings: Settings) -> None:
    index = str(seed_settings.index_dir)
    code, heavy = imported_modules("scripts/search.py", "flood evacuations", "--index", index)
    assert code == 0 and heavy == set()
    code, heavy = imported_modules(
        "indexer", "build", "--seeds", str(seed_settings.seeds_dir), "--index", index, "--json"
    )
    assert code == 0 and heavy == set()


def test_the_server_never_imports_torch(seed_settings: Settings) -> None:
    app = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from indexer.settings import Settings\n"
        "from search_api.app import create_app\n"
        f"with TestClient(create_app(Settings(index_dir={str(seed_settings.index_dir)!r}))) as client:\n"
        "    assert client.get('/search', params={'q': 'flood evacuations'}).json()['results']\n"
    )
    done = run_python(
        "-c",
        app
        + "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_server_without_the_exported_model_says_so_and_exits_1(
    seed_settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "index"
    shutil.copytree(seed_settings.index_dir, root)
    shutil.rmtree(root / "models")
    done = run_python("-m", "search_api", "--index", str(root), "--port", "8")
    assert done.returncode == EXIT_FAILURE
    stderr = done.stderr.strip()
    assert "Traceback" not in stderr and len(stderr.splitlines()) == 1
    assert "is missing: run python -m indexer build" in stderr


def test_concurrent_queries_get_the_vectors_they_would_get_alone(embedder: Embedder) -> None:
    texts = [f"flood evacuations along river {n}" for n in range(24)]
    alone = embedder.encode(texts)
    with ThreadPoolExecutor(max_workers=12) as pool:
        together = list(pool.map(embedder.encode_query, texts))
    cosines = [float(np.dot(a, b[0])) for a, b in zip(alone, together, strict=True)]
    assert min(cosines) >= 0.9999

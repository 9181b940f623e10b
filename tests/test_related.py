"""Related coverage: article vectors, the article-level duplicate rule, ``/similar``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import BBC, HashEmbedder, Server, new_corpus, shared

from indexer.build import build_index
from indexer.embed import Embedder
from indexer.errors import SnapshotError
from indexer.settings import Settings
from indexer.store import IndexStore, RowColumns
from indexer.store._columns import article_vectors
from search_api.searcher import Searcher

# Whole republications of the BBC corpus (tests/test_duplicates.py found them) and one
# article unrelated to any of them.
REPUBLISHED = [
    ("business/007.txt", "business/253.txt"),
    ("politics/004.txt", "politics/330.txt"),
    ("sport/112.txt", "sport/121.txt"),
    ("entertainment/102.txt", "entertainment/341.txt"),
    ("tech/286.txt", "tech/391.txt"),  # one paragraph edited: still a near-duplicate
]
OTHERS = ["business/001.txt", "business/002.txt", "tech/001.txt", "sport/001.txt"]


def bbc_corpus(directory: Path, names: list[str]) -> Path:
    """A seeds folder of the seed file and these BBC files, under ``bbc/<category>/``."""
    new_corpus(directory)
    for name in names:
        target = directory / "bbc" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared(BBC) / name, target)
    return directory


def article_of(searcher: Searcher, source: str) -> str:
    """The id of the (only) article of a source file."""
    columns = searcher.snapshot.columns
    codes = {int(c) for c, s in zip(columns.article, columns.source, strict=True)
             if columns.sources[s] == source}  # fmt: skip
    (code,) = codes
    return columns.article_ids[code]


# The rule as pure logic.


def columns_of(rows: list[tuple[str, int | None]]) -> RowColumns:
    """Columns of rows given as (article, duplicate_of)."""
    return RowColumns.from_rows((a, d, None, "s.txt", "paragraph") for a, d in rows)


def duplicates(columns: RowColumns, article: str) -> list[str]:
    code = columns.article_code(article)
    assert code is not None
    return [columns.article_ids[c] for c in columns.duplicate_articles(code)]


def test_an_article_whose_every_passage_is_grouped_with_anothers_duplicates_it() -> None:
    columns = columns_of([("a", None), ("a", None), ("b", 0), ("b", 1), ("c", 0), ("c", None)])
    assert duplicates(columns, "a") == ["b"]  # c has a passage of its own
    assert duplicates(columns, "c") == []  # a has a passage c lacks


def test_a_shorter_copy_duplicates_the_longer_one_but_not_the_other_way_round() -> None:
    columns = columns_of([("a", None), ("a", None), ("b", 0)])
    assert duplicates(columns, "a") == ["b"]
    assert duplicates(columns, "b") == []


def test_an_article_with_no_grouped_passage_has_no_duplicates() -> None:
    columns = columns_of([("a", None), ("b", None)])
    assert duplicates(columns, "a") == duplicates(columns, "b") == []
    assert columns.article_code("zzz") is None


def test_article_vectors_are_the_normalised_mean_of_their_passages() -> None:
    vectors = np.eye(3, dtype=np.float32)[[0, 1, 2]]
    found = article_vectors(np.asarray([0, 0, 1]), vectors, 2)
    assert np.allclose(found, np.array([[2**-0.5, 2**-0.5, 0], [0, 0, 1]]))


@pytest.fixture(scope="module")
def stand_in_bbc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Searcher]:
    """The republished BBC pairs and a few others, built by the stand-in model."""
    root = tmp_path_factory.mktemp("related-stand-in")
    names = [name for pair in REPUBLISHED for name in pair] + OTHERS
    settings = Settings(seeds_dir=bbc_corpus(root / "seeds", names), index_dir=root / "index")
    build_index(settings, embedder=HashEmbedder())
    opened = Searcher.open(IndexStore(settings.index_dir), HashEmbedder())
    yield opened
    opened.close()


@pytest.mark.parametrize(("first", "second"), REPUBLISHED)
def test_republished_bbc_articles_are_duplicates_of_each_other(
    stand_in_bbc: Searcher, first: str, second: str
) -> None:
    columns = stand_in_bbc.snapshot.columns
    one, other = article_of(stand_in_bbc, f"bbc/{first}"), article_of(stand_in_bbc, f"bbc/{second}")
    assert duplicates(columns, one) == [other]
    assert duplicates(columns, other) == [one]


def test_unrelated_bbc_articles_have_no_duplicates(stand_in_bbc: Searcher) -> None:
    for name in OTHERS:
        assert (
            duplicates(stand_in_bbc.snapshot.columns, article_of(stand_in_bbc, f"bbc/{name}")) == []
        )


def test_the_manifest_records_how_article_vectors_were_made(stand_in_bbc: Searcher) -> None:
    manifest = stand_in_bbc.snapshot.manifest
    assert manifest.article_vectors == "mean of passage vectors, normalised"
    assert "articles.npy" in {f.name for f in manifest.data_files}


# The real model, over a small build holding a republished pair.


@pytest.fixture(scope="module")
def bbc_searcher(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[Searcher]:
    root = tmp_path_factory.mktemp("related")
    names = [*REPUBLISHED[0], *OTHERS]
    settings = Settings(seeds_dir=bbc_corpus(root / "seeds", names), index_dir=root / "index")
    build_index(settings, embedder=embedder)
    opened = Searcher.open(IndexStore(settings.index_dir), embedder)
    yield opened
    opened.close()


def test_similar_lists_the_closest_articles_then_the_duplicates(bbc_searcher: Searcher) -> None:
    original = article_of(bbc_searcher, "bbc/business/007.txt")
    copy = article_of(bbc_searcher, "bbc/business/253.txt")
    found = bbc_searcher.similar(original, 2)
    assert found is not None and found.article_id == original
    listed = [a.article_id for a in found.articles]
    assert original not in listed
    assert listed[-1] == copy and [a.duplicate for a in found.articles] == [False, False, True]
    closest = found.articles[:2]
    assert closest[0].score >= closest[1].score
    # The other business stories are closer to a business story than sport or tech.
    assert {a.source for a in closest} == {"bbc/business/001.txt", "bbc/business/002.txt"}
    for similar in found.articles:
        tie = bbc_searcher.article(similar.article_id)
        assert tie is not None
        assert (similar.chunk_id, similar.text) in {(p.chunk_id, p.text) for p in tie.passages}


def test_k_counts_no_duplicate_and_stops_at_the_archive(bbc_searcher: Searcher) -> None:
    original = article_of(bbc_searcher, "bbc/business/007.txt")
    articles = bbc_searcher.snapshot.manifest.articles
    found = bbc_searcher.similar(original, 50)
    assert found is not None
    assert len(found.articles) == articles - 1  # every other article, the copy last
    assert [a.duplicate for a in found.articles].count(True) == 1
    assert found.articles[-1].duplicate


def test_an_unknown_article_has_no_similar(bbc_searcher: Searcher) -> None:
    assert bbc_searcher.similar("no-such-article", 5) is None


# The route, on the session server (the seed file's articles).


def first_article(server: Server) -> str:
    answer = httpx.post(
        f"{server.url}/search", json={"query": "Gaza ceasefire talks in Miami", "k": 1}
    ).json()
    return str(answer["results"][0]["article_id"])


def test_the_similar_route_answers_the_declared_shape(server: Server) -> None:
    article = first_article(server)
    answer = httpx.get(f"{server.url}/articles/{article}/similar", params={"k": 3})
    assert answer.status_code == 200
    body = answer.json()
    assert body["article_id"] == article
    assert body["articles"]
    assert len([a for a in body["articles"] if not a["duplicate"]]) <= 3
    assert article not in {a["article_id"] for a in body["articles"]}
    assert set(body["articles"][0]) == {
        "article_id", "title", "source", "published", "score", "duplicate", "chunk_id", "text"
    }  # fmt: skip
    scores = [a["score"] for a in body["articles"] if not a["duplicate"]]
    assert scores == sorted(scores, reverse=True)


def test_the_similar_route_defaults_to_five_or_every_other_article(server: Server) -> None:
    body = httpx.get(f"{server.url}/articles/{first_article(server)}/similar").json()
    articles = httpx.get(f"{server.url}/stats").json()["articles"]
    duplicates = [a for a in body["articles"] if a["duplicate"]]
    assert len(body["articles"]) - len(duplicates) == min(5, articles - 1 - len(duplicates))


def test_the_similar_route_refuses_k_out_of_bounds(server: Server) -> None:
    article = first_article(server)
    for k in (0, 51, "many"):
        answer = httpx.get(f"{server.url}/articles/{article}/similar", params={"k": k})
        assert answer.status_code == 422, k


def test_the_similar_route_is_a_404_for_an_unknown_article(server: Server) -> None:
    answer = httpx.get(f"{server.url}/articles/no-such-article/similar")
    assert answer.status_code == 404
    assert "no-such-article" in answer.json()["detail"]


def test_the_similar_route_is_declared(server: Server) -> None:
    schema = httpx.get(f"{server.url}/openapi.json").json()
    route = schema["paths"]["/articles/{article_id}/similar"]["get"]
    assert {"200", "404", "422"} <= set(route["responses"])
    assert json.dumps(route).count("SimilarArticles") >= 1


def test_a_snapshot_from_before_article_vectors_still_opens_and_the_next_build_adds_them(
    tmp_path: Path,
) -> None:
    settings = Settings(seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "index")
    old = build_index(settings, embedder=HashEmbedder()).snapshot
    directory = settings.index_dir / "snapshots" / old
    manifest = json.loads((directory / "manifest.json").read_text())
    del manifest["article_vectors"]
    manifest["data_files"] = [f for f in manifest["data_files"] if f["name"] != "articles.npy"]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    (directory / "articles.npy").unlink()
    store = IndexStore(settings.index_dir)
    store.verify(old)
    opened = Searcher.open(store, HashEmbedder())
    try:
        article = opened.snapshot.columns.article_ids[0]
        assert opened.article(article) is not None
        with pytest.raises(SnapshotError, match="before article vectors"):
            opened.similar(article, 5)
    finally:
        opened.close()
    report = build_index(settings, embedder=HashEmbedder())
    assert report.published and report.embedded == 0
    assert store.manifest().article_vectors

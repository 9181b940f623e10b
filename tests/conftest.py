"""Session fixtures: one model, small real indexes built from the seed file, one live server."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import edge_count

from indexer.build import build_index
from indexer.embed import Embedder
from indexer.settings import Settings
from indexer.store import IndexStore
from search_api.matching import MatchRules
from search_api.searcher import Searcher

if "SEEDSEARCH_EXPORTED_MODELS_DIR" not in os.environ:
    # One export of the model per run, shared by every index root the tests and their
    # command lines build (each would otherwise export it anew, seconds of torch apiece);
    # never the user's own cache.
    _exported = tempfile.mkdtemp(prefix="seedsearch-test-models-")
    atexit.register(shutil.rmtree, _exported, True)
    os.environ["SEEDSEARCH_EXPORTED_MODELS_DIR"] = _exported
EXPORTED_MODELS = Path(os.environ["SEEDSEARCH_EXPORTED_MODELS_DIR"])

ROOT = Path(__file__).resolve().parents[1]
SEED_FILE = ROOT / "seeds" / "000_801232c05f2a40c6.txt"
SHARED = ROOT.parent / "shared"
BBC = SHARED / "corpora" / "bbc"
SEED_QUERIES = SHARED / "eval" / "seed_dev_queries.jsonl"
API_KEY = "test-admin-key"
STARTUP_SECONDS = 180


def run_python(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a project command the way a user would, from the project root."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    # The run's last line counts the tests that reached the real model or started a process.
    # A plugin, not this conftest's hooks: those never see session fixtures being set up.
    config.pluginmanager.register(edge_count, "edge_count")


def shared(path: Path) -> Path:
    """A file or folder of ../shared (eval sets, corpora); the test is skipped without it."""
    if not path.exists():
        pytest.skip(f"{path} is missing (the shared eval sets and corpora sit beside the checkout)")
    return path


def bbc_files(count: int, topic: str = "business") -> list[Path]:
    return sorted((shared(BBC) / topic).glob("*.txt"))[:count]


@pytest.fixture
def seed_queries() -> Path:
    return shared(SEED_QUERIES)


def new_corpus(directory: Path, *extra: Path) -> Path:
    """A seeds folder holding the seed file and ``extra`` files."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in (SEED_FILE, *extra):
        shutil.copy(path, directory / path.name)
    return directory


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The real model on the default (ONNX) runtime, exported once per session into the
    shared folder; builds, in process or on the command line, link it into each index root."""
    models = IndexStore(tmp_path_factory.mktemp("models"))
    model = Embedder(model_file=models.model_file, export=True, exported_models=EXPORTED_MODELS)
    model.warm_up()
    return model


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """An index of the seed file alone, built once; tests must not change it."""
    root = tmp_path_factory.mktemp("seed-index")
    settings = Settings(seeds_dir=new_corpus(root / "seeds"), index_dir=root / "index")
    build_index(settings, embedder=embedder)
    return settings


@pytest.fixture(scope="session")
def searcher(seed_settings: Settings, embedder: Embedder) -> Iterator[Searcher]:
    opened = Searcher.open(IndexStore(seed_settings.index_dir), embedder)
    yield opened
    opened.close()


# The "no good match" threshold lies between the stand-in's best cosines for the queries its
# tests ask (0.21 and up) and, over the seed passages, for every off-topic query of tests/data
# (0.18 at most, from words that share their first five letters with a seed word). A passage
# sharing any word with the query matches it.
STAND_IN_RULES = MatchRules(no_match_threshold=0.2, match_threshold=0.01)


@pytest.fixture(scope="session")
def stand_in_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The seed file's index, as ``seed_settings`` but built by the stand-in model in
    milliseconds (real parsing, chunking, FAISS and SQLite); tests must not change it."""
    root = tmp_path_factory.mktemp("stand-in-index")
    settings = Settings(seeds_dir=new_corpus(root / "seeds"), index_dir=root / "index")
    build_index(settings, embedder=HashEmbedder())
    return settings


def open_stand_in(index_dir: Path) -> Searcher:
    """A Searcher over an index the stand-in model built, encoding queries with it."""
    return Searcher.open(IndexStore(index_dir), HashEmbedder(), rules=STAND_IN_RULES)


@pytest.fixture(scope="session")
def stand_in_searcher(stand_in_settings: Settings) -> Iterator[Searcher]:
    """The searcher's pure behaviour (paging, collapse, dedupe, filters, min_score, "no good
    match", explain, highlights) tested without the real model."""
    opened = open_stand_in(stand_in_settings.index_dir)
    yield opened
    opened.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Server:
    url: str
    seeds_dir: Path
    index_dir: Path


def eventually(condition: Callable[[], bool], seconds: float, poll: float = 0.2) -> bool:
    """Whether ``condition`` holds within ``seconds``, checked every ``poll`` seconds."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


def wait_until_healthy(url: str, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"server exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not healthy after {STARTUP_SECONDS} s")


@contextlib.contextmanager
def running_server(
    index: Path, log: Path, environment: dict[str, str] | None = None, *arguments: str
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``python -m search_api`` over ``index`` on a free 127.0.0.1 port, with these extra
    variables and arguments and its output in ``log``: healthy when the block starts, stopped
    after it."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "search_api", "--port", str(port), "--index", str(index),
             *arguments],
            cwd=ROOT, env={**os.environ, **(environment or {})}, stdout=output,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(url, process, log)
            yield url, process
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=60)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Server]:
    """A real uvicorn process serving an index of the seeds, reloading every 0.2 s."""
    root = tmp_path_factory.mktemp("served")
    settings = Settings(seeds_dir=new_corpus(root / "seeds"), index_dir=root / "index")
    build_index(settings, embedder=embedder)
    environment = {
        "SEEDSEARCH_API_KEY": API_KEY,
        "SEEDSEARCH_RELOAD_INTERVAL_SECONDS": "0.2",
        "SEEDSEARCH_SEEDS_DIR": str(settings.seeds_dir),
    }
    with running_server(settings.index_dir, root / "server.log", environment) as (url, _):
        yield Server(url, settings.seeds_dir, settings.index_dir)


READ_KEY = "test-read-key"
CORS_ORIGIN = "http://allowed.example"


@pytest.fixture(scope="session")
def keyed_server(
    tmp_path_factory: pytest.TempPathFactory, seed_settings: Settings
) -> Iterator[tuple[Server, Path]]:
    """A server of a copy of the seed index that needs a read key and allows one CORS
    origin; also gives the path of its log."""
    root = tmp_path_factory.mktemp("keyed")
    shutil.copytree(seed_settings.index_dir, root / "index")
    environment = {"SEEDSEARCH_API_KEY": API_KEY, "SEEDSEARCH_READ_KEY": READ_KEY,
                   "SEEDSEARCH_CORS_ORIGINS": json.dumps([CORS_ORIGIN])}  # fmt: skip
    with running_server(root / "index", root / "server.log", environment) as (url, _):
        yield Server(url, seed_settings.seeds_dir, root / "index"), root / "server.log"


@pytest.fixture(scope="session")
def live_server(server: Server) -> str:
    return server.url


_WORD = re.compile(r"[^\W_]+")
_STOPWORDS = frozenset(
    "a an and are as at be by for from has have how in is it its of on or that the this to was "
    "were what when where which who why will with".split()
)


def stand_in_terms(text: str) -> list[str]:
    """The stand-in model's words: lower-cased, stop words dropped (unless nothing else is
    left), a plural s dropped and cut to five letters, a crude stemmer that lets
    "evacuations" meet "evacuated" and "homes" meet "home"."""
    words = _WORD.findall(text.casefold())
    content = [w for w in words if w not in _STOPWORDS] or words
    return [w.removesuffix("s")[:5] if len(w) > 3 else w for w in content] or [text]


class HashEmbedder:
    """A deterministic stand-in for the model, for the build and the query side: a text's
    vector is its bag of words (``stand_in_terms``), each word hashed to one of 4,096
    dimensions with a hashed sign, normalised. A query sharing words with a passage is close
    to it, one sharing none scores about 0: cosines mean something, so "no good match" can be
    tested. Milliseconds per build of the seed file. Words count as tokens."""

    name = "hash-stand-in"
    dimension = 4096
    # Names the vector space: the real model (and any other) refuses these snapshots.
    fingerprint = hashlib.sha256(f"{name}:bag-of-words:{dimension}".encode()).hexdigest()
    max_tokens = 254

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def encode(self, texts: list[str]) -> np.ndarray:
        self.encoded += texts
        return self._vectors(texts)

    def encode_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each text's vector, and each span's as the vector of the span's own text."""
        vectors = self.encode(texts)
        return [
            (vector, self._vectors([text[start:end] for start, end in found]))
            for text, vector, found in zip(texts, vectors, spans, strict=True)
        ]

    def encode_query(self, query: str) -> np.ndarray:
        return self._vectors([query])

    def _vectors(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for term in stand_in_terms(text):
                bits = int.from_bytes(hashlib.blake2b(term.encode(), digest_size=8).digest())
                vectors[row, bits % self.dimension] += 1.0 if bits >> 63 else -1.0
            if not vectors[row].any():  # words whose hashes cancelled out
                vectors[row, 0] = 1.0
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def dated_bbc_files(directory: Path, count: int, paragraphs: int | None = None) -> list[Path]:
    """``count`` BBC articles (the five topics in turn) written into ``directory``, each with
    its dateline as the first body paragraph: dates spread over two years back from
    2026-02-02, every twelfth article undated, every fifth dateline an ISO date (see
    ``search_api.evaluation.archive_date``). ``paragraphs`` keeps only the first few body
    paragraphs, to keep the embedding cheap. Skipped without the shared corpus."""
    from search_api.evaluation import write_dated_archive

    return write_dated_archive(shared(BBC), directory, count, paragraphs)

"""The build plan and the prune decision: pure logic, no model."""

from __future__ import annotations

from dataclasses import asdict

from indexer.chunk import Chunk, ChunkingParams
from indexer.plan import BuildPlan, FilePlan, SeedFile, plan_build, texts_to_embed
from indexer.store import Manifest, SourceFile, snapshots_to_prune

PARAMS = ChunkingParams(max_tokens=254, embed_title=False)
FINGERPRINT = "f" * 64


def chunk(source: str, text: str) -> Chunk:
    return Chunk(
        id=f"{source}:{text}", article_id="a", kind="paragraph", title="T", text=text,
        embed_text=text, source=source, start=0, end=len(text), position=0,
    )  # fmt: skip


def manifest(
    files: list[SourceFile], fingerprint: str = FINGERPRINT, **chunking: object
) -> Manifest:
    return Manifest(
        snapshot_id="s1", model_name="m", model_fingerprint=fingerprint, dimension=8,
        chunking={**asdict(PARAMS), **chunking}, index_type="flat", files=files,
        articles=len(files), chunks=len(files), built_at="2026-11-28T00:00:00+00:00",
    )  # fmt: skip


def to_parse(plan: BuildPlan) -> list[SeedFile]:
    return [f.seed for f in plan.files if f.reuse is None]


def reused(plan: BuildPlan) -> list[FilePlan]:
    return [f for f in plan.files if f.reuse is not None]


PREVIOUS = manifest([SourceFile("a.txt", "1" * 64, 1, 1), SourceFile("b.txt", "2" * 64, 1, 1)])
PREVIOUS_CHUNKS = {"a.txt": [chunk("a.txt", "alpha")], "b.txt": [chunk("b.txt", "beta")]}


def test_a_first_build_parses_every_file() -> None:
    seeds = [SeedFile("a.txt", "1" * 64), SeedFile("b.txt", "2" * 64)]
    plan = plan_build(None, {}, seeds, PARAMS, FINGERPRINT)
    assert to_parse(plan) == seeds and reused(plan) == []


def test_unchanged_files_reuse_their_chunks_and_changed_or_new_ones_are_parsed() -> None:
    seeds = [SeedFile("a.txt", "1" * 64), SeedFile("b.txt", "9" * 64), SeedFile("c.txt", "3" * 64)]
    plan = plan_build(PREVIOUS, PREVIOUS_CHUNKS, seeds, PARAMS, FINGERPRINT)
    assert [f.seed.source for f in plan.files] == ["a.txt", "b.txt", "c.txt"]  # seed order kept
    assert [(f.seed.source, f.chunks) for f in reused(plan)] == [
        ("a.txt", (chunk("a.txt", "alpha"),))
    ]
    assert [s.source for s in to_parse(plan)] == ["b.txt", "c.txt"]


def test_a_deleted_file_is_simply_not_planned() -> None:
    plan = plan_build(PREVIOUS, PREVIOUS_CHUNKS, [SeedFile("b.txt", "2" * 64)], PARAMS, FINGERPRINT)
    assert [f.seed.source for f in plan.files] == ["b.txt"] and to_parse(plan) == []


def test_another_model_or_chunking_reuses_nothing() -> None:
    seeds = [SeedFile("a.txt", "1" * 64)]
    other_model = manifest(PREVIOUS.files, fingerprint="e" * 64)
    assert to_parse(plan_build(other_model, PREVIOUS_CHUNKS, seeds, PARAMS, FINGERPRINT)) == seeds
    other_chunking = manifest(PREVIOUS.files, max_tokens=126)
    assert (
        to_parse(plan_build(other_chunking, PREVIOUS_CHUNKS, seeds, PARAMS, FINGERPRINT)) == seeds
    )


def test_a_file_whose_stored_chunks_are_missing_is_parsed_again() -> None:
    seeds = [SeedFile("a.txt", "1" * 64)]
    plan = plan_build(PREVIOUS, {"a.txt": []}, seeds, PARAMS, FINGERPRINT)
    assert to_parse(plan) == seeds


def test_only_distinct_uncached_texts_are_embedded_shortest_first() -> None:
    texts = ["a longer text", "short", "cached", "short", "mid text"]
    assert texts_to_embed(texts, {"cached"}) == ["short", "mid text", "a longer text"]
    assert texts_to_embed(texts, set(texts)) == []


def test_pruning_keeps_what_is_kept_and_anything_published_within_the_grace_period() -> None:
    present = ["s1", "s2", "s3", "s4", "killed"]
    published = {"s1": 100.0, "s2": 150.0, "s3": 170.0, "s4": 175.0}
    keep = {"s4", "s3"}
    assert snapshots_to_prune(present, keep, published, now=180.0, grace_seconds=90) == ["killed"]
    assert snapshots_to_prune(present, keep, published, now=180.0, grace_seconds=60) == [
        "s1", "killed"
    ]  # fmt: skip
    assert snapshots_to_prune(present, keep, published, now=180.0, grace_seconds=20) == [
        "s1", "s2", "killed"
    ]  # fmt: skip
    assert snapshots_to_prune(present, keep, published, now=180.0, grace_seconds=0) == [
        "s1", "s2", "killed"
    ]  # fmt: skip

"""``python -m indexer build|status|verify|rollback``: build the index from the seeds, describe
the live snapshot, check a snapshot's files in full, or make the previous snapshot live again.

Exit codes: 0 success, 1 nothing could be published, the index cannot be read or a snapshot is
damaged, 2 a usage or configuration error, 3 the quality gate (--gate) refused to publish.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from indexer.build import LOCK_WAIT_SECONDS, BuildReport, build_index
from indexer.embed import Embedder, EmbeddingModel
from indexer.errors import run_command
from indexer.settings import settings_from_flags
from indexer.store import IndexStore, Manifest

ENGINES = ("local", "ray")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexer", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="parse, chunk, embed and publish a snapshot")
    build.add_argument("--seeds", type=Path, help="seed articles folder (default: seeds)")
    build.add_argument("--index", type=Path, help="index root (default: var/index)")
    build.add_argument("--model", help="local sentence-transformers folder (default: packaged)")
    build.add_argument(
        "--full", action="store_true", help="re-embed everything, ignoring the cache"
    )
    build.add_argument("--json", action="store_true", help="print one JSON report, no progress bar")
    build.add_argument(
        "--engine", choices=ENGINES, default="local",
        help="where the embedding runs: this process (default) or a Ray cluster",
    )  # fmt: skip
    build.add_argument(
        "--ray-address", metavar="ADDR", help="a running Ray cluster (ray start --head)"
    )
    build.add_argument(
        "--workers", type=int, default=2, help="Ray actors embedding at once (default 2)"
    )
    build.add_argument(
        "--gate",
        type=Path,
        metavar="FILE",
        help="labelled queries (JSONL); refuse to publish when MRR@10 drops below the live's",
    )
    build.add_argument(
        "--gate-tolerance", type=float, default=0.02, metavar="DROP",
        help="how far (absolute MRR@10) below the live snapshot still publishes (default 0.02)",
    )  # fmt: skip
    status = commands.add_parser("status", help="describe the live snapshot")
    status.add_argument("--index", type=Path, help="index root (default: var/index)")
    status.add_argument("--json", action="store_true", help="print the manifest as JSON")
    verify = commands.add_parser(
        "verify", help="check a snapshot's files against the sizes and digests in its manifest"
    )
    verify.add_argument("--index", type=Path, help="index root (default: var/index)")
    verify.add_argument("--snapshot", metavar="ID", help="which snapshot (default: the live one)")
    rollback = commands.add_parser(
        "rollback", help="make the previous snapshot (or --to ID) live again"
    )
    rollback.add_argument("--index", type=Path, help="index root (default: var/index)")
    rollback.add_argument("--to", metavar="ID", help="a snapshot still present (default: previous)")
    return parser


def _print_build(report: BuildReport) -> None:
    verb = "published" if report.published else "unchanged, still live:"
    sentences = f", {report.sentences} evidence sentences" if report.published else ""
    print(
        f"{verb} {report.snapshot}: {report.files} files, {report.articles} articles, "
        f"{report.chunks} chunks ({report.embedded} embedded, {report.reused} reused)"
        f"{sentences} in {report.seconds:.1f} s"
    )
    for error in report.errors:
        print(f"  skipped {error.file}: {error.error}")
    if report.gate is not None:
        print(f"  {report.gate.message}")


def _print_status(manifest: Manifest) -> None:
    print(f"snapshot   {manifest.snapshot_id} (built {manifest.built_at})")
    print(f"model      {manifest.model_name} ({manifest.dimension} dims)")
    print(
        f"index      {manifest.index_type}, {manifest.chunks} chunks, {manifest.articles} articles"
    )
    print(f"files      {len(manifest.files)}")
    for source in manifest.files:
        print(f"  {source.path}  {source.chunks} chunks  sha256 {source.sha256[:12]}")
    for error in manifest.errors:
        print(f"  skipped {error.file}: {error.error}")


def _build(args: argparse.Namespace) -> int:
    settings = settings_from_flags(seeds_dir=args.seeds, index_dir=args.index, model=args.model)
    os.nice(settings.build_nice)  # searches on this machine come first; see Settings
    progress = not args.json and sys.stderr.isatty()
    store = IndexStore(settings.index_dir)
    local = Embedder.for_index(settings, store, export=True)
    embedder: EmbeddingModel = local
    gate = None
    if args.gate is not None:
        # The entry point wires the search code in; the indexer library never imports it.
        from search_api.gate import mrr_gate

        gate = mrr_gate(args.gate, local, args.gate_tolerance, settings.no_match_threshold)
    if args.engine == "ray":
        from indexer.ray_engine import RayEmbedder  # imports ray, the optional extra

        embedder = RayEmbedder(local, store.model_file(local.fingerprint), args.ray_address,
                               args.workers)  # fmt: skip
    report = build_index(settings, full=args.full, progress=progress, embedder=embedder, gate=gate)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print_build(report)
    return 0


def _status(args: argparse.Namespace) -> int:
    manifest = IndexStore(settings_from_flags(index_dir=args.index).index_dir).manifest()
    if args.json:
        print(manifest.to_json())
    else:
        _print_status(manifest)
    return 0


def _verify(args: argparse.Namespace) -> int:
    store = IndexStore(settings_from_flags(index_dir=args.index).index_dir)
    manifest = store.verify(args.snapshot)
    sizes = ", ".join(f"{f.name} {f.size} bytes" for f in manifest.data_files)
    print(f"snapshot {manifest.snapshot_id} is intact: {sizes}, sha256 match")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    store = IndexStore(settings_from_flags(index_dir=args.index).index_dir)
    previous = store.current_id()
    live = store.rollback(args.to, LOCK_WAIT_SECONDS, lambda m: print(m, file=sys.stderr))
    print(f"live snapshot is now {live} (was {previous}); servers switch at their next check")
    return 0


COMMANDS = {"build": _build, "status": _status, "verify": _verify, "rollback": _rollback}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(lambda: COMMANDS[args.command](args))


if __name__ == "__main__":
    sys.exit(main())

"""``python -m indexer build|status``: build the index from the seeds, or describe the live one.

Exit codes: 0 success, 1 nothing could be published or the index cannot be read, 2 a usage or
configuration error, 3 the quality gate (--gate) refused to publish.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from indexer.build import BuildReport, build_index
from indexer.embed import Embedder
from indexer.errors import run_command
from indexer.settings import settings_from_flags
from indexer.store import IndexStore, Manifest


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
    progress = not args.json and sys.stderr.isatty()
    embedder = Embedder.for_index(settings, IndexStore(settings.index_dir), export=True)
    gate = None
    if args.gate is not None:
        # The entry point wires the search code in; the indexer library never imports it.
        from search_api.gate import mrr_gate

        gate = mrr_gate(args.gate, embedder, args.gate_tolerance, settings.no_match_threshold)
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(lambda: _build(args) if args.command == "build" else _status(args))


if __name__ == "__main__":
    sys.exit(main())

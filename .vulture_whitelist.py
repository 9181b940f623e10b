"""Names the dead-code check (``make lint``: vulture) cannot see being used.

Each is used by a framework or a protocol, not by our code. Functions registered by a decorator
(FastAPI routes and exception handlers, pydantic validators) are skipped through
``ignore_decorators`` in pyproject.toml's ``[tool.vulture]`` instead, so a new route needs no
entry here. A name listed here is spared everywhere, so keep the list short.
"""

from vulture.whitelists.whitelist_utils import Whitelist

_ = Whitelist()

# pydantic reads the class attribute; the API and the manifest serialise the fields.
_.model_config
_.schema_version  # Manifest
_.loc  # ValidationProblem
_.highlights  # SearchResult
_.dense_score  # Explain
_.fused_score
_.article_boost
_.version  # ChunkingParams, recorded in the manifest
_.cache_pruned  # BuildReport, printed by build --json
_.metadata  # ArticleDocument, the MCP fetch tool's answer

# Settings of third-party objects, assigned and never read back by us.
_.graph_optimization_level  # onnxruntime.SessionOptions
_.intra_op_num_threads
_.inter_op_num_threads
_.efConstruction  # FAISS HNSW parameters
_.efSearch
_.k_factor  # faiss.IndexRefine
_.forward  # torch.nn.Module calls it

# Parameters a protocol requires: __exit__, signal handlers.
_.exc_info
_.signum
_.frame

# The documented exit code of success (indexer.errors), named beside the others.
_.EXIT_OK

# Observable state the concurrency tests wait on (tests/test_batching.py): without it they
# would have to sleep and hope.
_.waiting  # QueryBatcher

# Fields of the watch record, read as JSON by /healthz and tests (search_api/watch.py).
_.builds  # WatchRecord

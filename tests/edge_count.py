"""Counts the tests that reach the real model or start a process, and prints the count at the
end of a run, so the share of slow tests is measured rather than guessed.

A test counts when, while it runs (set-up, call or tear-down), anything calls the real
``Embedder`` (encode texts, spans or a query, count tokens, export the model), loads an ONNX
or torch encoder, creates a ``subprocess.Popen`` (``run_python``, ``running_server``, Ray,
the browser) or starts a ``multiprocessing`` process; or when any fixture it uses did so while
it was being set up (a session server started for an earlier test counts for every test that
uses it)."""

from __future__ import annotations

import multiprocessing.process
import subprocess
from collections.abc import Callable, Generator
from functools import wraps
from typing import Any

import pytest
from _pytest.terminal import TerminalReporter

from indexer.embed import Embedder
from indexer.encoders import OnnxEncoder, TorchEncoder

_reached: set[object] = set()  # test items and fixture definitions that reached either
_active: list[object] = []  # the test running, then the fixtures being set up inside it
_ran: set[str] = set()  # tests whose body ran here (passed or failed, not skipped)
_outcomes: dict[str, bool] = {}  # every test that ran, in any process: did it reach either?
_PROPERTY = "reached_the_model_or_a_process"


def _recorded(function: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(function)
    def recording(*args: Any, **kwargs: Any) -> Any:
        _reached.update(_active)
        return function(*args, **kwargs)

    return recording


# Calls from any thread count (an in-process app answers on its own threads), so what is
# active is a plain global, not a context variable.
for _method in ("encode", "encode_spans", "encode_query", "count_tokens", "write_onnx"):
    setattr(Embedder, _method, _recorded(getattr(Embedder, _method)))
for _runtime in (OnnxEncoder, TorchEncoder):  # the model loaded without an Embedder
    _runtime.__init__ = _recorded(_runtime.__init__)  # type: ignore[method-assign]
subprocess.Popen.__init__ = _recorded(subprocess.Popen.__init__)  # type: ignore[method-assign]
multiprocessing.process.BaseProcess.start = _recorded(  # type: ignore[method-assign]
    multiprocessing.process.BaseProcess.start
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    _active[:] = [item]
    try:
        return (yield)
    finally:
        _active.clear()


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[object]) -> Generator[None, object, object]:
    _active.append(fixturedef)
    try:
        return (yield)
    finally:
        _active.remove(fixturedef)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, object]:
    report = yield
    if report.when == "call" and not report.skipped:
        _ran.add(item.nodeid)
    if report.when == "teardown" and item.nodeid in _ran:
        # On the report, so the count also adds up when pytest-xdist runs the tests in
        # worker processes and the summary is printed by the controller.
        report.user_properties.append((_PROPERTY, _reaches(item)))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, reached in report.user_properties:
        if name == _PROPERTY:
            _outcomes[report.nodeid] = bool(reached)


def _reaches(item: pytest.Item) -> bool:
    if item in _reached:
        return True
    # Every fixture in the test's closure, transitive ones included.
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    return any(d in _reached for found in definitions.values() for d in found)


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    real = {nodeid for nodeid, reached in _outcomes.items() if reached}
    # A test function is counted once, however many cases it is parametrized into: as one
    # that reaches either if any of its cases does.
    functions = {nodeid.partition("[")[0] for nodeid in _outcomes}
    real_functions = {nodeid.partition("[")[0] for nodeid in real}
    terminalreporter.write_line(
        f"{len(real)} of {len(_outcomes)} tests ({len(real_functions)} of {len(functions)} test "
        "functions) reached the real model or started a process; the rest ran on the stand-in "
        "model or on pure code"
    )

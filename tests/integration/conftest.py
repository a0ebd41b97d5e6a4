"""The end-to-end test bed: real Redis, the real ``telefeatures serve`` process,
a real Asterisk 22 running the shipped dialplan, and sipp phones and trunk.

Everything listens on 127.0.0.1 / 127.0.0.2 on ports picked per run, and every
process started here is stopped at the end of the session, pass or fail.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.testbed.asterisk import Asterisk, prepare, remove_run_dir
from tests.testbed.services import KEY_PREFIX, FeatureServer
from tests.testbed.sipp import AnsweringAgent, SippRunner


_sources_used: set[str] = set()


def pytest_terminal_summary(terminalreporter):
    if _sources_used:
        terminalreporter.write_line(f"end-to-end suite ran on Asterisk source: {', '.join(sorted(_sources_used))}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    # scripts/test's later passes (one per further Asterisk source) rerun only
    # the tests that run on the source TF_ASTERISK picks (the session's
    # ``asterisk``); the others (phone boot: always the chroot; DHCP daemons:
    # no Asterisk) ran in the first pass.
    if os.environ.get("TF_E2E_SOURCE_ONLY"):
        other = [i for i in items if "/integration/" in str(i.fspath) and "asterisk" not in i.fixturenames]
        if other:
            config.hook.pytest_deselected(items=other)
            items[:] = [i for i in items if i not in other]


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("testbed")


@pytest.fixture(scope="session")
def feature_server(workdir, redis_server):
    server = FeatureServer(workdir / "server", redis_server.url)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def asterisk(feature_server, redis_server) -> Asterisk:
    env = {"TELEFEATURES_REDIS_URL": redis_server.url, "TELEFEATURES_KEY_PREFIX": KEY_PREFIX}
    ast = prepare(agi_port=feature_server.port, env=env)
    _sources_used.add(ast.source)
    try:
        ast.start()
        ast.cli("agi set debug on")
        yield ast
    finally:
        ast.stop()
        if os.environ.get("TF_KEEP_TESTBED"):
            print(f"test bed kept in {ast.run_dir}", file=sys.stderr)
        else:
            remove_run_dir(ast)


@pytest.fixture(scope="session")
def provider(asterisk, workdir):
    agent = AnsweringAgent("127.0.0.2", asterisk.ports.provider, workdir / "sipp" / "provider.trace").start()
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def sipp(asterisk, workdir) -> SippRunner:
    return SippRunner(asterisk, workdir / "sipp")


def _registered_phone(ext: str, sipp, workdir):
    """Phone ``ext`` registered (digest auth), answering calls at its contact."""
    port = free_port(socket.SOCK_DGRAM)
    agent = AnsweringAgent("127.0.0.1", port, workdir / "sipp" / f"phone-{ext}.trace").start()
    result = sipp.register(ext, port)
    assert result.returncode == 0, result.output
    return agent


@pytest.fixture(scope="session")
def phone_1000(asterisk, sipp, workdir):
    agent = _registered_phone("1000", sipp, workdir)
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def phone_1001(asterisk, sipp, workdir):
    agent = _registered_phone("1001", sipp, workdir)
    yield agent
    agent.stop()

"""A session-scoped runtime host on the real SmolLM2 model (1 thread, small context) shared by tests."""

from __future__ import annotations

import pytest

from engine.runtime.supervisor import HostSettings, RuntimeHost
from tests.support.processes import session_children

TEST_CONTEXT = 2048


def session_host(settings: HostSettings, log_dir):
    """A host that lives for the test session (a generator for session fixtures): started, known to the
    leak check as the session's own child, stopped at the end."""
    host = RuntimeHost(settings, log_dir=log_dir)
    host.start_blocking()
    session_children.add(host.pid)
    yield host
    host.stop()
    session_children.discard(host.pid)


@pytest.fixture(scope="session")
def shared_host(smollm2_path, tmp_path_factory):
    """One host for the whole run: starting one costs about a second, and CI has 2 cores."""
    yield from session_host(
        HostSettings(model_path=str(smollm2_path), context_length=TEST_CONTEXT, gpu_layers=0, threads=1),
        tmp_path_factory.mktemp("host-logs"))


@pytest.fixture
def host_client(shared_host):
    return shared_host.client()

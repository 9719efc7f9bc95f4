"""A session-scoped runtime host on the real SmolLM2 model (1 thread, small context) shared by tests."""

from __future__ import annotations

import pytest

from engine.runtime.supervisor import HostSettings, RuntimeHost
from tests.support.processes import session_children

TEST_CONTEXT = 2048


@pytest.fixture(scope="session")
def shared_host(smollm2_path, tmp_path_factory):
    """One host for the whole run: starting one costs about a second, and CI has 2 cores."""
    host = RuntimeHost(
        HostSettings(model_path=str(smollm2_path), context_length=TEST_CONTEXT, gpu_layers=0, threads=1),
        log_dir=tmp_path_factory.mktemp("host-logs"),
    )
    host.start_blocking()
    session_children.add(host.pid)
    yield host
    host.stop()
    session_children.discard(host.pid)


@pytest.fixture
def host_client(shared_host):
    return shared_host.client()

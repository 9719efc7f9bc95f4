"""Engine-test fixtures beyond tests/conftest.py: the stand-in Hugging Face Hub.

Imported rather than listed in `pytest_plugins`: pytest refuses `pytest_plugins` in a conftest
below the root one, and tests/conftest.py is shared.
"""

from tests.support.hub_fixtures import hub_server, known_bandwidth  # noqa: F401

import os

import pytest

# Tests run on CPU with quiet progress bars, whatever machine they are on.
os.environ.setdefault("SEGKIT_DEVICE", "cpu")
os.environ.setdefault("SEGKIT_PROGRESS", "0")


@pytest.fixture(autouse=True)
def fresh_check_registry():
    """Every test starts and ends with no exercise marked as passed (segkit.checks.use)."""
    from segkit.checks import core

    core.reset()
    yield
    core.reset()


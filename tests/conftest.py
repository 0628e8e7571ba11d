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



def pytest_addoption(parser):
    parser.addoption(
        "--check-draws", type=int, default=0, metavar="N",
        help="run every right solution and wrong form of the checks' corpus on N fresh "
             "draws (tests/test_checks_draws.py); by default each runs on 2 fixed draws")

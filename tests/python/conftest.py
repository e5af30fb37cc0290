import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


def _r_ok(packages=()):
    from prime_stats import rbridge
    return rbridge.r_available(packages)


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the repository in CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def r_engine():
    if not _r_ok():
        pytest.skip("R / rpy2 / primestats not available (make setup installs them)")
    from prime_stats import rbridge
    return rbridge

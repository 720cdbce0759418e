"""Shared fixtures: deterministic seeds, and the backends that work on this machine."""
from __future__ import annotations

import pytest
import torch


def pytest_configure(config):
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def working_backends() -> list[str]:
    from shapeot.ot import available_backends

    return available_backends()

"""Fixtures for the training tests."""

import pytest

from tests.device_harness import virtual_accelerator


@pytest.fixture
def virtual_accel(monkeypatch):
    """A virtual accelerator (see tests/device_harness.py): ``CVLIB_DEVICE=xpu``, mismatches raise."""
    with virtual_accelerator(monkeypatch) as acc:
        yield acc

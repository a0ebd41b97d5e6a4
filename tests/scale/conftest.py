"""Figures the scale tests measure go to the terminal even when pytest
captures output, so the CI log keeps them."""

from __future__ import annotations

import pytest


@pytest.fixture
def figures(capsys):
    def say(line: str) -> None:
        with capsys.disabled():
            print(f"\n{line}", flush=True)
    return say

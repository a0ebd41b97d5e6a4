"""The real-world Cisco files under ``../shared/cisco-corpus/`` beside the checkout.

They are test data read in place (never copied into the project). A missing
corpus is a failure, not a skip: CI has it there, and a test that silently
stopped looking at real files would prove nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path:
    directory = Path(os.environ.get("TF_CISCO_CORPUS") or CHECKOUT.parent / "shared" / "cisco-corpus")
    if not (directory / "PROVENANCE.md").is_file():
        raise AssertionError(f"the Cisco corpus is missing: {directory}/PROVENANCE.md not found "
                             "(it belongs beside the checkout at ../shared/cisco-corpus/)")
    return directory


def corpus_files(*subdirectories: str) -> list[Path]:
    """Every file in the named corpus directories, sorted."""
    root = corpus_dir()
    files = sorted(path for name in subdirectories for path in (root / name).iterdir() if path.is_file())
    assert files, f"no files in {', '.join(subdirectories)} of {root}"
    return files

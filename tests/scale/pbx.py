"""One Asterisk of the test bed with its provider and phones, for the scale
tests that need more than the end-to-end suite's single PBX: the generated
config can be edited before it boots (another TF_AGI, a tenant on an endpoint,
a resolver of its own)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.testbed.asterisk import prepare, remove_run_dir
from tests.testbed.sipp import AnsweringAgent, SippRunner


class Pbx:
    def __init__(self, workdir: Path, agi_port: int, *, edits: dict[str, tuple[str, str]] | None = None,
                 resolv_conf: Path | None = None):
        """``edits``: config file name -> (regex, replacement), each must match once."""
        self.asterisk = prepare(agi_port=agi_port)
        for name, (pattern, replacement) in (edits or {}).items():
            path = self.asterisk.run_dir / "etc" / name
            text, count = re.subn(pattern, replacement, path.read_text(), flags=re.M)
            assert count == 1, f"{name}: {pattern!r} matched {count} times"
            path.write_text(text)
        self.asterisk.resolv_conf = resolv_conf
        try:
            self.asterisk.start()
            self.provider = AnsweringAgent("127.0.0.2", self.asterisk.ports.provider,
                                           workdir / "sipp" / "provider.trace").start()
        except BaseException:
            self.asterisk.stop()
            remove_run_dir(self.asterisk)
            raise
        self.sipp = SippRunner(self.asterisk, workdir / "sipp")


def stop_all(*parts) -> None:
    """Stop every part (a Pbx, a server, Redis...), whatever happens to one of them."""
    for part in parts:
        try:
            if isinstance(part, Pbx):
                for piece in (part.provider, part.asterisk):
                    piece.stop()
                remove_run_dir(part.asterisk)
            else:
                part.stop()
        except Exception:  # noqa: BLE001 - stop the rest whatever happens
            pass

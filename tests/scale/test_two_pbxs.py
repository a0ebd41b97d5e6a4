"""Two PBXs, one Sentinel-managed Redis: two Asterisk instances of the test bed
(own configs and ports), each with its own ``telefeatures serve``, share a
Sentinel set (1 master + 2 replicas + 3 sentinels). Extension 1000 belongs to
tenant ``acme`` on both (``set_var=TF_TENANT=acme`` on the endpoint).

*81 on PBX A, then an outbound call of the same tenant/extension on PBX B goes
out withheld, also after the Redis master has been killed and replaced.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.e2e import assert_anonymous, assert_presented, outbound, played, star
from tests.support.redis_topologies import SentinelSet
from tests.scale.pbx import Pbx, stop_all
from tests.testbed.services import KEYS, FeatureServer

TENANT = "acme"


def tenant_pbx(workdir: Path, redis_url: str) -> tuple[FeatureServer, Pbx]:
    """A feature server on ``redis_url`` and an Asterisk using it, where
    endpoint 1000 belongs to tenant acme."""
    server = FeatureServer(workdir / "server", redis_url)
    try:
        server.start()
        pbx = Pbx(workdir, server.port, edits={
            "pjsip.conf": (r"^(set_var = __TF_EXTENSION=1000)$", rf"\1\nset_var = TF_TENANT={TENANT}")})
    except BaseException:
        server.stop()
        raise
    pbx.server = server
    return server, pbx


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("two-pbxs")
    # Not the 1 s down-after of the timing tests: a sentinel that misses the
    # just-promoted master's first replies for 1 s fails over a second time,
    # and a write taken by the first new master in between is lost with it
    # (Redis's own split-brain window, not what this file is about).
    sentinels = SentinelSet(workdir / "sentinel", down_after_ms=3000).start()
    parts = []
    try:
        parts.extend(tenant_pbx(workdir / "a", sentinels.url))
        parts.extend(tenant_pbx(workdir / "b", sentinels.url))
        yield sentinels, parts[1], parts[3]
    finally:
        stop_all(*reversed(parts), sentinels)


def test_star81_on_one_pbx_withholds_on_the_other(site):
    sentinels, a, b = site
    assert a.asterisk.ports.sip != b.asterisk.ports.sip and a.server.port != b.server.port
    offset = a.asterisk.log_offset()
    star(a.sipp, "1000", "*81")
    assert played(a.asterisk, offset, "activated")
    with sentinels.master().client() as master:
        assert master.get(KEYS.cidblock("1000", TENANT)) == "1"
        assert master.get(KEYS.cidblock("1000")) is None  # the tenant's key, not the tenant-less one
    assert_anonymous(outbound(b.sipp, b.provider, "1000"), "1000")
    sessions = b.server.sessions_since(0)
    assert any("route=outbound ext=1000 status=OK" in s and f"tenant={TENANT}" in s for s in sessions), sessions

    # *82 on B, presented on A
    star(b.sipp, "1000", "*82")
    assert_presented(outbound(a.sipp, a.provider, "1000"), "1000", "Alice")


def test_the_block_survives_a_master_failover_seen_from_the_other_pbx(site):
    sentinels, a, b = site
    star(a.sipp, "1000", "*81")
    old = sentinels.master()
    old.kill()
    new = sentinels.wait_for_new_master(old)
    with new.client() as master:
        assert master.get(KEYS.cidblock("1000", TENANT)) == "1"
    # B's server finds the new master by itself (status OK: it read the block,
    # not the privacy default of an unreachable Redis)
    since = b.server.log_offset()
    assert_anonymous(outbound(b.sipp, b.provider, "1000"), "1000")
    assert any("route=outbound ext=1000 status=OK" in s for s in b.server.sessions_since(since))
    star(b.sipp, "1000", "*82")
    with new.client() as master:
        assert master.get(KEYS.cidblock("1000", TENANT)) is None
    assert_presented(outbound(a.sipp, a.provider, "1000"), "1000", "Alice")

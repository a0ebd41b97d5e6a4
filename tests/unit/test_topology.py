"""Topology URLs: what each scheme means, and bad ones refused naming the wrong part."""

from __future__ import annotations

import pytest

from telefeatures.config import SettingsError, load_settings
from telefeatures.state.topology import TopologyError, parse_topology


def test_single_redis_urls_stay_single():
    for url in ("redis://127.0.0.1:6379/1", "rediss://r.example:6380", "unix:///run/redis.sock?db=2"):
        topo = parse_topology(url)
        assert (topo.kind, topo.url) == ("single", url)


def test_sentinel_url():
    topo = parse_topology("redis+sentinel://app:s%40cret@h1:26380,h2,[::1]:26381/mymaster/3"
                          "?sentinel_password=sp")
    assert topo.kind == "sentinel" and not topo.tls
    assert topo.hosts == (("h1", 26380), ("h2", 26379), ("::1", 26381))
    assert (topo.service, topo.db, topo.username, topo.password) == ("mymaster", 3, "app", "s@cret")
    assert topo.sentinel_auth == {"password": "sp"}
    assert "s@cret" not in topo.describe() and "sp" not in topo.describe()


def test_sentinel_url_minimal_and_tls():
    topo = parse_topology("rediss+sentinel://127.0.0.1/tf?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=none")
    assert topo.tls and topo.hosts == (("127.0.0.1", 26379),) and topo.db == 0
    assert topo.password is None and topo.sentinel_auth == {}
    assert topo.tls_options == {"ssl_ca_certs": "/etc/ca.pem", "ssl_cert_reqs": "none"}
    assert parse_topology("redis+sentinel://:pw@h/tf").password == "pw"
    assert parse_topology("redis+sentinel://pw@h/tf/").password == "pw"  # as redis-py reads redis://pw@h


def test_cluster_url():
    topo = parse_topology("redis+cluster://:pw@127.0.0.1:7000,127.0.0.1:7001")
    assert topo.kind == "cluster" and topo.hosts == (("127.0.0.1", 7000), ("127.0.0.1", 7001))
    assert topo.password == "pw" and topo.db == 0
    assert parse_topology("rediss+cluster://node1").hosts == (("node1", 6379),)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://127.0.0.1:6379", "unknown scheme 'http://'"),
        ("127.0.0.1:6379", "no scheme"),
        ("redis+sentinal://h1/tf", "unknown scheme 'redis+sentinal://'"),
        ("redis+sentinel://h1:26379,h2", "the service name is missing"),
        ("redis+sentinel://h1/", "the service name is missing"),
        ("redis+sentinel:///tf", "no hosts"),
        ("redis+sentinel://h1,,h2/tf", "an empty host"),
        ("redis+sentinel://h1,/tf", "an empty host"),
        ("redis+sentinel://h1:abc/tf", "port 'abc' of host 'h1'"),
        ("redis+sentinel://h1:0/tf", "port '0' of host 'h1'"),
        ("redis+sentinel://h1:70000/tf", "port '70000' of host 'h1'"),
        ("redis+sentinel://h1:/tf", "port missing"),
        ("redis+sentinel://h 1/tf", "host 'h 1'"),
        ("redis+sentinel://h1/my master", "service name 'my master'"),
        ("redis+sentinel://h1/tf/x", "database 'x'"),
        ("redis+sentinel://h1/tf/1/2", "expected /<service>[/db]"),
        ("redis+sentinel://h1/tf?sentinel_pasword=x", "unknown option 'sentinel_pasword'"),
        ("redis+sentinel://h1/tf?ssl_ca_certs=/ca", "needs the TLS scheme rediss+sentinel://"),
        ("rediss+sentinel://h1/tf?ssl_cert_reqs=maybe", "ssl_cert_reqs must be"),
        ("redis+sentinel://h1,h1/tf", "listed twice"),
        ("redis+cluster://h1:7000/0", "nothing goes after the hosts"),
        ("redis+cluster://h1:7000?sentinel_password=x", "unknown option 'sentinel_password'"),
        ("redis+cluster://h1:7000?db", "query '?db' is not name=value"),
        ("redis+cluster://h1:7000?db=1", "unknown option 'db'"),
        ("redis+cluster://[::1/", "host '[::1' is not"),
    ],
)
def test_bad_urls_name_the_wrong_part(url, named):
    with pytest.raises(TopologyError) as info:
        parse_topology(url)
    assert named in str(info.value)


def test_passwords_never_appear_in_errors():
    for url in ("redis+sentinel://u:hunter2@h1:x/tf", "redis+sentinel://h1:x/tf?sentinel_password=hunter2",
                "redis+cluster://hunter2@h1:99999", "ftp://u:hunter2@h"):
        with pytest.raises(TopologyError) as info:
            parse_topology(url)
        assert "hunter2" not in str(info.value)


def test_settings_refuse_a_bad_topology_url_at_start():
    with pytest.raises(SettingsError) as info:
        load_settings(redis_url="redis+sentinel://h1:26379,h2:x/tf")
    assert "redis_url" in str(info.value) and "port 'x' of host 'h2'" in str(info.value)
    assert load_settings(redis_url="redis+cluster://127.0.0.1:7000").redis_url == "redis+cluster://127.0.0.1:7000"

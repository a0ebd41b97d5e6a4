"""Where the state lives, from one URL: a single Redis (``redis://``,
``rediss://``, ``unix://``, which redis-py parses), a Sentinel-managed master
(``redis+sentinel://``, ``rediss+sentinel://``) or a Redis Cluster
(``redis+cluster://``, ``rediss+cluster://``)::

    redis+sentinel://[user:pass@]h1:26379,h2,h3/<service>[/db][?sentinel_password=…]
    redis+cluster://[user:pass@]h1:7000,h2:7001[?…]

redis-py's ``parse_url`` knows none of the ``+`` schemes, so they are parsed
here; a wrong part is named in the error (never the password).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}
SENTINEL_PORT = 26379
CLUSTER_PORT = 6379
# Query options each topology takes; anything else is refused, not ignored.
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")

_SERVICE = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
_HOST = re.compile(r"[A-Za-z0-9_.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]", re.ASCII)


class TopologyError(ValueError):
    """A malformed Redis URL; the message names the part that is wrong."""


@dataclass(frozen=True)
class Topology:
    kind: str  # "single", "sentinel" or "cluster"
    url: str  # single: the URL as given (redis-py parses it)
    hosts: tuple[tuple[str, int], ...] = ()  # sentinels, or cluster startup nodes
    service: str = ""  # sentinel: the monitored master's name
    db: int = 0
    username: str | None = None  # of the data nodes (master, replicas, cluster nodes)
    password: str | None = None
    tls: bool = False
    options: dict[str, str] = field(default_factory=dict)  # validated query options

    @property
    def sentinel_auth(self) -> dict[str, str]:
        auth = {}
        if "sentinel_username" in self.options:
            auth["username"] = self.options["sentinel_username"]
        if "sentinel_password" in self.options:
            auth["password"] = self.options["sentinel_password"]
        return auth

    @property
    def tls_options(self) -> dict[str, str]:
        return {k: v for k, v in self.options.items() if k in TLS_OPTIONS}

    def describe(self) -> str:
        """For the log: where, never the password."""
        where = ",".join(f"{h}:{p}" for h, p in self.hosts)
        if self.kind == "sentinel":
            return f"Sentinel service {self.service!r} via {where} (db {self.db})"
        if self.kind == "cluster":
            return f"Redis Cluster via {where}"
        return "Redis " + re.sub(r"//[^@/]*@", "//***@", self.url)


def redacted(url: str) -> str:
    """The URL with any password (user info, ``password=`` options) hidden."""
    url = re.sub(r"//[^@/]*@", "//***@", url)
    return re.sub(r"(password=)[^&]*", r"\1***", url)


def parse_topology(url: str) -> Topology:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise TopologyError(f"Redis URL {redacted(url)!r}: no scheme (redis://, rediss://, unix://, "
                            "redis+sentinel://, redis+cluster://)")
    scheme = scheme.lower()
    if scheme in ("redis", "rediss", "unix"):
        return Topology("single", url)
    if scheme in SENTINEL_SCHEMES:
        return _parse(url, scheme, rest, "sentinel", SENTINEL_SCHEMES[scheme])
    if scheme in CLUSTER_SCHEMES:
        return _parse(url, scheme, rest, "cluster", CLUSTER_SCHEMES[scheme])
    raise TopologyError(f"Redis URL {redacted(url)!r}: unknown scheme {scheme + '://'!r} (use redis://, "
                        "rediss://, unix://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or "
                        "rediss+cluster://)")


def _parse(url: str, scheme: str, rest: str, kind: str, tls: bool) -> Topology:
    shown = redacted(url)

    def bad(what: str) -> TopologyError:
        return TopologyError(f"{kind} URL {shown!r}: {what}")

    rest, _, query = rest.partition("?")
    if "#" in query or "#" in rest:
        raise bad("a '#' fragment has no meaning here")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if colon else None
        if not colon:  # redis://secret@host means a password, as in redis-py
            username, password = None, unquote(user) or None
    hosts = _hosts(hostlist, SENTINEL_PORT if kind == "sentinel" else CLUSTER_PORT, bad)
    service, db = "", 0
    parts = path.split("/") if slash else []
    if kind == "sentinel":
        if not parts or not parts[0]:
            raise bad("the service name is missing (…/<service>[/db], the name in 'sentinel monitor')")
        service = unquote(parts[0])
        if not _SERVICE.fullmatch(service):
            raise bad(f"service name {service[:40]!r}: letters, digits, _ . - only")
        if len(parts) > 2:
            raise bad(f"path {'/' + path!r}: expected /<service>[/db]")
        if len(parts) == 2 and parts[1]:
            if not parts[1].isdigit() or int(parts[1]) > 10_000:
                raise bad(f"database {parts[1][:20]!r} is not a number")
            db = int(parts[1])
    elif any(parts):
        raise bad(f"path {'/' + path!r}: a cluster has one database, nothing goes after the hosts")
    allowed = TLS_OPTIONS + (SENTINEL_OPTIONS if kind == "sentinel" else ())
    options: dict[str, str] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise bad(f"query {redacted('?' + query)!r} is not name=value&…") from None
    for name, value in pairs:
        if name not in allowed:
            raise bad(f"unknown option {name[:40]!r} (known: {', '.join(allowed)})")
        if name in options:
            raise bad(f"option {name!r} given twice")
        if name.startswith("ssl_") and not tls:
            raise bad(f"option {name!r} needs the TLS scheme {scheme.replace('redis', 'rediss', 1)}://")
        options[name] = value
    if options.get("ssl_cert_reqs", "required") not in ("none", "optional", "required"):
        raise bad("ssl_cert_reqs must be none, optional or required")
    return Topology(kind, url, tuple(hosts), service, db, username, password, tls, options)


def _hosts(hostlist: str, default_port: int, bad) -> list[tuple[str, int]]:
    if not hostlist:
        raise bad("no hosts (h1[:port],h2[:port],…)")
    hosts = []
    for item in hostlist.split(","):
        if not item:
            raise bad("an empty host in the list (two commas, or a comma at an end)")
        if item.startswith("["):
            host, close, after = item.partition("]")
            host += close
            if after and not after.startswith(":"):
                raise bad(f"host {item[:60]!r}: expected [ipv6]:port")
            port_text = after[1:] if after else ""
        else:
            host, colon, port_text = item.partition(":")
            if colon and not port_text:
                raise bad(f"host {item[:60]!r}: port missing after ':'")
        if not _HOST.fullmatch(host):
            raise bad(f"host {host[:60]!r} is not a host name or address")
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise bad(f"port {port_text[:20]!r} of host {host[:60]!r} is not a port number (1-65535)")
            port = int(port_text)
        else:
            port = default_port
        hosts.append((host.strip("[]"), port))
    if len(set(hosts)) != len(hosts):
        raise bad("a host is listed twice")
    return hosts

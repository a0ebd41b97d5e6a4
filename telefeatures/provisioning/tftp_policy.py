"""Who the TFTP server answers, and what it keeps about each peer.

* ``allow``: peers outside these networks get no answer at all, and one log
  line per peer;
* per peer: at most ``per_peer_transfers`` transfers at once and a request
  rate (token bucket), so a handful of packets from one address cannot take
  the slots every phone shares;
* phone binding (``--inventory``): a phone's own config files
  (``SEP<MAC>…``, ``SIP<MAC>…``) go only to the address the inventory gives
  it; to anyone else, and for MACs the inventory does not know, they do not
  exist (the same "file not found" as any missing name);
* enumeration limit: a peer that asks for ``enumeration_limit`` different
  unknown phone-config MACs within ``enumeration_window`` seconds gets no
  answer for ``enumeration_block`` seconds, announced by one WARNING line
  (``contrib/fail2ban`` has a filter for it). A real phone asks only for its
  own MAC's names (CTL/ITL/SEP files), so it counts one at most.

State is bounded: a fixed number of peers (idle ones are forgotten first),
at most ``enumeration_limit`` MACs per peer, and refusals of one kind from one
peer are logged once per ``LOG_INTERVAL`` with a count of those not logged.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

log = logging.getLogger("telefeatures.tftp")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The names a phone asks for by its MAC: its config (SEP/SIP) and trust lists.
PHONE_FILE = re.compile(r"(?:CTL|ITL)?(?:SEP|SIP)([0-9A-F]{12})", re.IGNORECASE)
# The ones that carry its SIP credentials, served only to the phone.
PHONE_CONFIG = re.compile(r"(?:SEP|SIP)([0-9A-F]{12})")

LOG_INTERVAL = 60.0
MAX_PEERS = 65536


@dataclass
class Limits:
    per_peer_transfers: int = 8
    requests_per_second: float = 50.0  # per peer, sustained ...
    request_burst: int = 100           # ... after a burst of this many
    enumeration_limit: int = 8
    enumeration_window: float = 60.0
    enumeration_block: float = 600.0


@dataclass(eq=False)
class Peer:
    address: str
    active: int = 0
    tokens: float = 0.0
    refilled: float = 0.0
    unknown: dict[str, float] = field(default_factory=dict)  # MAC -> when last asked
    blocked_until: float = 0.0
    logged: dict[str, list] = field(default_factory=dict)    # kind -> [last logged, not logged since]


def peer_log(peer: Peer, kind: str, now: float, level: int, message: str, *args: object) -> None:
    """Log a refusal once per LOG_INTERVAL per peer and kind, counting the rest."""
    entry = peer.logged.get(kind)
    if entry is not None and now - entry[0] < LOG_INTERVAL:
        entry[1] += 1
        return
    suppressed = entry[1] if entry else 0
    if len(peer.logged) >= 16 and kind not in peer.logged:  # kinds come from a fixed set; stay bounded anyway
        peer.logged.clear()
    peer.logged[kind] = [now, 0]
    if suppressed:
        message += f" ({suppressed} more like it not logged)"
    log.log(level, message, *args)


class PhoneBinding:
    """MAC -> the address its config files are served to (None: any allowed
    peer), read from the inventory and read again when the file changes."""

    RECHECK = 2.0

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self.phones: dict[str, str | None] = {}
        self.networks: list[str] = []
        # Who may ask at all when no allow list is given: loopback, the phones'
        # networks (site.phone_networks or the [dhcp] subnet) and their addresses.
        self.allowed_networks: list[IPNetwork] = []
        self._stamp: tuple | None = None
        self._checked = float("-inf")
        self.reload(0.0)

    def refresh(self, now: float) -> None:
        """Look at the inventory file again if RECHECK seconds have passed."""
        if now - self._checked >= self.RECHECK:
            self.reload(now)

    def reload(self, now: float) -> None:
        """Read the inventory if it changed; a broken edit keeps the last good one."""
        from .inventory import InventoryError, load_inventory

        self._checked = now
        try:
            info = os.stat(self.path)
        except OSError as exc:
            if self._stamp is None:
                raise InventoryError(self.path, [f"cannot read: {exc.strerror or exc}"]) from None
            return
        stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
        if stamp == self._stamp:
            return
        try:
            inventory = load_inventory(self.path)
        except InventoryError as exc:
            if self._stamp is None:
                raise
            log.error("inventory %s changed but is not valid, keeping the previous one: %s", self.path, exc)
            self._stamp = stamp
            return
        self.phones = {phone.mac: (str(ip) if (ip := getattr(phone, "ip", None)) else None)
                       for phone in inventory.phones}
        self.networks = [str(net) for net in inventory.phone_networks()]
        self.allowed_networks = [ipaddress.ip_network(net) for net in
                                 ("127.0.0.0/8", "::1/128", *self.networks,
                                  *(f"{ip}/32" for ip in self.phones.values() if ip))]
        if self._stamp is not None:
            log.info("inventory %s reloaded: %d phones, %d bound to an address", self.path, len(self.phones),
                     sum(1 for ip in self.phones.values() if ip))
        self._stamp = stamp

    def serves(self, name: str, peer: str, now: float) -> bool:
        """May ``peer`` have ``name``? Only phone config names are restricted."""
        match = PHONE_CONFIG.match(name.rpartition("/")[2])  # in a subdirectory too
        if match is None:
            return True
        self.refresh(now)
        mac = match.group(1)
        if mac not in self.phones:
            return False  # a stale file of a phone no longer in the inventory
        bound = self.phones[mac]
        return bound is None or bound == peer


class PeerPolicy:
    def __init__(self, limits: Limits | None = None, allow: Iterable[IPNetwork] | None = None,
                 binding: PhoneBinding | None = None, allow_from_inventory: bool = False):
        """``allow`` None: anyone, or with ``allow_from_inventory`` the binding's
        ``allowed_networks``, which follow the inventory as it changes."""
        self.limits = limits or Limits()
        self.allow = [ipaddress.ip_network(net) for net in allow] if allow else None
        self.binding = binding
        self.allow_from_inventory = allow_from_inventory and binding is not None
        self.peers: dict[str, Peer] = {}
        self._denied_logged: dict[str, float] = {}

    def allowed(self, address: str, now: float) -> bool:
        networks = self.allow
        if networks is None and self.allow_from_inventory:
            self.binding.refresh(now)
            networks = self.binding.allowed_networks
        if networks is None:
            return True
        ip = ipaddress.ip_address(address.partition("%")[0])
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if any(ip in net for net in networks):
            return True
        last = self._denied_logged.get(address)
        if last is None or now - last >= LOG_INTERVAL * 60:
            if len(self._denied_logged) >= MAX_PEERS:
                self._denied_logged.clear()
            self._denied_logged[address] = now
            log.warning("tftp peer %s refused: not in the allowed networks (--allow), no answer given", address)
        return False

    def peer(self, address: str, now: float) -> Peer | None:
        """The peer's state, or None when its request gets no answer at all."""
        peer = self.peers.get(address)
        if peer is None:
            if not self.allowed(address, now):
                return None
            if len(self.peers) >= MAX_PEERS and not self._forget_idle(now):
                log.warning("tftp peer table full (%d peers busy or blocked): request from %s dropped",
                            len(self.peers), address)
                return None
            peer = self.peers[address] = Peer(address, tokens=self.limits.request_burst, refilled=now)
        if peer.blocked_until:
            if now < peer.blocked_until:
                return None
            peer.blocked_until = 0.0
            peer.unknown.clear()
        limits = self.limits
        peer.tokens = min(limits.request_burst, peer.tokens + (now - peer.refilled) * limits.requests_per_second)
        peer.refilled = now
        if peer.tokens < 1:
            peer_log(peer, "rate", now, logging.WARNING,
                     "tftp peer %s over %g requests/s: requests dropped", address, limits.requests_per_second)
            return None
        peer.tokens -= 1
        return peer

    def _forget_idle(self, now: float) -> bool:
        idle = [a for a, p in self.peers.items() if not p.active and p.blocked_until <= now]
        for address in idle[: max(1, len(idle) // 2)]:
            del self.peers[address]
        return bool(idle)

    def note_unknown(self, peer: Peer, name: str, now: float) -> bool:
        """``name`` was not served to ``peer``: count it if it names a phone.
        True when this request blocks the peer (it then gets no answer)."""
        match = PHONE_FILE.match(name.rpartition("/")[2])
        if match is None:
            return False
        limits = self.limits
        unknown = peer.unknown
        mac = match.group(1).upper()
        horizon = now - limits.enumeration_window
        for old in [m for m, at in unknown.items() if at < horizon]:
            del unknown[old]
        unknown[mac] = now
        if len(unknown) >= limits.enumeration_limit:
            peer.blocked_until = now + limits.enumeration_block
            unknown.clear()
            log.warning("tftp enumeration blocked: peer %s asked for %d unknown phone config names within %g s; "
                        "no answers for %g s", peer.address, limits.enumeration_limit, limits.enumeration_window,
                        limits.enumeration_block)
            return True
        return False

"""DHCP for the phones, from the inventory: the site's ``[dhcp]`` section and
each phone's reserved ``ip``, rendered as ISC dhcpd, dnsmasq or Kea DHCPv4
configuration.

A Cisco 79xx asks DHCP for its address and for option 150 (the TFTP servers,
as IP addresses; Cisco's own option) or option 66 (one TFTP server name),
then fetches ``SEP<MAC>.cnf.xml`` from there. Every format carries the same
facts: one reservation per phone with an ``ip``, the dynamic range, router,
DNS, NTP, both TFTP options and the lease time.

The model lives here, not in inventory.py, which only hooks it in (the
``dhcp`` section, ``Phone.ip``) and calls :func:`reservation_errors` among its
cross-checks; so this module must not import inventory.py at run time.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import jinja2
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from .inventory import Inventory

TEMPLATES = {"isc": "dhcpd.conf.j2", "dnsmasq": "dnsmasq.conf.j2", "kea": "kea-dhcp4.conf.j2"}
FORMATS = tuple(TEMPLATES)


def ipv4_address(value: str) -> str:
    """A dotted IPv4 address, normalised (``010.1.2.3`` is refused, not guessed)."""
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None


def ipv4_network(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 network like 10.20.0.0/24 ({exc})") from None


IPv4 = Annotated[str, AfterValidator(ipv4_address)]
IPv4Net = Annotated[str, AfterValidator(ipv4_network)]


class DhcpSection(BaseModel):
    """``[dhcp]``: the phone subnet as the DHCP server hands it out."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    subnet: IPv4Net
    # The dynamic pool for devices without a reservation: [first, last].
    range: list[IPv4] | None = Field(None, min_length=2, max_length=2)
    router: IPv4 | None = None
    dns_servers: list[IPv4] = Field(default_factory=list, max_length=8)
    ntp_servers: list[IPv4] = Field(default_factory=list, max_length=8)
    # Option 150 (Cisco: the phone tries them in order) and option 66 (the first).
    tftp_servers: list[IPv4] = Field(min_length=1, max_length=8)
    domain_name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
    lease_time: int = Field(86400, ge=60, le=31_536_000)
    # The interface the server listens on (dnsmasq interface=, Kea interfaces-config).
    interface: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,15}$")

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    def in_range(self, address: str) -> bool:
        if self.range is None:
            return False
        first, last = (ipaddress.IPv4Address(a) for a in self.range)
        return first <= ipaddress.IPv4Address(address) <= last

    @model_validator(mode="after")
    def _consistent(self) -> DhcpSection:
        net = self.network
        if net.prefixlen > 30:
            raise ValueError(f"subnet {self.subnet} is too small for phones (at most /30)")
        inside = [("router", self.router)] if self.router else []
        if self.range is not None:
            first, last = (ipaddress.IPv4Address(a) for a in self.range)
            if first > last:
                raise ValueError(f"range {self.range[0]} - {self.range[1]}: the first address is after the last")
            inside += [("range start", self.range[0]), ("range end", self.range[1])]
        for what, address in inside:
            if not _host_of(net, address):
                raise ValueError(f"{what} {address} is not a host address of subnet {self.subnet}")
        for server in self.tftp_servers:
            if self.in_range(server):
                raise ValueError(f"TFTP server {server} is inside the dynamic range: a phone could be given it")
        return self


def _host_of(net: ipaddress.IPv4Network, address: str) -> bool:
    ip = ipaddress.IPv4Address(address)
    return ip in net and ip not in (net.network_address, net.broadcast_address)


def reservation_errors(section: DhcpSection | None, phones: list[tuple[str, str | None]]) -> list[str]:
    """Problems with the phones' reserved addresses, one line per phone.

    ``phones`` is (how to name the phone, its ip or None) in inventory order.
    """
    errors: list[str] = []
    taken: dict[str, str] = {}
    net = section.network if section else None
    servers = {}
    if section:
        servers = {a: "TFTP server" for a in section.tftp_servers}
        if section.router:
            servers[section.router] = "router"
    for name, ip in phones:
        if ip is None:
            continue
        if ip in taken:
            errors.append(f"{name}, ip: {ip} is already reserved for {taken[ip]}")
            continue
        taken[ip] = name
        if section is None:
            continue
        if not _host_of(net, ip):
            errors.append(f"{name}, ip: {ip} is outside the DHCP subnet {section.subnet} "
                          "(or is its network or broadcast address)")
        elif section.in_range(ip):
            errors.append(f"{name}, ip: {ip} is inside the dynamic range {section.range[0]} - "
                          f"{section.range[1]}: the server could lease it to another device")
        elif ip in servers:
            errors.append(f"{name}, ip: {ip} is the {servers[ip]}'s address")
    return errors


@dataclass(frozen=True)
class Reservation:
    name: str  # SEP<MAC>: the phone's own device name, unique, safe in every format
    mac: str  # 00:19:e8:f4:90:ad
    ip: str
    label: str


class DhcpError(Exception):
    pass


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("telefeatures.provisioning", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_dhcp(inventory: Inventory, fmt: Literal["isc", "dnsmasq", "kea"]) -> bytes:
    """The DHCP server configuration for the phone subnet, in ``fmt``."""
    section = inventory.dhcp
    if section is None:
        raise DhcpError("the inventory has no [dhcp] section (subnet, range, router, tftp_servers, ...)")
    if fmt not in TEMPLATES:
        raise DhcpError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    reservations = [
        Reservation(f"SEP{phone.mac}", phone.mac_display, phone.ip, phone.label or "")
        for phone in inventory.phones if phone.ip is not None
    ]
    net = section.network
    text = _environment().get_template(TEMPLATES[fmt]).render(
        dhcp=section,
        network=str(net.network_address),
        netmask=str(net.netmask),
        broadcast=str(net.broadcast_address),
        reservations=reservations,
        # Option 66 is one name; the phone prefers 150 when both are given.
        tftp_name=section.tftp_servers[0],
    )
    return text.encode("ascii")

"""What the 7940/7960 SIP firmware's ``key: value`` files (SIPDefault.cnf,
SIP<MAC>.cnf) need beyond the phone settings: its own time-zone names with
explicit daylight-saving rules, and value quoting.

The 79x1 carries daylight-saving rules in its zone table; the 7940/7960 is
given a three-letter zone and the ``dst_*`` rules. A Cisco zone without a
7940 equivalent here (half-hour offsets, zones whose rules changed) is an
error rather than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import timezones as tz


@dataclass(frozen=True)
class DstRule:
    """A daylight-saving rule as the ``dst_*`` keys hold it (Cisco SIP IP Phone
    7960 Administrator Guide, "Setting the Date, Time, and Daylight Savings
    Time"): a relative edge is a weekday of a week of the month (8 = the last
    week), an absolute edge a day of the month (``*_day`` 1-31; 0 = relative)."""

    start_month: str
    start_week_of_month: int  # 8 = the last week; ignored when start_day is set
    start_time: str  # local time, HH:MM
    stop_month: str
    stop_week_of_month: int
    stop_time: str
    start_day_of_week: str = "Sunday"
    stop_day_of_week: str = "Sunday"
    start_day: int = 0
    stop_day: int = 0
    offset: int = 1  # hours added while the rule is in effect


# US/Canada since 2007: second Sunday of March to first Sunday of November, 02:00.
US = DstRule("March", 2, "02:00", "November", 1, "02:00")
# EU: last Sunday of March to last Sunday of October, at 01:00 UTC.
EU_UTC = DstRule("March", 8, "01:00", "October", 8, "02:00")
EU_CET = DstRule("March", 8, "02:00", "October", 8, "03:00")
EU_EET = DstRule("March", 8, "03:00", "October", 8, "04:00")
# Australia (NSW, Victoria, Tasmania, ACT): first Sunday of October to first Sunday of April.
AU = DstRule("October", 1, "02:00", "April", 1, "03:00")
# New Zealand: last Sunday of September to first Sunday of April.
NZ = DstRule("September", 8, "02:00", "April", 1, "03:00")

# Cisco 79x1 zone name -> (7940/7960 time_zone, daylight-saving rule or None).
SIP_CNF_ZONES: dict[str, tuple[str, DstRule | None]] = {
    tz.EASTERN: ("EST", US),
    tz.CENTRAL: ("CST", US),
    tz.MOUNTAIN: ("MST", US),
    tz.US_MOUNTAIN: ("MST", None),
    tz.PACIFIC: ("PST", US),
    tz.ALASKAN: ("AKST", US),
    tz.HAWAIIAN: ("HST", None),
    tz.ATLANTIC: ("AST", US),
    tz.NEWFOUNDLAND: ("NFT", US),
    tz.CANADA_CENTRAL: ("CST", None),
    tz.SA_PACIFIC: ("EST", None),
    tz.SA_WESTERN: ("AST", None),
    tz.GMT: ("GMT", EU_UTC),
    tz.GREENWICH: ("GMT", None),
    tz.W_EUROPE: ("CET", EU_CET),
    tz.ROMANCE: ("CET", EU_CET),
    tz.CENTRAL_EUROPE: ("CET", EU_CET),
    tz.GTB: ("EET", EU_EET),
    tz.E_EUROPE: ("EET", EU_EET),
    tz.SOUTH_AFRICA: ("EET", None),
    tz.SAUDI_ARABIA: ("BT", None),
    tz.ARABIAN: ("ZP4", None),
    tz.CHINA: ("CCT", None),
    tz.TOKYO: ("JST", None),
    tz.E_AUSTRALIA: ("EAST", None),
    tz.AUS_EASTERN: ("EAST", AU),
    tz.TASMANIA: ("EAST", AU),
    tz.NEW_ZEALAND: ("NZST", NZ),
}

NTP_MODES = {"Unicast": "unicast", "Multicast": "multicast", "AnycastMulticast": "anycast",
             "DirectedBroadcast": "directedbroadcast"}


def sip_cnf_zone(cisco_zone: str) -> tuple[str, DstRule | None]:
    try:
        return SIP_CNF_ZONES[cisco_zone]
    except KeyError:
        raise ValueError(f"time zone {cisco_zone!r} has no 7940/7960 equivalent here; "
                         f"use one of: {', '.join(sorted(SIP_CNF_ZONES))}") from None


def cnf_quote(value: object) -> str:
    """A value as the 7940/7960 reads it: in double quotes. The firmware has no
    escapes, and ';' or '#' may start a comment, so those are refused."""
    text = str(value)
    bad = sorted(set(text) & set('";#\r\n\0'))
    if bad:
        raise ValueError(f"{text[:40]!r}: the 7940/7960 configuration format cannot hold {''.join(bad)!r}")
    return f'"{text}"'

"""IANA time zone names mapped to the zone names Cisco 79x1 firmware knows.

The phone does not understand IANA names; it carries its own table of
Windows-style zones and their daylight-saving rules. A zone whose country has
since dropped daylight saving (Mexico 2022, Brazil 2019, Russia 2014, Turkey
2016) is mapped to a Cisco zone with the same UTC offset and no daylight
saving, so the clock is right all year.

Zones not listed are rejected rather than guessed. A site may also give a
Cisco zone name directly (one of ``CISCO_ZONES``).
"""

from __future__ import annotations

# Zone names as the firmware spells them (Standard/Daylight = observes DST).
EASTERN = "Eastern Standard/Daylight Time"
CENTRAL = "Central Standard/Daylight Time"
MOUNTAIN = "Mountain Standard/Daylight Time"
US_MOUNTAIN = "US Mountain Standard Time"  # Arizona: no DST
PACIFIC = "Pacific Standard/Daylight Time"
ALASKAN = "Alaskan Standard/Daylight Time"
HAWAIIAN = "Hawaiian Standard Time"
ATLANTIC = "Atlantic Standard/Daylight Time"
NEWFOUNDLAND = "Newfoundland Standard/Daylight Time"
CANADA_CENTRAL = "Canada Central Standard Time"  # UTC-6, no DST
SA_PACIFIC = "SA Pacific Standard Time"  # UTC-5, no DST
SA_WESTERN = "SA Western Standard Time"  # UTC-4, no DST
SA_EASTERN = "SA Eastern Standard Time"  # UTC-3, no DST
GMT = "GMT Standard/Daylight Time"  # UK/Ireland/Portugal rules
GREENWICH = "Greenwich Standard Time"  # UTC, no DST
W_EUROPE = "W. Europe Standard/Daylight Time"
ROMANCE = "Romance Standard/Daylight Time"
CENTRAL_EUROPE = "Central Europe Standard/Daylight Time"
GTB = "GTB Standard/Daylight Time"
E_EUROPE = "E. Europe Standard/Daylight Time"
EGYPT = "Egypt Standard/Daylight Time"
SOUTH_AFRICA = "South Africa Standard Time"
JERUSALEM = "Jerusalem Standard/Daylight Time"
SAUDI_ARABIA = "Saudi Arabia Standard Time"  # UTC+3, no DST
ARABIAN = "Arabian Standard Time"  # UTC+4, no DST
INDIA = "India Standard Time"
CHINA = "China Standard/Daylight Time"
TOKYO = "Tokyo Standard Time"
CEN_AUSTRALIA = "Cen. Australia Standard/Daylight Time"
AUS_CENTRAL = "AUS Central Standard Time"
E_AUSTRALIA = "E. Australia Standard Time"
AUS_EASTERN = "AUS Eastern Standard/Daylight Time"
TASMANIA = "Tasmania Standard/Daylight Time"
NEW_ZEALAND = "New Zealand Standard/Daylight Time"

IANA_TO_CISCO: dict[str, str] = {
    # North America
    "America/New_York": EASTERN,
    "America/Detroit": EASTERN,
    "America/Kentucky/Louisville": EASTERN,
    "America/Indiana/Indianapolis": EASTERN,
    "America/Toronto": EASTERN,
    "America/Nassau": EASTERN,
    "US/Eastern": EASTERN,
    "America/Chicago": CENTRAL,
    "America/Indiana/Knox": CENTRAL,
    "America/Menominee": CENTRAL,
    "America/Winnipeg": CENTRAL,
    "US/Central": CENTRAL,
    "America/Regina": CANADA_CENTRAL,
    "America/Mexico_City": CANADA_CENTRAL,
    "America/Monterrey": CANADA_CENTRAL,
    "America/Guatemala": CANADA_CENTRAL,
    "America/Costa_Rica": CANADA_CENTRAL,
    "America/Denver": MOUNTAIN,
    "America/Boise": MOUNTAIN,
    "America/Edmonton": MOUNTAIN,
    "US/Mountain": MOUNTAIN,
    "America/Phoenix": US_MOUNTAIN,
    "US/Arizona": US_MOUNTAIN,
    "America/Los_Angeles": PACIFIC,
    "America/Vancouver": PACIFIC,
    "America/Tijuana": PACIFIC,
    "US/Pacific": PACIFIC,
    "America/Anchorage": ALASKAN,
    "America/Juneau": ALASKAN,
    "US/Alaska": ALASKAN,
    "Pacific/Honolulu": HAWAIIAN,
    "US/Hawaii": HAWAIIAN,
    "America/Halifax": ATLANTIC,
    "America/Moncton": ATLANTIC,
    "Atlantic/Bermuda": ATLANTIC,
    "America/St_Johns": NEWFOUNDLAND,
    "America/Puerto_Rico": SA_WESTERN,
    "America/Panama": SA_PACIFIC,
    "America/Jamaica": SA_PACIFIC,
    # South America
    "America/Bogota": SA_PACIFIC,
    "America/Lima": SA_PACIFIC,
    "America/Caracas": SA_WESTERN,
    "America/La_Paz": SA_WESTERN,
    "America/Sao_Paulo": SA_EASTERN,
    "America/Argentina/Buenos_Aires": SA_EASTERN,
    "America/Montevideo": SA_EASTERN,
    # Europe
    "Europe/London": GMT,
    "Europe/Dublin": GMT,
    "Europe/Lisbon": GMT,
    "Atlantic/Reykjavik": GREENWICH,
    "UTC": GREENWICH,
    "Etc/UTC": GREENWICH,
    "Etc/GMT": GREENWICH,
    "Europe/Amsterdam": W_EUROPE,
    "Europe/Berlin": W_EUROPE,
    "Europe/Luxembourg": W_EUROPE,
    "Europe/Oslo": W_EUROPE,
    "Europe/Rome": W_EUROPE,
    "Europe/Stockholm": W_EUROPE,
    "Europe/Vienna": W_EUROPE,
    "Europe/Zurich": W_EUROPE,
    "Europe/Brussels": ROMANCE,
    "Europe/Copenhagen": ROMANCE,
    "Europe/Madrid": ROMANCE,
    "Europe/Paris": ROMANCE,
    "Europe/Belgrade": CENTRAL_EUROPE,
    "Europe/Bratislava": CENTRAL_EUROPE,
    "Europe/Budapest": CENTRAL_EUROPE,
    "Europe/Ljubljana": CENTRAL_EUROPE,
    "Europe/Prague": CENTRAL_EUROPE,
    "Europe/Warsaw": CENTRAL_EUROPE,
    "Europe/Zagreb": CENTRAL_EUROPE,
    "Europe/Athens": GTB,
    "Europe/Bucharest": GTB,
    "Europe/Helsinki": E_EUROPE,
    "Europe/Kyiv": E_EUROPE,
    "Europe/Kiev": E_EUROPE,
    "Europe/Riga": E_EUROPE,
    "Europe/Sofia": E_EUROPE,
    "Europe/Tallinn": E_EUROPE,
    "Europe/Vilnius": E_EUROPE,
    "Europe/Istanbul": SAUDI_ARABIA,
    "Europe/Moscow": SAUDI_ARABIA,
    # Africa, Asia, Oceania
    "Africa/Cairo": EGYPT,
    "Africa/Johannesburg": SOUTH_AFRICA,
    "Asia/Jerusalem": JERUSALEM,
    "Asia/Riyadh": SAUDI_ARABIA,
    "Asia/Qatar": SAUDI_ARABIA,
    "Asia/Dubai": ARABIAN,
    "Asia/Kolkata": INDIA,
    "Asia/Calcutta": INDIA,
    "Asia/Shanghai": CHINA,
    "Asia/Hong_Kong": CHINA,
    "Asia/Tokyo": TOKYO,
    "Australia/Adelaide": CEN_AUSTRALIA,
    "Australia/Darwin": AUS_CENTRAL,
    "Australia/Brisbane": E_AUSTRALIA,
    "Australia/Sydney": AUS_EASTERN,
    "Australia/Melbourne": AUS_EASTERN,
    "Australia/Canberra": AUS_EASTERN,
    "Australia/Hobart": TASMANIA,
    "Pacific/Auckland": NEW_ZEALAND,
}

CISCO_ZONES: frozenset[str] = frozenset(IANA_TO_CISCO.values())


class UnknownTimeZone(ValueError):
    pass


def cisco_time_zone(name: str) -> str:
    """The Cisco zone name for an IANA zone (or a Cisco zone name given as is)."""
    if name in IANA_TO_CISCO:
        return IANA_TO_CISCO[name]
    if name in CISCO_ZONES:
        return name
    raise UnknownTimeZone(
        f"unknown time zone {name!r}{_closest(name)}: use an IANA name such as 'America/New_York' or "
        "'Europe/Berlin', or a Cisco zone name such as 'Eastern Standard/Daylight Time'; "
        "`telefeatures provision zones` lists every name the phones know"
    )


def _closest(name: str) -> str:
    import difflib

    known = [*IANA_TO_CISCO, *sorted(CISCO_ZONES)]
    lowered = {key.lower(): key for key in known}
    if name.lower() in lowered:
        return f" (did you mean {lowered[name.lower()]!r}?)"
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.7)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""

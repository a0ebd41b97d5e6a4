"""Caller IDs that must never become something to dial."""

# Caller IDs a trunk or a phone can claim that must never become dialable.
HOSTILE_NUMBERS = [
    "5551234&PJSIP/evil",
    "5551234,30,tT",
    "5551234|PJSIP/evil",
    "5551234;evil",
    '"5551234"',
    "'5551234'",
    "(555)1234567",
    "555-123-4567",
    "555 123 4567",
    "${SHELL(id)}",
    "5551234${X}",
    "5551234\r\nHANGUP",
    "5551234\n",
    "5551234\r",
    "5551234\x00",
    "\x005551234",
    "5" * 1024,
    "x" * 1024,
    "٥٥٥١٢٣٤٥٦٧",  # Arabic-Indic digits: str.isdigit() is True for these
    "５５５１２３４",  # full-width digits
    "५५५१२३४",  # Devanagari digits
    "5551234\u200b",  # zero-width space
    "+",
    "++15551234567",
    "+-5551234",
    "-5551234",
    "5551234+",
    "12",  # too short
    "1" * 21,  # too long
    " 5551234",
    "5551234 ",
    "sip:5551234@evil.example",
    "*675551234",
    "#5551234",
    "5551234#",
]
WITHHELD_NUMBERS = ["anonymous", "Anonymous", "ANONYMOUS", "unknown", "restricted", "Restricted", "private",
                    "unavailable", "withheld", "blocked", "unidentified", "", " ", " anonymous "]

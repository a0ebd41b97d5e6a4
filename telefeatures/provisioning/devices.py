"""What the provisioning tool knows about each supported phone model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The two configuration formats: the XML SEP<MAC>.cnf.xml of the 79x1/79x2/
# 79x5/7906/797x firmware, and the key: value SIP<MAC>.cnf + SIPDefault.cnf
# of the 7940/7960.
XML_FORMAT = "sep-xml"
SIP_CNF_FORMAT = "sip-cnf"


@dataclass(frozen=True)
class PhoneModel:
    name: str
    # Device type id used in XMLDefault.cnf.xml as loadInformation<id>.
    device_type_id: int
    # Line/feature buttons beside the screen: lines plus speed dials, BLF and
    # service keys together.
    buttons: int
    description: str
    config_format: str = XML_FORMAT


# Device type ids: the corpus's XMLDefault.cnf.xml files and usecallmanager
# (435 7945, 436 7965, 30006 7970, 437 7975, ...); 369 (7906) and 119 (7971) as
# in the device tables of public SCCP/provisioning projects (no corpus file has them).
PHONE_MODELS: dict[str, PhoneModel] = {
    model.name: model
    for model in (
        PhoneModel("7906", 369, 1, "Cisco IP Phone 7906"),
        PhoneModel("7911", 307, 1, "Cisco IP Phone 7911"),
        PhoneModel("7941", 115, 2, "Cisco IP Phone 7941"),
        PhoneModel("7941G-GE", 309, 2, "Cisco IP Phone 7941G-GE"),
        PhoneModel("7942", 434, 2, "Cisco IP Phone 7942"),
        PhoneModel("7945", 435, 2, "Cisco IP Phone 7945"),
        PhoneModel("7961", 30018, 6, "Cisco IP Phone 7961"),
        PhoneModel("7961G-GE", 308, 6, "Cisco IP Phone 7961G-GE"),
        PhoneModel("7962", 404, 6, "Cisco IP Phone 7962"),
        PhoneModel("7965", 436, 6, "Cisco IP Phone 7965"),
        PhoneModel("7970", 30006, 8, "Cisco IP Phone 7970"),
        PhoneModel("7971", 119, 8, "Cisco IP Phone 7971"),
        PhoneModel("7975", 437, 8, "Cisco IP Phone 7975"),
        PhoneModel("7940", 8, 2, "Cisco IP Phone 7940", SIP_CNF_FORMAT),
        PhoneModel("7960", 7, 6, "Cisco IP Phone 7960", SIP_CNF_FORMAT),
    )
}

ModelName = Literal["7906", "7911", "7941", "7941G-GE", "7942", "7945", "7961", "7961G-GE", "7962",
                    "7965", "7970", "7971", "7975", "7940", "7960"]
assert set(ModelName.__args__) == set(PHONE_MODELS)  # type: ignore[attr-defined]

# Limits the phone firmware enforces on configuration values (it truncates or
# rejects longer ones, so an over-long value is an inventory error).
MAX_LINE_FIELD = 30  # featureLabel, name, displayName, authName (usecallmanager)
MAX_PHONE_LABEL = 12  # phoneLabel, no spaces
MAX_URL = 255

# Line keys (featureID): what a button beside the screen does.
FEATURE_LINE = 9
FEATURE_SPEED_DIAL = 2
FEATURE_SERVICE_URI = 20
FEATURE_BLF_SPEED_DIAL = 21

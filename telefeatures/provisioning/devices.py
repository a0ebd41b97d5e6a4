"""What the provisioning tool knows about each supported phone model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhoneModel:
    name: str
    # Device type id used in XMLDefault.cnf.xml as loadInformation<id>.
    device_type_id: int
    # Line/feature buttons: the most sipLines a phone of this model can show.
    line_buttons: int
    description: str


PHONE_MODELS: dict[str, PhoneModel] = {
    model.name: model
    for model in (
        PhoneModel("7911", 307, 1, "Cisco IP Phone 7911"),
        PhoneModel("7941", 115, 2, "Cisco IP Phone 7941"),
        PhoneModel("7941G-GE", 309, 2, "Cisco IP Phone 7941G-GE"),
        PhoneModel("7942", 434, 2, "Cisco IP Phone 7942"),
        PhoneModel("7961", 30018, 6, "Cisco IP Phone 7961"),
        PhoneModel("7961G-GE", 308, 6, "Cisco IP Phone 7961G-GE"),
        PhoneModel("7962", 404, 6, "Cisco IP Phone 7962"),
    )
}

# Limits the phone firmware enforces on configuration values (it truncates or
# rejects longer ones, so an over-long value is an inventory error).
MAX_LINE_FIELD = 30  # featureLabel, name, displayName, authName, authPassword
MAX_PHONE_LABEL = 12  # phoneLabel, no spaces
MAX_URL = 255

TRANSPORT_LAYER_PROTOCOL = {"tcp": 1, "udp": 2, "tls": 3}

"""The image's HEALTHCHECK: GET /healthz from the metrics server, wherever the
settings (environment or TOML file, as `telefeatures serve` reads them) put it.
Healthy only when the server accepts sessions and its Redis answers."""

import sys
import urllib.error
import urllib.request

from telefeatures.config import SettingsError, load_settings

try:
    settings = load_settings()
except SettingsError as exc:
    sys.exit(f"settings: {exc}")
if not settings.metrics.enabled:
    sys.exit("the metrics server is off (metrics.enabled = false): nothing serves /healthz")
host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(str(settings.metrics.host), str(settings.metrics.host))
url = f"http://{f'[{host}]' if ':' in host else host}:{settings.metrics.port}/healthz"
try:
    with urllib.request.urlopen(url, timeout=4) as response:
        print(response.read().decode())
except urllib.error.HTTPError as exc:  # 503: not accepting, or Redis does not answer
    sys.exit(exc.read().decode())
except OSError as exc:
    sys.exit(f"{url}: {exc}")

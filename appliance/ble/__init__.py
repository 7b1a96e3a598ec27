"""Where advertisements come from: BlueZ (bleak), capture replay (btsnoop) and the simulator.

Only this package imports bleak or bluezero; everything it hands on is our own ``Sighting``.
``open_source`` picks the daemon's source; bleak is imported only when that is BlueZ.
"""

from appliance.ble.sources import AdvertisementSource, Wiring, open_source

__all__ = ["AdvertisementSource", "Wiring", "open_source"]

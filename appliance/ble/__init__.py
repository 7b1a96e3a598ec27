"""Where advertisements come from: BlueZ (bleak), capture replay (btsnoop) and the simulator.

Only this package imports bleak or bluezero; everything it hands on is our own ``Sighting``.
"""

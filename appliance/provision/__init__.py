"""Provisioning a batch of door units: an inventory spreadsheet in, one first-boot enrollment
file per unit out (``checkpoint provision bundle``), consumed on the unit's first boot
(``checkpoint provision apply``). The collector is reached only through ``appliance.sync``."""

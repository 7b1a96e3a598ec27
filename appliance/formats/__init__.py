"""Pure formatting shared by the device's exports and the collector: spreadsheet cell guards,
the labels officials read. No I/O, no outside library."""

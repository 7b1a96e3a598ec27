"""One module per app format; each defines ``DECODER`` (see ``appliance.protocols.registry``)."""

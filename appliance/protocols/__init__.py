"""Pure decoders for what phones put on the air, and the identifier derivations behind them.

Nothing here does I/O or imports a hardware, database, HTTP or UI library.
"""

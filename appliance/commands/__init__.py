"""The ``checkpoint`` subcommands: one module per command (or small family), each declaring its
parser and options beside its handler through ``register(subparsers)``."""

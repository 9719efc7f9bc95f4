"""`ember <command>` implementations: one module per command group, each with `register(subparsers)`."""

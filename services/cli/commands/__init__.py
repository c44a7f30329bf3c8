"""One module per ``atlas`` command; each adds its parser with ``register(commands)``."""

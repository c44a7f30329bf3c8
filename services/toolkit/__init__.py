"""Code that every Atlas service shares: configuration, errors, RPC and the launcher."""

import warnings

# eventlet 0.41 warns on import that it is in maintenance mode. Atlas keeps
# every eventlet-specific line in this toolkit so that it can move off it.
# Its EventletDeprecationWarning derives from Warning, not DeprecationWarning.
warnings.filterwarnings("ignore", message="\nEventlet is deprecated", category=Warning)

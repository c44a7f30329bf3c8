"""Route groups of the gateway, each a mixin of ``GatewayService``."""

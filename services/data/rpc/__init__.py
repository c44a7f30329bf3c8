"""The data service's RPC methods, one mixin per group of entities."""

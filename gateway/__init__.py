"""The public HTTP gateway: Vagrant Cloud compatible API and box metadata."""

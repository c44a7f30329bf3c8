"""Worker pools: the handlers of each job kind."""

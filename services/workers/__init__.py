"""Worker pools: they claim jobs from their kinds' queues and run the kinds' handlers."""

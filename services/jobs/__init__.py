"""The jobs dispatcher: it moves jobs from the database onto their kinds' queues."""

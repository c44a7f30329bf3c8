"""The data service: the only owner of Atlas's PostgreSQL database."""

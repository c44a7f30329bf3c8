"""The ``atlas`` command: start the suite, migrate, and manage users, organizations and tokens."""

"""Server-rendered pages for people: templates, static files, sessions and CSRF checks."""

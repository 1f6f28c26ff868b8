"""Demo data files: the knowledge base and catalogue loaded by ``flask --app wsgi demo``."""

"""Service plugins. Each package holds service.py (nameko entrypoints), store.py (SQL),
messages.py (request shapes) and routes.py (its gateway routes), and exports PLUGIN."""

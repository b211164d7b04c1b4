"""Demo pieces that ship with the gateway: ``legacy_app`` is "Acme HR", a small legacy REST app.

Nothing is imported here, so ``python -m gateway.demo.legacy_app`` runs the module only once.
"""

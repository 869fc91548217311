"""Celery broker transports shipped with the app, for sites without a broker server.

Nothing in the app imports this package: a site opts in by naming a transport in its broker
URL, and imports the module that registers that name (see each module's docstring).
"""

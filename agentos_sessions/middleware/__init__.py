"""ASGI middlewares around Connexion's, one per module; app.py puts them in order."""

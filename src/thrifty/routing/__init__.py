"""Routing: which targets may serve a request, and in what order."""

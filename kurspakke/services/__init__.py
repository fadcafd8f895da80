"""Domain services: plain functions and classes that take a Session (and clients) and know nothing of Flask."""

"""Vigie: pull the usage logs of public-security cameras, check them, find what breaks the law."""
__version__ = "0.1.0"

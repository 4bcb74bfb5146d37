"""cltrlib: the library behind the cltr notebooks (cross-lingual transfer, English → Japanese).

Stages (each a module, each writing to the results store):
``data`` → ``codegen`` → ``execution``/``evaluate`` → ``metrics`` → ``tables``/``plots``.
"""

__version__ = "0.1.0"

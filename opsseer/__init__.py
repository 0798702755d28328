"""OpsSeer: the command line and the process supervisor that assembles the stack."""

__version__ = "0.1.0"

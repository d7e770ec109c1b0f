"""lastmile: an open-source three-sided delivery marketplace."""

__version__ = "0.1.0"

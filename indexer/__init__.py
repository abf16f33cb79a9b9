"""Documents -> passages -> SQLite store, and the build folder; the legs' indexes are written by `backends`."""

__version__ = "0.1.0"

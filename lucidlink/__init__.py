"""lucidlink: self-hostable cloud filespaces and a LucidLink-compatible Python SDK."""

__version__ = "0.1.0"

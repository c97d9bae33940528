"""Server-rendered pages for clinicians (``/ui``): session list and session page.

Everything the pages need (templates, our script and stylesheet, the vendored chart library)
ships in this package; nothing is loaded from the network.
"""

from .pages import install_web

__all__ = ["install_web"]

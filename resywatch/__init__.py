"""resywatch: find, watch and book hard-to-get Resy reservations from the terminal."""

from __future__ import annotations

__version__ = "0.1.0"

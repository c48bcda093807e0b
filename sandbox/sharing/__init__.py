"""Sharing between departments: grants bound to a purpose (``grants``), the
extracts delivered under them (``delivery``), recipients' feedback and
providers' responsibility lists (``feedback``), and counted use (``usage``)."""

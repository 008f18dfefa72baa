"""leergang-ops: run a course's administration for Dutch municipalities from an Excel workbook."""

__version__ = "0.1.0"

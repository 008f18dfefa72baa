"""The organisers' workbook: its schema, reading it, writing back losslessly, a new one."""

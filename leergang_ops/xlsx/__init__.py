"""Lossless write-back into any .xlsx: one module per part of the package it patches."""

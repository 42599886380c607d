"""Shared test builders: tiny and compact models, MCU models, report records, the Ray search slice, a headless browser."""

"""Small helpers shared by every part of lanekd (no torch imports here)."""

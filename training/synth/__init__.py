"""Synthetic indoor RGB-D scenes written in the NYU Depth V2 layouts (SPEC §6)."""

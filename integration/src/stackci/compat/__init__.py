"""Compatibility: declared contracts, the support window's catalog, verified pairs, the
nightly's coverage of verified-compatible pairs, and the checks a combination must pass."""

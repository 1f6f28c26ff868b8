"""Catalogue, devices, warranty rules, QR codes and labels (the core of the self-service site)."""

"""Grubhub MDRP benchmark runner (Reyes et al. 2018; instances from grubhub/mdrplib)."""

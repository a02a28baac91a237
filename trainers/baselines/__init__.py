"""Baselines a user would otherwise pick; their schedule variants are generated in trainers/schedules.py."""

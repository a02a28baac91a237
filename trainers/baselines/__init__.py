"""Baselines a user would otherwise pick, on the same schedules as HolderMITrainer's variants."""

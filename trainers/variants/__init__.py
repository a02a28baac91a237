"""HolderMITrainer variants, one module per aspect they change (nnU-Net's grouping)."""

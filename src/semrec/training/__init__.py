"""Training utilities shared by the learned models: sampling, losses, seeding."""

"""Training multi-task models: data loading, the joint Trainer, metrics and the command line."""

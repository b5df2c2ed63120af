"""Model cards and Hub publishing for multi-task models."""

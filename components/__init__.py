"""llm-platform components: one concern per module, consumed by `stacks`."""

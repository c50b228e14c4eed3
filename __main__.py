"""llm-platform: validate this stack's config, then build its platform."""

from stacks.compose import build_platform, load_stack_config

build_platform(load_stack_config())

"""llm-platform's CrossGuard policy pack: `rules.py` (the validators, plain functions) and
`__main__.py` (the pack the Pulumi CLI runs: `pulumi preview --policy-pack policy`)."""

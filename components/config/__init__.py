"""The typed stack config: everything a `Pulumi.<stack>.yaml` may say under `llm-platform:`.

`stack.py` (the whole stack, cross-section rules), `addons.py`, `models.py`, `types.py` (shared
types), `errors.py` (key-path errors), and the two places the config becomes the planner's plain
shapes: `planning.py` (a model -> a serving shape) and `cost.py` (the pools -> priced pools).
Registers nothing and imports no `pulumi_*` provider package.
"""

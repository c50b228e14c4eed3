"""The capacity planner, pure: memory model, architectures, weight formats, memory flags, fit
rules, cost. Plain shapes in (`ServingShape`, `PoolToPrice`), numbers out; it imports neither
`pulumi` nor the stack config (`config/planning.py` and `config/cost.py` build its inputs).
"""

"""The portal's Automation API layer: one environment request validated exactly as `pulumi preview`
validates a stack file, and run as preview, up, refresh or destroy of this project's own
`__main__.py` through `pulumi.automation`.

It lives in `stacks/` because it composes stacks the way the CLI does (the same stack-file model,
the same preflight, the same offline plan for predicted capacity and cost); the HTTP service in
`stacks/service/` is one caller of it, the CLI could be another.
"""

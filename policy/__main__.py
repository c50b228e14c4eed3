"""The policy pack the Pulumi CLI runs. Only here is `PolicyPack(...)` constructed: doing so starts
the policy server, so nothing imports this module (tests and `python -m stacks policy` use `rules`)."""

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from rules import CONFIG_SCHEMAS, RULES, Resource, Rule  # the pack's directory is its import root

_LEVEL = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}
_CONFIG = {name: PolicyConfigSchema(properties=properties) for name, properties in CONFIG_SCHEMAS.items()}


def _resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for message in rule.resource(Resource(args.resource_type, args.props, args.urn, args.name)):
            report(message)

    return ResourceValidationPolicy(rule.name, rule.description, validate, _LEVEL[rule.level], config_schema=_CONFIG.get(rule.name))


def _stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        resources = [Resource(r.resource_type, r.props, r.urn, r.name) for r in args.resources]
        for message in rule.stack(resources, args.get_config()):
            report(message)

    return StackValidationPolicy(rule.name, rule.description, validate, _LEVEL[rule.level], config_schema=_CONFIG.get(rule.name))


PolicyPack(
    name="llm-platform",
    policies=[_resource_policy(r) if r.resource else _stack_policy(r) for r in RULES],
)

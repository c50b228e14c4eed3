"""The cost estimate: a dated price for every supported type, totals that add up, warnings instead
of silent zeros, overrides from config, and the table the plan prints."""

from __future__ import annotations

import csv
import statistics
import subprocess
import sys

from conftest import PROJECT_DIR, dev_config_values, program_run, stack_from

from components.catalog.gcp_zones import accelerator_zones, zone_table_regions
from components.catalog.gpus import gpu_instance, gpu_instance_names
from components.catalog.prices import hourly_price, price_table
from components.config.stack import ConfigError
from components.planner.cost import HOURS_PER_MONTH
from stacks.offline import run_program

NS = "llm-platform"
UNPRICED = {"p5e.48xlarge"}  # no published on-demand price in the table's sources (see its header)


def test_every_supported_gpu_type_has_a_dated_on_demand_price_in_the_stack_regions():
    table = price_table()
    assert table.as_of and table.sources["on-demand"] and table.sources["spot"]
    for region in ("us-east-1", "us-west-2"):
        missing = {
            name for name in gpu_instance_names()
            if gpu_instance(name).cloud == "aws" and hourly_price(region, name, "on-demand") is None
        }
        assert missing == UNPRICED, (region, missing)


def test_every_gcp_gpu_machine_type_is_priced_where_it_is_offered():
    """A GKE node is its VM plus its GPUs (SkyPilot's VM rows exclude the GPUs): every machine type
    of the catalog has both prices in each table region whose zones offer its accelerator."""
    table = price_table("gcp")
    assert table.as_of and "skypilot-catalog" in table.sources["on-demand"] and "VM row + GPU row" in table.sources["on-demand"]
    assert set(table.regions) == set(zone_table_regions())
    for region, types in table.regions.items():
        for name in gpu_instance_names("gcp"):
            machine = gpu_instance(name)
            if accelerator_zones(machine.accelerator, region) and name in types:
                assert types[name].get("onDemand", 1) > 0 and types[name].get("spot", 1) > 0, (region, name)
    central = table.regions["us-central1"]
    for name in ("g2-standard-8", "g2-standard-48", "a2-highgpu-1g", "a3-highgpu-8g"):
        assert {"onDemand", "spot"} <= set(central[name]), name
    # 1 L4 on a g2-standard-8 costs more than the VM alone, less than 2 L4s on a g2-standard-24.
    assert central["g2-standard-8"]["onDemand"] < central["g2-standard-24"]["onDemand"]


def test_spot_is_cheaper_than_on_demand_where_both_are_known():
    for cloud in ("aws", "gcp"):
        for region, types in price_table(cloud).regions.items():
            for name, prices in types.items():
                if "spot" in prices and "onDemand" in prices:
                    assert 0 < prices["spot"] <= prices["onDemand"], (cloud, region, name)


def test_shipped_stacks_are_fully_priced_and_add_up(run):
    cost = run.outputs["cost"]
    assert cost["warnings"] == []
    pools = cost["pools"]
    for scale in ("atMinimum", "atMaximum"):
        assert abs(sum(p[scale]["perHour"] for p in pools) - cost[scale]["perHour"]) < 0.01 * len(pools)
        assert abs(cost[scale]["perMonth"] - cost[scale]["perHour"] * HOURS_PER_MONTH) < HOURS_PER_MONTH * 0.01
    for pool in pools:
        assert pool["nodePricePerHour"] > 0
        assert abs(pool["atMaximum"]["perHour"] - pool["nodes"]["max"] * pool["nodePricePerHour"]) < 0.01
    assert cost["atMinimum"]["perHour"] <= cost["atMaximum"]["perHour"]


def test_pools_are_priced_by_how_they_launch_nodes(stack_config, run):
    rows = {p["pool"]: p for p in run.outputs["cost"]["pools"]}
    region = stack_config.region
    for pool in stack_config.gpu_pools:
        row = rows[pool.name]
        assert (row["nodes"]["min"], row["nodes"]["max"]) == (pool.min_size, pool.max_size)
        if pool.capacity_type == "on-demand":  # prioritized: the first listed type
            assert row["instanceType"] == pool.instance_types[0]
        else:  # any listed type: the dearest spot price is the ceiling
            assert row["nodePricePerHour"] == max(hourly_price(region, t, "spot", cloud=stack_config.cloud) for t in pool.instance_types)
    for kpool in stack_config.addons.karpenter.node_pools:
        row = rows[kpool.name]
        assert row["nodes"] == {"min": 0, "max": kpool.max_gpus // kpool.gpus_per_node}
        assert row["capacityType"] == kpool.capacity_types[0]
        assert row["nodePricePerHour"] == min(hourly_price(region, t, row["capacityType"]) for t in kpool.instance_types)


def test_spot_saving_is_what_the_same_nodes_cost_more_on_demand(stack_config, run):
    cost = run.outputs["cost"]
    expected = sum(
        p["nodes"]["max"] * (hourly_price(stack_config.region, p["instanceType"], "on-demand", cloud=stack_config.cloud) - p["nodePricePerHour"])
        for p in cost["pools"]
        if p["capacityType"] == "spot"
    )
    assert expected > 0 and abs(cost["spotSavingAtMaximum"]["perHour"] - expected) < 0.01


def test_missing_price_is_a_warning_naming_the_type_never_a_silent_zero():
    values = dev_config_values()
    values[f"{NS}:region"] = "eu-north-1"
    values[f"{NS}:cluster"]["network"]["availabilityZones"] = ["eu-north-1a", "eu-north-1b"]
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    warnings = run.outputs["cost"]["warnings"]
    assert any("no on-demand price for m7i.large in eu-north-1" in w and "llm-platform:prices.m7i.large" in w for w in warnings)
    assert any("g6.xlarge" in w for w in warnings)


def test_a_pool_type_without_a_price_is_named_even_when_others_are_priced():
    values = dev_config_values()
    values[f"{NS}:region"] = "eu-north-1"  # not in the table: only the override below is known
    values[f"{NS}:cluster"]["network"]["availabilityZones"] = ["eu-north-1a", "eu-north-1b"]
    values[f"{NS}:addons"]["karpenter"]["nodePools"][0]["instanceTypes"] = ["g6.xlarge", "g6.2xlarge"]
    values[f"{NS}:prices"] = {"g6.xlarge": {"spot": 0.3, "onDemand": 0.8}}
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    cost = run.outputs["cost"]
    (burst,) = [p for p in cost["pools"] if p["pool"] == "l4-burst"]
    assert burst["instanceType"] == "g6.xlarge" and burst["nodePricePerHour"] == 0.3
    assert any("no spot price for g6.2xlarge in eu-north-1" in w for w in cost["warnings"])


def test_prices_can_be_overridden_in_config():
    values = dev_config_values()
    values[f"{NS}:prices"] = {"g6.xlarge": {"spot": 0.1}, "m7i.large": {"onDemand": 0.05}}
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    rows = {p["pool"]: p for p in run.outputs["cost"]["pools"]}
    assert rows["l4-burst"]["nodePricePerHour"] == 0.1 and rows["system"]["nodePricePerHour"] == 0.05


def test_bad_price_override_is_a_config_error():
    values = dev_config_values()
    values[f"{NS}:prices"] = {"g6.xlarge": {"spot": -1}}
    run = run_program(stack_from(values), preview=True)
    assert isinstance(run.error, ConfigError)
    assert "llm-platform:prices['g6.xlarge'].spot" in str(run.error)


def test_plan_prints_the_cost_table():
    proc = subprocess.run(
        [sys.executable, "-m", "stacks", "plan", "prod"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    table = proc.stdout.split("Cost estimate", 1)[1]
    cost = program_run("prod", "preview").outputs["cost"]
    for pool in cost["pools"]:
        assert pool["pool"] in table and pool["instanceType"] in table
    assert f"{cost['atMaximum']['perHour']:,.2f}" in table and "spot saving at maximum scale" in table
    assert "EC2 prices" in table


def test_gke_plan_prints_compute_engine_prices_and_what_gcp_leaves_out():
    proc = subprocess.run(
        [sys.executable, "-m", "stacks", "plan", "dev-gke"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    table = proc.stdout.split("Cost estimate", 1)[1]
    assert "Compute Engine prices" in table and "Filestore instances" in table and "EKS" not in table


SKYPILOT_GCP_ROWS = PROJECT_DIR / "tests/fixtures/prices/skypilot-gcp-vms-006059e0.csv"  # the source rows, as read
SKYPILOT_ACCELERATOR = {"nvidia-l4": "L4", "nvidia-tesla-a100": "A100", "nvidia-a100-80gb": "A100-80GB", "nvidia-h100-80gb": "H100",
                        "nvidia-h100-mega-80gb": "H100-MEGA", "nvidia-h200-141gb": "H200", "nvidia-b200": "B200"}


def test_gcp_prices_are_the_vm_row_plus_the_gpu_row_median_over_zones():
    """Recomputes the table from the SkyPilot rows it came from: a GKE GPU node is billed for its VM
    and its GPUs, which that catalog lists apart; a zero is no price."""
    rows = list(csv.DictReader(SKYPILOT_GCP_ROWS.open()))
    vms = {(r["InstanceType"], r["Region"], r["AvailabilityZone"]): r for r in rows if r["InstanceType"]}
    gpus = {(r["AcceleratorName"], int(float(r["AcceleratorCount"])), r["AvailabilityZone"]): r for r in rows if not r["InstanceType"]}
    table = price_table("gcp").regions
    checked = 0
    for name, region in sorted({(n, r) for n, r, _ in vms}):
        machine = gpu_instance(name)
        for key, column in (("onDemand", "Price"), ("spot", "SpotPrice")):
            per_zone = []
            for (n, r, zone), vm in vms.items():
                if (n, r) != (name, region):
                    continue
                price = float(vm[column] or 0)
                if machine is not None:
                    gpu = gpus[(SKYPILOT_ACCELERATOR[machine.accelerator], machine.gpus_per_node, zone)]
                    price = price + float(gpu[column] or 0) if price and float(gpu[column] or 0) else 0
                if price:
                    per_zone.append(price)
            expected = round(statistics.median(per_zone), 4) if per_zone else None
            assert table.get(region, {}).get(name, {}).get(key) == expected, (region, name, key)
            checked += 1
    assert checked > 150


SKYPILOT_AZURE_ROWS = PROJECT_DIR / "tests/fixtures/prices/skypilot-azure-vms-098741e7.csv"


def test_azure_prices_are_the_whole_vm_rows_of_the_source_with_placeholders_left_out():
    """Azure rows price the whole VM (GPUs included): the table is the source row, except a zero
    (no price) and a spot price equal to the on-demand one (a placeholder, as for the H100 sizes)."""
    table = price_table("azure").regions
    rows = list(csv.DictReader(SKYPILOT_AZURE_ROWS.open()))
    assert len(rows) > 80
    for row in rows:
        entry = table[row["Region"]][row["InstanceType"]]
        price, spot = float(row["Price"]), float(row["SpotPrice"] or 0)
        assert entry["onDemand"] == price, row
        assert entry.get("spot") == (spot if 0 < spot != price else None), row
    for name in gpu_instance_names("azure"):
        if name != "Standard_ND96isr_H200_v5":  # not in the source
            assert any(name in sizes for sizes in table.values()), name
    assert table["eastus"]["Standard_NC24ads_A100_v4"]["spot"] < table["eastus"]["Standard_NC24ads_A100_v4"]["onDemand"]

#!/usr/bin/env python3
"""Regenerates the bundled catalog tables in this directory (regions.csv, instance_types.csv,
offerings.csv, images.csv; clouds.csv is written by hand).

Usage: python3 regenerate.py /path/to/shared/catalogs/skypilot-v8

GCP and Azure rows, and the AWS rows for m6i.2xlarge and p3.*, are copied (and, for GCP GPUs,
combined host + GPU exactly as the Rust importer does) from the SkyPilot v8 snapshot of
2026-05-20. The other AWS rows are public us-east-1 on-demand list prices as the maintainers knew
them (2025), scaled to other regions by the region's m6i.2xlarge / p3.2xlarge price ratio in that
snapshot; their spot prices are estimates. GCP TPUs: single-host slices only (one TPU VM each);
the host's vCPUs and memory are Google's published TPU VM shapes (GCP_TPU), prices the snapshot's. images.csv is derived from the snapshot's
aws/images.csv and gcp/images.csv (default Ubuntu images, newest per region and flavor). Edit this
script rather than the generated files.
"""

import csv
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

SNAPSHOT = "skypilot-v8@2026-05-20"
SNAPSHOT_DATE = "2026-05-20"
HERE = Path(__file__).resolve().parent

AWS_ZONES = {
    "us-east-1": "a b c d f",
    "us-east-2": "a b c",
    "us-west-2": "a b c d",
    "eu-west-1": "a b c",
    "ap-northeast-1": "a c d",
}
GCP_REGIONS = ["us-central1", "us-east1", "us-west1", "europe-west4", "asia-east1"]
# Regions bundled only for the TPUs in them (TPU v4 is sold in us-central2 alone).
GCP_TPU_REGIONS = ["us-central2"]
AZURE_REGIONS = ["eastus", "westus2", "westeurope", "northeurope", "japaneast"]

# (cloud, region) -> (gCO2/kWh, source). Approximate annual grid averages, rounded to 10.
CARBON = {
    ("aws", "us-east-1"): (290, "approx. EIA 2022 state average: Virginia"),
    ("aws", "us-east-2"): (530, "approx. EIA 2022 state average: Ohio"),
    ("aws", "us-west-2"): (140, "approx. EIA 2022 state average: Oregon"),
    ("aws", "eu-west-1"): (300, "approx. national grid average: Ireland 2023"),
    ("aws", "ap-northeast-1"): (460, "approx. national grid average: Japan 2022"),
    ("gcp", "us-central1"): (340, "approx. EIA 2022 state average: Iowa"),
    ("gcp", "us-east1"): (260, "approx. EIA 2022 state average: South Carolina"),
    ("gcp", "us-west1"): (140, "approx. EIA 2022 state average: Oregon"),
    ("gcp", "europe-west4"): (320, "approx. national grid average: Netherlands 2023"),
    ("gcp", "asia-east1"): (500, "approx. national grid average: Taiwan 2022"),
    ("gcp", "us-central2"): (None, "not known to the maintainers (Oklahoma)"),
    ("azure", "eastus"): (290, "approx. EIA 2022 state average: Virginia"),
    ("azure", "westus2"): (90, "approx. EIA 2022 state average: Washington"),
    ("azure", "westeurope"): (320, "approx. national grid average: Netherlands 2023"),
    ("azure", "northeurope"): (300, "approx. national grid average: Ireland 2023"),
    ("azure", "japaneast"): (460, "approx. national grid average: Japan 2022"),
}

# Where the newer accelerator families are offered, among the bundled regions (as the maintainers
# knew it in 2025).
G6_REGIONS = ["us-east-1", "us-east-2", "us-west-2", "ap-northeast-1"]
P5_REGIONS = ["us-east-1", "us-east-2", "us-west-2", "ap-northeast-1"]
TRN1_REGIONS = ["us-east-1", "us-east-2", "us-west-2"]

# name: (vcpus, memory GiB, accelerator, count, us-east-1 on-demand $/h, regions or None = all)
AWS_LIST = {
    "m6i.large": (2, 8, None, None, 0.096, None),
    "m6i.xlarge": (4, 16, None, None, 0.192, None),
    "m6i.4xlarge": (16, 64, None, None, 0.768, None),
    "m6i.8xlarge": (32, 128, None, None, 1.536, None),
    "m6i.16xlarge": (64, 256, None, None, 3.072, None),
    "m7i.large": (2, 8, None, None, 0.1008, None),
    "m7i.xlarge": (4, 16, None, None, 0.2016, None),
    "m7i.2xlarge": (8, 32, None, None, 0.4032, None),
    "m7i.4xlarge": (16, 64, None, None, 0.8064, None),
    "m7i.8xlarge": (32, 128, None, None, 1.6128, None),
    "c6i.large": (2, 4, None, None, 0.085, None),
    "c6i.xlarge": (4, 8, None, None, 0.17, None),
    "c6i.2xlarge": (8, 16, None, None, 0.34, None),
    "c6i.4xlarge": (16, 32, None, None, 0.68, None),
    "c6i.8xlarge": (32, 64, None, None, 1.36, None),
    "r6i.large": (2, 16, None, None, 0.126, None),
    "r6i.xlarge": (4, 32, None, None, 0.252, None),
    "r6i.2xlarge": (8, 64, None, None, 0.504, None),
    "r6i.4xlarge": (16, 128, None, None, 1.008, None),
    "r6i.8xlarge": (32, 256, None, None, 2.016, None),
    "g4dn.xlarge": (4, 16, "T4", 1, 0.526, None),
    "g4dn.2xlarge": (8, 32, "T4", 1, 0.752, None),
    "g4dn.4xlarge": (16, 64, "T4", 1, 1.204, None),
    "g4dn.12xlarge": (48, 192, "T4", 4, 3.912, None),
    "g5.xlarge": (4, 16, "A10G", 1, 1.006, None),
    "g5.2xlarge": (8, 32, "A10G", 1, 1.212, None),
    "g5.4xlarge": (16, 64, "A10G", 1, 1.624, None),
    "g5.12xlarge": (48, 192, "A10G", 4, 5.672, None),
    "g5.48xlarge": (192, 768, "A10G", 8, 16.288, None),
    "g6.xlarge": (4, 16, "L4", 1, 0.8048, G6_REGIONS),
    "g6.2xlarge": (8, 32, "L4", 1, 0.9776, G6_REGIONS),
    "g6.4xlarge": (16, 64, "L4", 1, 1.3232, G6_REGIONS),
    "g6.12xlarge": (48, 192, "L4", 4, 4.6016, G6_REGIONS),
    "g6.48xlarge": (192, 768, "L4", 8, 13.3504, G6_REGIONS),
    "g6e.xlarge": (4, 32, "L40S", 1, 1.861, G6_REGIONS),
    "g6e.2xlarge": (8, 64, "L40S", 1, 2.24208, G6_REGIONS),
    "g6e.12xlarge": (48, 384, "L40S", 4, 10.49264, G6_REGIONS),
    "g6e.48xlarge": (192, 1536, "L40S", 8, 30.13118, G6_REGIONS),
    # P4/P5: list prices after AWS's June 2025 price cut on P4d/P4de/P5/P5en.
    "p4d.24xlarge": (96, 1152, "A100", 8, 21.95764, ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"]),
    "p4de.24xlarge": (96, 1152, "A100-80GB", 8, 27.44705, ["us-east-1", "us-west-2", "ap-northeast-1"]),
    "p5.4xlarge": (16, 256, "H100", 1, 6.88, P5_REGIONS),
    "p5.48xlarge": (192, 2048, "H100", 8, 55.04, P5_REGIONS),
    # p5e.48xlarge (H200:8) is left out: it is sold through EC2 Capacity Blocks, with no public
    # on-demand list price to put here. p5en.48xlarge carries the same GPUs on demand.
    "p5en.48xlarge": (192, 2048, "H200", 8, 63.296, P5_REGIONS),
    # Neuron devices (AWS's own accelerators), named and counted as EC2 reports them.
    "inf2.xlarge": (4, 16, "Inferentia2", 1, 0.7582, None),
    "inf2.8xlarge": (32, 128, "Inferentia2", 1, 1.96786, None),
    "inf2.24xlarge": (96, 384, "Inferentia2", 6, 6.49063, None),
    "inf2.48xlarge": (192, 768, "Inferentia2", 12, 12.98127, None),
    "trn1.2xlarge": (8, 32, "Trainium", 1, 1.34375, TRN1_REGIONS),
    "trn1.32xlarge": (128, 512, "Trainium", 16, 21.5, TRN1_REGIONS),
}
AWS_FROM_SNAPSHOT = {
    "m6i.2xlarge": (8, 32, None, None),
    "p3.2xlarge": (8, 61, "V100", 1),
    "p3.8xlarge": (32, 244, "V100", 4),
    "p3.16xlarge": (64, 488, "V100", 8),
}
GPU_SPOT_RATIO_ESTIMATE = 0.4

GCP_CPU = [
    "n2-standard-2", "n2-standard-4", "n2-standard-8", "n2-standard-16", "n2-standard-32",
    "n2-highmem-4", "n2-highmem-8", "n2-highmem-16",
    "e2-standard-2", "e2-standard-4", "e2-standard-8", "e2-standard-16",
    "c2-standard-4", "c2-standard-8", "c2-standard-16", "c2-standard-30",
]
# (host, accelerator, count)
GCP_GPU = [
    ("a2-highgpu-1g", "A100", 1), ("a2-highgpu-8g", "A100", 8),
    ("a2-ultragpu-1g", "A100-80GB", 1), ("a2-ultragpu-8g", "A100-80GB", 8),
    ("a3-highgpu-1g", "H100", 1), ("a3-highgpu-8g", "H100", 8), ("a3-ultragpu-8g", "H200", 8),
    ("g2-standard-4", "L4", 1), ("g2-standard-8", "L4", 1), ("g2-standard-48", "L4", 4),
    ("g2-standard-96", "L4", 8),
    ("n1-highmem-8", "V100", 1), ("n1-highmem-32", "V100", 4), ("n1-highmem-64", "V100", 8),
    ("n1-standard-4", "T4", 1), ("n1-highmem-8", "T4", 1), ("n1-highmem-32", "T4", 4),
]
# Single-host TPU slices: name -> (host vCPUs, host memory GB), Google's published TPU VM shapes
# (cloud.google.com/tpu/docs: v4, v5e, v5p, v6e; 2025). A slice of more chips than one VM holds
# (tpu-v4-16, tpu-v5litepod-16, ...) spans several VMs, which aloft's model (one instance = one
# VM carrying NAME:COUNT) cannot express, so those are not bundled (the Rust side says so).
# Keep in step with TPU_HOSTS in src/skypilot.rs.
GCP_TPU = {
    "tpu-v4-8": (240, 407),
    "tpu-v5litepod-1": (24, 48),
    "tpu-v5litepod-4": (112, 192),
    "tpu-v5litepod-8": (224, 384),
    "tpu-v5p-8": (208, 448),
    "tpu-v6e-1": (44, 176),
    "tpu-v6e-4": (180, 720),
    "tpu-v6e-8": (180, 1440),
}
# The snapshot prices every tpu-v6e size in asia-east1 at exactly 700 $/h, on demand and spot:
# a placeholder, not a price (europe-west4 has 2.97 for one chip). Those rows are dropped.
TPU_PLACEHOLDER_PRICE = 700.0

AZURE_TYPES = [
    "Standard_D2s_v5", "Standard_D4s_v5", "Standard_D8s_v5", "Standard_D16s_v5", "Standard_D32s_v5",
    "Standard_E4s_v5", "Standard_E8s_v5", "Standard_E16s_v5", "Standard_E32s_v5",
    "Standard_F4s_v2", "Standard_F8s_v2", "Standard_F16s_v2", "Standard_F32s_v2",
    "Standard_NC6s_v3", "Standard_NC12s_v3", "Standard_NC24s_v3",
    "Standard_NC24ads_A100_v4", "Standard_NC96ads_A100_v4", "Standard_ND96asr_v4",
    "Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3", "Standard_NC64as_T4_v3",
    "Standard_NV36ads_A10_v5", "Standard_NC40ads_H100_v5", "Standard_ND96isr_H100_v5",
    "Standard_NC8ads_A10_v4", "Standard_NC16ads_A10_v4", "Standard_NC32ads_A10_v4",
    "Standard_NC48ads_A100_v4", "Standard_ND96amsr_A100_v4", "Standard_NC80adis_H100_v5",
    "Standard_ND96isr_H200_v5", "Standard_ND96isr_MI300X_v5",
]


# The SkyPilot image tags aloft takes as defaults, exactly as the Rust importer reads them
# (src/images.rs): skypilot:[custom-](cpu|gpu)-ubuntu[-DIGITS...].
IMAGE_TAG = re.compile(r"^skypilot:(?:custom-)?(cpu|gpu)-ubuntu(?:-[0-9]+)*$")


def default_images(path, regions):
    """(region or "", flavor) -> row: the newest default-image row per region and flavor, for
    the given regions ("" = a global image, as GCP's are). Ties keep the earlier row."""
    best = {}
    for r in csv.DictReader(open(path)):
        match = IMAGE_TAG.match(r["Tag"])
        if not match or r["Region"] not in regions:
            continue
        key = (r["Region"], match.group(1))
        if key not in best or r["CreationDate"] > best[key]["CreationDate"]:
            best[key] = r
    return best


def num(text):
    return float(text) if text not in ("", None) else None


def fmt(value):
    if value is None:
        return ""
    text = f"{value:.5f}".rstrip("0").rstrip(".")
    return text


def main(root):
    v8 = Path(root) / "v8"
    aws = list(csv.DictReader(open(v8 / "aws" / "vms.csv")))
    gcp = list(csv.DictReader(open(v8 / "gcp" / "vms.csv")))
    azure = list(csv.DictReader(open(v8 / "azure" / "vms.csv")))

    types = []  # cloud, name, vcpus, mem, acc, arch, source, as_of
    offers = []  # cloud, name, acc, region, zones, price, spot, source, as_of

    # AWS: snapshot rows, per region: on-demand as given, spot = median over zones.
    ratio, spot_ratio, gpu_ratio = {}, {}, {}
    for name, (vcpus, mem, acc, count) in AWS_FROM_SNAPSHOT.items():
        accel = f"{acc}:{count}" if acc else ""
        types.append(("aws", name, vcpus, mem, accel, "x86_64", SNAPSHOT, SNAPSHOT_DATE))
        for region in AWS_ZONES:
            rows = [r for r in aws if r["InstanceType"] == name and r["Region"] == region]
            if not rows:
                continue
            price = num(rows[0]["Price"])
            spots = [num(r["SpotPrice"]) for r in rows if r["SpotPrice"]]
            spot = statistics.median(spots) if spots else None
            offers.append(("aws", name, accel, region, "", price, spot, SNAPSHOT, SNAPSHOT_DATE))
            if name == "m6i.2xlarge":
                ratio[region] = price / 0.384
                spot_ratio[region] = spot / price
            if name == "p3.2xlarge":
                gpu_ratio[region] = price / 3.06
    for name, (vcpus, mem, acc, count, base, regions) in AWS_LIST.items():
        accel = f"{acc}:{count}" if acc else ""
        types.append(("aws", name, vcpus, mem, accel, "x86_64", "aws-docs", "2025"))
        for region in regions or AWS_ZONES:
            factor = (gpu_ratio if acc else ratio)[region]
            price = round(base * factor, 4)
            source = "list" if region == "us-east-1" else "list-scaled"
            spot_factor = GPU_SPOT_RATIO_ESTIMATE if acc else spot_ratio[region]
            spot = round(price * spot_factor, 4)
            offers.append(("aws", name, accel, region, "", price, spot, source, "2025"))

    # GCP: per region; zones where the snapshot has the row; prices are uniform across zones.
    def gcp_rows(name, acc=None, count=None):
        out = defaultdict(dict)
        for r in gcp:
            if r["Region"] not in GCP_REGIONS:
                continue
            if acc is None and r["InstanceType"] == name and not r["AcceleratorName"]:
                out[r["Region"]][r["AvailabilityZone"]] = r
            if acc is not None and r["InstanceType"] == "" and r["AcceleratorName"] == acc \
                    and num(r["AcceleratorCount"]) == count:
                out[r["Region"]][r["AvailabilityZone"]] = r
        return out

    for name in GCP_CPU:
        per_region = gcp_rows(name)
        first = next(iter(next(iter(per_region.values())).values()))
        types.append(("gcp", name, num(first["vCPUs"]), num(first["MemoryGiB"]), "", "x86_64",
                      SNAPSHOT, SNAPSHOT_DATE))
        for region in GCP_REGIONS:
            zones = per_region.get(region)
            if not zones:
                continue
            r = next(iter(zones.values()))
            offers.append(("gcp", name, "", region, " ".join(sorted(zones)), num(r["Price"]),
                           num(r["SpotPrice"]), SNAPSHOT, SNAPSHOT_DATE))
    for host, acc, count in GCP_GPU:
        hosts = gcp_rows(host)
        gpus = gcp_rows(None, acc, count)
        first = next(iter(next(iter(hosts.values())).values()))
        accel = f"{acc}:{count}"
        types.append(("gcp", host, num(first["vCPUs"]), num(first["MemoryGiB"]), accel, "x86_64",
                       SNAPSHOT + " host+gpu", SNAPSHOT_DATE))
        for region in GCP_REGIONS:
            zones = sorted(set(hosts.get(region, {})) & set(gpus.get(region, {})))
            if not zones:
                continue
            h, g = hosts[region][zones[0]], gpus[region][zones[0]]
            price = num(h["Price"]) + num(g["Price"])
            spot = None
            if h["SpotPrice"] and g["SpotPrice"]:
                spot = num(h["SpotPrice"]) + num(g["SpotPrice"])
            offers.append(("gcp", host, accel, region, " ".join(zones), round(price, 5),
                           None if spot is None else round(spot, 5), SNAPSHOT + " host+gpu",
                           SNAPSHOT_DATE))

    for name, (vcpus, mem) in GCP_TPU.items():
        accel = f"{name}:1"
        types.append(("gcp", name, vcpus, mem, accel, "x86_64", "gcp-docs", "2025"))
        for region in GCP_REGIONS + GCP_TPU_REGIONS:
            zones = {}
            for r in gcp:
                if r["InstanceType"] == "" and r["AcceleratorName"] == name \
                        and r["Region"] == region and num(r["Price"]) != TPU_PLACEHOLDER_PRICE:
                    zones[r["AvailabilityZone"]] = r
            if not zones:
                continue
            r = zones[min(zones)]
            offers.append(("gcp", name, accel, region, " ".join(sorted(zones)), num(r["Price"]),
                           num(r["SpotPrice"]), SNAPSHOT, SNAPSHOT_DATE))

    for name in AZURE_TYPES:
        rows = [r for r in azure if r["InstanceType"] == name]
        first = rows[0]
        accel = ""
        if first["AcceleratorName"]:
            accel = f"{first['AcceleratorName']}:{fmt(num(first['AcceleratorCount']))}"
        types.append(("azure", name, num(first["vCPUs"]), num(first["MemoryGiB"]), accel, "x86_64",
                      SNAPSHOT, SNAPSHOT_DATE))
        for region in AZURE_REGIONS:
            for r in rows:
                if r["Region"] == region:
                    offers.append(("azure", name, accel, region, "", num(r["Price"]),
                                   num(r["SpotPrice"]), SNAPSHOT, SNAPSHOT_DATE))

    with open(HERE / "instance_types.csv", "w") as out:
        out.write(INSTANCE_TYPES_HEADER)
        out.write("cloud,instance_type,vcpus,memory_gib,accelerator,arch,source,as_of\n")
        for t in types:
            out.write(",".join([t[0], t[1], fmt(t[2]), fmt(t[3]), t[4], t[5], t[6], t[7]]) + "\n")
    with open(HERE / "offerings.csv", "w") as out:
        out.write(OFFERINGS_HEADER)
        out.write("cloud,instance_type,accelerator,region,zones,price,spot_price,source,as_of\n")
        for o in offers:
            out.write(",".join([o[0], o[1], o[2], o[3], o[4], fmt(o[5]), fmt(o[6]), o[7], o[8]])
                      + "\n")
    with open(HERE / "regions.csv", "w") as out:
        out.write(REGIONS_HEADER)
        out.write("cloud,region,zones,carbon_g_per_kwh,carbon_source,as_of\n")
        for region, letters in AWS_ZONES.items():
            zones = " ".join(f"{region}{letter}" for letter in letters.split())
            grams, source = CARBON[("aws", region)]
            out.write(f"aws,{region},{zones},{grams},{source},2022-2023\n")
        for region in GCP_REGIONS + GCP_TPU_REGIONS:
            zones = " ".join(sorted({r["AvailabilityZone"] for r in gcp if r["Region"] == region}))
            grams, source = CARBON[("gcp", region)]
            out.write(f"gcp,{region},{zones},{fmt(grams)},{source},2022-2023\n")
        for region in AZURE_REGIONS:
            grams, source = CARBON[("azure", region)]
            out.write(f"azure,{region},,{grams},{source},2022-2023\n")
    images = []  # cloud, region, flavor, image id, os, os version, created
    for cloud, regions in (("aws", list(AWS_ZONES)), ("gcp", [""])):
        best = default_images(v8 / cloud / "images.csv", regions)
        for region in regions:
            for flavor in ("cpu", "gpu"):
                r = best.get((region, flavor))
                if r:
                    images.append((cloud, region, flavor, r["ImageId"], r["OS"], r["OSVersion"],
                                   r["CreationDate"]))
    with open(HERE / "images.csv", "w") as out:
        out.write(IMAGES_HEADER)
        out.write("cloud,region,flavor,image_id,os,os_version,created,source,as_of\n")
        for i in images:
            out.write(",".join(list(i) + [SNAPSHOT, SNAPSHOT_DATE]) + "\n")
    print(f"{len(types)} instance types, {len(offers)} offering rows, {len(images)} images")


INSTANCE_TYPES_HEADER = """\
# aloft bundled catalog: instance types. GENERATED by regenerate.py; edit that instead.
# accelerator is NAME:COUNT (empty = none). For GCP, a GPU type is a host VM with GPUs attached:
# the name is the host's and `accelerator` says what is attached (see the importer's docs).
# source: `skypilot-v8@2026-05-20` = the SkyPilot v8 catalog snapshot (public, SkyPilot's schema);
# `aws-docs` = the instance type's published specs, as the maintainers knew them in 2025.
# `gcp-docs` = a GCP TPU slice: one TPU VM; vCPUs and memory (GB) are Google's published TPU VM
# shape for that slice (2025). Only single-host slices are listed: a larger slice is several VMs.
# Accelerator names follow SkyPilot: A10G, L4, L40S, A100, A100-80GB, H100, H200, MI300X,
# Inferentia2 and Trainium (AWS Neuron devices, counted as EC2 counts them), tpu-v5litepod-8
# (aloft also accepts Google's spelling, tpu-v5e-8).
"""
OFFERINGS_HEADER = """\
# aloft bundled catalog: where each instance type is offered and at what price ($/h, Linux).
# GENERATED by regenerate.py; edit that instead.
#
# These are PUBLIC LIST PRICES AS THE MAINTAINERS KNEW THEM at the `as_of` date, not live prices;
# SPOT PRICES ARE SNAPSHOTS OR ESTIMATES and move daily. For fresher data, import a current
# SkyPilot-format catalog: `aloft catalog --catalog DIR` (or ALOFT_CATALOG=DIR).
#
# zones: space-separated zones offering it; empty = every zone the region lists (AWS bundled
# data does not track per-zone availability). An empty price means "not offered that way".
# source:
#   skypilot-v8@2026-05-20           copied from the SkyPilot v8 snapshot of that date; AWS spot
#                                    = median of that region's zone spot prices.
#   skypilot-v8@2026-05-20 host+gpu  GCP host VM price + attached GPU price from that snapshot.
#   list                             AWS us-east-1 on-demand list price as the maintainers knew
#                                    it (2025; P4/P5 after AWS's June 2025 price cut); spot =
#                                    ESTIMATE (on-demand x the region's m6i.2xlarge spot ratio in
#                                    the snapshot; 0.4 for GPU, Inferentia and Trainium types).
#   list-scaled                      the us-east-1 list price x the region's m6i.2xlarge (CPU) or
#                                    p3.2xlarge (accelerator) price ratio in the snapshot: an
#                                    ESTIMATE; spot estimated as for `list`.
# AWS types newer than the snapshot (g6, g6e, p4de, p5, p5en, inf2, trn1) are offered only in
# the bundled regions the maintainers knew them in; p5e.48xlarge is absent (Capacity Blocks only,
# no public on-demand price). GCP TPU rows (tpu-*) are the snapshot's own TPU prices per slice
# (its asia-east1 tpu-v6e rows, a 700 $/h placeholder, are left out).
"""
REGIONS_HEADER = """\
# aloft bundled catalog: regions, their zones, and grid carbon intensity (gCO2/kWh).
# GENERATED by regenerate.py; edit that instead.
# Carbon figures are APPROXIMATE annual-average grid intensities of the region's state or
# country (public EIA state data for the US, national grid statistics elsewhere), rounded to
# 10 g; real hourly intensity varies a lot and a cloud's own supply contracts are not reflected.
# Zones (GCP from the SkyPilot v8 snapshot, AWS zone names as the maintainers knew them); Azure
# regions are listed without zones. An empty carbon figure means not known (gcp us-central2, a
# region bundled only for its TPUs).
"""
IMAGES_HEADER = """\
# aloft bundled catalog: default machine images per cloud, region and flavor.
# GENERATED by regenerate.py; edit that instead.
#
# flavor: `cpu` = for instance types without accelerators, `gpu` = with them (drivers and CUDA
# installed). region: empty = every region of the cloud (GCP images are global). There is no
# fallback between flavors: a region without a gpu row has no default GPU image.
# created: the day the image was built (YYYYMMDD), per the snapshot.
# source: `skypilot-v8@2026-05-20` = derived from that SkyPilot v8 snapshot's images.csv: its
# default Ubuntu images (tags skypilot:[custom-]cpu-ubuntu[-N] / gpu-ubuntu[-N]), the newest per
# region and flavor. These are SkyPilot's public images, built and owned by SkyPilot's
# maintainers; they may be deregistered. A task's `image_id` overrides them.
"""

if __name__ == "__main__":
    main(sys.argv[1])

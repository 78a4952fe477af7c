"""Runs moto's server (the EC2/STS emulator the AWS adapter's tests talk to), with fault injection.

moto never answers RunInstances with InsufficientInstanceCapacity or VcpuLimitExceeded, and it
doesn't throttle. Failover and retries must still be tested against a real EC2 API, so this
launcher patches moto's RunInstances backend to raise those errors as EC2 does (same codes, same
XML error response, produced by moto's own error machinery) for what the environment names:

  ALOFT_MOTO_ICE               comma-separated TYPE@ZONE, TYPE or @ZONE: RunInstances for that
                               instance type (in that zone) fails with InsufficientInstanceCapacity
  ALOFT_MOTO_VCPU_LIMIT        comma-separated regions where RunInstances fails with
                               VcpuLimitExceeded
  ALOFT_MOTO_ICE_AFTER         ALOFT_MOTO_ICE applies only after this many instances were
                               launched (default 0), to fail a launch halfway
  ALOFT_MOTO_THROTTLE_FIRST    the first N RunInstances calls fail with RequestLimitExceeded

Usage: python moto_launcher.py PORT   (binds 127.0.0.1 only; prints "ready" when serving)
"""

import os
import sys
import threading


def _entries(name):
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def patch_run_instances():
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.instances import InstanceBackend

    ice = _entries("ALOFT_MOTO_ICE")
    vcpu_limit_regions = set(_entries("ALOFT_MOTO_VCPU_LIMIT"))
    throttle = {"left": int(os.environ.get("ALOFT_MOTO_THROTTLE_FIRST", "0") or 0)}
    ice_after = {"left": int(os.environ.get("ALOFT_MOTO_ICE_AFTER", "0") or 0)}
    lock = threading.Lock()
    original = InstanceBackend.run_instances

    def run_instances(self, image_id, count, user_data, security_group_names, **kwargs):
        instance_type = kwargs.get("instance_type") or ""
        zone = kwargs.get("placement") or ""
        with lock:
            if throttle["left"] > 0:
                throttle["left"] -= 1
                raise EC2ClientError("RequestLimitExceeded", "Request limit exceeded.")
        if self.region_name in vcpu_limit_regions:
            raise EC2ClientError(
                "VcpuLimitExceeded",
                "You have requested more vCPU capacity than your current vCPU limit allows "
                f"for the instance bucket that the specified instance type belongs to "
                f"in {self.region_name}.",
            )
        with lock:
            ice_applies = ice_after["left"] <= 0
            ice_after["left"] -= count
        for entry in ice if ice_applies else []:
            wanted_type, _, wanted_zone = entry.partition("@")
            if (not wanted_type or wanted_type == instance_type) and (
                not wanted_zone or wanted_zone == zone
            ):
                raise EC2ClientError(
                    "InsufficientInstanceCapacity",
                    f"We currently do not have sufficient {instance_type} capacity in the "
                    f"Availability Zone you requested ({zone}).",
                )
        return original(self, image_id, count, user_data, security_group_names, **kwargs)

    InstanceBackend.run_instances = run_instances


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: moto_launcher.py PORT")
    port = int(sys.argv[1])
    patch_run_instances()
    from moto.server import main as moto_main

    print("ready", flush=True)
    moto_main(["-H", "127.0.0.1", "-p", str(port)])


if __name__ == "__main__":
    main()

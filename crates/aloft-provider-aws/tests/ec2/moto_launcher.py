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

moto starts no machines. With ALOFT_MOTO_BOOT_DIR set, the launcher also "boots" instances whose
private address is on loopback (launched into a VPC whose CIDR is in 127.0.0.0/8): for each
running one it starts a real sshd on that address, port 22, the way a VM's first boot would. It
applies what EC2 and cloud-init would: the host key from the instance's cloud-init user data
(`ssh_keys`), and the key pair's public key authorized for root. Each sshd runs in a mount
namespace of its own whose /root is ALOFT_MOTO_BOOT_DIR/<instance id>/home, so an instance's files
(the aloft agent, its queue) are its own and survive a stop. When an instance stops or terminates, its sshd and every
process started through it are killed, like a machine powering off; SIGTERM to the launcher
powers every instance off. It watches the API like any client would (DescribeInstances,
DescribeInstanceAttribute, DescribeKeyPairs), in the regions of ALOFT_MOTO_BOOT_REGIONS
(default us-east-1). Needs root (port 22) and sshd.

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


SSHD_CONFIG = """\
Port 22
ListenAddress {address}
HostKey {dir}/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile {dir}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
StrictModes no
PrintMotd no
SetEnv ALOFT_MOTO_INSTANCE={instance}
Subsystem sftp internal-sftp
"""


class Booter:
    """Keeps one sshd per running loopback instance, and none for the others."""

    def __init__(self, port, boot_dir, regions):
        import boto3

        self.boot_dir = boot_dir
        self.sshd = {}
        self.clients = [
            boto3.client(
                "ec2",
                region_name=region,
                endpoint_url=f"http://127.0.0.1:{port}",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            for region in regions
        ]
        self.lock = threading.Lock()
        self.stopped = False

    def run(self):
        import time

        while not self.stopped:
            try:
                self.reconcile()
            except Exception as err:  # the server may be busy starting; try again
                print(f"booter: {err!r}", file=sys.stderr, flush=True)
            time.sleep(0.2)

    def reconcile(self):
        running = {}
        for ec2 in self.clients:
            pages = ec2.get_paginator("describe_instances").paginate()
            for page in pages:
                for reservation in page["Reservations"]:
                    for instance in reservation["Instances"]:
                        address = instance.get("PrivateIpAddress") or ""
                        if instance["State"]["Name"] == "running" and address.startswith("127."):
                            running[instance["InstanceId"]] = (ec2, instance)
        with self.lock:
            if self.stopped:
                return
            for instance_id in list(self.sshd):
                if instance_id not in running or self.sshd[instance_id].poll() is not None:
                    self.power_off(instance_id)
            for instance_id, (ec2, instance) in running.items():
                if instance_id not in self.sshd:
                    self.boot(ec2, instance)

    def boot(self, ec2, instance):
        import base64
        import subprocess

        import yaml

        instance_id = instance["InstanceId"]
        directory = os.path.join(self.boot_dir, instance_id)
        os.makedirs(os.path.join(directory, "home"), exist_ok=True)
        user_data = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        text = base64.b64decode(user_data["UserData"].get("Value", "")).decode()
        keys = (yaml.safe_load(text) or {}).get("ssh_keys", {}) if text.startswith("#cloud-config") else {}
        host_key = os.path.join(directory, "ssh_host_ed25519_key")
        if "ed25519_private" in keys:
            with open(host_key, "w") as out:
                out.write(keys["ed25519_private"])
            with open(host_key + ".pub", "w") as out:
                out.write(keys["ed25519_public"] + "\n")
        elif not os.path.exists(host_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True)
        os.chmod(host_key, 0o600)
        authorized = ""
        if instance.get("KeyName"):
            pairs = ec2.describe_key_pairs(KeyNames=[instance["KeyName"]], IncludePublicKey=True)
            authorized = pairs["KeyPairs"][0].get("PublicKey", "")
        with open(os.path.join(directory, "authorized_keys"), "w") as out:
            out.write(authorized.strip() + "\n")
        config = os.path.join(directory, "sshd_config")
        with open(config, "w") as out:
            out.write(
                SSHD_CONFIG.format(
                    address=instance["PrivateIpAddress"], dir=directory, instance=instance_id
                )
            )
        os.makedirs("/run/sshd", exist_ok=True)
        log = open(os.path.join(directory, "sshd.log"), "a")
        # sshd in a mount namespace of its own where /root is the instance's home directory, so
        # sessions start there as on a machine of their own.
        home = os.path.join(directory, "home")
        boot = f"mount --bind '{home}' /root && exec /usr/sbin/sshd -D -e -f '{config}'"
        self.sshd[instance_id] = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", boot],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        print(f"booter: {instance_id} up at {instance['PrivateIpAddress']}", file=sys.stderr, flush=True)

    def power_off(self, instance_id):
        """Kills every process of the instance: those in its sshd's mount namespace (sshd, its
        sessions, whatever they started) and any whose environment names the instance."""
        import signal

        sshd = self.sshd.pop(instance_id)
        try:
            namespace = os.readlink(f"/proc/{sshd.pid}/ns/mnt")
        except OSError:
            namespace = None
        if namespace == os.readlink("/proc/self/ns/mnt"):
            namespace = None  # sshd had not entered its own namespace yet
        marker = f"ALOFT_MOTO_INSTANCE={instance_id}".encode()
        for _ in range(3):  # again, for anything forked meanwhile
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == os.getpid():
                    continue
                try:
                    ours = namespace is not None and os.readlink(f"/proc/{pid}/ns/mnt") == namespace
                    if not ours:
                        with open(f"/proc/{pid}/environ", "rb") as env:
                            ours = marker in env.read().split(b"\0")
                    if ours:
                        os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        sshd.wait()
        print(f"booter: {instance_id} powered off", file=sys.stderr, flush=True)

    def shutdown(self):
        with self.lock:
            self.stopped = True
            for instance_id in list(self.sshd):
                self.power_off(instance_id)


def die_with_parent():
    """sshd dies with the launcher even when the launcher is killed outright."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def start_booter(port):
    import signal

    boot_dir = os.environ.get("ALOFT_MOTO_BOOT_DIR")
    if not boot_dir:
        return
    regions = _entries("ALOFT_MOTO_BOOT_REGIONS") or ["us-east-1"]
    booter = Booter(port, boot_dir, regions)

    def on_term(signum, frame):
        booter.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    threading.Thread(target=booter.run, daemon=True).start()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: moto_launcher.py PORT")
    port = int(sys.argv[1])
    patch_run_instances()
    start_booter(port)
    from moto.server import main as moto_main

    print("ready", flush=True)
    moto_main(["-H", "127.0.0.1", "-p", str(port)])


if __name__ == "__main__":
    main()

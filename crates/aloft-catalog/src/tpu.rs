//! GCP TPUs in aloft's model: which slices it can plan, and why it cannot plan the others.
//!
//! aloft's model is "an instance is one VM carrying `NAME:COUNT` accelerators", and a node of a
//! task is one instance. A single-host TPU slice fits that model exactly: one TPU VM whose host
//! has a fixed number of vCPUs and memory, carrying the slice (SkyPilot's spelling: accelerator
//! `tpu-v5litepod-8`, count 1). The instance type is named after the slice, since a TPU VM is
//! created by the TPU API from its accelerator type, not from a Compute Engine machine type.
//!
//! A larger slice (`tpu-v5litepod-16`, `tpu-v4-32`, ...) spans several TPU VMs that GCP creates
//! and deletes together: one "instance" that is several hosts, which the model cannot express
//! (its vCPUs, its SSH targets and its per-node price all break). Those are not offered, and a
//! task asking for one is told why ([`unsupported_accelerator_reason`]) rather than only that the
//! catalog lacks it. TPU v2 and v3 (legacy generations) are left out the same way.
//!
//! The host shapes below are Google's published TPU VM shapes (cloud.google.com/tpu/docs, per
//! version, as the maintainers read them in 2025); `data/regenerate.py` has the same table for the
//! bundled rows, and the SkyPilot importer uses this one for imported TPU rows, whose files carry
//! no vCPUs or memory.

use crate::matching::same_accelerator;

/// A single-host TPU slice and its TPU VM's host.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TpuHost {
    /// SkyPilot's accelerator name, e.g. `tpu-v5litepod-8`.
    pub name: &'static str,
    pub vcpus: f64,
    /// GB, as Google publishes them.
    pub memory_gib: f64,
}

/// Every single-host slice aloft offers. Keep in step with `GCP_TPU` in `data/regenerate.py`.
pub(crate) const TPU_HOSTS: [TpuHost; 8] = [
    TpuHost {
        name: "tpu-v4-8",
        vcpus: 240.0,
        memory_gib: 407.0,
    },
    TpuHost {
        name: "tpu-v5litepod-1",
        vcpus: 24.0,
        memory_gib: 48.0,
    },
    TpuHost {
        name: "tpu-v5litepod-4",
        vcpus: 112.0,
        memory_gib: 192.0,
    },
    TpuHost {
        name: "tpu-v5litepod-8",
        vcpus: 224.0,
        memory_gib: 384.0,
    },
    TpuHost {
        name: "tpu-v5p-8",
        vcpus: 208.0,
        memory_gib: 448.0,
    },
    TpuHost {
        name: "tpu-v6e-1",
        vcpus: 44.0,
        memory_gib: 176.0,
    },
    TpuHost {
        name: "tpu-v6e-4",
        vcpus: 180.0,
        memory_gib: 720.0,
    },
    TpuHost {
        name: "tpu-v6e-8",
        vcpus: 180.0,
        memory_gib: 1440.0,
    },
];

/// Whether an accelerator name is a TPU slice (`tpu-...`, any case).
pub(crate) fn is_tpu(name: &str) -> bool {
    name.get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("tpu-"))
}

/// The host of a single-host slice aloft offers (either v5e spelling), if `name` is one.
pub(crate) fn single_host_slice(name: &str) -> Option<TpuHost> {
    TPU_HOSTS
        .iter()
        .copied()
        .find(|host| same_accelerator(host.name, name))
}

/// Why aloft cannot plan an accelerator it recognises, if that is the case: today, a TPU slice
/// other than the single-host ones in [`TPU_HOSTS`]. `None` for anything else (including names
/// aloft does not know at all: those are simply not in the catalog).
pub fn unsupported_accelerator_reason(name: &str) -> Option<String> {
    if !is_tpu(name) || single_host_slice(name).is_some() {
        return None;
    }
    let offered: Vec<&str> = TPU_HOSTS.iter().map(|host| host.name).collect();
    Some(format!(
        "aloft plans only single-host TPU slices ({}); `{name}` spans several TPU VMs or is a \
         v2/v3 TPU, which its one-VM-per-node model cannot express yet",
        offered.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpu_names_are_recognised_without_panicking_on_any_text() {
        assert!(is_tpu("tpu-v4-8") && is_tpu("TPU-v6e-1"));
        assert!(!is_tpu("tp") && !is_tpu("H100") && !is_tpu("tpü-x"));
        assert_eq!(single_host_slice("tpu-v5e-4").map(|h| h.vcpus), Some(112.0));
        assert_eq!(single_host_slice("tpu-v5e-16"), None);
    }
}

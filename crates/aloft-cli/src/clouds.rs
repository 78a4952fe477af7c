//! The clouds this binary can use, by name: the provider that serves each, and how aloft logs
//! in to its instances. Today the local cloud; the rest of the CLI asks here and holds providers
//! as `Arc<dyn Provider>`, so another cloud is one more arm in [`access`].

use aloft_catalog::Catalog;
use aloft_provider_local::{LocalCloud, LocalConfig};
use aloft_provision::Provider;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A cloud aloft can act on: its provider and the SSH login to its instances.
#[derive(Clone)]
pub(crate) struct CloudAccess {
    pub provider: Arc<dyn Provider>,
    pub ssh_user: String,
    pub ssh_key: PathBuf,
}

/// The cloud called `name` (as in the catalog and in cluster records).
pub(crate) fn access(home: &Path, name: &str) -> Result<CloudAccess> {
    match name {
        "local" => {
            let local = local_provider(home)?;
            Ok(CloudAccess {
                ssh_user: LocalCloud::SSH_USER.to_owned(),
                ssh_key: local.client_key_path(),
                provider: local,
            })
        }
        other => bail!("aloft cannot act on cloud `{other}` yet (it launches on: local)"),
    }
}

/// The local cloud's layout and offers: the defaults, then `$ALOFT_HOME/local.yaml` if there
/// is one (any field of `LocalConfig`), then `ALOFT_LOCAL_PREFIX`, `_BRIDGE`, `_SUBNET` (so that
/// two runs on one machine, tests say, never share a bridge or a subnet), and the fault controls
/// `_FULL_ZONES` and `_SLOW_BOOT`.
pub(crate) fn local_config(home: &Path) -> Result<LocalConfig> {
    let file = home.join("local.yaml");
    let mut config = match std::fs::read_to_string(&file) {
        Ok(text) => serde_saphyr::from_str::<LocalConfig>(&text)
            .map_err(|err| anyhow::anyhow!("{}: {err}", file.display()))?,
        Err(_) => LocalConfig::default(),
    };
    if config.state_dir == LocalConfig::default().state_dir {
        config.state_dir = home.join("local");
    }
    // A fault control: zones that report no capacity (`local-a,local-b`), to see failover.
    if let Ok(zones) = std::env::var("ALOFT_LOCAL_FULL_ZONES") {
        config.full_zones = zones
            .split(',')
            .map(str::trim)
            .filter(|z| !z.is_empty())
            .map(str::to_owned)
            .collect();
    }
    // A fault control: every instance boots this many seconds late.
    if let Ok(seconds) = std::env::var("ALOFT_LOCAL_SLOW_BOOT") {
        config.slow_boot_secs = seconds.trim().parse().map_err(|_| {
            anyhow::anyhow!("ALOFT_LOCAL_SLOW_BOOT=`{seconds}`: expected whole seconds")
        })?;
    }
    if let Ok(prefix) = std::env::var("ALOFT_LOCAL_PREFIX") {
        config.name_prefix = prefix;
    }
    if let Ok(bridge) = std::env::var("ALOFT_LOCAL_BRIDGE") {
        config.bridge = bridge;
    }
    if let Ok(subnet) = std::env::var("ALOFT_LOCAL_SUBNET") {
        config.subnet = subnet;
    }
    Ok(config)
}

/// The local cloud's offers, as its configuration describes them.
pub(crate) fn local_catalog(config: &LocalConfig) -> Catalog {
    let types: Vec<aloft_catalog::LocalType> = config
        .instance_types
        .iter()
        .map(|ty| aloft_catalog::LocalType {
            name: ty.name.clone(),
            vcpus: f64::from(ty.vcpus),
            memory_gib: f64::from(ty.memory_gib),
            price: ty.price,
            spot_price: ty.spot_price,
        })
        .collect();
    Catalog::local_offers(&config.zones, &types)
}

pub(crate) fn local_provider(home: &Path) -> Result<Arc<LocalCloud>> {
    aloft_provider_local::preflight()?;
    Ok(Arc::new(LocalCloud::new(local_config(home)?)?))
}

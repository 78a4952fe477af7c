//! The clouds this build can use, by name: the provider that serves each, and how aloft logs in
//! to its instances: the local cloud, and AWS with the `aws` feature. This is the one place
//! cloud names are matched; everything else holds providers as `Arc<dyn Provider>`, so another
//! cloud is one more arm in [`access`].

use aloft_catalog::Catalog;
use aloft_provider_local::{LocalCloud, LocalConfig};
use aloft_provision::Provider;
use anyhow::{Result, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A cloud aloft can act on: its provider and the SSH login to its instances.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct CloudAccess {
    pub provider: Arc<dyn Provider>,
    pub ssh_user: String,
    pub ssh_key: PathBuf,
}

/// The cloud called `name` (as in the catalog and in cluster records).
pub async fn access(home: &Path, name: &str) -> Result<CloudAccess> {
    match name {
        "local" => {
            let local = local_provider(home)?;
            Ok(CloudAccess {
                ssh_user: LocalCloud::SSH_USER.to_owned(),
                ssh_key: local.client_key_path(),
                provider: local,
            })
        }
        #[cfg(feature = "aws")]
        "aws" => {
            let aws = aloft_provider_aws::AwsCloud::new(aws_config(home)?).await?;
            Ok(CloudAccess {
                ssh_user: aws.ssh_user().to_owned(),
                ssh_key: aws.client_key_path(),
                provider: Arc::new(aws),
            })
        }
        #[cfg(not(feature = "aws"))]
        "aws" => bail!(
            "this aloft was built without AWS support: build it with `--features aws` \
             (cargo install --path crates/aloft-cli --features aws)"
        ),
        other => bail!("aloft cannot act on cloud `{other}` yet (it knows: local, aws)"),
    }
}

/// The clouds a launch may use, with the catalog of their offers: the local cloud when this
/// machine can run it, and the clouds `aloft check` found usable (kept in
/// `$ALOFT_HOME/enabled_clouds.json`), priced from `offers` (the bundled catalog, or what
/// `--catalog` imported over it: a dry run and a launch with the same flags plan over the same
/// offers). Offers of other clouds are left out.
pub async fn launchable(
    home: &Path,
    offers: Catalog,
) -> Result<(Catalog, HashMap<String, CloudAccess>)> {
    let mut clouds = HashMap::new();
    let mut local_offers = None;
    let mut local_problem = None;
    match access(home, "local").await {
        Ok(local) => {
            local_offers = Some(local_catalog(&local_config(home)?));
            clouds.insert("local".to_owned(), local);
        }
        Err(err) => local_problem = Some(err),
    }
    let enabled = enabled_clouds(home);
    for name in &enabled {
        let cloud = access(home, name).await?;
        clouds.insert(name.clone(), cloud);
    }
    if clouds.is_empty() {
        return Err(local_problem
            .unwrap_or_else(|| anyhow::anyhow!("no cloud is usable"))
            .context("no cloud is usable: the local cloud cannot run here and `aloft check` enabled no other"));
    }
    Ok((launch_catalog(offers, local_offers, &enabled), clouds))
}

/// The offers of every cloud a cluster may be recorded on (the local cloud's and the enabled
/// clouds' from `offers`), without making a provider: what judging whether a task fits a
/// recorded cluster needs.
pub fn known_offers(home: &Path, offers: Catalog) -> Result<Catalog> {
    let local = local_catalog(&local_config(home)?);
    Ok(launch_catalog(offers, Some(local), &enabled_clouds(home)))
}

/// The offers a launch plans over: the local cloud's (when it can run here), then the enabled
/// clouds' from `offers`.
pub fn launch_catalog(offers: Catalog, local: Option<Catalog>, enabled: &[String]) -> Catalog {
    let mut catalog = local.unwrap_or_default();
    if !enabled.is_empty() {
        let mut offers = offers;
        offers.retain_clouds(enabled);
        catalog.merge(offers);
    }
    catalog
}

fn enabled_path(home: &Path) -> PathBuf {
    home.join("enabled_clouds.json")
}

/// The clouds other than the local one that the last `aloft check` found usable.
pub fn enabled_clouds(home: &Path) -> Vec<String> {
    std::fs::read(enabled_path(home))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Records the clouds `aloft check` found usable.
pub fn set_enabled_clouds(home: &Path, clouds: &[String]) -> Result<()> {
    std::fs::create_dir_all(home)?;
    std::fs::write(enabled_path(home), serde_json::to_vec(clouds)?)?;
    Ok(())
}

/// The AWS adapter's configuration: the defaults with state under `$ALOFT_HOME`, then
/// `$ALOFT_HOME/aws.yaml` if there is one (any field of `AwsConfig`). The endpoint can also come
/// from `ALOFT_AWS_ENDPOINT_URL`, credentials from the standard AWS chain.
#[cfg(feature = "aws")]
pub fn aws_config(home: &Path) -> Result<aloft_provider_aws::AwsConfig> {
    let file = home.join("aws.yaml");
    let mut config = match std::fs::read_to_string(&file) {
        Ok(text) => serde_saphyr::from_str::<aloft_provider_aws::AwsConfig>(&text)
            .map_err(|err| anyhow::anyhow!("{}: {err}", file.display()))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            aloft_provider_aws::AwsConfig::default()
        }
        Err(err) => bail!("reading {}: {err}", file.display()),
    };
    if config.state_dir == aloft_provider_aws::AwsConfig::default().state_dir {
        config.state_dir = home.to_path_buf();
    }
    Ok(config)
}

/// The local cloud's layout and offers: the defaults, then `$ALOFT_HOME/local.yaml` if there
/// is one (any field of `LocalConfig`), then `ALOFT_LOCAL_PREFIX`, `_BRIDGE`, `_SUBNET` (so that
/// two runs on one machine, tests say, never share a bridge or a subnet), and the fault controls
/// `_FULL_ZONES` and `_SLOW_BOOT`.
pub fn local_config(home: &Path) -> Result<LocalConfig> {
    let file = home.join("local.yaml");
    let mut config = match std::fs::read_to_string(&file) {
        Ok(text) => serde_saphyr::from_str::<LocalConfig>(&text)
            .map_err(|err| anyhow::anyhow!("{}: {err}", file.display()))?,
        // Only a missing file means "no file": one that can't be read, or isn't UTF-8 text,
        // is an error, not silently the defaults.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => LocalConfig::default(),
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!("reading {}", file.display())));
        }
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
pub fn local_catalog(config: &LocalConfig) -> Catalog {
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

pub fn local_provider(home: &Path) -> Result<Arc<LocalCloud>> {
    aloft_provider_local::preflight()?;
    Ok(Arc::new(LocalCloud::new(local_config(home)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `local.yaml` that is not UTF-8 text used to be ignored silently (the defaults were
    /// used as if there were no file); it is an error that names the file. Only a missing file
    /// means the defaults.
    #[test]
    fn a_local_yaml_that_is_not_text_is_an_error_naming_the_file() {
        let home = std::env::temp_dir().join(format!("aloft-clouds-test-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let config = local_config(&home).unwrap();
        assert_eq!(config.state_dir, home.join("local"));

        let file = home.join("local.yaml");
        std::fs::write(&file, b"zones: [\xff\xfe]\n").unwrap();
        let err = local_config(&home).unwrap_err();
        let message = format!("{err:#}");
        std::fs::remove_dir_all(&home).unwrap();
        assert!(
            message.starts_with(&format!("reading {}: ", file.display())),
            "{message}"
        );
        assert!(message.contains("UTF-8"), "{message}");
    }
}

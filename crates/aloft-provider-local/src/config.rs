//! The local cloud's configuration, and the names derived from it.
//!
//! Everything the local cloud makes on the host (network namespaces, host-side veths, the
//! bridge, the state directory) is named from this configuration, so two runs with different
//! configurations on one machine never touch each other's things, and [`crate::cleanup`] can
//! find exactly what one run left behind.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// An instance type of the local cloud: its size, and nominal prices so that plans read like a
/// cloud's (nothing is billed). The size is enforced with cgroups where the host allows it (see
/// [`crate::InstanceLimits`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalInstanceType {
    pub name: String,
    pub vcpus: u32,
    pub memory_gib: u32,
    /// On-demand $/h.
    pub price: f64,
    /// Spot $/h; `None` (the default when omitted) means the type can't be launched as spot.
    /// The built-in types charge about 30% of on-demand, like a cloud's spot discount.
    #[serde(default)]
    pub spot_price: Option<f64>,
}

impl LocalInstanceType {
    fn new(name: &str, vcpus: u32, memory_gib: u32, price: f64) -> LocalInstanceType {
        LocalInstanceType {
            name: name.to_owned(),
            vcpus,
            memory_gib,
            price,
            spot_price: Some(price * 0.3),
        }
    }
}

/// How the local cloud is laid out on the host, and what it offers. A YAML file of this shape
/// (`$ALOFT_HOME/local.yaml`, every field optional) overrides the defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// Prefix of every network namespace (`<prefix>-<n>`) and host-side veth (`<prefix>v<n>`)
    /// this cloud makes: 1 to [`LocalConfig::MAX_PREFIX_LEN`] lowercase letters or digits,
    /// starting with a letter. Unique per run.
    pub name_prefix: String,
    /// The host bridge all instances are attached to (at most 15 characters). Unique per run.
    pub bridge: String,
    /// The instances' private /24, e.g. `10.213.0.0/24`. The host takes `.1`, instances get
    /// `.2` to `.254`. Must be private and must not overlap any route of the host.
    pub subnet: String,
    /// Where instance "disks" (home, /tmp, /etc/ssh), the client key and logs live. Keep it out of
    /// world-writable directories, so sshd's StrictModes is satisfied.
    pub state_dir: PathBuf,
    /// How long to wait for an instance's sshd to accept connections before giving up; a boot
    /// that takes longer fails the launch with a transient error and leaves nothing behind.
    pub boot_timeout_secs: u64,
    /// A fault control: every boot (create and start) waits this many seconds before starting
    /// sshd, as a slow VM would, so tests can watch launch progress and boot timeouts. 0 (the
    /// default) boots at once.
    pub slow_boot_secs: u64,
    /// Per-zone overrides of `slow_boot_secs` (zone name to seconds), e.g. to make one zone
    /// slow enough to time out and another fast.
    pub slow_boot_zones: BTreeMap<String, u64>,
    /// Zones that report no capacity: a fault control, so failover can be seen and tested on
    /// the local cloud as on a real one.
    pub full_zones: Vec<String>,
    /// The zones of the local cloud's one region; the first is used when a request names none.
    pub zones: Vec<String>,
    /// The instance types it offers (their offers flow into the catalog and the optimizer).
    pub instance_types: Vec<LocalInstanceType>,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            name_prefix: "aloft".into(),
            bridge: "aloftbr0".into(),
            subnet: "10.213.0.0/24".into(),
            state_dir: PathBuf::from("/var/lib/aloft/local"),
            boot_timeout_secs: 30,
            slow_boot_secs: 0,
            slow_boot_zones: BTreeMap::new(),
            full_zones: Vec::new(),
            zones: vec!["local-a".into(), "local-b".into()],
            instance_types: vec![
                LocalInstanceType::new("local.small", 2, 4, 0.010),
                LocalInstanceType::new("local.medium", 4, 16, 0.020),
                LocalInstanceType::new("local.large", 8, 32, 0.040),
                LocalInstanceType::new("local.xlarge", 16, 64, 0.080),
            ],
        }
    }
}

impl LocalConfig {
    /// Keeps `<prefix>v<254>` within Linux's 15-character interface names.
    pub const MAX_PREFIX_LEN: usize = 8;

    /// The only region of the local cloud.
    pub const REGION: &'static str = "local";
    /// The zone used when a request names none: the first configured zone.
    pub fn default_zone(&self) -> &str {
        self.zones.first().map_or("local-a", String::as_str)
    }

    /// How long a boot in `zone` is delayed by the slow-boot fault control.
    pub fn slow_boot(&self, zone: &str) -> u64 {
        self.slow_boot_zones
            .get(zone)
            .copied()
            .unwrap_or(self.slow_boot_secs)
    }

    /// The configured instance type called `name`.
    pub fn instance_type(&self, name: &str) -> Option<&LocalInstanceType> {
        self.instance_types.iter().find(|ty| ty.name == name)
    }

    /// Checks the configuration and returns the subnet's network address.
    pub(crate) fn validate(&self) -> Result<Ipv4Addr, String> {
        let prefix = &self.name_prefix;
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= Self::MAX_PREFIX_LEN
            && prefix
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !prefix_ok {
            return Err(format!(
                "name_prefix {prefix:?} must be 1 to {} lowercase letters or digits, starting with \
                 a letter",
                Self::MAX_PREFIX_LEN
            ));
        }
        let bridge = &self.bridge;
        let bridge_ok = !bridge.is_empty()
            && bridge.len() <= 15
            && bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !bridge_ok {
            return Err(format!(
                "bridge {bridge:?} must be 1 to 15 letters, digits, '-' or '_'"
            ));
        }
        if instance_octet(&self.name_prefix, bridge, 'v').is_some()
            || instance_octet(&self.name_prefix, bridge, '-').is_some()
        {
            return Err(format!(
                "bridge {bridge:?} looks like one of this cloud's own instance names"
            ));
        }
        let network = self
            .subnet
            .strip_suffix("/24")
            .and_then(|address| address.parse::<Ipv4Addr>().ok())
            .filter(|address| address.octets()[3] == 0)
            .ok_or_else(|| {
                format!(
                    "subnet {:?} must be a /24 network such as 10.213.0.0/24",
                    self.subnet
                )
            })?;
        if !network.is_private() {
            return Err(format!(
                "subnet {} must be in a private range (10/8, 172.16/12, 192.168/16)",
                self.subnet
            ));
        }
        if self.boot_timeout_secs == 0 {
            return Err("boot_timeout_secs must be positive".into());
        }
        if self.zones.is_empty() {
            return Err("zones must name at least one zone".into());
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(zone) = self
            .zones
            .iter()
            .find(|zone| zone.is_empty() || !seen.insert(zone.as_str()))
        {
            return Err(format!("zones: `{zone}` is empty or listed twice"));
        }
        if self.instance_types.is_empty() {
            return Err("instance_types must name at least one type".into());
        }
        let mut names = std::collections::HashSet::new();
        for ty in &self.instance_types {
            if ty.name.is_empty() || !names.insert(ty.name.as_str()) {
                return Err(format!(
                    "instance_types: `{}` is empty or listed twice",
                    ty.name
                ));
            }
            let price_ok = |price: f64| price.is_finite() && price >= 0.0;
            if ty.vcpus == 0
                || ty.memory_gib == 0
                || !price_ok(ty.price)
                || !ty.spot_price.is_none_or(price_ok)
            {
                return Err(format!(
                    "instance_types: `{}` needs vcpus and memory_gib above 0 and prices (price, \
                     spot_price) of 0 or more",
                    ty.name
                ));
            }
        }
        if let Some(zone) = self
            .slow_boot_zones
            .keys()
            .find(|zone| !self.zones.contains(zone))
        {
            return Err(format!(
                "slow_boot_zones: `{zone}` is not one of the zones ({})",
                self.zones.join(", ")
            ));
        }
        Ok(network)
    }

    /// The network namespace of the instance with address `.octet`; also its provider ID.
    pub(crate) fn netns_name(&self, octet: u8) -> String {
        format!("{}-{octet}", self.name_prefix)
    }

    /// The host-side end of the instance's veth.
    pub(crate) fn veth_name(&self, octet: u8) -> String {
        format!("{}v{octet}", self.name_prefix)
    }
}

/// The address octet encoded in one of this cloud's names (`<prefix><separator><octet>`), if
/// `name` is one. Exact parsing, so prefix `a1` never claims names of prefix `a1v2`.
pub(crate) fn instance_octet(prefix: &str, name: &str, separator: char) -> Option<u8> {
    let rest = name.strip_prefix(prefix)?.strip_prefix(separator)?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) || rest.starts_with('0') {
        return None;
    }
    rest.parse::<u8>()
        .ok()
        .filter(|octet| (2..=254).contains(octet))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        let network = LocalConfig::default().validate().unwrap();
        assert_eq!(network, Ipv4Addr::new(10, 213, 0, 0));
    }

    #[test]
    fn invalid_configs() {
        let check = |edit: fn(&mut LocalConfig), expect: &str| {
            let mut config = LocalConfig::default();
            edit(&mut config);
            let err = config.validate().unwrap_err();
            assert!(err.contains(expect), "{err}");
        };
        check(|c| c.name_prefix = "toolongprefix".into(), "name_prefix");
        check(|c| c.name_prefix = "1a".into(), "name_prefix");
        check(|c| c.name_prefix = "A".into(), "name_prefix");
        check(|c| c.bridge = "a-very-long-bridge".into(), "bridge");
        check(|c| c.bridge = "aloft-3".into(), "looks like");
        check(|c| c.subnet = "10.1.0.0/16".into(), "/24");
        check(|c| c.subnet = "10.1.0.5/24".into(), "/24");
        check(|c| c.subnet = "8.8.8.0/24".into(), "private");
        check(|c| c.boot_timeout_secs = 0, "boot_timeout_secs");
        check(
            |c| c.instance_types[0].spot_price = Some(-1.0),
            "spot_price",
        );
        check(
            |c| {
                c.slow_boot_zones.insert("nowhere".into(), 5);
            },
            "slow_boot_zones",
        );
    }

    #[test]
    fn yaml_fields_and_defaults() {
        let yaml = r#"{"slow_boot_secs": 3, "slow_boot_zones": {"local-b": 40},
            "instance_types": [{"name": "t", "vcpus": 1, "memory_gib": 1, "price": 0.5}]}"#;
        let config: LocalConfig = serde_json::from_str(yaml).unwrap();
        assert_eq!(config.slow_boot("local-a"), 3);
        assert_eq!(config.slow_boot("local-b"), 40);
        assert_eq!(
            config.instance_types[0].spot_price, None,
            "no spot unless priced"
        );
        config.validate().unwrap();
        let default = LocalConfig::default();
        assert_eq!(default.slow_boot("local-a"), 0);
        let small = default.instance_type("local.small").unwrap();
        assert!((small.spot_price.unwrap() - 0.003).abs() < 1e-12);
    }

    #[test]
    fn names_fit_and_parse_exactly() {
        let config = LocalConfig {
            name_prefix: "abcdefgh".into(),
            ..LocalConfig::default()
        };
        assert!(config.veth_name(254).len() <= 15);
        assert_eq!(instance_octet("a1", "a1-12", '-'), Some(12));
        assert_eq!(instance_octet("a1", "a1v12", 'v'), Some(12));
        assert_eq!(instance_octet("a1", "a1v2v12", 'v'), None);
        assert_eq!(instance_octet("a1", "a1-012", '-'), None);
        assert_eq!(instance_octet("a1", "a1-1", '-'), None);
        assert_eq!(instance_octet("a1", "a1-255", '-'), None);
        assert_eq!(instance_octet("a1", "a1-", '-'), None);
    }
}

//! Where something is pinned in the sky: a cloud, optionally a region, optionally a zone.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A (possibly partial) location: `aws`, `aws/us-east-1`, `gcp/us-central1/us-central1-a`.
///
/// An empty `Infra` (all `None`) means "anywhere". A zone implies its region, and a region its
/// cloud, so `cloud` is always set when `region` is, and `region` when `zone` is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Infra {
    pub cloud: Option<String>,
    pub region: Option<String>,
    pub zone: Option<String>,
}

impl Infra {
    pub fn any() -> Infra {
        Infra::default()
    }

    pub fn is_any(&self) -> bool {
        self.cloud.is_none() && self.region.is_none() && self.zone.is_none()
    }

    /// Parses SkyPilot's `infra` string: `cloud[/region[/zone]]`, where `*` stands for "any"
    /// at that level (`*/us-east-1` is not meaningful and is rejected by the spec parser).
    pub fn parse(text: &str) -> Result<Infra, InfraParseError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(InfraParseError::Empty);
        }
        let parts: Vec<&str> = text.split('/').collect();
        if parts.len() > 3 {
            return Err(InfraParseError::TooManyParts { parts: parts.len() });
        }
        let level = |idx: usize| -> Option<String> {
            parts
                .get(idx)
                .map(|part| part.trim())
                .filter(|part| !part.is_empty() && *part != "*")
                .map(str::to_owned)
        };
        let infra = Infra {
            cloud: level(0).map(|cloud| cloud.to_ascii_lowercase()),
            region: level(1),
            zone: level(2),
        };
        if infra.cloud.is_none() && (infra.region.is_some() || infra.zone.is_some()) {
            return Err(InfraParseError::RegionWithoutCloud);
        }
        if infra.region.is_none() && infra.zone.is_some() {
            return Err(InfraParseError::ZoneWithoutRegion);
        }
        Ok(infra)
    }
}

impl fmt::Display for Infra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.cloud, &self.region, &self.zone) {
            (None, _, _) => f.write_str("*"),
            (Some(cloud), None, _) => write!(f, "{cloud}"),
            (Some(cloud), Some(region), None) => write!(f, "{cloud}/{region}"),
            (Some(cloud), Some(region), Some(zone)) => write!(f, "{cloud}/{region}/{zone}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfraParseError {
    #[error("infra is empty; expected `cloud`, `cloud/region` or `cloud/region/zone`")]
    Empty,
    #[error("infra has {parts} parts; expected at most `cloud/region/zone`")]
    TooManyParts { parts: usize },
    #[error("infra names a region or zone but no cloud")]
    RegionWithoutCloud,
    #[error("infra names a zone but no region")]
    ZoneWithoutRegion,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_level() {
        assert_eq!(Infra::parse("AWS").unwrap().cloud.as_deref(), Some("aws"));
        let infra = Infra::parse("gcp/us-central1/us-central1-a").unwrap();
        assert_eq!(infra.region.as_deref(), Some("us-central1"));
        assert_eq!(infra.zone.as_deref(), Some("us-central1-a"));
        assert_eq!(infra.to_string(), "gcp/us-central1/us-central1-a");
        assert!(Infra::parse("*").unwrap().is_any());
        assert_eq!(Infra::parse("aws/*").unwrap().to_string(), "aws");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Infra::parse(""), Err(InfraParseError::Empty));
        assert_eq!(
            Infra::parse("*/us-east-1"),
            Err(InfraParseError::RegionWithoutCloud)
        );
        assert_eq!(
            Infra::parse("aws/*/us-east-1a"),
            Err(InfraParseError::ZoneWithoutRegion)
        );
        assert!(matches!(
            Infra::parse("a/b/c/d"),
            Err(InfraParseError::TooManyParts { parts: 4 })
        ));
    }
}

//! Where something is pinned in the sky: a cloud, optionally a region, optionally a zone.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A (possibly partial) location: `aws`, `aws/us-east-1`, `gcp/us-central1/us-central1-a`.
///
/// An empty `Infra` (all `None`) means "anywhere". Each level is optional on its own, as in
/// SkyPilot's wildcard forms: `gcp/*/us-central1-a` is a zone whose region is left to the
/// catalog (a zone belongs to one region), `*/us-east-1` a region on whichever cloud has one by
/// that name. Matching checks each level that is set, so a zone with no region matches the
/// offers in that zone.
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

    /// Parses SkyPilot's `infra` string: `cloud[/region[/zone]]`, where `*` (or nothing)
    /// stands for "any" at that level: `*/us-east-1`, `aws/*/us-east-1a`, `*/*/us-east-1a`.
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
        Ok(infra)
    }
}

impl fmt::Display for Infra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = |part: &Option<String>| part.as_deref().unwrap_or("*").to_owned();
        match (&self.region, &self.zone) {
            (None, None) => f.write_str(&level(&self.cloud)),
            (Some(region), None) => write!(f, "{}/{region}", level(&self.cloud)),
            (region, Some(zone)) => {
                write!(f, "{}/{}/{zone}", level(&self.cloud), level(region))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfraParseError {
    #[error("infra is empty; expected `cloud`, `cloud/region` or `cloud/region/zone`")]
    Empty,
    #[error("infra has {parts} parts; expected at most `cloud/region/zone`")]
    TooManyParts { parts: usize },
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
    fn wildcards_leave_a_level_open_and_print_back_the_same() {
        for text in [
            "*/us-east-1",
            "aws/*/us-east-1a",
            "*/*/us-east-1a",
            "*/us-east-1/us-east-1a",
        ] {
            assert_eq!(Infra::parse(text).unwrap().to_string(), text);
        }
        let zone_only = Infra::parse("aws/*/us-east-1a").unwrap();
        assert_eq!(zone_only.region, None);
        assert_eq!(zone_only.zone.as_deref(), Some("us-east-1a"));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Infra::parse(""), Err(InfraParseError::Empty));
        assert!(matches!(
            Infra::parse("a/b/c/d"),
            Err(InfraParseError::TooManyParts { parts: 4 })
        ));
    }
}

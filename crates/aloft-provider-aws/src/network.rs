//! Where instances go in a region: a VPC (the account's default one, or the one the
//! configuration names) and, per zone, one of its subnets.
//!
//! Resolved once per region and process. A region without the VPC, or a zone without a subnet of
//! it, is [`ProvisionError::Unavailable`] for that region or zone, so failover moves on as it
//! does for a shortage.

use aloft_provision::{Operation, ProvisionError, Scope};
use aws_sdk_ec2::types::{Filter, SubnetState};

use crate::config::AwsConfig;
use crate::error::{AwsCallError, Place, classify};

/// A region's VPC and its usable subnets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RegionNetwork {
    pub vpc_id: String,
    /// Available subnets, as EC2 lists them; [`rank`] orders them.
    pub subnets: Vec<Subnet>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Subnet {
    pub id: String,
    pub zone: String,
    /// Whether instances launched into it get a public address without asking.
    pub maps_public_ip: bool,
    pub free_addresses: i32,
}

impl RegionNetwork {
    /// The subnet to launch into in `zone` (any zone when `None`). With `want_public`, a subnet
    /// that gives instances public addresses is preferred.
    pub fn subnet_for(
        &self,
        region: &str,
        zone: Option<&str>,
        want_public: bool,
    ) -> Result<&Subnet, ProvisionError> {
        self.subnets
            .iter()
            .filter(|subnet| zone.is_none_or(|zone| subnet.zone == zone))
            .min_by_key(|subnet| rank(subnet, want_public))
            .ok_or_else(|| ProvisionError::Unavailable {
                operation: Operation::CreateInstances,
                scope: match zone {
                    Some(zone) => Scope::Zone(zone.to_owned()),
                    None => Scope::Region(region.to_owned()),
                },
                detail: match zone {
                    Some(zone) => {
                        format!("VPC {} has no available subnet in zone {zone}", self.vpc_id)
                    }
                    None => format!(
                        "VPC {} has no available subnet in region {region}",
                        self.vpc_id
                    ),
                },
                source: None,
            })
    }

    /// The zones that have a subnet, best first (by their best subnet's rank, see
    /// [`Self::subnet_for`]).
    pub fn zones(&self, want_public: bool) -> Vec<String> {
        let mut subnets: Vec<&Subnet> = self.subnets.iter().collect();
        subnets.sort_by_key(|subnet| rank(subnet, want_public));
        let mut zones: Vec<String> = Vec::new();
        for subnet in subnets {
            if !zones.contains(&subnet.zone) {
                zones.push(subnet.zone.clone());
            }
        }
        zones
    }
}

/// Sort key: subnets matching the wish for public addresses first, then the roomiest, then by
/// id so the choice is stable.
fn rank(subnet: &Subnet, want_public: bool) -> (bool, std::cmp::Reverse<i32>, &str) {
    (
        subnet.maps_public_ip != want_public,
        std::cmp::Reverse(subnet.free_addresses),
        &subnet.id,
    )
}

/// Finds the VPC for `region` and its available subnets.
pub(crate) async fn resolve(
    config: &AwsConfig,
    ec2: &aws_sdk_ec2::Client,
    region: &str,
) -> Result<RegionNetwork, ProvisionError> {
    let place = Place { region, zone: None };
    let fail = |err: AwsCallError| classify(Operation::Bootstrap, place, err);
    let filter = match &config.vpc_name {
        Some(name) => Filter::builder().name("tag:Name").values(name).build(),
        None => Filter::builder().name("is-default").values("true").build(),
    };
    let vpcs = ec2
        .describe_vpcs()
        .filters(filter)
        .send()
        .await
        .map_err(|err| fail(AwsCallError::from_sdk("DescribeVpcs", err)))?;
    let mut vpc_ids: Vec<&str> = vpcs.vpcs().iter().filter_map(|vpc| vpc.vpc_id()).collect();
    vpc_ids.sort_unstable();
    let unavailable = |detail: String| ProvisionError::Unavailable {
        operation: Operation::Bootstrap,
        scope: Scope::Region(region.to_owned()),
        detail,
        source: None,
    };
    let vpc_id = match (vpc_ids.as_slice(), &config.vpc_name) {
        ([id], _) => (*id).to_owned(),
        ([], Some(name)) => {
            return Err(unavailable(format!(
                "no VPC named {name:?} (tag Name) in region {region}"
            )));
        }
        ([], None) => {
            return Err(unavailable(format!(
                "region {region} has no default VPC; create one (`aws ec2 create-default-vpc`) \
                 or name a VPC of yours with vpc_name in the AWS configuration"
            )));
        }
        (several, Some(name)) => {
            return Err(ProvisionError::InvalidRequest {
                operation: Operation::Bootstrap,
                detail: format!(
                    "{} VPCs are named {name:?} in region {region} ({}); vpc_name must name one",
                    several.len(),
                    several.join(", ")
                ),
                source: None,
            });
        }
        (several, None) => (*several[0]).to_owned(),
    };
    let subnets = ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(&vpc_id).build())
        .send()
        .await
        .map_err(|err| fail(AwsCallError::from_sdk("DescribeSubnets", err)))?;
    let subnets = subnets
        .subnets()
        .iter()
        .filter(|subnet| subnet.state() != Some(&SubnetState::Pending))
        .filter_map(|subnet| {
            Some(Subnet {
                id: subnet.subnet_id()?.to_owned(),
                zone: subnet.availability_zone()?.to_owned(),
                maps_public_ip: subnet.map_public_ip_on_launch().unwrap_or(false),
                free_addresses: subnet.available_ip_address_count().unwrap_or(0),
            })
        })
        .collect();
    Ok(RegionNetwork { vpc_id, subnets })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(id: &str, zone: &str, public: bool, free: i32) -> Subnet {
        Subnet {
            id: id.into(),
            zone: zone.into(),
            maps_public_ip: public,
            free_addresses: free,
        }
    }

    #[test]
    fn a_subnet_is_chosen_per_zone_public_first_then_roomiest() {
        let network = RegionNetwork {
            vpc_id: "vpc-1".into(),
            subnets: vec![
                subnet("subnet-a-private", "us-east-1a", false, 4000),
                subnet("subnet-a-small", "us-east-1a", true, 10),
                subnet("subnet-a-big", "us-east-1a", true, 200),
                subnet("subnet-b", "us-east-1b", false, 5),
            ],
        };
        let pick = |zone, public| {
            network
                .subnet_for("us-east-1", zone, public)
                .map(|subnet| subnet.id.as_str())
                .map_err(|err| err.to_string())
        };
        assert_eq!(pick(Some("us-east-1a"), true), Ok("subnet-a-big"));
        assert_eq!(pick(Some("us-east-1a"), false), Ok("subnet-a-private"));
        // Only a private subnet in b: taken even when public addresses are wanted.
        assert_eq!(pick(Some("us-east-1b"), true), Ok("subnet-b"));
        assert_eq!(pick(None, false), Ok("subnet-a-private"));
        let err = network
            .subnet_for("us-east-1", Some("us-east-1c"), true)
            .unwrap_err();
        assert_eq!(
            err.failover_scope(),
            Some(Scope::Zone("us-east-1c".into())),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("no available subnet in zone us-east-1c")
        );
    }
}

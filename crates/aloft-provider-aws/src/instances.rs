//! EC2 instances: launching one node, finding a cluster's instances by tag, waiting for states.
//!
//! Each node is its own `RunInstances` call with its cluster and node tags in the request, so an
//! instance is never untagged, not even for a moment: whatever a failed or crashed launch made is
//! found again by `query` and removed by `terminate`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use aloft_provision::{ClusterName, InstanceInfo, InstanceState, Operation, ProvisionError};
use aws_sdk_ec2::types::{
    ArchitectureType, BlockDeviceMapping, EbsBlockDevice, Filter, HttpTokensState,
    InstanceInterruptionBehavior, InstanceMarketOptionsRequest, InstanceMetadataOptionsRequest,
    InstanceNetworkInterfaceSpecification, InstanceStateName, InstanceType, MarketType, Placement,
    ResourceType, SpotInstanceType, SpotMarketOptions, Tag, TagSpecification, VolumeType,
};

use crate::bootstrap::HostKey;
use crate::config::AwsConfig;
use crate::error::{AwsCallError, CodeClass, Place, class_of_code, classify, codes, has_code};
use crate::network::Subnet;

/// EC2 instance states other than `terminated`: what a cluster consists of.
pub(crate) const LIVE_STATES: [&str; 5] =
    ["pending", "running", "stopping", "stopped", "shutting-down"];

/// An EC2 instance as the adapter sees it: the provider-facing info plus what EC2 said about
/// why it is in its state.
#[derive(Clone, Debug)]
pub(crate) struct Ec2Instance {
    pub info: InstanceInfo,
    /// EC2's state reason code, e.g. `Server.InsufficientInstanceCapacity`.
    pub state_reason: Option<String>,
}

/// The image and its root device, resolved for one region and architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResolvedImage {
    pub image_id: String,
    pub root_device_name: String,
}

/// Everything `RunInstances` needs for one node.
#[derive(Debug)]
pub(crate) struct LaunchSpec<'a> {
    pub cluster: &'a ClusterName,
    pub node_idx: u32,
    pub zone: Option<&'a str>,
    pub instance_type: &'a str,
    pub use_spot: bool,
    pub image: &'a ResolvedImage,
    /// Root volume size, GiB.
    pub disk_size_gb: u32,
    pub key_pair_name: &'a str,
    pub subnet: &'a Subnet,
    pub security_group_ids: [&'a str; 2],
    pub host_key: &'a HostKey,
}

/// The instance's cloud-init configuration: install the host key aloft made for it.
///
/// The private host key travels in the instance's user data, which processes on the instance
/// (through the metadata service) and principals allowed `ec2:DescribeInstanceAttribute` can
/// read. It protects against a network attacker on first connection, which trust-on-first-use
/// does not; it is not a secret from the account or the instance itself.
pub(crate) fn user_data(host_key: &HostKey) -> String {
    let mut text = String::from("#cloud-config\nssh_keys:\n  ed25519_private: |\n");
    for line in host_key.private.lines() {
        text.push_str("    ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&format!("  ed25519_public: {}\n", host_key.public));
    text
}

/// `amd64` or `arm64`, as Ubuntu's image names spell it, for an instance type.
pub(crate) async fn architecture_of(
    ec2: &aws_sdk_ec2::Client,
    place: Place<'_>,
    instance_type: &str,
) -> Result<&'static str, ProvisionError> {
    let output = ec2
        .describe_instance_types()
        .instance_types(InstanceType::from(instance_type))
        .send()
        .await
        .map_err(|err| {
            classify(
                Operation::CreateInstances,
                place,
                AwsCallError::from_sdk("DescribeInstanceTypes", err),
            )
        })?;
    let Some(info) = output.instance_types().first() else {
        return Err(ProvisionError::InvalidRequest {
            operation: Operation::CreateInstances,
            detail: format!(
                "instance type {instance_type} is not offered in region {}",
                place.region
            ),
            source: None,
        });
    };
    let architectures = info
        .processor_info()
        .map(|processor| processor.supported_architectures())
        .unwrap_or_default();
    if architectures.contains(&ArchitectureType::X8664) || architectures.is_empty() {
        Ok("amd64")
    } else if architectures.contains(&ArchitectureType::Arm64) {
        Ok("arm64")
    } else {
        Err(ProvisionError::InvalidRequest {
            operation: Operation::CreateInstances,
            detail: format!(
                "instance type {instance_type} runs neither x86_64 nor arm64 images (it \
                 supports {architectures:?})"
            ),
            source: None,
        })
    }
}

/// The image for `region` and `arch`: the task's (`requested`), else the configured one, else
/// the catalog's default for the region (`catalog_default`, x86_64 images only), else the newest
/// matching the name pattern from the configured owner.
pub(crate) async fn resolve_image(
    config: &AwsConfig,
    ec2: &aws_sdk_ec2::Client,
    region: &str,
    arch: &str,
    requested: Option<&str>,
    catalog_default: Option<&str>,
) -> Result<ResolvedImage, ProvisionError> {
    let place = Place { region, zone: None };
    let fail = |err| {
        classify(
            Operation::CreateInstances,
            place,
            AwsCallError::from_sdk("DescribeImages", err),
        )
    };
    let configured = requested.or_else(|| {
        config
            .image_id
            .as_deref()
            .or_else(|| config.images.get(region).map(String::as_str))
            .or(catalog_default.filter(|_| arch == "amd64"))
    });
    let images = if let Some(image_id) = configured {
        ec2.describe_images()
            .image_ids(image_id)
            .send()
            .await
            .map_err(fail)?
            .images
            .unwrap_or_default()
    } else {
        let pattern = config.image_name_pattern.replace("{arch}", arch);
        ec2.describe_images()
            .owners(&config.image_owner)
            .filters(Filter::builder().name("name").values(&pattern).build())
            .filters(Filter::builder().name("state").values("available").build())
            .send()
            .await
            .map_err(fail)?
            .images
            .unwrap_or_default()
    };
    // ISO 8601 creation dates sort as strings; on a tie the later name wins (Ubuntu's names end
    // in the release and build date).
    let newest = images
        .iter()
        .filter(|image| image.image_id().is_some())
        .max_by(|a, b| (a.creation_date(), a.name()).cmp(&(b.creation_date(), b.name())));
    match newest {
        Some(image) => Ok(ResolvedImage {
            image_id: image.image_id().unwrap_or_default().to_owned(),
            root_device_name: image.root_device_name().unwrap_or("/dev/sda1").to_owned(),
        }),
        None => Err(ProvisionError::InvalidRequest {
            operation: Operation::CreateInstances,
            detail: match configured {
                Some(image_id) => format!("image {image_id} does not exist in region {region}"),
                None => format!(
                    "no image named {:?} from owner {} in region {region}; set image_id or \
                     images in the AWS configuration",
                    config.image_name_pattern.replace("{arch}", arch),
                    config.image_owner
                ),
            },
            source: None,
        }),
    }
}

/// Launches one node and returns its instance id.
pub(crate) async fn run_instance(
    config: &AwsConfig,
    ec2: &aws_sdk_ec2::Client,
    region: &str,
    spec: &LaunchSpec<'_>,
) -> Result<String, ProvisionError> {
    let place = Place {
        region,
        zone: spec.zone,
    };
    let instance_tags = [
        tag(&config.cluster_tag_key(), spec.cluster.as_str()),
        tag(&config.node_tag_key(), &spec.node_idx.to_string()),
        tag("Name", &format!("{}-{}", spec.cluster, spec.node_idx)),
        tag(&config.host_key_tag_key(), &spec.host_key.public),
    ];
    let mut request = ec2
        .run_instances()
        .image_id(&spec.image.image_id)
        .instance_type(InstanceType::from(spec.instance_type))
        .min_count(1)
        .max_count(1)
        .key_name(spec.key_pair_name)
        .user_data(aws_smithy_types::base64::encode(user_data(spec.host_key)))
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(&spec.image.root_device_name)
                .ebs(
                    EbsBlockDevice::builder()
                        .volume_size(i32::try_from(spec.disk_size_gb).unwrap_or(i32::MAX))
                        .volume_type(VolumeType::Gp3)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        // IMDSv2 only: the instance metadata service can't be reached by a forged request.
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::Required)
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(instance_tags.to_vec()))
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Volume)
                .set_tags(Some(instance_tags[..3].to_vec()))
                .build(),
        );
    if let Some(zone) = spec.zone {
        request = request.placement(Placement::builder().availability_zone(zone).build());
    }
    if spec.subnet.maps_public_ip || config.use_internal_ips {
        request = request
            .subnet_id(&spec.subnet.id)
            .security_group_ids(spec.security_group_ids[0])
            .security_group_ids(spec.security_group_ids[1]);
    } else {
        // A subnet that doesn't hand out public addresses by itself: ask for one, which EC2
        // only takes on an explicit network interface (holding the subnet and groups).
        request = request.network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .subnet_id(&spec.subnet.id)
                .associate_public_ip_address(true)
                .groups(spec.security_group_ids[0])
                .groups(spec.security_group_ids[1])
                .delete_on_termination(true)
                .build(),
        );
    }
    if spec.use_spot {
        // One-time spot at up to the on-demand price: EC2 terminates it on interruption, and
        // aloft's recovery relaunches (possibly elsewhere).
        request = request.instance_market_options(
            InstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .spot_options(
                    SpotMarketOptions::builder()
                        .spot_instance_type(SpotInstanceType::OneTime)
                        .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                        .build(),
                )
                .build(),
        );
    }
    let output = request.send().await.map_err(|err| {
        classify(
            Operation::CreateInstances,
            place,
            AwsCallError::from_sdk("RunInstances", err),
        )
    })?;
    output
        .instances()
        .first()
        .and_then(|instance| instance.instance_id())
        .map(str::to_owned)
        .ok_or_else(|| ProvisionError::Other {
            operation: Operation::CreateInstances,
            detail: "RunInstances returned no instance".into(),
            source: None,
        })
}

pub(crate) fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// Every live instance carrying the cluster tag key in `region`; with `cluster`, only that
/// cluster's.
pub(crate) async fn describe_tagged(
    config: &AwsConfig,
    ec2: &aws_sdk_ec2::Client,
    operation: Operation,
    region: &str,
    cluster: Option<&ClusterName>,
) -> Result<Vec<Ec2Instance>, ProvisionError> {
    let tag_filter = match cluster {
        Some(cluster) => Filter::builder()
            .name(format!("tag:{}", config.cluster_tag_key()))
            .values(cluster.as_str())
            .build(),
        None => Filter::builder()
            .name("tag-key")
            .values(config.cluster_tag_key())
            .build(),
    };
    let mut state_filter = Filter::builder().name("instance-state-name");
    for state in LIVE_STATES {
        state_filter = state_filter.values(state);
    }
    let mut pages = ec2
        .describe_instances()
        .filters(tag_filter)
        .filters(state_filter.build())
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            classify(
                operation,
                Place { region, zone: None },
                AwsCallError::from_sdk("DescribeInstances", err),
            )
        })?;
        for reservation in page.reservations() {
            for instance in reservation.instances() {
                if let Some(instance) = convert(config, instance) {
                    found.push(instance);
                }
            }
        }
    }
    found.sort_by(|a, b| {
        (a.info.cluster.as_str(), a.info.node_idx, &a.info.id).cmp(&(
            b.info.cluster.as_str(),
            b.info.node_idx,
            &b.info.id,
        ))
    });
    Ok(found)
}

/// The given instances, as EC2 reports them now. Ids EC2 doesn't know (yet, or any more) are
/// left out: right after `RunInstances` EC2's reads may lag its writes.
pub(crate) async fn describe_ids(
    config: &AwsConfig,
    ec2: &aws_sdk_ec2::Client,
    operation: Operation,
    region: &str,
    ids: &[String],
) -> Result<Vec<Ec2Instance>, ProvisionError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let result = ec2
        .describe_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await;
    let output = match result {
        Ok(output) => output,
        Err(err) => {
            let err = AwsCallError::from_sdk("DescribeInstances", err);
            if has_code(&err, codes::INSTANCE_ID_NOT_FOUND) {
                return Ok(Vec::new());
            }
            return Err(classify(operation, Place { region, zone: None }, err));
        }
    };
    Ok(output
        .reservations()
        .iter()
        .flat_map(|reservation| reservation.instances())
        .filter_map(|instance| convert(config, instance))
        .collect())
}

/// An EC2 instance as an [`Ec2Instance`], if it carries valid aloft tags.
fn convert(config: &AwsConfig, instance: &aws_sdk_ec2::types::Instance) -> Option<Ec2Instance> {
    let tags: BTreeMap<&str, &str> = instance
        .tags()
        .iter()
        .filter_map(|tag| Some((tag.key()?, tag.value()?)))
        .collect();
    let cluster = ClusterName::new(*tags.get(config.cluster_tag_key().as_str())?).ok()?;
    let node_idx = tags.get(config.node_tag_key().as_str())?.parse().ok()?;
    let state = match instance.state().and_then(|state| state.name())? {
        InstanceStateName::Pending => InstanceState::Pending,
        InstanceStateName::Running => InstanceState::Running,
        InstanceStateName::Stopping => InstanceState::Stopping,
        InstanceStateName::Stopped => InstanceState::Stopped,
        InstanceStateName::ShuttingDown => InstanceState::Terminating,
        InstanceStateName::Terminated => InstanceState::Terminated,
        _ => InstanceState::Pending,
    };
    let address = |text: Option<&str>| text.and_then(|text| text.parse::<IpAddr>().ok());
    Some(Ec2Instance {
        info: InstanceInfo {
            id: instance.instance_id()?.to_owned(),
            cluster,
            node_idx,
            zone: instance
                .placement()
                .and_then(|placement| placement.availability_zone())
                .unwrap_or_default()
                .to_owned(),
            instance_type: instance
                .instance_type()
                .map(|kind| kind.as_str().to_owned())
                .unwrap_or_default(),
            state,
            private_address: address(instance.private_ip_address()),
            // With internal addresses aloft connects to the private one even if EC2 gave the
            // instance a public one too.
            public_address: address(instance.public_ip_address())
                .filter(|_| !config.use_internal_ips),
            ssh_host_key: tags
                .get(config.host_key_tag_key().as_str())
                .map(|key| (*key).to_owned()),
        },
        state_reason: instance
            .state_reason()
            .and_then(|reason| reason.code())
            .map(str::to_owned),
    })
}

/// What a wait is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Running with a private address.
    Running,
    Stopped,
    /// Terminated or no longer listed.
    Gone,
}

/// Polls until every instance in `ids` reaches `target`, and returns them (for `Gone`, none).
///
/// Waiting for `Running`, an instance that ends up terminated (EC2 gave up on it: no capacity
/// after all, spot not fulfilled) fails the wait with the class of its state reason.
pub(crate) async fn wait_for(
    config: &AwsConfig,
    ec2: &aws_sdk_ec2::Client,
    operation: Operation,
    region: &str,
    ids: &[String],
    target: Target,
) -> Result<Vec<Ec2Instance>, ProvisionError> {
    let deadline = tokio::time::Instant::now() + config.state_timeout();
    loop {
        let instances = describe_ids(config, ec2, operation, region, ids).await?;
        let done = match target {
            Target::Gone => instances
                .iter()
                .all(|instance| instance.info.state == InstanceState::Terminated),
            Target::Stopped => {
                instances.len() == ids.len()
                    && instances
                        .iter()
                        .all(|instance| instance.info.state == InstanceState::Stopped)
            }
            Target::Running => {
                if let Some(dead) = instances.iter().find(|instance| {
                    matches!(
                        instance.info.state,
                        InstanceState::Terminated | InstanceState::Terminating
                    )
                }) {
                    return Err(died_while_starting(operation, region, dead));
                }
                instances.len() == ids.len()
                    && instances.iter().all(|instance| {
                        instance.info.state == InstanceState::Running
                            && instance.info.private_address.is_some()
                    })
            }
        };
        if done {
            return Ok(if target == Target::Gone {
                Vec::new()
            } else {
                instances
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ProvisionError::Transient {
                operation,
                detail: format!(
                    "instances {} did not become {target:?} within {} s",
                    ids.join(", "),
                    config.state_timeout_secs
                ),
                source: None,
            });
        }
        tokio::time::sleep(config.poll_interval()).await;
    }
}

fn died_while_starting(operation: Operation, region: &str, dead: &Ec2Instance) -> ProvisionError {
    let code = dead.state_reason.as_deref().unwrap_or("unknown reason");
    let place = Place {
        region,
        zone: Some(dead.info.zone.as_str()).filter(|zone| !zone.is_empty()),
    };
    if class_of_code(code) == CodeClass::ZoneCapacity {
        classify(
            operation,
            place,
            AwsCallError::service(
                "DescribeInstances",
                code,
                Some("instance terminated while starting"),
            ),
        )
    } else {
        ProvisionError::Other {
            operation,
            detail: format!(
                "instance {} was terminated while starting ({code})",
                dead.info.id
            ),
            source: None,
        }
    }
}

/// Waits until port 22 of every instance accepts TCP connections.
pub(crate) async fn wait_for_ssh(
    config: &AwsConfig,
    operation: Operation,
    instances: &[Ec2Instance],
) -> Result<(), ProvisionError> {
    let deadline = tokio::time::Instant::now() + config.state_timeout();
    for instance in instances {
        let Some(address) = instance.info.ssh_address() else {
            continue;
        };
        loop {
            let attempt = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::TcpStream::connect((address, 22)),
            )
            .await;
            if matches!(attempt, Ok(Ok(_))) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProvisionError::Transient {
                    operation,
                    detail: format!(
                        "SSH on instance {} ({address}) did not accept connections within {} s",
                        instance.info.id, config.state_timeout_secs
                    ),
                    source: None,
                });
            }
            tokio::time::sleep(config.poll_interval()).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_installs_the_host_key() {
        let key = HostKey {
            private:
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n"
                    .into(),
            public: "ssh-ed25519 AAAAC3Nza".into(),
        };
        assert_eq!(
            user_data(&key),
            "#cloud-config\n\
             ssh_keys:\n\
             \x20 ed25519_private: |\n\
             \x20   -----BEGIN OPENSSH PRIVATE KEY-----\n\
             \x20   b3Blbn\n\
             \x20   -----END OPENSSH PRIVATE KEY-----\n\
             \x20 ed25519_public: ssh-ed25519 AAAAC3Nza\n"
        );
    }
}

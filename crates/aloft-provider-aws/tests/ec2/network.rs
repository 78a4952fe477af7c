//! Which VPC and subnet instances land in: the default VPC, a VPC named in the configuration,
//! public or internal addresses, and regions or zones that have no place for them.

use aloft_provider_aws::{AwsCloud, AwsConfig};
use aloft_provision::{ClusterName, CreateRequest, Provider, ProvisionError, Scope};
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use crate::harness::Moto;

fn request(name: &str, zone: &str) -> CreateRequest {
    CreateRequest {
        cluster: ClusterName::new(name).unwrap(),
        region: "us-east-1".into(),
        zone: Some(zone.into()),
        instance_type: "t3.micro".into(),
        count: 1,
        first_node_idx: 0,
        use_spot: false,
        image_id: None,
        default_image_id: None,
        disk_size_gb: None,
    }
}

/// Creates a VPC tagged `Name=name` with one subnet in `zone` that doesn't map public addresses
/// (as a VPC made by hand has), and returns (vpc id, subnet id).
async fn make_vpc(ec2: &aws_sdk_ec2::Client, name: &str, zone: &str) -> (String, String) {
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.77.0.0/16")
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Vpc)
                .tags(Tag::builder().key("Name").value(name).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_owned();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block("10.77.1.0/24")
        .availability_zone(zone)
        .send()
        .await
        .unwrap();
    let subnet_id = subnet.subnet().unwrap().subnet_id().unwrap().to_owned();
    (vpc_id, subnet_id)
}

async fn instance_of(ec2: &aws_sdk_ec2::Client, id: &str) -> aws_sdk_ec2::types::Instance {
    let output = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    output.reservations()[0].instances()[0].clone()
}

async fn group_vpc(ec2: &aws_sdk_ec2::Client, name: &str) -> Vec<String> {
    let output = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values(name).build())
        .send()
        .await
        .unwrap();
    output
        .security_groups()
        .iter()
        .filter_map(|group| group.vpc_id().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_instances_go_into_the_default_vpc_with_public_addresses() {
    let moto = Moto::start();
    let ec2 = moto.ec2("us-east-1").await;
    let cloud = moto.cloud().await;
    let nodes = cloud
        .create_instances(&request("dflt", "us-east-1b"))
        .await
        .unwrap();
    let instance = instance_of(&ec2, &nodes[0].id).await;
    let default_vpc = ec2
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_owned();
    assert_eq!(instance.vpc_id(), Some(default_vpc.as_str()));
    let subnet = instance.subnet_id().unwrap();
    let zone = ec2
        .describe_subnets()
        .subnet_ids(subnet)
        .send()
        .await
        .unwrap()
        .subnets()[0]
        .availability_zone()
        .unwrap()
        .to_owned();
    assert_eq!(zone, "us-east-1b");
    assert!(nodes[0].public_address.is_some(), "{nodes:?}");
    assert_eq!(group_vpc(&ec2, "aloft-ssh").await, vec![default_vpc]);
    cloud
        .terminate("us-east-1", &ClusterName::new("dflt").unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_vpc_is_used_and_its_subnet_asked_for_a_public_address() {
    let moto = Moto::start();
    let ec2 = moto.ec2("us-east-1").await;
    let (vpc_id, subnet_id) = make_vpc(&ec2, "team-vpc", "us-east-1a").await;
    // A bootstrap of the default VPC first: its cached group must not leak into the named VPC.
    moto.cloud().await.bootstrap("us-east-1").await.unwrap();

    let config = AwsConfig {
        vpc_name: Some("team-vpc".into()),
        ..moto.config()
    };
    let cloud = AwsCloud::new(config.clone()).await.unwrap();
    let nodes = cloud
        .create_instances(&request("named", "us-east-1a"))
        .await
        .unwrap();
    let instance = instance_of(&ec2, &nodes[0].id).await;
    assert_eq!(instance.vpc_id(), Some(vpc_id.as_str()));
    assert_eq!(instance.subnet_id(), Some(subnet_id.as_str()));
    // The subnet gives no public address by itself; the adapter asked for one.
    assert!(instance.public_ip_address().is_some(), "{instance:?}");
    assert_eq!(nodes[0].ssh_address(), nodes[0].public_address);
    let ssh_groups = group_vpc(&ec2, "aloft-ssh").await;
    assert!(ssh_groups.contains(&vpc_id), "{ssh_groups:?}");
    assert_eq!(ssh_groups.len(), 2, "one SSH group per VPC: {ssh_groups:?}");
    assert_eq!(
        group_vpc(&ec2, "aloft-cluster-named").await,
        vec![vpc_id.clone()]
    );

    // The planned zone has no subnet of this VPC: that zone is ruled out, not the launch.
    let err = cloud
        .create_instances(&request("elsewhere", "us-east-1c"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProvisionError::Unavailable { .. }), "{err:?}");
    assert_eq!(err.failover_scope(), Some(Scope::Zone("us-east-1c".into())));

    cloud
        .terminate("us-east-1", &ClusterName::new("named").unwrap())
        .await
        .unwrap();
    assert!(group_vpc(&ec2, "aloft-cluster-named").await.is_empty());

    // Internal addresses: no public address asked for, and aloft connects to the private one.
    let internal = AwsCloud::new(AwsConfig {
        use_internal_ips: true,
        ..config
    })
    .await
    .unwrap();
    let nodes = internal
        .create_instances(&request("inside", "us-east-1a"))
        .await
        .unwrap();
    let instance = instance_of(&ec2, &nodes[0].id).await;
    assert_eq!(instance.public_ip_address(), None);
    assert_eq!(nodes[0].public_address, None);
    assert_eq!(nodes[0].ssh_address(), nodes[0].private_address);
    assert!(
        nodes[0]
            .private_address
            .is_some_and(|address| address.to_string().starts_with("10.77.1.")),
        "{nodes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_without_the_vpc_is_ruled_out_with_the_reason() {
    let moto = Moto::start();
    let cloud = AwsCloud::new(AwsConfig {
        vpc_name: Some("no-such-vpc".into()),
        ..moto.config()
    })
    .await
    .unwrap();
    let err = cloud
        .create_instances(&request("novpc", "us-east-1a"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProvisionError::Unavailable { .. }), "{err:?}");
    assert_eq!(
        err.failover_scope(),
        Some(Scope::Region("us-east-1".into()))
    );
    assert!(
        err.to_string().contains("no VPC named \"no-such-vpc\""),
        "{err}"
    );
    assert!(
        cloud
            .query("us-east-1", &ClusterName::new("novpc").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

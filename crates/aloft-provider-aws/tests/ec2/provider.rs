//! Bootstrap, instance lifecycle, spot, ports, orphans, credentials checks and error classes.

use std::os::unix::fs::PermissionsExt;

use aloft_provider_aws::{AwsCloud, AwsConfig, StaticCredentials, check};
use aloft_provision::{
    ClusterName, ClusterState, CreateRequest, InstanceState, PortRange, Provider, ProvisionError,
    Scope,
};
use aws_sdk_ec2::types::Filter;

use crate::harness::{Moto, free_port};

fn cluster(name: &str) -> ClusterName {
    ClusterName::new(name).unwrap()
}

fn request(name: &str, region: &str, zone: &str, instance_type: &str, count: u32) -> CreateRequest {
    CreateRequest {
        cluster: cluster(name),
        region: region.into(),
        zone: Some(zone.into()),
        instance_type: instance_type.into(),
        count,
        first_node_idx: 0,
        use_spot: false,
        image_id: None,
        default_image_id: None,
        disk_size_gb: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_usable_account() {
    let moto = Moto::start();
    let report = check(moto.config()).await;
    assert!(report.usable, "{report:?}");
    assert_eq!(report.cloud, "aws");
    assert_eq!(report.account.as_deref(), Some("123456789012"));
    assert!(
        report.enabled_regions.iter().any(|r| r == "us-west-2"),
        "{report:?}"
    );
    assert_eq!(report.reason, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_make_aws_unusable_and_rule_out_the_cloud() {
    // moto enforces IAM authentication after this many unauthenticated actions: with 0, the
    // made-up key is rejected the way AWS rejects an unknown key.
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let config = AwsConfig {
        static_credentials: Some(StaticCredentials {
            access_key_id: "AKIAUNKNOWNKEY000000".into(),
            secret_access_key: "wrong".into(),
            session_token: None,
        }),
        ..moto.config()
    };
    let report = check(config.clone()).await;
    assert!(!report.usable, "{report:?}");
    let reason = report.reason.unwrap_or_default();
    assert!(reason.contains("not authorized"), "{reason}");

    // Through STS (whose error body moto shapes differently from AWS, so the HTTP 403 decides)
    // and through EC2 (whose `AuthFailure` code decides).
    let cloud = AwsCloud::new(config).await.unwrap();
    let err = cloud.bootstrap("us-east-1").await.unwrap_err();
    assert!(matches!(err, ProvisionError::Auth { .. }), "{err:?}");
    assert_eq!(err.failover_scope(), Some(Scope::Cloud));
    let err = cloud.query("us-east-1", &cluster("any")).await.unwrap_err();
    assert!(matches!(err, ProvisionError::Auth { .. }), "{err:?}");
    let chain = std::error::Error::source(&err).unwrap().to_string();
    assert!(chain.contains("AuthFailure"), "{chain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_reported() {
    let config = AwsConfig {
        endpoint_url: Some(format!("http://127.0.0.1:{}", free_port())),
        static_credentials: Some(StaticCredentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        }),
        max_attempts: 1,
        ..AwsConfig::default()
    };
    let report = check(config).await;
    assert!(!report.usable);
    let reason = report.reason.unwrap_or_default();
    assert!(reason.contains("did not answer"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_names_the_field() {
    let report = check(AwsConfig {
        endpoint_url: Some("localhost:5000".into()),
        ..AwsConfig::default()
    })
    .await;
    assert!(!report.usable);
    assert!(report.reason.unwrap_or_default().contains("endpoint_url"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_is_cached_reused_and_recreated_when_gone() {
    let moto = Moto::start();
    let region = "us-east-1";
    let cloud = moto.cloud().await;
    let first = cloud.bootstrap_region(region).await.unwrap();

    // The key is aloft's own, private to the user.
    let key = cloud.client_key_path();
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", key.display());
    assert!(
        std::fs::read_to_string(key.with_extension("pub"))
            .unwrap()
            .starts_with("ssh-ed25519 ")
    );

    // The ids are persisted per account and region.
    let cache_path = cloud.bootstrap_cache_path(region).await.unwrap();
    assert!(
        cache_path.ends_with("aws/123456789012/us-east-1.json"),
        "{}",
        cache_path.display()
    );
    let cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache_path).unwrap()).unwrap();
    assert_eq!(
        cached["ssh_security_group_id"],
        first.ssh_security_group_id.as_str()
    );
    assert_eq!(cached["key_pair_name"], first.key_pair_name.as_str());

    // EC2 really has them, with SSH open.
    let ec2 = moto.ec2(region).await;
    let groups = ec2
        .describe_security_groups()
        .group_ids(&first.ssh_security_group_id)
        .send()
        .await
        .unwrap();
    let rules = groups.security_groups()[0].ip_permissions();
    assert!(
        rules
            .iter()
            .any(|rule| rule.from_port() == Some(22) && rule.to_port() == Some(22)),
        "{rules:?}"
    );
    let keys = ec2.describe_key_pairs().send().await.unwrap();
    assert_eq!(keys.key_pairs().len(), 1);

    // Again, and from a new process with the same state: the same resources, nothing new.
    assert_eq!(cloud.bootstrap_region(region).await.unwrap(), first);
    let again = moto.cloud().await;
    assert_eq!(again.bootstrap_region(region).await.unwrap(), first);
    let groups = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-name")
                .values("aloft-ssh")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(groups.security_groups().len(), 1);

    // Delete the group and the key pair behind aloft's back: bootstrap makes new ones and
    // updates the cache.
    ec2.delete_security_group()
        .group_id(&first.ssh_security_group_id)
        .send()
        .await
        .unwrap();
    ec2.delete_key_pair()
        .key_name(&first.key_pair_name)
        .send()
        .await
        .unwrap();
    let renewed = again.bootstrap_region(region).await.unwrap();
    assert_ne!(renewed.ssh_security_group_id, first.ssh_security_group_id);
    assert_eq!(renewed.key_pair_name, first.key_pair_name);
    let keys = ec2.describe_key_pairs().send().await.unwrap();
    assert_eq!(keys.key_pairs().len(), 1);
    let cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache_path).unwrap()).unwrap();
    assert_eq!(
        cached["ssh_security_group_id"],
        renewed.ssh_security_group_id.as_str()
    );

    // A corrupt cache is rebuilt, never fatal.
    std::fs::write(&cache_path, "garbage").unwrap();
    assert_eq!(again.bootstrap_region(region).await.unwrap(), renewed);

    // Another region gets its own.
    let west = again.bootstrap_region("us-west-2").await.unwrap();
    assert_ne!(west.ssh_security_group_id, renewed.ssh_security_group_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_query_stop_start_terminate() {
    let moto = Moto::start();
    let cloud = moto.cloud().await;
    let region = "us-east-1";
    let name = cluster("lifecycle");
    cloud.bootstrap(region).await.unwrap();

    let created = cloud
        .create_instances(&request(
            "lifecycle",
            region,
            "us-east-1b",
            "m6i.2xlarge",
            2,
        ))
        .await
        .unwrap();
    assert_eq!(created.len(), 2);
    for (idx, instance) in created.iter().enumerate() {
        assert_eq!(instance.node_idx, idx as u32);
        assert_eq!(instance.cluster, name);
        assert_eq!(instance.zone, "us-east-1b");
        assert_eq!(instance.instance_type, "m6i.2xlarge");
        assert_eq!(instance.state, InstanceState::Running);
        assert!(instance.private_address.is_some());
        assert!(instance.public_address.is_some());
    }
    assert_eq!(cloud.query(region, &name).await.unwrap(), created);

    // Each node has its own host key, made by aloft and known before the first connection.
    let host_keys: Vec<&str> = created
        .iter()
        .map(|i| i.ssh_host_key.as_deref().expect("a host key"))
        .collect();
    assert!(
        host_keys
            .iter()
            .all(|key| key.starts_with("ssh-ed25519 AAAA")),
        "{host_keys:?}"
    );
    assert_ne!(host_keys[0], host_keys[1]);
    // The instance gets it through cloud-init.
    let ec2 = moto.ec2(region).await;
    let attribute = ec2
        .describe_instance_attribute()
        .instance_id(&created[0].id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let encoded = attribute
        .user_data()
        .and_then(|v| v.value())
        .expect("user data");
    let decoded = String::from_utf8(aws_smithy_types::base64::decode(encoded).unwrap()).unwrap();
    assert!(
        decoded.starts_with("#cloud-config\nssh_keys:\n"),
        "{decoded}"
    );
    assert!(decoded.contains("BEGIN OPENSSH PRIVATE KEY"));
    assert!(decoded.contains(&format!("ed25519_public: {}\n", host_keys[0])));
    // No host key file is left on this machine.
    let leftovers: Vec<_> = std::fs::read_dir(moto.dir.path().join("state/aws"))
        .unwrap()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".host-key"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The instances carry the key pair, both security groups, the disk size and the tags.
    let described = ec2
        .describe_instances()
        .instance_ids(&created[1].id)
        .send()
        .await
        .unwrap();
    let instance = &described.reservations()[0].instances()[0];
    assert!(instance.key_name().unwrap().starts_with("aloft-key-"));
    let groups: Vec<&str> = instance
        .security_groups()
        .iter()
        .filter_map(|group| group.group_name())
        .collect();
    assert!(
        groups.contains(&"aloft-ssh") && groups.contains(&"aloft-cluster-lifecycle"),
        "{groups:?}"
    );
    let tag = |key: &str| {
        instance
            .tags()
            .iter()
            .find(|tag| tag.key() == Some(key))
            .and_then(|tag| tag.value())
            .map(str::to_owned)
    };
    assert_eq!(tag("aloft-cluster").as_deref(), Some("lifecycle"));
    assert_eq!(tag("aloft-node").as_deref(), Some("1"));
    // The newest of moto's Canonical Ubuntu images (16.04, over 14.04).
    assert_eq!(instance.image_id(), Some("ami-785db401"));

    // Creating again changes nothing (a resumed launch).
    let again = cloud
        .create_instances(&request(
            "lifecycle",
            region,
            "us-east-1b",
            "m6i.2xlarge",
            2,
        ))
        .await
        .unwrap();
    assert_eq!(again, created);
    // Growing the cluster adds only the new node.
    let grown = cloud
        .create_instances(&CreateRequest {
            first_node_idx: 2,
            count: 1,
            ..request("lifecycle", region, "us-east-1b", "m6i.2xlarge", 1)
        })
        .await
        .unwrap();
    assert_eq!(grown.len(), 1);
    assert_eq!(grown[0].node_idx, 2);
    assert_eq!(cloud.query(region, &name).await.unwrap().len(), 3);

    cloud.stop(region, &name).await.unwrap();
    let stopped = cloud.query(region, &name).await.unwrap();
    assert_eq!(ClusterState::of(&stopped), ClusterState::Stopped);
    assert!(stopped.iter().all(|i| i.public_address.is_none()));
    cloud.stop(region, &name).await.unwrap();

    let started = cloud.start(region, &name).await.unwrap();
    assert_eq!(started.len(), 3);
    assert_eq!(ClusterState::of(&started), ClusterState::Up);
    assert_eq!(started[0].id, created[0].id);
    assert_eq!(started[0].private_address, created[0].private_address);
    assert!(started.iter().all(|i| i.public_address.is_some()));
    cloud.start(region, &name).await.unwrap();

    cloud.terminate(region, &name).await.unwrap();
    assert!(cloud.query(region, &name).await.unwrap().is_empty());
    // The cluster's own security group went with it; the shared SSH group stays.
    let groups = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-name")
                .values("aloft-cluster-lifecycle")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(groups.security_groups().is_empty());
    cloud.terminate(region, &name).await.unwrap();
    // An unknown cluster has no instances, and terminating it succeeds.
    assert!(
        cloud
            .query(region, &cluster("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
    cloud.terminate(region, &cluster("nobody")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_instances_are_requested_as_spot() {
    let moto = Moto::start();
    let cloud = moto.cloud().await;
    let region = "us-west-2";
    let created = cloud
        .create_instances(&CreateRequest {
            use_spot: true,
            ..request("spotty", region, "us-west-2a", "g5.xlarge", 1)
        })
        .await
        .unwrap();
    assert_eq!(created[0].state, InstanceState::Running);
    let ec2 = moto.ec2(region).await;
    let described = ec2
        .describe_instances()
        .instance_ids(&created[0].id)
        .send()
        .await
        .unwrap();
    let instance = &described.reservations()[0].instances()[0];
    assert_eq!(
        instance.instance_lifecycle().map(|l| l.as_str()),
        Some("spot")
    );
    cloud.terminate(region, &cluster("spotty")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tasks_image_and_disk_size_win_over_the_defaults() {
    let moto = Moto::start();
    let cloud = moto.cloud().await;
    let region = "us-east-1";
    let ec2 = moto.ec2(region).await;
    // Any image of the region other than the default lookup's choice.
    let images = ec2.describe_images().owners("amazon").send().await.unwrap();
    let image = images
        .images()
        .iter()
        .filter(|image| image.architecture().map(|a| a.as_str()) == Some("x86_64"))
        .filter_map(|image| image.image_id())
        .next()
        .expect("moto has amazon images")
        .to_owned();
    let created = cloud
        .create_instances(&CreateRequest {
            image_id: Some(image.clone()),
            disk_size_gb: Some(50),
            ..request("imaged", region, "us-east-1a", "t3.micro", 1)
        })
        .await
        .unwrap();
    let described = ec2
        .describe_instances()
        .instance_ids(&created[0].id)
        .send()
        .await
        .unwrap();
    let instance = &described.reservations()[0].instances()[0];
    assert_eq!(instance.image_id(), Some(image.as_str()));
    let volume_id = instance.block_device_mappings()[0]
        .ebs()
        .and_then(|ebs| ebs.volume_id())
        .expect("a root volume")
        .to_owned();
    let volumes = ec2
        .describe_volumes()
        .volume_ids(volume_id)
        .send()
        .await
        .unwrap();
    assert_eq!(volumes.volumes()[0].size(), Some(50));

    // Sizes EC2 cannot make, and images that do not exist, are invalid requests (not capacity:
    // no other zone would do better).
    let tiny = cloud
        .create_instances(&CreateRequest {
            disk_size_gb: Some(4),
            ..request("tiny", region, "us-east-1a", "t3.micro", 1)
        })
        .await
        .unwrap_err();
    assert!(
        matches!(tiny, ProvisionError::InvalidRequest { .. }),
        "{tiny:?}"
    );
    assert!(tiny.to_string().contains("disk size 4 GB"), "{tiny}");
    let missing = cloud
        .create_instances(&CreateRequest {
            image_id: Some("ami-00000000deadbeef".into()),
            ..request("noimage", region, "us-east-1a", "t3.micro", 1)
        })
        .await
        .unwrap_err();
    assert!(
        matches!(missing, ProvisionError::InvalidRequest { .. }),
        "{missing:?}"
    );
    cloud.terminate(region, &cluster("imaged")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_open_and_close_on_the_cluster_group() {
    let moto = Moto::start();
    let cloud = moto.cloud().await;
    let region = "us-east-1";
    let name = cluster("web");
    cloud
        .create_instances(&request("web", region, "us-east-1a", "t3.medium", 1))
        .await
        .unwrap();
    let ports = [
        PortRange {
            first: 8080,
            last: 8080,
        },
        PortRange {
            first: 9000,
            last: 9010,
        },
    ];
    let ec2 = moto.ec2(region).await;
    let open_ranges = || async {
        let groups = ec2
            .describe_security_groups()
            .filters(
                Filter::builder()
                    .name("group-name")
                    .values("aloft-cluster-web")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        // EC2 lists one permission per protocol and port range, holding both address families.
        let mut ranges: Vec<(i32, i32, Vec<String>)> = groups.security_groups()[0]
            .ip_permissions()
            .iter()
            .filter(|rule| rule.ip_protocol() == Some("tcp"))
            .map(|rule| {
                let mut sources: Vec<String> = rule
                    .ip_ranges()
                    .iter()
                    .filter_map(|range| range.cidr_ip().map(str::to_owned))
                    .chain(
                        rule.ipv6_ranges()
                            .iter()
                            .filter_map(|range| range.cidr_ipv6().map(str::to_owned)),
                    )
                    .collect();
                sources.sort();
                (
                    rule.from_port().unwrap_or(-1),
                    rule.to_port().unwrap_or(-1),
                    sources,
                )
            })
            .collect();
        ranges.sort();
        ranges
    };
    assert!(open_ranges().await.is_empty());

    cloud.open_ports(region, &name, &ports).await.unwrap();
    cloud.open_ports(region, &name, &ports).await.unwrap();
    let anywhere = || vec!["0.0.0.0/0".to_owned(), "::/0".to_owned()];
    assert_eq!(
        open_ranges().await,
        [(8080, 8080, anywhere()), (9000, 9010, anywhere())]
    );

    cloud.close_ports(region, &name, &ports[..1]).await.unwrap();
    cloud.close_ports(region, &name, &ports[..1]).await.unwrap();
    assert_eq!(open_ranges().await, [(9000, 9010, anywhere())]);

    // Members reach each other on every port through the group itself.
    let groups = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-name")
                .values("aloft-cluster-web")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let group = &groups.security_groups()[0];
    assert!(group.ip_permissions().iter().any(|rule| {
        rule.ip_protocol() == Some("-1")
            && rule
                .user_id_group_pairs()
                .iter()
                .any(|pair| pair.group_id() == group.group_id())
    }));

    // Teardown takes the rules (with the group) away.
    cloud.terminate(region, &name).await.unwrap();
    let err = cloud.open_ports(region, &name, &ports).await.unwrap_err();
    assert!(matches!(err, ProvisionError::NotFound { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_found_by_tag() {
    let moto = Moto::start();
    let region = "us-east-1";
    let cloud = moto.cloud().await;
    cloud
        .create_instances(&request("orphan", region, "us-east-1a", "t3.medium", 2))
        .await
        .unwrap();
    cloud
        .create_instances(&request("kept", region, "us-east-1c", "t3.medium", 1))
        .await
        .unwrap();
    // An instance someone else made, without aloft's tags, is not aloft's business.
    let ec2 = moto.ec2(region).await;
    ec2.run_instances()
        .image_id("ami-1e749f67")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();

    // A process that lost its state (a fresh state directory) still finds both clusters.
    let amnesiac = AwsCloud::new(AwsConfig {
        state_dir: moto.dir.path().join("other-state"),
        ..moto.config()
    })
    .await
    .unwrap();
    let clusters = amnesiac.clusters_in_region(region).await.unwrap();
    let names: Vec<&str> = clusters.keys().map(ClusterName::as_str).collect();
    assert_eq!(names, ["kept", "orphan"]);
    assert_eq!(clusters[&cluster("orphan")].len(), 2);
    // The same through the provider interface, as `aloft status --refresh` asks.
    let listed = Provider::list_clusters(&amnesiac, region).await.unwrap();
    assert_eq!(
        listed.iter().map(ClusterName::as_str).collect::<Vec<_>>(),
        ["kept", "orphan"]
    );
    amnesiac
        .terminate(region, &cluster("orphan"))
        .await
        .unwrap();
    let clusters = amnesiac.clusters_in_region(region).await.unwrap();
    assert_eq!(
        clusters.keys().map(ClusterName::as_str).collect::<Vec<_>>(),
        ["kept"]
    );

    // Another installation (another prefix) sees none of them.
    let other = AwsCloud::new(AwsConfig {
        name_prefix: "other".into(),
        ..moto.config()
    })
    .await
    .unwrap();
    assert!(other.clusters_in_region(region).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_with_backoff() {
    // The first two RunInstances calls are throttled; three attempts get through.
    let moto = Moto::start_with(&[("ALOFT_MOTO_THROTTLE_FIRST", "2")]);
    let cloud = moto.cloud().await;
    let created = cloud
        .create_instances(&request(
            "patient",
            "us-east-1",
            "us-east-1a",
            "t3.medium",
            1,
        ))
        .await
        .unwrap();
    assert_eq!(created.len(), 1);

    // With fewer attempts than throttled calls, the error is transient.
    let moto = Moto::start_with(&[("ALOFT_MOTO_THROTTLE_FIRST", "10")]);
    let cloud = AwsCloud::new(AwsConfig {
        max_attempts: 2,
        ..moto.config()
    })
    .await
    .unwrap();
    let err = cloud
        .create_instances(&request(
            "impatient",
            "us-east-1",
            "us-east-1a",
            "t3.medium",
            1,
        ))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_requests_are_invalid_not_capacity() {
    let moto = Moto::start();
    let cloud = moto.cloud().await;
    let err = cloud
        .create_instances(&request(
            "bad",
            "us-east-1",
            "us-east-1a",
            "p99.nonexistent",
            1,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProvisionError::InvalidRequest { .. }),
        "{err:?}"
    );
    assert_eq!(err.failover_scope(), None);

    let cloud = AwsCloud::new(AwsConfig {
        image_id: Some("ami-00000000000000000".into()),
        ..moto.config()
    })
    .await
    .unwrap();
    let err = cloud
        .create_instances(&request(
            "noimage",
            "us-east-1",
            "us-east-1a",
            "t3.medium",
            1,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProvisionError::InvalidRequest { .. }),
        "{err:?}"
    );
}

/// What EC2 does when the instance shuts itself down.
async fn shutdown_behavior(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    ec2.describe_instance_attribute()
        .instance_id(id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::InstanceInitiatedShutdownBehavior)
        .send()
        .await
        .unwrap()
        .instance_initiated_shutdown_behavior()
        .and_then(|value| value.value())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autostop_decides_whether_a_shutdown_from_inside_stops_or_terminates() {
    let moto = Moto::start();
    let cloud = moto.cloud().await;
    let ec2 = moto.ec2("us-east-1").await;
    let nodes = cloud
        .create_instances(&request("nap", "us-east-1", "us-east-1a", "t3.micro", 2))
        .await
        .unwrap();
    for node in &nodes {
        assert_eq!(shutdown_behavior(&ec2, &node.id).await, "stop");
    }
    cloud
        .prepare_power_off("us-east-1", &cluster("nap"), true)
        .await
        .unwrap();
    for node in &nodes {
        assert_eq!(shutdown_behavior(&ec2, &node.id).await, "terminate");
    }
    cloud
        .prepare_power_off("us-east-1", &cluster("nap"), false)
        .await
        .unwrap();
    assert_eq!(shutdown_behavior(&ec2, &nodes[1].id).await, "stop");
    // The same shutdown either way: the instance needs no AWS credentials of its own.
    let command = cloud.power_off_command(true).unwrap();
    assert_eq!(Some(command.clone()), cloud.power_off_command(false));
    assert!(command.contains("shutdown -h now"), "{command}");
    // EC2 cannot stop one-time spot instances, and the CLI must know before it asks.
    assert!(!cloud.capabilities().stop_spot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_regions_swept_for_orphans_are_those_bootstrapped() {
    let moto = Moto::start();
    let cloud = moto.cloud().await;
    assert!(cloud.regions_in_use().await.unwrap().is_empty());
    cloud.bootstrap("us-west-2").await.unwrap();
    cloud.bootstrap("eu-west-1").await.unwrap();
    assert_eq!(
        cloud.regions_in_use().await.unwrap(),
        ["eu-west-1", "us-west-2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogs_image_comes_after_the_task_and_the_configuration() {
    let moto = Moto::start();
    let region = "us-east-1";
    let ec2 = moto.ec2(region).await;
    let images = ec2.describe_images().owners("amazon").send().await.unwrap();
    let x86: Vec<String> = images
        .images()
        .iter()
        .filter(|image| image.architecture().map(|a| a.as_str()) == Some("x86_64"))
        .filter_map(|image| image.image_id().map(str::to_owned))
        .take(2)
        .collect();
    let (catalogs, configured) = (&x86[0], &x86[1]);
    let image_of = |id: String| {
        let ec2 = ec2.clone();
        async move {
            let described = ec2
                .describe_instances()
                .instance_ids(id)
                .send()
                .await
                .unwrap();
            described.reservations()[0].instances()[0]
                .image_id()
                .unwrap()
                .to_owned()
        }
    };
    let with_default = |name: &str, zone: &str, instance_type: &str| CreateRequest {
        default_image_id: Some(catalogs.clone()),
        ..request(name, region, zone, instance_type, 1)
    };

    let cloud = moto.cloud().await;
    let plain = cloud
        .create_instances(&with_default("cat", "us-east-1a", "t3.micro"))
        .await
        .unwrap();
    assert_eq!(image_of(plain[0].id.clone()).await, *catalogs);
    // The catalog's images are x86_64: an Arm instance type looks up an arm64 Ubuntu instead
    // (which moto doesn't have).
    let arm = cloud
        .create_instances(&with_default("arm", "us-east-1a", "m6g.medium"))
        .await
        .unwrap_err();
    assert!(arm.to_string().contains("arm64-server"), "{arm}");

    let configured_cloud = AwsCloud::new(AwsConfig {
        images: [(region.to_owned(), configured.clone())].into(),
        ..moto.config()
    })
    .await
    .unwrap();
    let ours = configured_cloud
        .create_instances(&with_default("conf", "us-east-1b", "t3.micro"))
        .await
        .unwrap();
    assert_eq!(image_of(ours[0].id.clone()).await, *configured);
}

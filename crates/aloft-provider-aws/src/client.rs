//! Building SDK clients: one shared configuration (credentials, endpoint, retries, HTTP client),
//! one EC2 client per region.
//!
//! The HTTP client is built here rather than by the SDK's `default-https-client` feature, because
//! that feature brings aws-lc-sys (a C build of ~30 s) while ring is enough for TLS to AWS; see
//! `../shared/notes/dependencies.md` §1.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_sdk_ec2::config::Region;
use aws_smithy_http_client::tls;

use crate::config::AwsConfig;

/// The region used when neither the configuration nor the profile names one.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Builds the shared SDK configuration from [`AwsConfig`]. Loading reads files (profiles) but
/// sends nothing; credentials are resolved lazily on the first request.
pub(crate) async fn load_sdk_config(config: &AwsConfig) -> aws_config::SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts));
    if let Some(profile) = &config.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = config.effective_endpoint_url() {
        loader = loader.endpoint_url(url);
    }
    if let Some(credentials) = &config.static_credentials {
        loader = loader.credentials_provider(Credentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.clone(),
            credentials.session_token.clone(),
            None,
            "aloft-config",
        ));
    }
    if let Some(region) = &config.home_region {
        loader = loader.region(Region::new(region.clone()));
    }
    let mut sdk_config = loader.load().await;
    if sdk_config.region().is_none() {
        sdk_config = sdk_config
            .into_builder()
            .region(Region::new(FALLBACK_REGION))
            .build();
    }
    sdk_config
}

/// EC2 clients by region, sharing one SDK configuration (and so one credential cache and one
/// connection pool).
#[derive(Debug)]
pub(crate) struct Clients {
    sdk_config: aws_config::SdkConfig,
    ec2: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
}

impl Clients {
    pub(crate) fn new(sdk_config: aws_config::SdkConfig) -> Self {
        Self {
            sdk_config,
            ec2: Mutex::new(HashMap::new()),
        }
    }

    /// The region calls about no particular region go to.
    pub(crate) fn home_region(&self) -> String {
        self.sdk_config
            .region()
            .map(|region| region.as_ref().to_owned())
            .unwrap_or_else(|| FALLBACK_REGION.to_owned())
    }

    pub(crate) fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        // A poisoned lock only means another thread panicked while inserting a client; the map
        // is still usable.
        let mut clients = self
            .ec2
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let config = aws_sdk_ec2::config::Builder::from(&self.sdk_config)
                    .region(Region::new(region.to_owned()))
                    .build();
                aws_sdk_ec2::Client::from_conf(config)
            })
            .clone()
    }

    pub(crate) fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.sdk_config)
    }
}

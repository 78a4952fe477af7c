//! `aloft check`: which clouds aloft can use from here, and why not, like `sky check`. The
//! usable ones (besides the local cloud, which is always tried) are recorded, and launches plan
//! over them.

use crate::cluster_cmd::{aloft_home, runtime};
use crate::output::{OutputFormat, new_table, table_text};
use anyhow::Result;
use serde::Serialize;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// One cloud's answer.
#[derive(Debug, Serialize)]
struct CloudCheck {
    cloud: String,
    usable: bool,
    /// Why not, when not.
    reason: Option<String>,
    /// What the check learnt (the account, say).
    detail: Option<String>,
}

pub fn check(args: CheckArgs) -> Result<ExitCode> {
    let home = aloft_home();
    runtime()?.block_on(async move {
        let mut checks = Vec::new();
        checks.push(match aloft_provider_local::preflight() {
            Ok(()) => CloudCheck {
                cloud: "local".to_owned(),
                usable: true,
                reason: None,
                detail: Some("network namespaces on this machine".to_owned()),
            },
            Err(err) => CloudCheck {
                cloud: "local".to_owned(),
                usable: false,
                reason: Some(err.to_string()),
                detail: None,
            },
        });
        checks.push(check_aws(&home).await?);
        let enabled: Vec<String> = checks
            .iter()
            .filter(|check| check.usable && check.cloud != "local")
            .map(|check| check.cloud.clone())
            .collect();
        aloft_control::registry::set_enabled_clouds(&home, &enabled)?;
        match args.output {
            OutputFormat::Json => {
                crate::output::outln!("{}", serde_json::to_string_pretty(&checks)?)
            }
            OutputFormat::Table => {
                let mut table = new_table(&["CLOUD", "USABLE", "WHY NOT / DETAIL"]);
                for check in &checks {
                    table.add_row(vec![
                        check.cloud.clone(),
                        if check.usable { "yes" } else { "no" }.to_owned(),
                        check
                            .reason
                            .clone()
                            .or_else(|| check.detail.clone())
                            .unwrap_or_default(),
                    ]);
                }
                crate::output::out!("{}", table_text(&table));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(feature = "aws")]
async fn check_aws(home: &std::path::Path) -> Result<CloudCheck> {
    let report = aloft_provider_aws::check(aloft_control::registry::aws_config(home)?).await;
    Ok(CloudCheck {
        cloud: "aws".to_owned(),
        usable: report.usable,
        reason: report.reason,
        detail: report.account.map(|account| {
            format!(
                "account {account}, {} regions enabled",
                report.enabled_regions.len()
            )
        }),
    })
}

#[cfg(not(feature = "aws"))]
async fn check_aws(_: &std::path::Path) -> Result<CloudCheck> {
    Ok(CloudCheck {
        cloud: "aws".to_owned(),
        usable: false,
        reason: Some(
            "this aloft was built without AWS support (build it with `--features aws`)".to_owned(),
        ),
        detail: None,
    })
}

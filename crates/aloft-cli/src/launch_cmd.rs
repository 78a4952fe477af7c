//! `aloft launch`: plan a task and (with `--dryrun`) print the plan.

use anyhow::Result;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct LaunchArgs {}

pub fn run(_args: LaunchArgs) -> Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

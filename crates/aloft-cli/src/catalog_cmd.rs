//! `aloft catalog`: list instance types with prices, and a GPU view.

use anyhow::Result;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CatalogArgs {}

pub fn run(_args: CatalogArgs) -> Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

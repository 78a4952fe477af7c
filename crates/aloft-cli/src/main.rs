//! `aloft`: the command line. Thin by design: it parses arguments, reads files, calls the
//! planner and the application layer (`aloft-control`) and renders what they return.

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

mod agent_cmd;
mod api_cmd;
mod catalog_cmd;
mod check_cmd;
mod cluster_cmd;
mod group_cmd;
mod job_cmd;
mod launch_cmd;
mod output;

/// aloft: run jobs on the cheapest or fastest place in the sky of clouds.
#[derive(Debug, Parser)]
#[command(
    name = "aloft",
    version,
    about,
    after_help = "Examples:\n  \
        aloft launch examples/hello.yaml --down   (runs it on the local cloud; needs root)\n  \
        aloft launch --dryrun examples/hello.yaml\n  \
        aloft launch --dryrun --optimize time examples/train-gpu.yaml -o json\n  \
        aloft catalog --cpus 8+ --memory 32+\n  \
        aloft catalog gpus A100:8\n  \
        aloft completions bash > /etc/bash_completion.d/aloft"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a task, DAG or pipeline on the best place in the sky (`--dryrun`: only plan it).
    Launch(launch_cmd::LaunchArgs),
    /// Run a task on a cluster that is up (no provisioning).
    Exec(cluster_cmd::ExecArgs),
    /// The jobs run on a cluster.
    Queue(job_cmd::QueueArgs),
    /// A job's output, node by node.
    Logs(job_cmd::LogsArgs),
    /// Cancel jobs on a cluster, queued or running.
    Cancel(job_cmd::CancelArgs),
    /// Stop (or tear down) a cluster by itself after it has been idle for a while.
    Autostop(job_cmd::AutostopArgs),
    /// Stop a cluster's instances, keeping their disks.
    Stop(cluster_cmd::ClusterArgs),
    /// Start a stopped cluster again.
    Start(cluster_cmd::ClusterArgs),
    /// Open a shell (or run a command) on a node of a cluster.
    Ssh(cluster_cmd::SshArgs),
    /// Tear clusters down: terminate their instances and forget them.
    Down(cluster_cmd::DownArgs),
    /// Show the clusters.
    Status(cluster_cmd::StatusArgs),
    /// The local cloud (instances that are network namespaces on this machine).
    Local(cluster_cmd::LocalArgs),
    /// Which clouds aloft can use from here, and why not.
    Check(check_cmd::CheckArgs),
    /// List instance types and prices from the catalog.
    Catalog(catalog_cmd::CatalogArgs),
    /// Run the control plane in the foreground (a command starts one in the background by
    /// itself when none answers).
    Server(api_cmd::ServerArgs),
    /// The control plane: start, stop, its requests and their progress.
    Api(api_cmd::ApiArgs),
    /// The head-node agent (run on a cluster's head node by aloft itself).
    #[command(hide = true)]
    Agent {
        #[command(subcommand)]
        command: agent_cmd::AgentCommand,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            // Never a panic on a closed stderr.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    // What aloft keeps for a user (state, keys, logs, the local cloud's disks) is theirs alone.
    if !matches!(
        cli.command,
        Command::Agent { .. } | Command::Completions { .. } | Command::Catalog(_)
    ) {
        aloft_control::make_home_private(&aloft_control::aloft_home())?;
    }
    match cli.command {
        Command::Launch(args) => launch_cmd::run(args),
        Command::Exec(args) => cluster_cmd::exec(args),
        Command::Queue(args) => job_cmd::queue(args),
        Command::Logs(args) => job_cmd::logs(args),
        Command::Cancel(args) => job_cmd::cancel(args),
        Command::Autostop(args) => job_cmd::autostop(args),
        Command::Stop(args) => cluster_cmd::stop(args),
        Command::Start(args) => cluster_cmd::start(args),
        Command::Ssh(args) => cluster_cmd::ssh(args),
        Command::Down(args) => cluster_cmd::down(args),
        Command::Status(args) => cluster_cmd::status(args),
        Command::Local(args) => cluster_cmd::local(args),
        Command::Catalog(args) => catalog_cmd::run(args),
        Command::Check(args) => check_cmd::check(args),
        Command::Server(args) => api_cmd::server(args),
        Command::Api(args) => api_cmd::api(args),
        Command::Agent { command } => agent_cmd::run(command),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "aloft", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

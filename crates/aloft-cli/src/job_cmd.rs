//! Commands about a cluster's jobs, answered by the agent on its head node: submitting and
//! following a job (for `launch` and `exec`), `queue`, `logs`, `cancel` and `autostop`.
//!
//! Job output is also kept where the control plane runs, so `aloft logs` still has it after the
//! cluster is gone (`aloft_control::logs`): a job followed here is copied as it streams; a
//! detached job is followed in the background by `aloft logs -f` through the server (so a
//! cluster that tears itself down after the job leaves its output there), and the server copies
//! every job before `aloft down`.

use crate::cluster_cmd::{aloft_home, runtime, say};
use crate::output::{OutputFormat, new_table, table_text};
use aloft_agent::logs::Piece;
use aloft_agent::protocol::OutStream;
use aloft_agent::{AgentClient, Autostop, LogEvent, LogItem, LogsEnd};
use aloft_ops::launch::{LaunchContext, agent_client};
use aloft_provision::InstanceInfo;
use aloft_store::JobState;
use aloft_types::Task;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// How a submitted job stands when the command returns.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct JobReport {
    pub cluster: String,
    pub job_id: i64,
    /// `None`: detached, not followed.
    pub state: Option<JobState>,
    pub exit_codes: Option<serde_json::Value>,
}

/// A job just queued on a cluster's agent.
pub(crate) struct Queued {
    client: AgentClient,
    cluster: String,
    job_id: i64,
    many: bool,
    /// When the cluster's record was made: which copies of its logs are this cluster's.
    created_at: Option<i64>,
}

impl Queued {
    /// The agent the job was queued on.
    pub(crate) fn client(&self) -> &AgentClient {
        &self.client
    }
}

/// Queues the task on the cluster's agent.
pub(crate) async fn enqueue(
    context: &LaunchContext,
    instances: &[InstanceInfo],
    task: &Task,
) -> Result<Queued> {
    let client = agent_client(context, instances).map_err(|err| anyhow::anyhow!(err.message))?;
    let spec = aloft_control::jobs::job_spec(task, context);
    let job_id = client.submit(&spec).await?;
    let created_at = record_created_at(&aloft_home(), context.cluster.as_str()).await;
    Ok(Queued {
        client,
        cluster: context.cluster.as_str().to_owned(),
        job_id,
        many: spec.num_nodes > 1,
        created_at,
    })
}

/// Unless `detach`, streams a queued job's output until it ends. With `quiet_stdout` (JSON
/// output), job lines go to stderr so stdout stays one document.
pub(crate) async fn await_job(
    queued: Queued,
    detach: bool,
    quiet_stdout: bool,
) -> Result<JobReport> {
    if detach {
        return Ok(detached(&queued.cluster, queued.job_id));
    }
    follow_queued(queued, None, quiet_stdout).await
}

/// Streams a queued job's output until it ends, every line tagged `[tag] ` (a job group's
/// task), as [`await_job`] does otherwise.
pub(crate) async fn await_job_tagged(
    queued: Queued,
    tag: &str,
    quiet_stdout: bool,
) -> Result<JobReport> {
    follow_queued(queued, Some(tag), quiet_stdout).await
}

/// Follows a queued job to its end, its lines tagged `[tag] ` when given, keeping the copy of
/// its output in the cluster's incarnation directory.
async fn follow_queued(queued: Queued, tag: Option<&str>, quiet_stdout: bool) -> Result<JobReport> {
    let Queued {
        client,
        cluster,
        job_id,
        many,
        created_at,
    } = queued;
    let prefix = tag.map(|tag| format!("[{tag}] ")).unwrap_or_default();
    say(&format!(
        "{prefix}Job {job_id} queued on `{cluster}`; its output follows."
    ));
    let output = if quiet_stdout {
        Output::Stderr { many }
    } else {
        Output::Text { many }
    };
    let copies = created_at
        .map(|created| aloft_control::logs::incarnation_dir(&aloft_home(), &cluster, created));
    let printer = match tag {
        Some(tag) => Printer::tagged(output, tag),
        None => Printer::new(output),
    };
    let end = follow_with(&client, copies.as_deref(), Some(job_id), true, printer).await?;
    Ok(JobReport {
        cluster,
        job_id,
        state: Some(end.state),
        exit_codes: end.exit_codes,
    })
}

impl Queued {
    /// The job's id on its cluster.
    pub(crate) fn job_id(&self) -> i64 {
        self.job_id
    }
}

/// Queues the task and, unless `detach`, follows it to its end.
pub(crate) async fn submit(
    context: &LaunchContext,
    instances: &[InstanceInfo],
    task: &Task,
    detach: bool,
    quiet_stdout: bool,
) -> Result<JobReport> {
    await_job(
        enqueue(context, instances, task).await?,
        detach,
        quiet_stdout,
    )
    .await
}

/// When the cluster's record was made, if it is recorded.
async fn record_created_at(home: &Path, cluster: &str) -> Option<i64> {
    let store = aloft_control::open_store(home).await.ok()?;
    Some(store.cluster_fetch(cluster).await.ok()??.created_at)
}

/// Where a log stream goes on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// To the terminal, stderr lines to stderr, tagged with their node when there are several.
    Text { many: bool },
    /// Like `Text`, but everything to stderr (stdout holds a JSON document).
    Stderr { many: bool },
    /// JSON lines on stdout (`aloft logs -o json`).
    Json,
    /// Nowhere: only the copy is kept.
    Quiet,
}

/// Prints a log stream's pieces.
struct Printer {
    output: Output,
    stdout: std::io::BufWriter<std::io::Stdout>,
    /// Put before every line (`[task] `): the task of a job group whose output this is, as
    /// several jobs print at once.
    tag: Option<String>,
}

impl Printer {
    fn new(output: Output) -> Printer {
        Printer {
            output,
            stdout: std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout()),
            tag: None,
        }
    }

    /// A printer whose every line starts with `[tag] `, written whole at once, so the lines of
    /// jobs followed at the same time never mix within a line.
    fn tagged(output: Output, tag: &str) -> Printer {
        Printer {
            tag: Some(format!("[{tag}] ")),
            ..Printer::new(output)
        }
    }

    fn print(&mut self, piece: Piece<'_>) -> std::io::Result<()> {
        if let Some(tag) = &self.tag
            && let Output::Text { many } | Output::Stderr { many } = self.output
        {
            let mut text = Vec::with_capacity(piece.bytes.len() + 64);
            let node = node_tag(many, piece.rank);
            for line in aloft_agent::logs::lines(piece.bytes) {
                text.extend_from_slice(tag.as_bytes());
                text.extend_from_slice(node.as_bytes());
                text.extend_from_slice(line);
                text.push(b'\n');
            }
            let to_stderr =
                matches!(self.output, Output::Stderr { .. }) || piece.stream == OutStream::Stderr;
            return if to_stderr {
                let mut err = std::io::stderr().lock();
                err.write_all(&text).and_then(|()| err.flush())
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(&text).and_then(|()| out.flush())
            };
        }
        let (many, all_to_stderr) = match self.output {
            Output::Quiet => return Ok(()),
            Output::Json => {
                aloft_agent::logs::write_json_lines(&mut self.stdout, piece)?;
                return self.stdout.flush();
            }
            Output::Text { many } => (many, false),
            Output::Stderr { many } => (many, true),
        };
        let mut stderr;
        let out: &mut dyn Write = if all_to_stderr || piece.stream == OutStream::Stderr {
            stderr = std::io::stderr().lock();
            &mut stderr
        } else {
            &mut self.stdout
        };
        if many {
            let tag = node_tag(true, piece.rank);
            for line in aloft_agent::logs::lines(piece.bytes) {
                out.write_all(tag.as_bytes())?;
                out.write_all(line)?;
                out.write_all(b"\n")?;
            }
        } else {
            out.write_all(piece.bytes)?;
        }
        out.flush()
    }
}

/// Streams a job's log from the agent, printing it with `printer`, keeping a copy under
/// `copies` (the cluster's incarnation directory, see `aloft_control::logs`) when given.
async fn follow_with(
    client: &AgentClient,
    copies: Option<&Path>,
    job: Option<i64>,
    follow: bool,
    mut printer: Printer,
) -> Result<LogsEnd> {
    aloft_control::logs::follow_agent(client, copies, job, follow, &mut |item| match item {
        LogItem::Job(_) => Ok(()),
        LogItem::Output(piece) => Ok(printer.print(piece)?),
    })
    .await
}

/// Follows a detached job from a process of its own, detached from the terminal, so its
/// output is copied to this machine as it is printed: a cluster that tears itself down when
/// the job is over (`--down` with `-d`, autostop with `--down`) leaves it here. If this
/// machine is off or the process is killed, the copy holds what came before.
fn save_in_background(cluster: &str, job: i64) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let started = std::process::Command::new("setsid")
        .arg(exe)
        .args(["logs", "--follow", "--output", "quiet", cluster])
        .arg(job.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(err) = started {
        say(&format!(
            "(cannot keep a copy of job {job}'s output on this machine: starting setsid: {err})"
        ));
    }
}

/// What a line is prefixed with: nothing on a one-node cluster, else which node printed it.
fn node_tag(many: bool, rank: u32) -> String {
    match (many, rank) {
        (false, _) => String::new(),
        (true, 0) => "(head) ".to_owned(),
        (true, rank) => format!("(worker{rank}) "),
    }
}

/// The exit status a job's end makes the command exit with: 0 when it succeeded (or is not
/// followed), the exit code of the lowest-ranked node that failed, else 1.
pub(crate) fn job_exit_code(report: &JobReport) -> u8 {
    match report.state {
        None | Some(JobState::Succeeded) => 0,
        Some(JobState::Failed) => report
            .exit_codes
            .as_ref()
            .and_then(|codes| codes.as_object())
            .and_then(|codes| {
                codes
                    .iter()
                    .filter_map(|(rank, code)| Some((rank.parse::<u32>().ok()?, code.as_i64()?)))
                    .filter(|(_, code)| *code != 0)
                    .min()
            })
            .and_then(|(_, code)| u8::try_from(code).ok())
            .filter(|code| *code != 0)
            .unwrap_or(1),
        Some(_) => 1,
    }
}

/// Says how a job ended; the command's exit status follows it.
pub(crate) fn job_exit(report: &JobReport) -> ExitCode {
    let (cluster, job) = (&report.cluster, report.job_id);
    match report.state {
        None => ExitCode::SUCCESS,
        Some(JobState::Succeeded) => {
            say(&format!("Job {job} on `{cluster}` succeeded."));
            ExitCode::SUCCESS
        }
        Some(state) => {
            let exits = match exit_codes_text(report.exit_codes.as_ref()) {
                text if text == "-" => String::new(),
                text => text,
            };
            say(&format!(
                "Job {job} on `{cluster}` {}{}",
                crate::output::snake(&state),
                if exits.is_empty() {
                    ".".to_owned()
                } else {
                    format!(": {exits}")
                }
            ));
            ExitCode::from(job_exit_code(report))
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    /// The cluster.
    pub cluster: String,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft queue CLUSTER`: the cluster's jobs, oldest first, from its agent.
pub fn queue(args: QueueArgs) -> Result<ExitCode> {
    let home = aloft_home();
    runtime()?.block_on(async move {
        let cluster = args.cluster.clone();
        let jobs = crate::api_cmd::with_server(&home, |client| {
            let cluster = cluster.clone();
            async move { client.jobs(&cluster).await }
        })
        .await?;
        match args.output {
            OutputFormat::Json => crate::output::outln!("{}", serde_json::to_string_pretty(&jobs)?),
            OutputFormat::Table => crate::output::out!("{}", jobs_table(&jobs)),
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn jobs_table(jobs: &[aloft_api::Job]) -> String {
    let mut table = new_table(&["ID", "NAME", "STATE", "DURATION", "EXIT CODES"]);
    for job in jobs {
        let duration = match (job.started_at, job.ended_at) {
            (Some(start), Some(end)) => crate::output::duration((end - start) as f64),
            (Some(_), None) => "running".to_owned(),
            _ => "-".to_owned(),
        };
        let exits = exit_codes_text(job.exit_codes.as_ref());
        table.add_row(vec![
            job.id.to_string(),
            job.name.clone().unwrap_or_else(|| "-".to_owned()),
            crate::output::snake(&job.state),
            duration,
            exits,
        ]);
    }
    table_text(&table)
}

/// Exit codes for people: `node 0: exit 1, node 1: exit 143` for the ranks that exited non-zero, the
/// reason when the job failed without exit codes, `-` when there is nothing to say.
pub(crate) fn exit_codes_text(codes: Option<&serde_json::Value>) -> String {
    let Some(codes) = codes.and_then(|codes| codes.as_object()) else {
        return "-".to_owned();
    };
    if let Some(error) = codes.get("error").and_then(|error| error.as_str()) {
        return error.to_owned();
    }
    let mut ranks: Vec<(u32, String)> = codes
        .iter()
        .filter_map(|(rank, code)| Some((rank.parse().ok()?, code.to_string())))
        .collect();
    if ranks.is_empty() {
        return "-".to_owned();
    }
    ranks.sort();
    ranks
        .iter()
        .map(|(rank, code)| format!("node {rank}: exit {code}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The cluster.
    pub cluster: String,
    /// The job id (default: the cluster's latest job).
    pub job: Option<i64>,
    /// Keep streaming until the job ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// `json`: one JSON object per line (`{"event": "line", "rank", "stream", "line"}`), the
    /// last one the job's state (`{"event": "end", "state", "exit_codes"}`).
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: LogsOutput,
}

/// How `aloft logs` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogsOutput {
    /// The output as the job printed it, tagged by node when there are several.
    Table,
    /// JSON lines.
    Json,
    /// Nothing: only keep the copy on this machine (what a detached job's follower does).
    #[value(hide = true)]
    Quiet,
}

/// `aloft logs [-f] CLUSTER [JOB]`: a job's output, node by node, through the server: from the
/// cluster's agent while the cluster is up, else the copy the server kept. Once the job is
/// over, the command exits with its exit code (a job that failed with 3 exits 3).
pub fn logs(args: LogsArgs) -> Result<ExitCode> {
    let home = aloft_home();
    runtime()?.block_on(async move {
        let client = crate::api_cmd::connect(&home).await?;
        let output = |nodes: u32| match args.output {
            LogsOutput::Table => Output::Text { many: nodes > 1 },
            LogsOutput::Json => Output::Json,
            LogsOutput::Quiet => Output::Quiet,
        };
        let end = stream(
            &client,
            &args.cluster,
            args.job,
            args.follow,
            args.output == LogsOutput::Table,
            output,
        )
        .await?;
        Ok(end.map_or(ExitCode::SUCCESS, |end| log_end(&args, end)))
    })
}

/// Streams a job's log through the server, printing it as `output` (given the job's node
/// count) says; says the server's notices when `notices`. Returns the job's end, if the stream
/// told it.
async fn stream(
    client: &aloft_client::Client,
    cluster: &str,
    job: Option<i64>,
    follow: bool,
    notices: bool,
    output: impl Fn(u32) -> Output,
) -> Result<Option<LogsEnd>> {
    let mut printer: Option<Printer> = None;
    let mut end: Option<LogsEnd> = None;
    let mut broke: Option<String> = None;
    let mut failure: Option<std::io::Error> = None;
    client
        .logs(cluster, job, follow, |event| {
            if failure.is_some() {
                return;
            }
            let printed = match event {
                aloft_api::LogEvent::Job { nodes, .. } => {
                    printer = Some(Printer::new(output(nodes)));
                    Ok(())
                }
                aloft_api::LogEvent::Output { rank, stream, text } => match &mut printer {
                    Some(printer) => printer.print(Piece {
                        rank,
                        stream: match stream {
                            aloft_api::OutStream::Stdout => OutStream::Stdout,
                            aloft_api::OutStream::Stderr => OutStream::Stderr,
                        },
                        bytes: text.as_bytes(),
                    }),
                    None => Ok(()),
                },
                aloft_api::LogEvent::Notice { message } => {
                    if notices {
                        say(&format!("({message})"));
                    }
                    Ok(())
                }
                aloft_api::LogEvent::End {
                    job_id,
                    state,
                    exit_codes,
                } => {
                    end = Some(LogsEnd {
                        job_id,
                        state: stored_state(state),
                        exit_codes,
                    });
                    Ok(())
                }
                aloft_api::LogEvent::Error { message } => {
                    broke = Some(message);
                    Ok(())
                }
            };
            if let Err(err) = printed {
                failure = Some(err);
            }
        })
        .await?;
    if let Some(err) = failure {
        return Err(anyhow::Error::new(err).context("printing the log"));
    }
    if let Some(message) = broke {
        bail!("{message}");
    }
    Ok(end)
}

/// Follows a job the server launched to its end, through the server, printing its output (to
/// stderr with `quiet_stdout`, when stdout holds a JSON document).
pub(crate) async fn follow_launched(
    client: &aloft_client::Client,
    cluster: &str,
    job_id: i64,
    nodes: u32,
    quiet_stdout: bool,
) -> Result<JobReport> {
    say(&format!(
        "Job {job_id} queued on `{cluster}`; its output follows."
    ));
    let many = nodes > 1;
    let output = move |_| {
        if quiet_stdout {
            Output::Stderr { many }
        } else {
            Output::Text { many }
        }
    };
    let end = stream(client, cluster, Some(job_id), true, false, output)
        .await?
        .context("the job's log ended without its state")?;
    Ok(JobReport {
        cluster: cluster.to_owned(),
        job_id,
        state: Some(end.state),
        exit_codes: end.exit_codes,
    })
}

/// A detached job the server launched: says how to follow it, and has its output copied as it
/// is printed (see [`save_in_background`]).
pub(crate) fn detached(cluster: &str, job_id: i64) -> JobReport {
    say(&format!(
        "Job {job_id} queued on `{cluster}`; follow it with `aloft logs -f {cluster} {job_id}`."
    ));
    save_in_background(cluster, job_id);
    JobReport {
        cluster: cluster.to_owned(),
        job_id,
        state: None,
        exit_codes: None,
    }
}

/// A job state as the API says it, as the agent's reports use it.
fn stored_state(state: aloft_api::JobState) -> JobState {
    use aloft_api::JobState as Api;
    match state {
        Api::Pending => JobState::Pending,
        Api::SettingUp => JobState::SettingUp,
        Api::Running => JobState::Running,
        Api::Succeeded => JobState::Succeeded,
        Api::Failed => JobState::Failed,
        Api::FailedSetup => JobState::FailedSetup,
        Api::Cancelled => JobState::Cancelled,
    }
}

/// Prints the end of a log stream as asked and says how the command exits.
fn log_end(args: &LogsArgs, end: LogsEnd) -> ExitCode {
    if args.output == LogsOutput::Json {
        crate::output::print_json_line(&LogEvent::End {
            state: end.state,
            exit_codes: end.exit_codes.clone(),
        });
    }
    if !end.state.is_finished() {
        return ExitCode::SUCCESS;
    }
    let report = JobReport {
        cluster: args.cluster.clone(),
        job_id: end.job_id,
        state: Some(end.state),
        exit_codes: end.exit_codes,
    };
    if args.output == LogsOutput::Table {
        job_exit(&report)
    } else {
        ExitCode::from(job_exit_code(&report))
    }
}

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The cluster.
    pub cluster: String,
    /// The jobs to cancel.
    pub jobs: Vec<i64>,
    /// Cancel every job that has not finished.
    #[arg(short = 'a', long, conflicts_with = "jobs")]
    pub all: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft cancel CLUSTER JOB... | --all`: stop jobs, running or queued, on every node.
pub fn cancel(args: CancelArgs) -> Result<ExitCode> {
    if args.jobs.is_empty() && !args.all {
        bail!(
            "name the jobs to cancel, or pass --all (see `aloft queue {}`)",
            args.cluster
        );
    }
    let home = aloft_home();
    runtime()?.block_on(async move {
        let body = aloft_api::CancelJobsBody {
            jobs: args.jobs.clone(),
            all: args.all,
        };
        let cluster = args.cluster.clone();
        let jobs = crate::api_cmd::with_server(&home, |client| {
            let (cluster, body) = (cluster.clone(), body.clone());
            async move { client.cancel_jobs(&cluster, &body).await }
        })
        .await?;
        match args.output {
            OutputFormat::Json => crate::output::outln!("{}", serde_json::to_string_pretty(&jobs)?),
            OutputFormat::Table if jobs.is_empty() => say("No unfinished jobs."),
            OutputFormat::Table => crate::output::out!("{}", jobs_table(&jobs)),
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, clap::Args)]
pub struct AutostopArgs {
    /// The cluster.
    pub cluster: String,
    /// Stop after this many minutes without a queued or running job (`-1`: turn autostop off,
    /// as with `--cancel`).
    #[arg(
        short = 'i',
        long = "idle-minutes",
        default_value_t = 5,
        value_name = "MINUTES",
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i64).range(-1..=i64::from(u32::MAX))
    )]
    pub idle_minutes: i64,
    /// Tear the cluster down instead of stopping it.
    #[arg(long)]
    pub down: bool,
    /// Turn autostop off.
    #[arg(long, conflicts_with_all = ["down"])]
    pub cancel: bool,
    /// Do not ask (accepted as in SkyPilot; nothing here asks).
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft autostop CLUSTER [-i MINUTES] [--down] [--cancel]`: the cluster stops (or is torn
/// down) by itself once idle, even with this machine off.
pub fn autostop(args: AutostopArgs) -> Result<ExitCode> {
    let home = aloft_home();
    runtime()?.block_on(async move {
        let cancel = args.cancel || args.idle_minutes < 0;
        let asked = aloft_api::Autostop {
            idle_minutes: if cancel {
                None
            } else {
                Some(u32::try_from(args.idle_minutes)?)
            },
            down: args.down && !cancel,
        };
        let cluster = args.cluster.clone();
        let set = crate::api_cmd::with_server(&home, |client| {
            let (cluster, asked) = (cluster.clone(), asked.clone());
            async move { client.autostop(&cluster, &asked).await }
        })
        .await?;
        let setting = Autostop {
            idle_minutes: set.idle_minutes,
            down: set.down,
        };
        match args.output {
            OutputFormat::Json => {
                crate::output::outln!("{}", serde_json::to_string_pretty(&setting)?)
            }
            OutputFormat::Table => say(&autostop_text(&args.cluster, &setting)),
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn autostop_text(cluster: &str, setting: &Autostop) -> String {
    match setting.idle_minutes {
        None => format!("Autostop is off for `{cluster}`."),
        Some(minutes) => format!(
            "`{cluster}` will {} after {minutes} idle minute(s).",
            if setting.down { "be torn down" } else { "stop" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exit_codes_read_as_codes_per_node_not_json() {
        assert_eq!(
            exit_codes_text(Some(&json!({"1": 143, "0": 1}))),
            "node 0: exit 1, node 1: exit 143"
        );
        assert_eq!(exit_codes_text(Some(&json!({}))), "-");
        assert_eq!(exit_codes_text(None), "-");
        assert_eq!(
            exit_codes_text(Some(
                &json!({"error": "the node restarted while the job ran"})
            )),
            "the node restarted while the job ran"
        );
    }

    fn report(state: JobState, exit_codes: serde_json::Value) -> JobReport {
        JobReport {
            cluster: "c".to_owned(),
            job_id: 1,
            state: Some(state),
            exit_codes: Some(exit_codes),
        }
    }

    #[test]
    fn a_job_that_failed_with_code_3_makes_the_command_exit_3() {
        let code = |state, codes| job_exit_code(&report(state, codes));
        assert_eq!(code(JobState::Failed, serde_json::json!({"0": 3})), 3);
        // The lowest-ranked failing node speaks for the job.
        assert_eq!(
            code(JobState::Failed, serde_json::json!({"2": 5, "1": 4})),
            4
        );
        // A failure without an exit code (the agent's own error), or one that does not fit an
        // exit status, still fails.
        assert_eq!(code(JobState::Failed, serde_json::json!({"error": "x"})), 1);
        assert_eq!(code(JobState::Failed, serde_json::json!({"0": 300})), 1);
        assert_eq!(code(JobState::Cancelled, serde_json::json!({})), 1);
        assert_eq!(code(JobState::Succeeded, serde_json::json!({})), 0);
    }
}

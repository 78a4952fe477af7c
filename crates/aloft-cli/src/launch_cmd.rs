//! `aloft launch`: plan a task, DAG or pipeline, and (with `--dryrun`) print the plan.

use crate::catalog_cmd::CatalogSource;
use crate::output::{OutputFormat, dollars, duration, new_table, number, table_text};
use aloft_optimizer::{
    Objective, Options, Placement, Plan, ProgressCallback, SearchProgress, Slack, SlackMeasure,
    Solution,
};
use aloft_types::spec::TaskValuesError;
use aloft_types::{Dag, Duration, Infra};
use anyhow::{Context, Result, bail};
use comfy_table::Table;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct LaunchArgs {
    /// Task YAML: one task, a DAG (`tasks:` with `depends_on`), or a pipeline (`---` documents).
    pub task: PathBuf,
    /// Plan only: print where everything would run and what it would cost (over every cloud in
    /// the catalog).
    #[arg(long)]
    pub dryrun: bool,
    /// Name of the cluster to launch on: made if missing; reused if up, started if stopped,
    /// repaired if it lost nodes (the task must fit it).
    #[arg(short = 'c', long = "cluster", value_name = "NAME")]
    pub cluster: Option<String>,
    /// Tear the cluster down when the job ends (with `-i` or `-d`: when the cluster has been
    /// idle that long, decided on the cluster itself).
    #[arg(long)]
    pub down: bool,
    /// Queue the job and return at once (follow it with `aloft logs -f`).
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Stop the cluster (with `--down`: tear it down) after this many idle minutes, decided on
    /// the cluster itself.
    #[arg(short = 'i', long = "idle-minutes-to-autostop", value_name = "MINUTES")]
    pub idle_minutes: Option<u32>,
    /// Do not ask (accepted as in SkyPilot; a launch does not ask today).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// When no placement is left (every place failed), wait and try again until one works.
    #[arg(long)]
    pub retry_until_up: bool,
    /// Set an environment variable for the task (overrides `envs` in the YAML).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    pub envs: Vec<(String, String)>,
    /// Pass a secret to the task (fills or overrides `secrets` in the YAML); without `=VALUE`,
    /// the value is taken from this environment. Secrets reach the job's environment and are
    /// never shown or logged.
    #[arg(long = "secret", value_name = "NAME[=VALUE]", value_parser = parse_secret)]
    pub secrets: Vec<(String, String)>,
    /// What to minimize.
    #[arg(long, value_enum, default_value = "cost")]
    pub optimize: ObjectiveArg,
    #[command(flatten)]
    pub source: CatalogSource,
    /// Never pay more than this per hour for one task (all its nodes), in $.
    #[arg(long, value_name = "DOLLARS", value_parser = parse_dollars)]
    pub max_hourly_price: Option<f64>,
    /// Never plan a run that costs more than this in total, in $.
    #[arg(long, value_name = "DOLLARS", value_parser = parse_dollars)]
    pub budget: Option<f64>,
    /// Never plan a run estimated to emit more than this, in grams of CO2 (the power model is
    /// in docs/optimizer.md). Under `--optimize cost` or `time`, carbon then breaks ties.
    #[arg(long, value_name = "GRAMS")]
    pub max_carbon: Option<f64>,
    /// Plan among the plans emitting at most this many percent more than the lowest-carbon
    /// plan (`10%`): the cheapest of them (under `--optimize time`, the fastest). Overrides the
    /// task's `carbon_slack`.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent, conflicts_with = "cost_slack")]
    pub carbon_slack: Option<f64>,
    /// Plan among the plans costing at most this many percent more than the cheapest plan
    /// (`10%`): the lowest-carbon of them (under `--optimize time`, the fastest). Overrides the
    /// task's `cost_slack`.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub cost_slack: Option<f64>,
    /// When the run starts, for carbon by the hour: `now`, a UTC time (`2026-12-08T13:00Z`), or
    /// `annual` to count every region at its annual average instead. Each task is assumed to
    /// start after its ancestors' runtime estimates (docs/optimizer.md, "Carbon by hour").
    #[arg(
        long,
        value_name = "TIME",
        env = "ALOFT_START_TIME",
        default_value = "now"
    )]
    pub start_time: String,
    /// Do not use this cloud, region or zone (`aws`, `aws/us-east-1`, `gcp/us-central1/us-central1-a`).
    #[arg(long = "block", value_name = "INFRA")]
    pub blocked: Vec<String>,
    /// How many next-best plans to show [default: 3 for up to 10 tasks, else 0: each one costs
    /// about one solve per task].
    #[arg(long)]
    pub alternatives: Option<usize>,
    /// Runtime assumed for tasks that give no `estimated_runtime`.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub default_runtime: String,
    /// Search for the best plan at most this long (`5s`, `2m`); then take the best plan found,
    /// with how far from optimal it can be at most. `0` or `none`: until proven optimal.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub deadline: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Largest DAG for which next-best plans are computed unless asked for.
const AUTO_ALTERNATIVES_MAX_TASKS: usize = 10;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ObjectiveArg {
    Cost,
    Time,
    /// Estimated grams of CO2 of the compute (ties broken by cost).
    Carbon,
}

pub fn run(args: LaunchArgs) -> Result<ExitCode> {
    let dag = read_dag(&args.task)?;
    let blocked = args
        .blocked
        .iter()
        .map(|text| Infra::parse(text).with_context(|| format!("--block `{text}`")))
        .collect::<Result<Vec<_>>>()?;
    let default_runtime = Duration::parse(&args.default_runtime)
        .with_context(|| format!("--default-runtime `{}`", args.default_runtime))?;
    let deadline = parse_deadline(&args.deadline)?;
    let start_time = parse_start_time(&args.start_time)?;
    let options = Options {
        objective: match args.optimize {
            ObjectiveArg::Cost => Objective::Cost,
            ObjectiveArg::Time => Objective::Time,
            ObjectiveArg::Carbon => Objective::Carbon,
        },
        max_hourly_price: args.max_hourly_price,
        budget: args.budget,
        max_carbon_g: match args.max_carbon {
            Some(grams) if !grams.is_finite() || grams < 0.0 => {
                anyhow::bail!("--max-carbon `{grams}`: expected a number of grams, 0 or more")
            }
            other => other,
        },
        start_time,
        slack: match (args.carbon_slack, args.cost_slack) {
            (Some(percent), _) => Some(Slack {
                measure: SlackMeasure::Carbon,
                percent,
            }),
            (None, Some(percent)) => Some(Slack {
                measure: SlackMeasure::Cost,
                percent,
            }),
            (None, None) => None,
        },
        blocked,
        alternatives: args.alternatives.unwrap_or(
            if dag.tasks.len() <= AUTO_ALTERNATIVES_MAX_TASKS {
                3
            } else {
                0
            },
        ),
        default_runtime,
        deadline,
        search_node_limit: None,
        progress: Some(ProgressCallback(std::sync::Arc::new(print_progress))),
    };
    if !args.dryrun {
        refuse_what_cannot_run_yet(&args, &dag)?;
        return crate::cluster_cmd::launch(&args, dag, options);
    }
    // The launch merges `--env`/`--secret` and fills variables per task (cluster_cmd); a dry
    // run does the same, so it refuses what the launch would and plans the same tasks.
    let dag = with_launch_values(&args, dag)?;
    let catalog = crate::catalog_cmd::load_catalog(&args.source)?;
    // A job group's tasks are planned in one region, as its launch places them.
    let solution = if dag.job_group.is_some() {
        aloft_optimizer::optimize_group(&dag, &catalog, &options)
    } else {
        aloft_optimizer::optimize(&dag, &catalog, &options)
    }
    .with_context(|| format!("no plan for {}", args.task.display()))?;
    match args.output {
        OutputFormat::Json => {
            let document = PlanDocument {
                schema_version: 1,
                name: dag.name.clone(),
                solution: &solution,
            };
            crate::output::outln!("{}", serde_json::to_string_pretty(&document)?);
        }
        OutputFormat::Table => {
            crate::output::out!("{}", render(&dag, &solution));
            if args.alternatives.is_none() && dag.tasks.len() > AUTO_ALTERNATIVES_MAX_TASKS {
                crate::output::outln!(
                    "(Next-best plans: add --alternatives N; each costs about one solve per task.)"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--deadline`: a duration, or `0`/`none` for no deadline.
fn parse_deadline(text: &str) -> Result<Option<std::time::Duration>> {
    let trimmed = text.trim();
    if trimmed == "0" || trimmed.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let parsed = Duration::parse(trimmed).with_context(|| format!("--deadline `{text}`"))?;
    if !(parsed.seconds.is_finite() && parsed.seconds > 0.0) {
        bail!("--deadline `{text}`: expected a positive duration such as 5s or 2m, or none");
    }
    Ok(Some(std::time::Duration::from_secs_f64(parsed.seconds)))
}

/// `--carbon-slack`, `--cost-slack`: `10%`, `10 %` or `10`, 0 or more.
fn parse_percent(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let number = trimmed.strip_suffix('%').unwrap_or(trimmed).trim();
    number
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite() && *value >= 0.0)
        .ok_or_else(|| format!("`{text}` is not a percentage such as 10%, 0 or more"))
}

/// `--start-time`: `now` (this machine's clock), `annual` (no start time: annual averages), or
/// an ISO 8601 UTC time; seconds since the Unix epoch.
fn parse_start_time(text: &str) -> Result<Option<i64>> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("now") {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the system clock is before 1970")?;
        return Ok(Some(now.as_secs() as i64));
    }
    if trimmed.eq_ignore_ascii_case("annual") {
        return Ok(None);
    }
    aloft_catalog::parse_utc(trimmed)
        .map(Some)
        .map_err(|problem| {
            anyhow::anyhow!(
                "--start-time `{text}`: {problem}; expected now, annual, or a UTC time such as \
             2026-12-08T13:00Z"
            )
        })
}

/// The planner's progress, on stderr while a search takes over a second.
fn print_progress(progress: &SearchProgress) {
    eprintln!(
        "planning: {:.0} s, {} nodes, best plan within {} of optimal",
        progress.elapsed.as_secs_f64(),
        progress.nodes,
        percent(progress.gap())
    );
}

/// `0.8 %`, `12 %`.
fn percent(fraction: f64) -> String {
    let value = fraction * 100.0;
    if value < 10.0 {
        format!("{value:.1} %")
    } else {
        format!("{value:.0} %")
    }
}

/// SkyPilot forms aloft reads but cannot launch yet, refused before anything is made. A dry run
/// still plans them: a pool's task as one worker.
fn refuse_what_cannot_run_yet(args: &LaunchArgs, dag: &Dag) -> Result<()> {
    refuse_unrunnable(&args.task, dag)
}

/// The check of [`refuse_what_cannot_run_yet`] for any command that runs the task file at
/// `path` (`launch`, `exec`).
pub(crate) fn refuse_unrunnable(path: &std::path::Path, dag: &Dag) -> Result<()> {
    if let Some(idx) = dag.tasks.iter().position(|task| task.pool.is_some()) {
        bail!(
            "{}: not supported yet: pools (`pool:` in task `{}`) keep workers that jobs are \
             sent to, and aloft has no pools; `aloft launch --dryrun` plans one worker",
            path.display(),
            dag.task_name(aloft_types::TaskIdx(idx))
        );
    }
    Ok(())
}

/// Every task of the DAG with `--env`/`--secret` merged in and its variables filled
/// (`Task::with_overrides`, as the launch does); errors name the file and never a value.
/// A `null` placeholder nobody filled is only a warning here: planning needs no values, and a
/// dry run is how one looks at prices before having the secrets at hand. That task is planned
/// as written.
fn with_launch_values(args: &LaunchArgs, mut dag: Dag) -> Result<Dag> {
    for task in &mut dag.tasks {
        match task.with_overrides(&args.envs, &args.secrets) {
            Ok(filled) => *task = filled,
            Err(TaskValuesError::Missing(missing)) => {
                eprintln!(
                    "warning: {}: {missing}; the launch will refuse it without",
                    args.task.display()
                );
            }
            Err(error) => bail!("{}: {error}", args.task.display()),
        }
    }
    Ok(dag)
}

/// A non-negative, finite amount of dollars (`12`, `0.5`, `$3`).
fn parse_dollars(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_start_matches('$');
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!(
            "expected an amount of dollars such as `12` or `0.5`, found `{text}`"
        )),
    }
}

/// `NAME=VALUE`.
pub fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, found `{text}`")),
    }
}

/// `--secret NAME=VALUE`, or `--secret NAME` with the value from this process's environment
/// (which keeps it out of aloft's own command line). Errors name the variable, never a value.
pub fn parse_secret(text: &str) -> Result<(String, String), String> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (text, None),
    };
    let valid = name
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(
            "expected NAME or NAME=VALUE, NAME of letters, digits and `_` (not starting with a \
             digit)"
                .to_owned(),
        );
    }
    let value = match value {
        Some(value) => value,
        None => std::env::var(name).map_err(|_| {
            format!(
                "secret {name} has no value: pass {name}=VALUE or set {name} in the environment"
            )
        })?,
    };
    Ok((name.to_owned(), value))
}

/// Reads and parses a spec file, printing its warnings.
pub fn read_dag(path: &std::path::Path) -> Result<Dag> {
    use std::io::Read;
    // At most one byte past the largest spec accepted: `/dev/zero` or a huge file is refused
    // by the parser's size check instead of filling memory.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(aloft_types::spec::MAX_SOURCE_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .with_context(|| format!("cannot read task file {}", path.display()))?;
    let source = String::from_utf8(bytes).map_err(|err| {
        anyhow::anyhow!(
            "task file {} is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            err.utf8_error().valid_up_to()
        )
    })?;
    let file = path.display().to_string();
    let (dag, warnings) = aloft_types::spec::parse_dag_with_warnings(&source, &file)?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(dag)
}

/// The `-o json` document (schema in docs/plan-json.md).
#[derive(serde::Serialize)]
struct PlanDocument<'a> {
    schema_version: u32,
    name: Option<String>,
    #[serde(flatten)]
    solution: &'a Solution,
}

fn render(dag: &Dag, solution: &Solution) -> String {
    let mut out = String::new();
    let plan = &solution.best;
    for (task_idx, considered) in solution.considered.iter().enumerate() {
        let task = &plan.tasks[task_idx];
        let runtime = if task.runtime_assumed {
            format!("{} (assumed)", duration(task.estimated_runtime_seconds))
        } else {
            duration(task.estimated_runtime_seconds)
        };
        let nodes = if task.num_nodes == 1 {
            "1 node".to_owned()
        } else {
            format!("{} nodes", task.num_nodes)
        };
        out.push_str(&format!(
            "Considered resources for `{}` ({nodes}, runtime {runtime}):\n",
            task.task
        ));
        let mut table = new_table(&[
            "INFRA",
            "INSTANCE",
            "vCPUs",
            "Mem(GB)",
            "GPUS",
            "SPOT",
            "$/h",
            "EST. COST",
            "gCO2",
            "CHOSEN",
        ]);
        for (row_idx, placement) in considered.iter().enumerate() {
            table.add_row([
                infra_label(placement),
                placement.instance_type.clone(),
                number(placement.vcpus),
                number(placement.memory_gib),
                accelerator_label(placement),
                if placement.spot { "yes" } else { "-" }.to_owned(),
                format!("{:.4}", placement.cluster_hourly_price),
                dollars(placement.estimated_cost),
                grams(placement.carbon_g, placement.carbon_estimated),
                if row_idx == 0 { "✔" } else { "" }.to_owned(),
            ]);
        }
        out.push_str(&table_text(&table));
        out.push('\n');
    }
    if dag.tasks.len() > 1 {
        out.push_str(&format!(
            "Plan for `{}` ({} tasks{}):\n",
            dag.name.as_deref().unwrap_or("dag"),
            dag.tasks.len(),
            if dag.job_group.is_some() {
                "; job group: the tasks run at once, in one region"
            } else {
                ""
            }
        ));
        out.push_str(&table_text(&plan_table(plan)));
        let moving: Vec<_> = plan
            .edges
            .iter()
            .filter(|edge| edge.gigabytes > 0.0)
            .collect();
        if !moving.is_empty() {
            out.push_str("Data moved between tasks:\n");
            for edge in moving {
                out.push_str(&format!(
                    "  {} -> {}: {:.0} GB, {}, {}\n",
                    plan.tasks[edge.from_task].task,
                    plan.tasks[edge.to_task].task,
                    edge.gigabytes,
                    dollars(edge.cost),
                    duration(edge.seconds)
                ));
            }
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Optimizing for {}: estimated total {} (egress {}), finish time {}, machine time {}, {} gCO2.\n",
        match plan.objective {
            Objective::Cost => "cost",
            Objective::Time => "time (the DAG's finish time)",
            Objective::Carbon => "carbon",
        },
        dollars(plan.total_cost),
        dollars(plan.egress_cost),
        duration(plan.finish_seconds),
        duration(plan.machine_hours * 3600.0),
        grams(plan.carbon_g, plan.carbon_estimated),
    ));
    if let Some(bound) = &solution.slack {
        let (what, reference, limit) = match bound.measure {
            SlackMeasure::Carbon => (
                "the lowest carbon",
                format!("{:.1} gCO2", bound.reference),
                format!("{:.1} gCO2", bound.limit),
            ),
            SlackMeasure::Cost => (
                "the cheapest plan",
                format!("${:.4}", bound.reference),
                format!("${:.4}", bound.limit),
            ),
        };
        out.push_str(&format!(
            "Within {}% of {what} ({reference}): held to {limit}{}.\n",
            bound.percent,
            if bound.reference_proven {
                ""
            } else {
                " (that plan is the best found by the deadline, not proven lowest)"
            }
        ));
    }
    if let Some(start) = &plan.start_time {
        out.push_str(&format!(
            "gCO2 counted by the hour from {start} (each task after its ancestors' runtimes).\n"
        ));
    }
    if plan.carbon_estimated {
        out.push_str(
            "gCO2 marked ~ counts a region of unknown grid intensity at the world average (475 g/kWh).\n",
        );
    }
    let optimality = &solution.optimality;
    if !optimality.proven_optimal && optimality.gap == 0.0 {
        out.push_str(
            "The search stopped at its deadline with this plan's objective proven optimal; a plan as good on it but better on the other measure may exist. Raise --deadline to search longer.\n",
        );
    } else if !optimality.proven_optimal {
        let bound = match plan.objective {
            Objective::Cost => dollars(optimality.lower_bound),
            Objective::Time => duration(optimality.lower_bound),
            Objective::Carbon => format!("{:.0} gCO2", optimality.lower_bound),
        };
        out.push_str(&format!(
            "The search stopped at its deadline: this plan is within {} of optimal (no plan does better than {bound}). Raise --deadline to search longer.\n",
            percent(optimality.gap)
        ));
    }
    if !solution.alternatives.is_empty() {
        out.push_str("Next-best plans:\n");
        for (rank, alternative) in solution.alternatives.iter().enumerate() {
            let places: Vec<String> = alternative
                .tasks
                .iter()
                .map(|placement| format!("{} {}", infra_label(placement), placement.instance_type))
                .collect();
            let carbon = match alternative.objective {
                Objective::Carbon => format!(
                    " {} gCO2",
                    grams(alternative.carbon_g, alternative.carbon_estimated)
                ),
                Objective::Cost | Objective::Time => String::new(),
            };
            out.push_str(&format!(
                "  {}. {} {}{carbon}: {}\n",
                rank + 2,
                dollars(alternative.total_cost),
                duration(alternative.finish_seconds),
                places.join("; ")
            ));
        }
    }
    out
}

fn plan_table(plan: &Plan) -> Table {
    let mut table = new_table(&[
        "TASK",
        "INFRA",
        "INSTANCE",
        "NODES",
        "GPUS",
        "SPOT",
        "$/h",
        "RUNTIME",
        "EST. COST",
        "gCO2",
    ]);
    for placement in &plan.tasks {
        table.add_row([
            placement.task.clone(),
            infra_label(placement),
            placement.instance_type.clone(),
            placement.num_nodes.to_string(),
            accelerator_label(placement),
            if placement.spot { "yes" } else { "-" }.to_owned(),
            format!("{:.4}", placement.cluster_hourly_price),
            duration(placement.estimated_runtime_seconds),
            dollars(placement.estimated_cost),
            grams(placement.carbon_g, placement.carbon_estimated),
        ]);
    }
    table
}

/// Grams of CO2, whole; `~` in front when a region's intensity was assumed.
fn grams(carbon_g: f64, estimated: bool) -> String {
    format!("{}{carbon_g:.0}", if estimated { "~" } else { "" })
}

fn infra_label(placement: &Placement) -> String {
    match &placement.zone {
        Some(zone) => format!("{} ({zone})", placement.cloud),
        None => format!("{} ({})", placement.cloud, placement.region),
    }
}

fn accelerator_label(placement: &Placement) -> String {
    match &placement.accelerator {
        Some((name, count)) => format!("{name}:{}", number(*count)),
        None => "-".to_owned(),
    }
}

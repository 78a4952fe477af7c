//! `aloft launch` of a SkyPilot job group: a header document with `execution: parallel`, then
//! one document per task, all run at once and able to reach each other.
//!
//! How it runs (docs/task-spec.md, "Job groups"):
//! 1. The group is planned in one region of one cloud (`aloft_optimizer::optimize_group`), as
//!    SkyPilot co-locates a group; each task then gets a cluster of its own, `<base>-<task>`,
//!    all brought up at the same time, each planned (and failed over) inside that region.
//!    If any cannot be brought up, what this launch made is undone: new clusters are torn down,
//!    a launch cut short is undone, and clusters that existed before are kept.
//! 2. Discovery: every cluster admits the others' nodes (`Provider::admit_peers`); every node
//!    gets SkyPilot's names `<task>-<node>.<group>` in its `/etc/hosts`; every job gets
//!    `SKYPILOT_JOBGROUP_NAME`, `SKYPILOT_JOBGROUP_HOST_<TASK>` (the head's address) and
//!    `ALOFT_JOBGROUP_IPS_<TASK>` (every node's address, one a line).
//! 3. Every task's job is queued and followed at once, each line tagged `[task]`. When the
//!    primary tasks have ended (every task, when none is named), each other task gets its
//!    `termination_delay` (none: 0) and is then cancelled. The command fails when a primary
//!    task failed.
//! 4. The clusters are torn down when the group succeeded, or always with `--down`; a failed
//!    group keeps them for a look, as a failed DAG task does.
//!
//! Everything runs from this process (no jobs controller yet), so `-d` is refused, and a signal
//! while the jobs run tears the clusters down with `--down`, else leaves the jobs running.

use crate::cluster_cmd::{
    LaunchReport, aloft_home, default_cluster_name, interrupted, recover, runtime, say, undo_own,
};
use crate::launch_cmd::LaunchArgs;
use crate::output::OutputFormat;
use aloft_control::clusters::check_values;
use aloft_control::launch::{HowLaunched, LaunchRequest, Launched, bring_up};
use aloft_control::registry as clouds;
use aloft_control::{Progress, open_store};
use aloft_exec::{RemoteCommand, Transport};
use aloft_provision::ClusterName;
use aloft_store::{JobState, Store};
use aloft_types::{Dag, Task, TaskIdx};
use anyhow::{Context, Result, anyhow, bail};
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::task::Poll;

/// One task of the group and where it runs.
struct Member {
    /// The task's name in the file.
    name: String,
    task: Task,
    cluster: ClusterName,
    /// Its end is awaited; the others are cancelled once every primary task has ended.
    primary: bool,
    /// How long it runs on after the primary tasks end, before it is cancelled.
    delay: std::time::Duration,
}

/// `aloft launch GROUP.yaml`: see the module docs.
pub fn launch(args: &LaunchArgs, dag: Dag, options: aloft_optimizer::Options) -> Result<ExitCode> {
    let path = args.task.display().to_string();
    let group = dag
        .job_group
        .clone()
        .context("a job group has a header with `execution: parallel`")?;
    if args.detach {
        bail!(
            "{path}: not supported yet: detaching a job group (-d): its tasks are followed, and \
             the auxiliary ones ended, from this machine; run it without -d"
        );
    }
    if args.idle_minutes.is_some() {
        bail!(
            "{path}: not supported yet: autostop (-i) for a job group; its clusters are torn down \
             when it succeeds (always with --down)"
        );
    }
    let base = args.cluster.clone().unwrap_or_else(default_cluster_name);
    let names: Vec<String> = (0..dag.tasks.len())
        .map(|idx| dag.task_name(TaskIdx(idx)))
        .collect();
    let clusters = cluster_names(&base, &names)?;
    let group_name = dag.name.clone().unwrap_or_else(|| base.clone());
    let mut members = Vec::new();
    let mut planned = dag.clone();
    for (idx, (name, cluster)) in names.iter().zip(clusters).enumerate() {
        let task = dag.tasks[idx]
            .with_overrides(&args.envs, &args.secrets)
            .map_err(|missing| anyhow!("{path}: {missing}"))?;
        check_values(name, &task)?;
        planned.tasks[idx] = task.clone();
        let primary = group.primary_tasks.is_empty() || group.primary_tasks.contains(name);
        let delay = group
            .termination_delay
            .as_ref()
            .and_then(|delay| delay.per_task.get(name).or(delay.default.as_ref()))
            .map_or(0.0, |duration| duration.seconds);
        members.push(Member {
            name: name.clone(),
            task,
            cluster,
            primary,
            delay: std::time::Duration::from_secs_f64(delay.max(0.0)),
        });
    }
    let home = aloft_home();
    let base_dir = args
        .task
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let offers = crate::catalog_cmd::load_catalog(&args.source)?;
    runtime()?.block_on(async move {
        let (catalog, clouds) = clouds::launchable(&home, offers).await?;
        let store = open_store(&home).await?;
        recover(&store, &home, None).await;
        let (cloud, region) = plan(&store, &planned, &members, &catalog, &options, &path).await?;
        say(&format!(
            "Job group `{group_name}`: {} tasks at once, on {cloud}/{region}: {}",
            members.len(),
            members
                .iter()
                .map(|member| format!("`{}` on `{}`", member.name, member.cluster))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let mut task_options = options.clone();
        task_options
            .blocked
            .extend(aloft_optimizer::region_only(&catalog, &cloud, &region));
        task_options.alternatives = 0;
        let up = Up {
            store: &store,
            home: &home,
            catalog: &catalog,
            clouds: &clouds,
            options: &task_options,
            base_dir: &base_dir,
            retry_until_up: args.retry_until_up,
        };
        let launched = up.all(&members).await?;
        let run = Run {
            args,
            store: &store,
            group: &group_name,
            members: &mut members,
            launched: &launched,
        };
        run.go().await
    })
}

/// The region the group runs in: planned with every task in one region, or where its clusters
/// already are (a relaunch never moves a recorded cluster).
async fn plan(
    store: &Store,
    dag: &Dag,
    members: &[Member],
    catalog: &aloft_catalog::Catalog,
    options: &aloft_optimizer::Options,
    path: &str,
) -> Result<(String, String)> {
    let mut pinned: Option<(String, String, String)> = None;
    for member in members {
        let Some(record) = store.cluster_fetch(member.cluster.as_str()).await? else {
            continue;
        };
        match &pinned {
            None => pinned = Some((record.cloud, record.region, record.name)),
            Some((cloud, region, other)) if (cloud, region) != (&record.cloud, &record.region) => {
                bail!(
                    "{path}: the group's clusters `{other}` ({cloud}/{region}) and `{}` ({}/{}) \
                     are in different regions, and a job group runs in one; tear one down \
                     (`aloft down {}`) or launch under another name (-c)",
                    record.name,
                    record.cloud,
                    record.region,
                    record.name
                );
            }
            Some(_) => {}
        }
    }
    let mut group_options = options.clone();
    if let Some((cloud, region, _)) = &pinned {
        group_options
            .blocked
            .extend(aloft_optimizer::region_only(catalog, cloud, region));
    }
    let solution = aloft_optimizer::optimize_group(dag, catalog, &group_options)
        .with_context(|| format!("no plan for {path}"))?;
    let first = &solution.best.tasks[0];
    Ok((first.cloud.clone(), first.region.clone()))
}

/// A cluster name per task: `<base>-<task>`, the task's name made a valid cluster name
/// (lowercase letters, digits and `-`); a name that comes out empty or taken uses the task's
/// position instead.
fn cluster_names(base: &str, tasks: &[String]) -> Result<Vec<ClusterName>> {
    let mut names: Vec<ClusterName> = Vec::new();
    for (idx, task) in tasks.iter().enumerate() {
        let mut part = String::new();
        for ch in task.chars() {
            let ch = ch.to_ascii_lowercase();
            if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
                part.push(ch);
            } else if !part.ends_with('-') {
                part.push('-');
            }
        }
        let part = part.trim_matches('-');
        let mut name = format!("{base}-{part}");
        if part.is_empty() || names.iter().any(|taken| taken.as_str() == name) {
            name = format!("{base}-{idx}");
        }
        let cluster = ClusterName::new(name.clone()).map_err(|err| {
            anyhow!(
                "cluster `{name}` for task `{task}` of the job group: {err}; choose a shorter \
                 base name with -c"
            )
        })?;
        names.push(cluster);
    }
    Ok(names)
}

/// What bringing the group's clusters up needs.
struct Up<'a> {
    store: &'a Store,
    home: &'a Path,
    catalog: &'a aloft_catalog::Catalog,
    clouds: &'a std::collections::HashMap<String, clouds::CloudAccess>,
    options: &'a aloft_optimizer::Options,
    base_dir: &'a Path,
    retry_until_up: bool,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + 'a>>;

impl Up<'_> {
    /// Brings every member's cluster up at the same time. On the first failure, or a signal,
    /// the others are stopped where they are and what this launch made is undone.
    async fn all(&self, members: &[Member]) -> Result<Vec<Launched>> {
        let slots: Vec<Mutex<Option<Launched>>> =
            members.iter().map(|_| Mutex::new(None)).collect();
        let outcome = {
            let launches: Vec<Boxed<'_, ()>> = members
                .iter()
                .zip(&slots)
                .map(|(member, slot)| -> Boxed<'_, ()> {
                    Box::pin(async move {
                        let launched = self.one(member).await.with_context(|| {
                            format!("task `{}` (cluster `{}`)", member.name, member.cluster)
                        })?;
                        *slot.lock().expect("not poisoned") = Some(launched);
                        Ok(())
                    })
                })
                .collect();
            tokio::select! {
                outcome = all_or_first_error(launches) => outcome,
                signal = interrupted() => Err(anyhow!("interrupted by {signal}")),
            }
        };
        let slots: Vec<Option<Launched>> = slots
            .into_iter()
            .map(|slot| slot.into_inner().expect("not poisoned"))
            .collect();
        if let Err(err) = outcome {
            say(&format!(
                "The job group could not be brought up ({err:#}); undoing what this launch made"
            ));
            self.undo(members, slots).await;
            return Err(
                err.context("the job group was not launched; what this launch made was undone")
            );
        }
        Ok(slots
            .into_iter()
            .map(|slot| slot.expect("every launch finished"))
            .collect())
    }

    async fn one(&self, member: &Member) -> Result<Launched> {
        let request = LaunchRequest {
            task: member.task.clone(),
            cluster: member.cluster.clone(),
            base_dir: self.base_dir.to_path_buf(),
            options: self.options.clone(),
            catalog: self.catalog,
            clouds: self.clouds,
            retry_until_up: self.retry_until_up,
            must_stop: false,
        };
        let tag = member.name.clone();
        let progress: Progress = Arc::new(move |line: &str| say(&format!("[{tag}] {line}")));
        bring_up(self.home, self.store, request, &progress).await
    }

    /// Undoes what this launch made: tears down the clusters it created, undoes the launches
    /// cut short (a cluster that existed before keeps its nodes), and keeps the clusters that
    /// existed before it as they are.
    async fn undo(&self, members: &[Member], slots: Vec<Option<Launched>>) {
        for (member, slot) in members.iter().zip(slots) {
            let name = member.cluster.as_str();
            match slot {
                Some(launched) if launched.how == HowLaunched::Created => {
                    say(&format!("Tearing down `{name}` (made by this launch)"));
                    let context = &launched.context;
                    let torn = context
                        .provider
                        .terminate(&context.region, &context.cluster)
                        .await;
                    match torn {
                        Ok(()) => {
                            if let Err(err) = self.store.cluster_delete(name).await {
                                say(&format!(
                                    "warning: `{name}` is gone but still recorded: {err:#}"
                                ));
                            }
                        }
                        Err(err) => say(&format!(
                            "warning: could not tear down `{name}`: {err:#}; `aloft down {name}` removes it"
                        )),
                    }
                }
                Some(_) => say(&format!("Keeping `{name}`: it existed before this launch")),
                None => undo_own(self.store, self.home, name).await,
            }
        }
    }
}

/// Runs every future at once until all succeed, or the first fails (the others are then
/// dropped, which stops them at their next await point).
async fn all_or_first_error(mut futures: Vec<Boxed<'_, ()>>) -> Result<()> {
    let mut done = vec![false; futures.len()];
    std::future::poll_fn(|context| {
        for (future, finished) in futures.iter_mut().zip(done.iter_mut()) {
            if *finished {
                continue;
            }
            if let Poll::Ready(result) = future.as_mut().poll(context) {
                *finished = true;
                if let Err(err) = result {
                    return Poll::Ready(Err(err));
                }
            }
        }
        if done.iter().all(|finished| *finished) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// The group's jobs, from discovery to the end.
struct Run<'a> {
    args: &'a LaunchArgs,
    store: &'a Store,
    group: &'a str,
    members: &'a mut Vec<Member>,
    launched: &'a [Launched],
}

impl Run<'_> {
    async fn go(mut self) -> Result<ExitCode> {
        self.discovery().await;
        let mut queued = Vec::new();
        for (member, launched) in self.members.iter().zip(self.launched) {
            let job = crate::job_cmd::enqueue(&launched.context, &launched.instances, &member.task)
                .await
                .with_context(|| format!("queueing task `{}`", member.name))?;
            queued.push(job);
        }
        let json = self.args.output == OutputFormat::Json;
        let outcome = tokio::select! {
            reports = self.follow(queued, json) => reports,
            signal = interrupted() => Err(anyhow!("interrupted by {signal}")),
        };
        let reports = match outcome {
            Ok(reports) => reports,
            Err(err) => {
                if self.args.down {
                    say("Tearing the job group's clusters down (--down)");
                    self.tear_down().await;
                } else {
                    for member in self.members.iter() {
                        say(&format!(
                            "The job of `{}` may go on on `{}`; `aloft cancel {} --all` ends it",
                            member.name, member.cluster, member.cluster
                        ));
                    }
                }
                return Err(err);
            }
        };
        let failed_primary =
            self.members.iter().zip(&reports).find(|(member, report)| {
                member.primary && report.state != Some(JobState::Succeeded)
            });
        for (member, report) in self.members.iter().zip(&reports) {
            let state = report
                .state
                .map_or("unknown".to_owned(), |state| crate::output::snake(&state));
            say(&format!(
                "[{}] job {} on `{}`: {state}{}",
                member.name,
                report.job_id,
                member.cluster,
                if member.primary { "" } else { " (auxiliary)" }
            ));
        }
        let tear_down = self.args.down || failed_primary.is_none();
        if tear_down {
            self.tear_down().await;
        } else {
            say(
                "The job group failed; its clusters are kept for a look (`aloft down` removes them).",
            );
        }
        if json {
            let tasks: Vec<LaunchReport> = self
                .members
                .iter()
                .zip(self.launched)
                .zip(reports.iter().cloned())
                .map(|((member, launched), job)| LaunchReport {
                    cluster: member.cluster.as_str().to_owned(),
                    placement: launched.placement.clone(),
                    launched: launched.how.clone(),
                    job,
                    torn_down: tear_down,
                })
                .collect();
            let document = serde_json::json!({"job_group": self.group, "tasks": tasks});
            crate::output::outln!("{}", serde_json::to_string_pretty(&document)?);
        }
        Ok(match failed_primary {
            None => ExitCode::SUCCESS,
            Some((member, report)) => {
                say(&format!("Primary task `{}` did not succeed.", member.name));
                ExitCode::from(crate::job_cmd::job_exit_code(report).max(1))
            }
        })
    }

    /// Every node's address per member, head first.
    fn addresses(&self) -> Vec<Vec<IpAddr>> {
        self.launched
            .iter()
            .map(|launched| {
                launched
                    .instances
                    .iter()
                    .filter_map(|instance| instance.private_address.or(instance.public_address))
                    .collect()
            })
            .collect()
    }

    /// Lets the tasks find and reach each other: peers admitted, names in every node's
    /// `/etc/hosts`, addresses in every job's environment.
    async fn discovery(&mut self) {
        let addresses = self.addresses();
        let mut unable = Vec::new();
        for (idx, launched) in self.launched.iter().enumerate() {
            let peers: Vec<IpAddr> = addresses
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != idx)
                .flat_map(|(_, nodes)| nodes.iter().copied())
                .collect();
            let context = &launched.context;
            match context
                .provider
                .admit_peers(&context.region, &context.cluster, &peers)
                .await
            {
                Ok(true) => {}
                Ok(false) => unable.push(context.provider.id().to_owned()),
                Err(err) => say(&format!(
                    "warning: `{}` could not admit the group's other clusters: {err}",
                    context.cluster
                )),
            }
        }
        unable.sort();
        unable.dedup();
        for cloud in unable {
            say(&format!(
                "note: {cloud} cannot open a cluster to the group's others: the tasks reach each \
                 other only as far as its network allows"
            ));
        }
        match hosts_entries(self.group, self.members, &addresses) {
            Ok(entries) => self.write_hosts(&entries).await,
            Err(reason) => say(&format!(
                "note: no `<task>-<node>.{}` names on the nodes: {reason}; the addresses are in \
                 SKYPILOT_JOBGROUP_HOST_<TASK>",
                self.group
            )),
        }
        let envs = group_envs(self.group, self.members, &addresses);
        for member in self.members.iter_mut() {
            for (name, value) in &envs {
                member.task.envs.insert(name.clone(), Some(value.clone()));
            }
        }
    }

    /// Adds the group's names to `/etc/hosts` on every node of every cluster (replacing this
    /// group's earlier lines, so a relaunch does not pile them up).
    async fn write_hosts(&self, entries: &str) {
        let marker = format!("# aloft-jobgroup:{}", self.group);
        let script = format!(
            "set -e\n\
             sudo=; [ \"$(id -u)\" -eq 0 ] || sudo='sudo -n'\n\
             kept=$(mktemp)\n\
             grep -v -F -e '{marker}' /etc/hosts > \"$kept\" || true\n\
             cat >> \"$kept\" <<'ALOFT_HOSTS'\n{entries}ALOFT_HOSTS\n\
             # Written in place: /etc/hosts may be a mount that a rename would not replace.\n\
             $sudo cp \"$kept\" /etc/hosts\n\
             rm -f \"$kept\"\n"
        );
        for launched in self.launched {
            let transports = match launched.context.transports(&launched.instances) {
                Ok(transports) => transports,
                Err(err) => {
                    say(&format!(
                        "warning: no names in /etc/hosts on `{}`: {err}",
                        launched.context.cluster
                    ));
                    continue;
                }
            };
            for (node, transport) in transports.iter().enumerate() {
                match transport.output(&RemoteCommand::new(script.clone())).await {
                    Ok((0, _)) => {}
                    Ok((code, text)) => say(&format!(
                        "warning: could not write /etc/hosts on node {node} of `{}` (exit {code}): {}",
                        launched.context.cluster,
                        text.trim()
                    )),
                    Err(err) => say(&format!(
                        "warning: could not write /etc/hosts on node {node} of `{}`: {err}",
                        launched.context.cluster
                    )),
                }
            }
        }
    }

    /// Follows every job at once. Once every primary task has ended, each other task gets its
    /// termination delay and is cancelled. Returns each member's report, in order.
    async fn follow(
        &self,
        queued: Vec<crate::job_cmd::Queued>,
        json: bool,
    ) -> Result<Vec<crate::job_cmd::JobReport>> {
        let primaries = self.members.iter().filter(|member| member.primary).count();
        let (ended, primaries_done) = tokio::sync::watch::channel(primaries == 0);
        let ended_count = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<Mutex<Option<crate::job_cmd::JobReport>>> =
            self.members.iter().map(|_| Mutex::new(None)).collect();
        {
            let followers: Vec<Boxed<'_, ()>> = self
                .members
                .iter()
                .zip(queued)
                .zip(&slots)
                .map(|((member, queued), slot)| -> Boxed<'_, ()> {
                    let (ended, ended_count) = (&ended, &ended_count);
                    let mut primaries_done = primaries_done.clone();
                    Box::pin(async move {
                        let client = queued.client().clone();
                        let job_id = queued.job_id();
                        let follow = crate::job_cmd::await_job_tagged(queued, &member.name, json);
                        let report = if member.primary {
                            let report = follow.await;
                            let count =
                                ended_count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                            if count == primaries {
                                let _ = ended.send(true);
                            }
                            report?
                        } else {
                            tokio::pin!(follow);
                            let cancel = async {
                                let _ = primaries_done.wait_for(|done| *done).await;
                                if !member.delay.is_zero() {
                                    say(&format!(
                                        "[{}] The primary tasks have ended; cancelling it in {}",
                                        member.name,
                                        crate::output::duration(member.delay.as_secs_f64())
                                    ));
                                    tokio::time::sleep(member.delay).await;
                                }
                                say(&format!(
                                    "[{}] Cancelling it (the primary tasks have ended)",
                                    member.name
                                ));
                                if let Err(err) = client.cancel(&[job_id], false).await {
                                    say(&format!(
                                        "warning: could not cancel `{}`'s job {job_id}: {err}",
                                        member.name
                                    ));
                                }
                            };
                            tokio::select! {
                                report = &mut follow => report?,
                                () = cancel => follow.await?,
                            }
                        };
                        *slot.lock().expect("not poisoned") = Some(report);
                        Ok(())
                    })
                })
                .collect();
            all_or_first_error(followers).await?;
        }
        Ok(slots
            .into_iter()
            .map(|slot| {
                slot.into_inner()
                    .expect("not poisoned")
                    .expect("every job was followed")
            })
            .collect())
    }

    async fn tear_down(&self) {
        for launched in self.launched {
            let context = &launched.context;
            let name = context.cluster.as_str();
            say(&format!("Tearing down `{name}`"));
            match context
                .provider
                .terminate(&context.region, &context.cluster)
                .await
            {
                Ok(()) => {
                    if let Err(err) = self.store.cluster_delete(name).await {
                        say(&format!(
                            "warning: `{name}` is gone but still recorded: {err:#}"
                        ));
                    }
                }
                Err(err) => say(&format!(
                    "warning: could not tear down `{name}`: {err:#}; `aloft down {name}` removes it"
                )),
            }
        }
    }
}

/// A DNS label: letters, digits and inner `-`, at most 63 characters.
fn is_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// The group's `/etc/hosts` lines, `<address> <task>-<node>.<group>`, each marked with the
/// group so a relaunch replaces them; an error says why names cannot be made.
fn hosts_entries(
    group: &str,
    members: &[Member],
    addresses: &[Vec<IpAddr>],
) -> Result<String, String> {
    if !is_label(group) {
        return Err(format!(
            "the group's name `{group}` is not a host name label (letters, digits, inner `-`)"
        ));
    }
    let mut entries = String::new();
    for (member, nodes) in members.iter().zip(addresses) {
        for (node, address) in nodes.iter().enumerate() {
            let host = format!("{}-{node}", member.name);
            if !is_label(&host) {
                return Err(format!(
                    "task `{}` is not a host name label (letters, digits, inner `-`)",
                    member.name
                ));
            }
            entries.push_str(&format!(
                "{address} {host}.{group} # aloft-jobgroup:{group}\n"
            ));
        }
    }
    Ok(entries)
}

/// The name of a task in an environment variable: upper case, `-` (and anything else not a
/// letter or digit) as `_`.
fn env_part(task: &str) -> String {
    task.chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() {
                ch.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The variables every job of the group gets.
fn group_envs(group: &str, members: &[Member], addresses: &[Vec<IpAddr>]) -> Vec<(String, String)> {
    let mut envs = vec![("SKYPILOT_JOBGROUP_NAME".to_owned(), group.to_owned())];
    for (member, nodes) in members.iter().zip(addresses) {
        let part = env_part(&member.name);
        if let Some(head) = nodes.first() {
            envs.push((format!("SKYPILOT_JOBGROUP_HOST_{part}"), head.to_string()));
        }
        let all: Vec<String> = nodes.iter().map(IpAddr::to_string).collect();
        envs.push((format!("ALOFT_JOBGROUP_IPS_{part}"), all.join("\n")));
    }
    envs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str) -> Member {
        Member {
            name: name.to_owned(),
            task: Task::new(name),
            cluster: ClusterName::new(format!("g-{}", name.to_ascii_lowercase()))
                .unwrap_or_else(|_| ClusterName::new("g-x").unwrap()),
            primary: true,
            delay: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn cluster_names_are_the_base_and_the_task_made_valid() {
        let names = |tasks: &[&str]| -> Vec<String> {
            let tasks: Vec<String> = tasks.iter().map(|task| (*task).to_owned()).collect();
            cluster_names("grp", &tasks)
                .unwrap()
                .iter()
                .map(|name| name.as_str().to_owned())
                .collect()
        };
        assert_eq!(names(&["server", "client"]), ["grp-server", "grp-client"]);
        assert_eq!(
            names(&["PPO_Trainer", "data.server", "--"]),
            ["grp-ppo-trainer", "grp-data-server", "grp-2"]
        );
        // Two names that come out the same: the second takes its position.
        assert_eq!(names(&["a_b", "a-b"]), ["grp-a-b", "grp-1"]);
        let long = "x".repeat(80);
        let err = cluster_names("grp", &[long]).unwrap_err().to_string();
        assert!(err.contains("choose a shorter base name"), "{err}");
    }

    #[test]
    fn every_job_learns_the_group_and_each_task_s_addresses() {
        let members = [member("server"), member("ppo-trainer")];
        let addresses = vec![
            vec!["10.0.0.2".parse().unwrap()],
            vec!["10.0.0.3".parse().unwrap(), "10.0.0.4".parse().unwrap()],
        ];
        let envs = group_envs("rl", &members, &addresses);
        let get = |name: &str| {
            envs.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(get("SKYPILOT_JOBGROUP_NAME"), Some("rl"));
        assert_eq!(get("SKYPILOT_JOBGROUP_HOST_SERVER"), Some("10.0.0.2"));
        assert_eq!(get("SKYPILOT_JOBGROUP_HOST_PPO_TRAINER"), Some("10.0.0.3"));
        assert_eq!(
            get("ALOFT_JOBGROUP_IPS_PPO_TRAINER"),
            Some("10.0.0.3\n10.0.0.4")
        );
        let hosts = hosts_entries("rl", &members, &addresses).unwrap();
        assert_eq!(
            hosts,
            "10.0.0.2 server-0.rl # aloft-jobgroup:rl\n\
             10.0.0.3 ppo-trainer-0.rl # aloft-jobgroup:rl\n\
             10.0.0.4 ppo-trainer-1.rl # aloft-jobgroup:rl\n"
        );
        // Names that are no host names (nor safe in a script) give no entries, with the reason.
        let err = hosts_entries("my group", &members, &addresses).unwrap_err();
        assert!(err.contains("`my group`"), "{err}");
        let odd = [member("a_b")];
        let err = hosts_entries("rl", &odd, &addresses[..1]).unwrap_err();
        assert!(err.contains("task `a_b`"), "{err}");
    }
}
